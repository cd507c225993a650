"""A run as the store records it (`RunRecord`), and its rows.

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

from stagewise.ledger import LedgerEntry
from stagewise.planner.model import Order, Plan, PlanState, Skip
from stagewise.snapshot import Snapshot
from stagewise.store.codec import fields_of, iso, to_json

RunStatus = Literal["ok", "failed", "skipped", "missed"]


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
