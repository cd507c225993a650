"""The Store: the daemon's state file behind a small API of domain nouns."""

from __future__ import annotations

import contextlib
import dataclasses
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from sqlite_utils import Database

from daemon.errors import StagewiseError
from daemon.paper import LedgerEntry
from daemon.planner.model import Plan, PlanState
from daemon.snapshot import Snapshot
from daemon.store.codec import (
    columns,
    decode,
    from_iso,
    iso,
    plan_columns,
    state_from_json,
    state_json,
    to_json,
    where_clause,
)
from daemon.store.schema import MIGRATIONS

RunStatus = Literal["ok", "failed", "skipped", "missed"]


class StateError(StagewiseError):
    """The state file cannot be opened or is not a stagewise database."""


class DuplicatePeriod(StagewiseError):
    """A run for this period key is already recorded: a period runs at most once."""


@dataclasses.dataclass(frozen=True, slots=True)
class PendingWindfall:
    """Money announced with `stagewise windfall` that no run has invested yet."""

    id: int
    at: datetime
    amount: float


class Store:
    """The daemon's SQLite state, on the `Database` it is given (migrated on construction)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        # Reads the jobs repeat on every run, kept until the file changes: by this store
        # (cleared on each write) or by another connection (PRAGMA data_version moves).
        self._reads: dict[str, Any] = {}
        self._version: int | None = None
        db.execute("PRAGMA foreign_keys=ON")  # per connection; the schema relies on it
        MIGRATIONS.apply(db)

    @classmethod
    def open(cls, path: Path) -> Store:
        """Open (creating it and its folder if needed) the state file at `path`, in WAL mode."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # The daemon hands the store from its main thread to the scheduler's single
            # worker; it never uses one connection from two threads at once.
            db = Database(sqlite3.connect(str(path), check_same_thread=False))
            db.execute("PRAGMA busy_timeout=5000")
            db.execute("PRAGMA synchronous=NORMAL")
            db.enable_wal()
            return cls(db)
        except (sqlite3.Error, OSError) as e:
            raise StateError(f"cannot use the state file {path}: {e}") from None

    def close(self) -> None:
        """Close the database connection."""
        self.db.close()

    def schema_version(self) -> int:
        """How many of the schema's migrations this file has had applied."""
        return len(MIGRATIONS.applied(self.db))

    def integrity_ok(self) -> bool:
        """True when SQLite finds the file sound and no foreign key dangles."""
        check = [r[0] for r in self.db.execute("PRAGMA integrity_check").fetchall()]
        dangling = self.db.execute("PRAGMA foreign_key_check").fetchall()
        return check == ["ok"] and not dangling

    # -- runs -------------------------------------------------------------------------------

    def has_period(self, period: str) -> bool:
        """True when a run (of any status) is recorded for `period`."""
        row = self.db.execute("SELECT 1 FROM runs WHERE period = ?", [period]).fetchone()
        return row is not None

    def record_run(
        self,
        *,
        job: str,
        period: str,
        scheduled_at: datetime,
        started_at: datetime,
        finished_at: datetime,
        status: RunStatus,
        mode: str,
        plan: Plan | None = None,
        snapshot: Snapshot | None = None,
        state: PlanState | None = None,
        ledger: Sequence[LedgerEntry] = (),
        events: Sequence[tuple[str, dict]] = (),
        consume_windfalls: Sequence[int] = (),
        error: str | None = None,
    ) -> int:
        """Record one run and all it changed, whole or not at all; returns the run's id.

        `state` (default: the plan's) becomes the carried plan state, except the pause,
        which only set_paused changes. Ledger entries and events are tied to the run; the
        windfalls named are marked consumed by it. Raises DuplicatePeriod if `period` is
        already recorded, ValueError for a naive time or a windfall not pending.
        """
        row = {
            "job": job,
            "period": period,
            "scheduled_at": iso(scheduled_at),
            "started_at": iso(started_at),
            "finished_at": iso(finished_at),
            "status": status,
            "error": error,
            "mode": mode,
            "snapshot_at": iso(snapshot.taken_at) if snapshot else None,
            **(plan_columns(plan) if plan else {}),
        }
        if state is None and plan is not None:
            state = plan.state
        with self._writing():
            run_id = self._insert_run(row)
            if plan is not None:
                self._insert_plan(run_id, plan)
            if snapshot is not None:
                self._insert_snapshot(run_id, snapshot)
            if state is not None:
                held = self._read_state()
                kept = dataclasses.replace(
                    state, paused=held.paused, pause_reason=held.pause_reason
                )
                self._write_state(kept, finished_at)
            self._insert_ledger(ledger, run_id)
            for kind, data in events:
                self._insert_event(kind, finished_at, data, run_id)
            self._consume_windfalls(consume_windfalls, run_id)
        return run_id

    def runs(
        self, *, job: str | None = None, status: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        """Recorded runs, newest first, optionally of one job and/or status."""
        where, args = where_clause(("job = ?", job), ("status = ?", status))
        rows = self.db.table("runs").rows_where(where, args, order_by="id DESC", limit=limit)
        return [decode(r) for r in rows]

    def last_run(self, job: str) -> dict[str, Any] | None:
        """The newest run of `job` (any status), or None."""
        found = self.runs(job=job, limit=1)
        return found[0] if found else None

    def proposals(
        self, *, since: datetime | None = None, job: str | None = None
    ) -> list[dict[str, Any]]:
        """Proposed orders with their run's job, period, mode and finished_at, newest first."""
        where, args = where_clause(
            ("r.finished_at >= ?", iso(since) if since else None), ("r.job = ?", job)
        )
        sql = (
            "SELECT o.*, r.job, r.period, r.mode, r.finished_at"
            " FROM orders o JOIN runs r ON r.id = o.run_id"
            + (f" WHERE {where}" if where else "")
            + " ORDER BY r.id DESC, o.seq"
        )
        return [decode(r) for r in self.db.query(sql, args)]

    # -- plan state, pause, events ----------------------------------------------------------

    def latest_snapshot(self) -> tuple[datetime, dict[str, dict[str, Any]]] | None:
        """The newest recorded snapshot: its time and, per asset, amount, price and value."""
        row = self.db.execute(
            "SELECT id, snapshot_at FROM runs WHERE snapshot_at IS NOT NULL "
            "ORDER BY snapshot_at DESC, id DESC LIMIT 1"
        ).fetchone()
        if row is None:
            return None
        assets = self.db.execute(
            "SELECT asset, amount, price, value FROM snapshots WHERE run_id = ? ORDER BY asset",
            [row[0]],
        ).fetchall()
        return from_iso(row[1]), {
            a: {"amount": amount, "price": price, "value": value}
            for a, amount, price, value in assets
        }

    def cached_closes(
        self, exchange: str, symbol: str, timeframe: str, since_ms: int, until_ms: int
    ) -> list[tuple[int, float]]:
        """Cached (timestamp ms, close) rows of one market in [since_ms, until_ms)."""
        rows = self.db.execute(
            "SELECT ts, close FROM price_cache WHERE exchange = ? AND symbol = ? "
            "AND timeframe = ? AND ts >= ? AND ts < ? ORDER BY ts",
            [exchange, symbol, timeframe, since_ms, until_ms],
        ).fetchall()
        return [(int(ts), float(close)) for ts, close in rows]

    def cache_closes(
        self, exchange: str, symbol: str, timeframe: str, rows: Sequence[tuple[int, float]]
    ) -> None:
        """Keep downloaded closes (replacing the same timestamps), in one transaction."""
        with self._writing():
            self.db.table("price_cache").upsert_all(
                [
                    {
                        "exchange": exchange,
                        "symbol": symbol,
                        "timeframe": timeframe,
                        "ts": ts,
                        "close": close,
                    }
                    for ts, close in rows
                ],
                pk=("exchange", "symbol", "timeframe", "ts"),
            )

    def plan_state(self) -> PlanState:
        """The planner's carried state; the default PlanState() before any was saved."""
        return self._cached("plan_state", self._read_state)

    def set_paused(self, paused: bool, reason: str, at: datetime) -> None:
        """Start (True) or end the emergency pause, with a 'paused'/'resumed' event."""
        with self._writing():
            self._lock_state(at)  # take the write lock before reading: no lost update
            state = dataclasses.replace(
                self._read_state(), paused=paused, pause_reason=reason if paused else ""
            )
            self._write_state(state, at)
            self._insert_event("paused" if paused else "resumed", at, {"reason": reason})

    def add_event(self, kind: str, at: datetime, data: Mapping[str, Any]) -> None:
        """Log something that happened outside a run (stage change, fault, config reload …)."""
        with self._writing():
            self._insert_event(kind, at, data)

    def events(self, *, kind: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Logged events, newest first, optionally of one kind; `data` decoded."""
        where, args = where_clause(("kind = ?", kind))
        rows = self.db.table("events").rows_where(where, args, order_by="id DESC", limit=limit)
        return [decode(r) for r in rows]

    # -- windfalls --------------------------------------------------------------------------

    def add_pending_windfall(self, amount: float, at: datetime) -> int:
        """Announce a windfall for the next run to invest; returns its id (and logs an event)."""
        with self._writing():
            table = self.db.table("pending_windfalls").insert({"at": iso(at), "amount": amount})
            windfall_id = int(table.last_rowid or 0)
            self._insert_event("windfall", at, {"id": windfall_id, "amount": amount})
        return windfall_id

    def pending_windfalls(self) -> list[PendingWindfall]:
        """Windfalls no run has consumed yet, oldest first."""

        def load() -> list[PendingWindfall]:
            rows = self.db.execute(
                "SELECT id, at, amount FROM pending_windfalls WHERE consumed_run IS NULL "
                "ORDER BY id"
            ).fetchall()
            return [PendingWindfall(i, from_iso(at), amount) for i, at, amount in rows]

        return list(self._cached("pending_windfalls", load))

    # -- ledger -----------------------------------------------------------------------------

    def ledger_entries(self) -> list[LedgerEntry]:
        """The whole paper ledger, in the order it was written."""
        rows = self.db.table("ledger").rows_where(order_by="id")
        return [
            LedgerEntry(
                from_iso(r["at"]), r["kind"], r["asset"], r["amount"], r["price"], r["note"]
            )
            for r in rows
        ]

    def ledger_balances(self) -> dict[str, float]:
        """The paper account's balance per asset: the sum of its ledger entries."""
        # Kept by a trigger on each ledger insert (schema m003): equal to the per-asset sums.
        sql = "SELECT asset, balance FROM ledger_balances ORDER BY asset"
        return dict(self._cached("ledger_balances", lambda: dict(self.db.execute(sql).fetchall())))

    def seed_ledger(
        self,
        balances: Mapping[str, float],
        at: datetime,
        *,
        prices: Mapping[str, float] | None = None,
    ) -> bool:
        """Seed an empty ledger with `balances` (cost basis from `prices` where given).

        True when seeded; False, writing nothing, when the ledger already has entries.
        """
        prices = prices or {}
        entries = [
            LedgerEntry(at, "seed", asset, amount, prices.get(asset), "initial balance")
            for asset, amount in sorted(balances.items())
            if amount != 0
        ]
        with self._writing():
            if self.db.execute("SELECT 1 FROM ledger LIMIT 1").fetchone():
                return False
            self._insert_ledger(entries, None)
            self._insert_event("ledger_seeded", at, {"balances": dict(balances)})
        return True

    # -- cached reads and writes ------------------------------------------------------------

    def _cached(self, key: str, load: Callable[[], Any]) -> Any:
        version = self.db.execute("PRAGMA data_version").fetchone()[0]
        if version != self._version:
            self._reads.clear()
            self._version = version
        if key not in self._reads:
            self._reads[key] = load()
        return self._reads[key]

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """One transaction (nested ones are savepoints); cached reads are dropped after it."""
        try:
            with self.db.atomic():
                yield
        finally:
            self._reads.clear()

    # -- writing, inside a caller's transaction ---------------------------------------------

    def _insert_run(self, row: dict[str, Any]) -> int:
        try:
            return self._insert_row("runs", row)
        except sqlite3.IntegrityError as e:
            if "runs.period" in str(e):
                raise DuplicatePeriod(f"period {row['period']} has already run") from e
            raise

    def _insert_plan(self, run_id: int, plan: Plan) -> None:
        orders = [{"run_id": run_id, "seq": i, **columns(o)} for i, o in enumerate(plan.orders)]
        skips = [{"run_id": run_id, "seq": i, **columns(s)} for i, s in enumerate(plan.skipped)]
        self._insert_rows("orders", orders)
        self._insert_rows("skips", skips)

    def _insert_snapshot(self, run_id: int, snapshot: Snapshot) -> None:
        assets = sorted(set(snapshot.balances) | set(snapshot.prices))
        rows = []
        for asset in assets:
            price = 1.0 if asset == snapshot.quote else snapshot.prices.get(asset)
            amount = snapshot.balances.get(asset, 0.0)
            value = None if price is None else amount * price
            rows.append(
                {"run_id": run_id, "asset": asset, "amount": amount, "price": price, "value": value}
            )
        self._insert_rows("snapshots", rows)

    def _insert_ledger(self, entries: Sequence[LedgerEntry], run_id: int | None) -> None:
        rows = [
            {**columns(e), "at": iso(e.at), "run_id": run_id, "note": e.note or ""} for e in entries
        ]
        self._insert_rows("ledger", rows)

    def _insert_row(self, table: str, row: Mapping[str, Any]) -> int:
        """One plain row into `table`; returns its rowid."""
        names = list(row)
        sql = f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})"
        return int(self.db.conn.execute(sql, [row[n] for n in names]).lastrowid or 0)

    def _insert_rows(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Plain rows (numbers, text, None) into `table` in one prepared statement: the hot
        path of every run, without sqlite-utils' per-row type conversions."""
        if not rows:
            return
        names = list(rows[0])
        sql = f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})"
        self.db.conn.executemany(sql, [[row[n] for n in names] for row in rows])

    def _insert_event(
        self, kind: str, at: datetime, data: Mapping[str, Any], run_id: int | None = None
    ) -> None:
        row = {"at": iso(at), "kind": kind, "run_id": run_id, "data": to_json(data)}
        self._insert_row("events", row)

    def _consume_windfalls(self, ids: Sequence[int], run_id: int) -> None:
        for windfall_id in ids:
            cursor = self.db.execute(
                "UPDATE pending_windfalls SET consumed_run = ?"
                " WHERE id = ? AND consumed_run IS NULL",
                [run_id, windfall_id],
            )
            if cursor.rowcount != 1:
                raise ValueError(f"windfall {windfall_id} is not pending")

    def _lock_state(self, at: datetime) -> None:
        self.db.execute(
            "INSERT INTO plan_state (id, state, updated_at) VALUES (1, ?, ?)"
            " ON CONFLICT (id) DO NOTHING",
            [state_json(PlanState()), iso(at)],
        )

    def _read_state(self) -> PlanState:
        row = self.db.execute("SELECT state FROM plan_state WHERE id = 1").fetchone()
        return PlanState() if row is None else state_from_json(row[0])

    def _write_state(self, state: PlanState, at: datetime) -> None:
        self.db.conn.execute(
            "INSERT INTO plan_state (id, state, updated_at) VALUES (1, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET state = excluded.state, "
            "updated_at = excluded.updated_at",
            [state_json(state), iso(at)],
        )
