"""The notifications' rows: how far the daemon has looked for something to tell, the messages
it claimed, and what became of each (inside the Store's transactions; SQL only here and in
the rest of the store package).

A message is sent at most once: it is claimed (its row written as 'sending') in the same
transaction that moves the cursor past its run or event, before any delivery is tried; a
daemon stopped mid-delivery finds it 'sending' at its next start and marks it 'interrupted',
never sending it again.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from stagewise.store.codec import decoded, iso, to_json

# A look reads at most this many runs and events (the rest: at the next look).
LOOK_LIMIT = 200


@dataclasses.dataclass(frozen=True, slots=True)
class Untold:
    """What was recorded since the last look: runs (each with its `orders`) and events
    finished at or after the look's horizon, and the cursor (newest run id, newest event id)
    before and after it."""

    runs: list[dict[str, Any]]
    events: list[dict[str, Any]]
    start: tuple[int, int]
    end: tuple[int, int]


@dataclasses.dataclass(frozen=True, slots=True)
class Notice:
    """A message to claim: which run or event it tells of, and what it says."""

    kind: str
    level: str
    title: str
    body: str
    run_id: int | None = None
    event_id: int | None = None


def cursor(conn: sqlite3.Connection) -> tuple[int, int] | None:
    row = conn.execute("SELECT run_id, event_id FROM notify_cursor WHERE id = 1").fetchone()
    return None if row is None else (row[0], row[1])


def start_cursor(conn: sqlite3.Connection, at: datetime) -> bool:
    """Put the cursor at the newest run and event if there is none yet (the first start with
    notifications: what was recorded before is not told). True when it was put."""
    cursor_ = conn.execute(
        "INSERT INTO notify_cursor (id, run_id, event_id, updated_at)"
        " SELECT 1, (SELECT COALESCE(MAX(id), 0) FROM runs),"
        " (SELECT COALESCE(MAX(id), 0) FROM events), ?"
        " ON CONFLICT (id) DO NOTHING",
        [iso(at)],
    )
    return cursor_.rowcount == 1


def interrupt(conn: sqlite3.Connection, at: datetime) -> int:
    """Mark the messages left 'sending' by a daemon that stopped mid-delivery 'interrupted'
    (whether they arrived is not known; they are not sent again). Returns how many."""
    return conn.execute(
        "UPDATE notifications SET status = 'interrupted', finished_at = ? WHERE status = 'sending'",
        [iso(at)],
    ).rowcount


def untold(conn: sqlite3.Connection, horizon: datetime) -> Untold | None:
    """The runs and events after the cursor (None: no cursor yet), those older than
    `horizon` left out (looked past, not told: e.g. recorded while notifications were off)."""
    start = cursor(conn)
    if start is None:
        return None
    run_from, event_from = start
    runs = decoded(
        conn.execute("SELECT * FROM runs WHERE id > ? ORDER BY id LIMIT ?", [run_from, LOOK_LIMIT])
    )
    events = decoded(
        conn.execute(
            "SELECT * FROM events WHERE id > ? ORDER BY id LIMIT ?", [event_from, LOOK_LIMIT]
        )
    )
    end = (runs[-1]["id"] if runs else run_from, events[-1]["id"] if events else event_from)
    runs = [r for r in runs if r["finished_at"] >= horizon]
    events = [e for e in events if e["at"] >= horizon]
    orders = _orders_of(conn, [r["id"] for r in runs if r["status"] == "ok"])
    for run in runs:
        run["orders"] = orders.get(run["id"], [])
    return Untold(runs, events, start, end)


def _orders_of(conn: sqlite3.Connection, run_ids: Sequence[int]) -> dict[int, list[dict]]:
    if not run_ids:
        return {}
    marks = ", ".join("?" for _ in run_ids)
    rows = decoded(
        conn.execute(
            f"SELECT * FROM orders WHERE run_id IN ({marks}) ORDER BY run_id, seq", list(run_ids)
        )
    )
    found: dict[int, list[dict]] = {}
    for row in rows:
        found.setdefault(row["run_id"], []).append(row)
    return found


def claim(
    conn: sqlite3.Connection, looked: Untold, notices: Sequence[Notice], at: datetime
) -> list[int]:
    """Write `notices` as 'sending' and move the cursor to the look's end (the caller holds
    the write lock). Returns their ids; none, writing nothing, when the cursor moved since
    the look (another daemon on the same file claimed them)."""
    if cursor(conn) != looked.start:
        return []
    ids = []
    for n in notices:
        row = conn.execute(
            "INSERT INTO notifications (at, kind, level, run_id, event_id, title, body, status)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, 'sending')",
            [iso(at), n.kind, n.level, n.run_id, n.event_id, n.title, n.body],
        )
        ids.append(int(row.lastrowid or 0))
    conn.execute(
        "UPDATE notify_cursor SET run_id = ?, event_id = ?, updated_at = ? WHERE id = 1",
        [*looked.end, iso(at)],
    )
    return ids


def finish(
    conn: sqlite3.Connection,
    notice_id: int,
    targets: int,
    failed_services: Sequence[str],
    at: datetime,
) -> None:
    """What became of a claimed message: sent when every target took it, else failed."""
    conn.execute(
        "UPDATE notifications SET status = ?, targets = ?, delivered = ?, failed_services = ?,"
        " finished_at = ? WHERE id = ?",
        [
            "failed" if failed_services else "sent",
            targets,
            targets - len(failed_services),
            to_json(list(failed_services)),
            iso(at),
            notice_id,
        ],
    )


def counts(conn: sqlite3.Connection) -> dict[str, Any]:
    """Messages by status, and when the newest failed one was tried (None: none failed)."""
    by_status = dict(conn.execute("SELECT status, COUNT(*) FROM notifications GROUP BY status"))
    (last,) = conn.execute(
        "SELECT MAX(finished_at) FROM notifications WHERE status = 'failed'"
    ).fetchone()
    return {
        "sent": by_status.get("sent", 0),
        "failed": by_status.get("failed", 0),
        "interrupted": by_status.get("interrupted", 0),
        "sending": by_status.get("sending", 0),
        "last_failed_at": last,
    }
