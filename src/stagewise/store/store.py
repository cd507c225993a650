"""The Store: the daemon's state file (a sqlite-utils Database) behind a small API of domain
nouns."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime
from operator import attrgetter
from pathlib import Path
from typing import Any, Literal

from sqlite_utils import Database

from stagewise.churn import ProposedOrder
from stagewise.composition import Composition
from stagewise.errors import StagewiseError, UsageError
from stagewise.history import Candle
from stagewise.ledger import LedgerEntry
from stagewise.money import MAX_MONEY
from stagewise.planner.model import PlanState
from stagewise.store import notices, runs
from stagewise.store.codec import (
    decode,
    decoded,
    from_iso,
    iso,
    state_from_json,
    state_json,
    to_json,
    where_clause,
)
from stagewise.store.files import (
    connect_file,
    connect_memory,
    connect_reading,
    enable_wal,
    file_of,
    locked,
    save_copy,
    unavailable,
)
from stagewise.store.reads import Reads
from stagewise.store.runs import RunRecord
from stagewise.store.schema import applied, copy_schema, migrate, up_to_date


class StateError(StagewiseError):
    """The state file cannot be opened or saved, is not a stagewise database, or holds a
    record that cannot be used."""


class DuplicatePeriod(StagewiseError):
    """A run for this period key is already recorded: a period runs at most once."""


@dataclasses.dataclass(frozen=True, slots=True)
class PendingWindfall:
    """Money announced with `stagewise windfall` that no run has invested yet."""

    id: int
    at: datetime
    amount: float


WindfallStatus = Literal["pending", "done", "cancelled"]


@dataclasses.dataclass(frozen=True, slots=True)
class Windfall:
    """A windfall announced with `stagewise windfall` and what became of it: pending, done
    (a run handled it: invested it or, under the emergency pause, did not), or cancelled;
    `settled_at` and `period` name that run (None while pending)."""

    id: int
    at: datetime
    amount: float
    status: WindfallStatus
    settled_at: datetime | None
    period: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class Pause:
    """The emergency pause in force: since when, and why."""

    since: datetime
    reason: str


@dataclasses.dataclass(frozen=True, slots=True)
class CandleFetch:
    """A market's last candle request: its UTC day, the earliest open time asked for (ms),
    and the newest candle cached (ms; None: the exchange had none)."""

    fetched_on: str
    since: int
    newest: int | None


@dataclasses.dataclass(frozen=True, slots=True)
class Contents:
    """What a state file holds, in brief: enough to tell a simulation's from a live one."""

    simulation: bool  # marked by `mark_simulation`
    run_modes: frozenset[str]
    event_kinds: frozenset[str]
    windfalls: int


# The event that marks a simulation's database (`simulate` replaces only files that have it).
SIMULATION_EVENT = "simulation"
# A simulation's value series (m007_simulation_days), a row per day.
DAY_COLUMNS = (
    "day",
    "value",
    "cash",
    "crypto_share",
    "outside_value",
    "invested",
    "moved_in",
    "contributions",
    "withdrawals",
    "profit_moved_out",
)


