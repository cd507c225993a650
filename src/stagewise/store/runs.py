"""A run as the store records it (`RunRecord`), its rows, and the store's runs (`RunStore`:
recording them, and what was recorded).

The hot path of every run (a simulation records thousands): hand-written INSERTs of tuples,
not sqlite-utils' insert_all, which looks the table up and builds its statement on every
call (0.79 ms against 0.33 ms for a run's 51 snapshot rows, measured). Values are those
the columns held when rows were dicts of the dataclasses' fields.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from stagewise.churn import ProposedOrder
from stagewise.errors import StagewiseError
from stagewise.ledger import LedgerEntry
from stagewise.planner.model import Order, Plan, PlanState, Skip
from stagewise.snapshot import Snapshot
from stagewise.store.codec import decoded, fields_of, from_iso, iso, to_json, where_clause
from stagewise.store.plan_state import PlanStateStore

RunStatus = Literal["ok", "failed", "skipped", "missed"]


class DuplicatePeriod(StagewiseError):
    """A run for this period key is already recorded: a period runs at most once."""


@dataclasses.dataclass(frozen=True, slots=True)
class RunRecord:
    """One run and all it changed, as `Store.record_run` writes it (whole or not at all).

    `state` (default: the plan's) becomes the carried plan state, except the pause, which
    only `Store.set_paused` changes. Ledger entries and events are tied to the run; the
    windfalls named are marked consumed by it. Times are aware datetimes.
    """

    job: str
    period: str
    scheduled_at: datetime
    started_at: datetime
    finished_at: datetime
    status: RunStatus
    mode: str
    plan: Plan | None = None
    snapshot: Snapshot | None = None
    state: PlanState | None = None
    ledger: Sequence[LedgerEntry] = ()
    events: Sequence[tuple[str, Mapping[str, Any]]] = ()
    consume_windfalls: Sequence[int] = ()
    error: str | None = None

    @property
    def carried(self) -> PlanState | None:
        """The plan state the run leaves (None: the run changes none)."""
        if self.state is None and self.plan is not None:
            return self.plan.state
        return self.state


def insert_sql(table: str, names: Sequence[str]) -> str:
    """INSERT INTO `table` of the columns `names`, one `?` each."""
    return f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})"


RUN_COLUMNS = (
    "job",
    "period",
    "scheduled_at",
    "started_at",
    "finished_at",
    "status",
    "error",
    "mode",
    "snapshot_at",
    "rule",
    "refused",
    "deposit_needed",
    "notes",
    "summary",
)
# The columns of a ledger row, the fields of a LedgerEntry followed by the run.
LEDGER_COLUMNS = ("at", "kind", "asset", "amount", "price", "note", "run_id")

_RUN = insert_sql("runs", RUN_COLUMNS)
_ORDER = insert_sql("orders", ("run_id", "seq", *fields_of(Order)[0]))
_SKIP = insert_sql("skips", ("run_id", "seq", *fields_of(Skip)[0]))
_SNAPSHOT = insert_sql("snapshots", ("run_id", "asset", "amount", "price", "value"))
_LEDGER = insert_sql("ledger", LEDGER_COLUMNS)


def insert_run(conn: sqlite3.Connection, run: RunRecord) -> int:
    """The run's row (a run without a plan keeps the plan columns' defaults); its id."""
    plan = run.plan
    values = (
        run.job,
        run.period,
        iso(run.scheduled_at),
        iso(run.started_at),
        iso(run.finished_at),
        run.status,
        run.error,
        run.mode,
        iso(run.snapshot.taken_at) if run.snapshot else None,
        *(
            (None, None, 0.0, "[]", None)
            if plan is None
            else (
                plan.rule,
                plan.refused,
                plan.deposit_needed,
                to_json(list(plan.notes)),
                to_json(plan.summary) if plan.summary else None,
            )
        ),
    )
    return int(conn.execute(_RUN, values).lastrowid or 0)


def insert_plan(conn: sqlite3.Connection, run_id: int, plan: Plan) -> None:
    """The plan's orders and skips, numbered from 0 in plan order."""
    if plan.orders:
        order = fields_of(Order)[1]
        conn.executemany(_ORDER, [(run_id, i, *order(o)) for i, o in enumerate(plan.orders)])
    if plan.skipped:
        skip = fields_of(Skip)[1]
        conn.executemany(_SKIP, [(run_id, i, *skip(s)) for i, s in enumerate(plan.skipped)])


def insert_snapshot(conn: sqlite3.Connection, run_id: int, snapshot: Snapshot) -> None:
    """Per asset held or priced: amount, price (the quote's is 1) and value."""
    quote, balances, prices = snapshot.quote, snapshot.balances, snapshot.prices
    amount_of, price_of = balances.get, prices.get
    rows = []
    for asset in sorted({*balances, *prices}):
        price = 1.0 if asset == quote else price_of(asset)
        amount = amount_of(asset, 0.0)
        rows.append((run_id, asset, amount, price, None if price is None else amount * price))
    if rows:
        conn.executemany(_SNAPSHOT, rows)


def insert_ledger(
    conn: sqlite3.Connection, entries: Sequence[LedgerEntry], run_id: int | None
) -> None:
    """Ledger entries in order, tied to `run_id` (None for a seed)."""
    if not entries:
        return
    rows = []
    last: datetime | None = None
    at = ""
    for e in entries:
        if e.at is not last:  # a run's entries mostly share one time: format it once
            last, at = e.at, iso(e.at)
        rows.append((at, e.kind, e.asset, e.amount, e.price, e.note or "", run_id))
    conn.executemany(_LEDGER, rows)


class RunStore(PlanStateStore):
    """The store's runs: one per period key (failed attempts aside), with the orders they
    proposed and the snapshot they saw."""

    def has_period(self, period: str) -> bool:
        """True when `period` is done: a run of it ran, was skipped or was missed. Failed
        attempts leave it open (to be retried)."""
        row = self.conn.execute(
            "SELECT 1 FROM runs WHERE period = ? AND status <> 'failed'", [period]
        ).fetchone()
        return row is not None

    def failed_attempts(self, period: str) -> int:
        """How many attempts at `period` failed (0 once it is done: then it needs no retry)."""
        if self.has_period(period):
            return 0
        (count,) = self.conn.execute(
            "SELECT COUNT(*) FROM runs WHERE period = ? AND status = 'failed'", [period]
        ).fetchone()
        return count

    def open_failures(self, since: datetime) -> list[dict[str, Any]]:
        """The newest failed attempt of each period still open, scheduled at or after `since`
        (what a start retries inside the grace window), oldest first."""
        rows = self.conn.execute(
            "SELECT job, period, MAX(scheduled_at) AS scheduled_at, COUNT(*) AS attempts"
            " FROM runs AS r WHERE status = 'failed' AND scheduled_at >= ?"
            " AND NOT EXISTS (SELECT 1 FROM runs AS d"
            "   WHERE d.period = r.period AND d.status <> 'failed')"
            " GROUP BY job, period ORDER BY MAX(scheduled_at)",
            [iso(since)],
        )
        return decoded(rows)

    def record_run(self, run: RunRecord) -> int:
        """Record one run and all it changed (see RunRecord), whole or not at all; returns
        the run's id. Raises DuplicatePeriod if its period is already done (a failed run may
        be recorded for a period any number of times), ValueError for a naive time or a
        windfall not pending."""
        conn = self.conn
        with self._writing():
            try:
                run_id = insert_run(conn, run)
            except sqlite3.IntegrityError as e:
                if "runs.period" in str(e):
                    raise DuplicatePeriod(f"period {run.period} has already run") from e
                raise
            if run.plan is not None:
                insert_plan(conn, run_id, run.plan)
            if run.snapshot is not None:
                insert_snapshot(conn, run_id, run.snapshot)
            carried = run.carried
            if carried is not None:
                self._carry_state(carried, run.finished_at)
            insert_ledger(conn, run.ledger, run_id)
            for kind, data in run.events:
                self._insert_event(kind, run.finished_at, data, run_id)
            self._consume_windfalls(run.consume_windfalls, run_id)
        return run_id

    def runs(
        self, *, job: str | None = None, status: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        """Recorded runs, newest first, optionally of one job and/or status."""
        where, args = where_clause(("job = ?", job), ("status = ?", status))
        return self._newest("runs", where, args, limit)

    def counts(self) -> dict[str, dict[tuple[str, str], int]]:
        """How many runs per (job, status), and proposed orders per (job, side)."""
        runs = self.conn.execute("SELECT job, status, count(*) FROM runs GROUP BY 1, 2")
        orders = self.conn.execute(
            "SELECT r.job, o.side, count(*) FROM orders o JOIN runs r ON r.id = o.run_id"
            " GROUP BY 1, 2"
        )
        return {
            "runs": {(job, status): n for job, status, n in runs},
            "orders": {(job, side): n for job, side, n in orders},
        }

    def proposed_orders(self) -> list[ProposedOrder]:
        """Every proposed order with its run's id, job and finished_at, oldest first."""
        rows = self.conn.execute(
            "SELECT r.id, r.job, r.finished_at, o.notional FROM orders o"
            " JOIN runs r ON r.id = o.run_id ORDER BY r.id, o.seq"
        )
        return [ProposedOrder(run, job, from_iso(at), notional) for run, job, at, notional in rows]

    def last_run(self, job: str) -> dict[str, Any] | None:
        """The newest run of `job` (any status), or None."""
        found = self.runs(job=job, limit=1)
        return found[0] if found else None

    def proposals(
        self, *, since: datetime | None = None, job: str | None = None, period: str | None = None
    ) -> list[dict[str, Any]]:
        """Proposed orders with their run's job, period, mode, finished_at, notes and the
        deposit it asks for, newest first."""
        where, args = where_clause(
            ("r.finished_at >= ?", iso(since) if since else None),
            ("r.job = ?", job),
            ("r.period = ?", period),
        )
        sql = (
            "SELECT o.*, r.job, r.period, r.mode, r.finished_at, r.notes, r.deposit_needed"
            " FROM orders o JOIN runs r ON r.id = o.run_id"
            + (f" WHERE {where}" if where else "")
            + " ORDER BY r.id DESC, o.seq"
        )
        return decoded(self.conn.execute(sql, args))

    def latest_snapshot(self) -> tuple[datetime, dict[str, dict[str, Any]]] | None:
        """The newest recorded snapshot: its time and, per asset, amount, price and value."""
        row = self.conn.execute(
            "SELECT id, snapshot_at FROM runs WHERE snapshot_at IS NOT NULL "
            "ORDER BY snapshot_at DESC, id DESC LIMIT 1"
        ).fetchone()
        if row is None:
            return None
        assets = self.conn.execute(
            "SELECT asset, amount, price, value FROM snapshots WHERE run_id = ? ORDER BY asset",
            [row[0]],
        ).fetchall()
        return from_iso(row[1]), {
            a: {"amount": amount, "price": price, "value": value}
            for a, amount, price, value in assets
        }

    def portfolio_value(self) -> float | None:
        """The portfolio's value at the newest recorded snapshot; None before the first."""
        latest = self.latest_snapshot()
        return None if latest is None else sum(a["value"] or 0 for a in latest[1].values())

    # -- writing, inside a caller's transaction ---------------------------------------------

    # Here, not in windfalls.py: recording a run consumes them, and a cancelled windfall is a
    # run (windfalls.py builds on this module).
    def _consume_windfalls(self, ids: Sequence[int], run_id: int) -> None:
        for windfall_id in ids:
            cursor = self.conn.execute(
                "UPDATE pending_windfalls SET consumed_run = ?"
                " WHERE id = ? AND consumed_run IS NULL",
                [run_id, windfall_id],
            )
            if cursor.rowcount != 1:
                raise ValueError(f"windfall {windfall_id} is not pending")