class Store:
    """The daemon's SQLite state, on the Database it is given (migrated on construction).

    The store owns `db`: it closes it, and opens every transaction itself (its connection
    is switched to autocommit, so no statement opens one behind its back). `conn` is the
    connection, for the hand-written SQL of the hot paths.
    """

    def __init__(self, db: Database) -> None:
        if not db.conn.in_transaction:  # (setting it would commit one)
            db.conn.isolation_level = None
        self.db = db
        self.conn = db.conn
        self._reads = Reads(db.conn)  # what the jobs read on every run, kept until a write
        db.conn.execute("PRAGMA foreign_keys=ON")  # per connection; the schema relies on it
        migrate(db)

    @classmethod
    def open(cls, path: Path) -> Store:
        """Open (creating it and its folder if needed) the state file at `path`, in WAL mode.
        Another application's SQLite file is refused, and left exactly as it is."""
        return cls._opened(path, connect_file, enable_wal, "use")

    @classmethod
    def read(cls, path: Path) -> Store:
        """Open the existing state file at `path` for reading only: nothing is created or
        migrated, so it works on a file the reader may not write (e.g. the daemon's). A file
        an older stagewise wrote is refused until a writer (the daemon) upgrades it."""

        def upgraded(db: Database) -> None:
            if not up_to_date(db):
                raise StateError(
                    f"{path} was written by an older stagewise: start the daemon (or run a "
                    "command that writes, e.g. `stagewise once reassess`) to upgrade it"
                )

        return cls._opened(path, connect_reading, upgraded, "read")

    @classmethod
    def _opened(
        cls,
        path: Path,
        connect: Callable[[Path], Database],
        prepare: Callable[[Database], None],
        verb: str,
    ) -> Store:
        """A Store on the file `connect` opens at `path`, refused if another application's,
        after `prepare`; the connection is closed on any failure, named for the person."""
        db = None
        try:
            db = connect(path)
            _refuse_foreign(db, path)
            prepare(db)
            return cls(db)
        except BaseException as e:
            if db is not None:
                db.close()
            if (named := unavailable(e, path)) is not None:
                raise named from e
            if isinstance(e, sqlite3.Error | OSError):
                raise StateError(f"cannot {verb} the state file {path}: {e}") from None
            raise

    @classmethod
    def open_memory(cls) -> Store:
        """A new state database in memory, migrated like a file and private to this store
        (no file to write, no other process to look out for). It is gone at close: `save`
        it to keep it."""
        db = connect_memory()
        copy_schema(db)  # already migrated: the constructor finds nothing to apply
        store = cls(db)
        store._reads.private = True
        return store

    @classmethod
    def copy(cls, path: Path) -> Store:
        """A private copy in memory of the state file at `path` (nothing at `path` is created
        or changed; what the copy records is gone at close): a dry run's store. A new, empty
        one when there is no file yet."""
        if not path.exists():
            return cls.open_memory()
        source = None
        try:
            source = connect_reading(path)
            _refuse_foreign(source, path)
            db = connect_memory()
            source.conn.backup(db.conn)
            return cls(db)
        except sqlite3.Error as e:
            raise StateError(f"cannot read the state file {path}: {e}") from None
        finally:
            if source is not None:
                source.close()

    def save(self, path: Path, *, durable: bool = True) -> None:
        """Write the whole database to `path`, atomically: a state file that Store.open and
        the CLI read like any other appears there complete, or nothing changes (a file
        already at `path`, which no one may have open, is replaced). Not inside a write.
        `durable=False`: not synced to disk (output that can be made again, a simulation)."""
        if self.conn.in_transaction:
            raise StateError("cannot save the state while a write is in progress")
        own = file_of(self.db)
        if own is not None and own.resolve() == path.resolve():
            raise StateError(f"cannot save the state file {path} over itself")
        try:
            save_copy(self.db, path, durable=durable)
        except (sqlite3.Error, OSError) as e:
            raise StateError(f"cannot save the state to {path}: {e}") from e

    def close(self) -> None:
        """Close the database connection."""
        self.db.close()

    def schema_version(self) -> int:
        """How many of the schema's migrations this file has had applied."""
        return len(applied(self.db))

    def integrity_ok(self) -> bool:
        """True when SQLite finds the file sound and no foreign key dangles."""
        check = [r[0] for r in self.conn.execute("PRAGMA integrity_check").fetchall()]
        dangling = self.conn.execute("PRAGMA foreign_key_check").fetchall()
        return check == ["ok"] and not dangling

    # -- runs -------------------------------------------------------------------------------

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
                run_id = runs.insert_run(conn, run)
            except sqlite3.IntegrityError as e:
                if "runs.period" in str(e):
                    raise DuplicatePeriod(f"period {run.period} has already run") from e
                raise
            if run.plan is not None:
                runs.insert_plan(conn, run_id, run.plan)
            if run.snapshot is not None:
                runs.insert_snapshot(conn, run_id, run.snapshot)
            carried = run.carried
            if carried is not None:
                self._carry_state(carried, run.finished_at)
            runs.insert_ledger(conn, run.ledger, run_id)
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

    # -- plan state, pause, events ----------------------------------------------------------

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

    def cached_candles(
        self,
        exchange: str,
        symbols: Sequence[str],
        timeframe: str,
        since_ms: int,
        until_ms: int,
    ) -> dict[str, list[Candle]]:
        """Per symbol of `symbols`, its cached candles opening in [since_ms, until_ms), oldest
        first (a symbol without any is absent)."""
        # One query a market: its rows come out of the primary key in order, each a Candle.
        sql = (
            "SELECT ts, close, volume FROM price_cache WHERE exchange = ? AND symbol = ? AND "
            "timeframe = ? AND ts >= ? AND ts < ? ORDER BY ts"
        )
        out: dict[str, list[Candle]] = {}
        for symbol in symbols:
            rows = self.conn.execute(sql, [exchange, symbol, timeframe, since_ms, until_ms])
            found = list(map(Candle._make, rows))
            if found:
                out[symbol] = found
        return out

    def cache_candles(
        self,
        exchange: str,
        symbol: str,
        timeframe: str,
        rows: Sequence[Candle],
        fetched: tuple[str, int] | None = None,
    ) -> None:
        """Keep downloaded candles (replacing the same timestamps) and, with `fetched` (the
        UTC day of the request, the earliest open time it covers), note the request, in one
        transaction."""
        market = {"exchange": exchange, "symbol": symbol, "timeframe": timeframe}
        with self._writing():
            self.db.table("price_cache").upsert_all(
                ({**market, "ts": c.ts, "close": c.close, "volume": c.quote_volume} for c in rows),
                pk=_CLOSE_KEY,
            )
            if fetched is not None:
                on, since = fetched
                self.db.table("candle_fetches").upsert(
                    {**market, "fetched_on": on, "since": since}, pk=_CLOSE_KEY[:3]
                )

    def candle_fetches(self, exchange: str, timeframe: str) -> dict[str, CandleFetch]:
        """Per symbol, its last candle request and the newest candle cached of it."""
        rows = self.conn.execute(
            "SELECT f.symbol, f.fetched_on, f.since, (SELECT MAX(ts) FROM price_cache p"
            " WHERE p.exchange = f.exchange AND p.symbol = f.symbol AND p.timeframe ="
            " f.timeframe) FROM candle_fetches f WHERE f.exchange = ? AND f.timeframe = ?",
            [exchange, timeframe],
        )
        return {s: CandleFetch(on, since, newest) for s, on, since, newest in rows}

    def plan_state(self) -> PlanState:
        """The planner's carried state; the default PlanState() before any was saved."""
        return self._reads.get("plan_state", self._read_state)

    def set_paused(
        self, paused: bool, reason: str, at: datetime, *, replace: bool = False
    ) -> Pause | None:
        """Start (True) or end the emergency pause, with a 'paused'/'resumed' event; returns
        the pause in force before (None: there was none). Asking for what is already so
        writes nothing, except that `replace` gives the pause in force the new reason (a
        'pause_replaced' event; the pause keeps its start)."""
        with self._writing(lock_first=True):  # the write lock before reading: no lost update
            before = self.pause()
            held = self._read_state()
            if paused == held.paused and not (paused and replace and reason != held.pause_reason):
                return before
            state = dataclasses.replace(held, paused=paused, pause_reason=reason if paused else "")
            self._write_state(state_json(state), at)
            if before is not None and paused:
                self._insert_event("pause_replaced", at, {"reason": reason, "was": before.reason})
            else:
                self._insert_event("paused" if paused else "resumed", at, {"reason": reason})
        return before

    def pause(self) -> Pause | None:
        """The emergency pause in force (since its 'paused' event), or None."""
        state = self.plan_state()
        if not state.paused:
            return None
        started = "SELECT at FROM events WHERE kind = 'paused' ORDER BY id DESC LIMIT 1"
        # set_paused writes the two together; the state's own time stands in for a lost event
        row = (
            self.conn.execute(started).fetchone()
            or self.conn.execute("SELECT updated_at FROM plan_state").fetchone()
        )
        return Pause(from_iso(row[0]), state.pause_reason)

    def add_event(self, kind: str, at: datetime, data: Mapping[str, Any]) -> None:
        """Log something that happened outside a run (stage change, fault, config reload …)."""
        with self._writing():
            self._insert_event(kind, at, data)

    def events(self, *, kind: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Logged events, newest first, optionally of one kind; `data` decoded."""
        where, args = where_clause(("kind = ?", kind))
        return self._newest("events", where, args, limit)

    # -- compositions of rule indices ------------------------------------------------------

    def add_composition(
        self, period: str, composition: Composition, event: Mapping[str, Any]
    ) -> None:
        """Record a reconstitution under `period` with its `reconstituted` event, in one
        transaction. Raises DuplicatePeriod if the index has one for `period` already."""
        with self._writing():
            c = composition
            try:
                self.conn.execute(  # hand-written, as the events beside it
                    "INSERT INTO compositions (index_name, period, moment, close_day, weights,"
                    " figures, ranks, notes) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        c.index,
                        period,
                        iso(c.moment),
                        c.close_day.isoformat(),
                        to_json(dict(c.weights)),
                        to_json(dict(c.figures)),
                        to_json(dict(c.ranks)),
                        to_json(list(c.notes)),
                    ],
                )
            except sqlite3.IntegrityError as e:
                raise DuplicatePeriod(
                    f"index {composition.index} is already composed for {period}"
                ) from e
            self._insert_event("reconstituted", composition.moment, event)

    def compositions(
        self,
        *,
        at: datetime | None = None,
        period: str | None = None,
        indices: Iterable[str] | None = None,
    ) -> dict[str, dict[str, Any]]:
        """Per index (of `indices`; default every one recorded), its latest recorded
        composition (at or before `at`; only of `period`): moment, close_day, weights,
        figures, ranks and notes, decoded."""
        # One row an index, through the (index_name, moment) index: a weekly index records
        # 52 a year, and decoding them all on every run grew with the file (10 years of
        # weekly reconstitutions in a simulation: 712,000 JSON decodes, 10 of its 12 s).
        where, args = where_clause(
            ("moment <= ?", None if at is None else iso(at)), ("period = ?", period)
        )
        sql = (
            "SELECT period, moment, close_day, weights, figures, ranks, notes FROM compositions"
            " WHERE index_name = ?"
            + (f" AND {where}" if where else "")
            + " ORDER BY moment DESC, id DESC LIMIT 1"
        )
        if indices is None:
            found = self.conn.execute("SELECT DISTINCT index_name FROM compositions ORDER BY 1")
            indices = [name for (name,) in found.fetchall()]
        out: dict[str, dict[str, Any]] = {}
        for name in indices:
            row = self.conn.execute(sql, [name, *args]).fetchone()
            if row is None:
                continue
            key, moment, close_day, *data = row
            weights, figures, ranks, notes = (json.loads(d) for d in data)
            out[name] = {
                "period": key,
                "moment": from_iso(moment),
                "close_day": close_day,
                "weights": weights,
                "figures": figures,
                "ranks": ranks,
                "notes": notes,
            }
        return out

    # -- notifications (store/notices.py) ---------------------------------------------------

    def start_telling(self, at: datetime) -> None:
        """The daemon's start with notifications: a first one tells nothing recorded before
        it; messages a stopped daemon left mid-delivery are marked 'interrupted'."""
        with self._writing(lock_first=True):
            notices.start_cursor(self.conn, at)
            notices.interrupt(self.conn, at)

    def untold(self, horizon: datetime) -> notices.Untold | None:
        """Runs and events recorded since the last look (see notices.untold)."""
        return notices.untold(self.conn, horizon)

    def claim_notices(
        self, looked: notices.Untold, found: Sequence[notices.Notice], at: datetime
    ) -> list[int]:
        """Claim the messages of a look, once (see notices.claim); returns their ids."""
        with self._writing(lock_first=True):
            return notices.claim(self.conn, looked, found, at)

    def notice_done(
        self, notice_id: int, targets: int, failed_services: Sequence[str], at: datetime
    ) -> None:
        with self._writing():
            notices.finish(self.conn, notice_id, targets, failed_services, at)

    def notice_counts(self) -> dict[str, Any]:
        """Messages sent, failed, interrupted, and when the newest failure was."""
        return notices.counts(self.conn)

    # -- windfalls --------------------------------------------------------------------------

    def add_pending_windfall(self, amount: float, at: datetime) -> int:
        """Announce a windfall for the next run to invest; returns its id (and logs an event).
        Raises ValueError for an amount that is not finite and positive, or above MAX_MONEY."""
        if not 0 < amount <= MAX_MONEY:  # NaN compares False
            raise ValueError(f"a windfall of {amount!r} is not a usable amount of money")
        with self._writing():
            table = self.db.table("pending_windfalls").insert({"at": iso(at), "amount": amount})
            windfall_id = int(table.last_pk or 0)  # an INTEGER PRIMARY KEY: never None
            self._insert_event("windfall", at, {"id": windfall_id, "amount": amount})
        return windfall_id

    def pending_windfalls(self) -> list[PendingWindfall]:
        """Windfalls no run has consumed yet, oldest first."""

        def load() -> list[PendingWindfall]:
            rows = self.conn.execute(
                "SELECT id, at, amount FROM pending_windfalls WHERE consumed_run IS NULL "
                "ORDER BY id"
            ).fetchall()
            return [PendingWindfall(i, from_iso(at), amount) for i, at, amount in rows]

        return list(self._reads.get("pending_windfalls", load))

    def windfalls(self) -> list[Windfall]:
        """Every windfall announced, pending or not, oldest first."""
        rows = self.conn.execute(
            "SELECT w.id, w.at, w.amount, r.status, r.finished_at, r.period"
            " FROM pending_windfalls w LEFT JOIN runs r ON r.id = w.consumed_run ORDER BY w.id"
        ).fetchall()
        return [
            Windfall(
                i,
                from_iso(at),
                amount,
                "pending" if status is None else "cancelled" if status == "skipped" else "done",
                None if settled is None else from_iso(settled),
                period,
            )
            for i, at, amount, status, settled, period in rows
        ]

    def cancel_windfall(self, windfall_id: int, at: datetime, mode: str) -> Windfall:
        """Cancel a pending windfall: a skipped run `windfall:ID:cancelled` consumes it (with a
        'windfall_cancelled' event), so no job invests it. Returns it as it was; raises
        UsageError for an id that is unknown or no longer pending."""
        with self._writing(lock_first=True):  # the write lock first: no job consumes it meanwhile
            found = next((w for w in self.windfalls() if w.id == windfall_id), None)
            if found is None:
                raise UsageError(f"there is no windfall #{windfall_id} (`stagewise windfall list`)")
            if found.status != "pending":
                raise UsageError(
                    f"windfall #{windfall_id} is not pending: {found.status} by the run "
                    f"{found.period} at {found.settled_at:%Y-%m-%d %H:%M} UTC"
                )
            self.record_run(
                RunRecord(
                    job="windfall",
                    period=f"windfall:{windfall_id}:cancelled",
                    scheduled_at=at,
                    started_at=at,
                    finished_at=at,
                    status="skipped",
                    mode=mode,
                    error="cancelled with `stagewise windfall cancel`",
                    events=[("windfall_cancelled", {"id": windfall_id, "amount": found.amount})],
                    consume_windfalls=[windfall_id],
                )
            )
        return found

    # -- what the file holds ------------------------------------------------------------------

    def mark_simulation(self, at: datetime, details: Mapping[str, Any]) -> None:
        """Mark this database as a simulation's (a 'simulation' event with `details`): the
        one kind of file a simulation replaces."""
        self.add_event(SIMULATION_EVENT, at, details)

    def contents(self) -> Contents:
        """What the file holds, in brief (see Contents)."""
        kinds = {k for (k,) in self.conn.execute("SELECT DISTINCT kind FROM events")}
        modes = {m for (m,) in self.conn.execute("SELECT DISTINCT mode FROM runs")}
        (windfalls,) = self.conn.execute("SELECT count(*) FROM pending_windfalls").fetchone()
        return Contents(SIMULATION_EVENT in kinds, frozenset(modes), frozenset(kinds), windfalls)

    # -- a simulation's value series ----------------------------------------------------------

    def record_days(self, days: Iterable[Any]) -> None:
        """A simulation's account at the end of each day (performance.Day: the attributes
        DAY_COLUMNS name) in the simulation_days table, in one transaction."""
        # executemany, not insert_all: insert_all looks at every value (3 years of days: 32 ms
        # of a 76 ms simulation, measured; executemany: under 2 ms).
        values = attrgetter(*DAY_COLUMNS[1:])
        with self._writing():
            self.conn.executemany(
                f"INSERT INTO simulation_days ({', '.join(DAY_COLUMNS)}) "
                f"VALUES ({', '.join('?' for _ in DAY_COLUMNS)})",
                [(d.day.isoformat(), *values(d)) for d in days],
            )

    def days(self) -> list[dict[str, Any]]:
        """The simulation_days rows in date order, by column name (`day` a date)."""
        rows = self.db.table("simulation_days").rows_where(
            order_by="day", select=", ".join(DAY_COLUMNS)
        )
        return [{**row, "day": date.fromisoformat(row["day"])} for row in rows]

    # -- ledger -----------------------------------------------------------------------------

    def ledger_entries(self) -> list[LedgerEntry]:
        """The whole paper ledger, in the order it was written."""
        rows = self.conn.execute(
            "SELECT at, kind, asset, amount, price, note FROM ledger ORDER BY id"
        )
        entries = []
        times: dict[str, datetime] = {}  # a run's entries share one time: parse it once
        for at, kind, asset, amount, price, note in rows:
            when = times.get(at)
            if when is None:
                when = times[at] = from_iso(at)
            entries.append(LedgerEntry(when, kind, asset, amount, price, note))
        return entries

    def ledger_balances(self) -> dict[str, float]:
        """The paper account's balance per asset: the sum of its ledger entries."""
        # Kept by a trigger on each ledger insert (schema m003): equal to the per-asset sums.
        sql = "SELECT asset, balance FROM ledger_balances ORDER BY asset"
        return dict(
            self._reads.get("ledger_balances", lambda: dict(self.conn.execute(sql).fetchall()))
        )

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
            if self.conn.execute("SELECT 1 FROM ledger LIMIT 1").fetchone():
                return False
            runs.insert_ledger(self.conn, entries, None)
            self._insert_event("ledger_seeded", at, {"balances": dict(balances)})
        return True

    def _newest(
        self, table: str, where: str | None, args: list[object], limit: int
    ) -> list[dict[str, Any]]:
        """Rows of `table` (all columns), newest first, decoded for callers."""
        rows = self.db.table(table).rows_where(where, args, order_by="id DESC", limit=int(limit))
        return [decode(row) for row in rows]

    # -- transactions ----------------------------------------------------------------------

    @contextlib.contextmanager
    def _writing(self, *, lock_first: bool = False) -> Iterator[None]:
        """One transaction, the database's atomic block (nested ones are savepoints);
        `lock_first`: the write lock taken before the block reads anything. Kept reads are
        dropped after it, committed or not. A write another process's lock or a full disk
        refuses raises StateBusy / StateFull."""
        try:
            with locked(self.db) if lock_first else self.db.atomic():
                yield
        except BaseException as e:
            if (
                isinstance(e, sqlite3.Error)
                and (named := unavailable(e, file_of(self.db))) is not None
            ):
                raise named from e
            raise
        finally:
            self._reads.clear()

    # -- writing, inside a caller's transaction ---------------------------------------------

    def _insert_event(
        self, kind: str, at: datetime, data: Mapping[str, Any], run_id: int | None = None
    ) -> None:
        # Hand-written: a run's events and a weekly index's reconstitutions (sqlite-utils'
        # insert looks the table up on every call: 0.1 s of a 10-year weekly-index simulation).
        self.conn.execute(
            "INSERT INTO events (at, kind, run_id, data) VALUES (?, ?, ?, ?)",
            [iso(at), kind, run_id, to_json(data)],
        )

    def _consume_windfalls(self, ids: Sequence[int], run_id: int) -> None:
        for windfall_id in ids:
            cursor = self.conn.execute(
                "UPDATE pending_windfalls SET consumed_run = ?"
                " WHERE id = ? AND consumed_run IS NULL",
                [run_id, windfall_id],
            )
            if cursor.rowcount != 1:
                raise ValueError(f"windfall {windfall_id} is not pending")

    def _carry_state(self, state: PlanState, at: datetime) -> None:
        """Write `state` as the carried one, keeping the pause the file holds (called with
        the write lock held: the kept read is the file's)."""
        held = self.plan_state()
        kept = dataclasses.replace(state, paused=held.paused, pause_reason=held.pause_reason)
        if kept != held:  # unchanged (most runs): its row stays, with when it last changed
            self._write_state(state_json(kept), at)

    def _read_state(self) -> PlanState:
        row = self.conn.execute("SELECT state FROM plan_state WHERE id = 1").fetchone()
        return PlanState() if row is None else state_from_json(row[0])

    def _write_state(self, text: str, at: datetime) -> None:
        # Hand-written: most runs change the carried state (an upsert through the Table costs
        # its lookups of the table on every run).
        self.conn.execute(
            "INSERT INTO plan_state (id, state, updated_at) VALUES (1, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET state = excluded.state, "
            "updated_at = excluded.updated_at",
            [text, iso(at)],
        )


def _refuse_foreign(db: Database, path: Path) -> None:
    """Raise StateError when `db`'s file is another application's SQLite database."""
    if _foreign(db):
        raise StateError(
            f"{path} is an SQLite database but not a stagewise state file: left as it is"
        )


def _foreign(db: Database) -> bool:
    """True for a database with tables but no stagewise migration applied: someone else's
    (a new, empty file has no tables; a state file lists its migrations)."""
    return bool(db.table_names()) and not applied(db)


# The primary key of a cached close.
_CLOSE_KEY = ("exchange", "symbol", "timeframe", "ts")
