"""A run's rows as the store writes them, inside the caller's transaction.

The hot path of every run (a simulation records thousands): each INSERT is written once,
rows are tuples in its column order, and a dataclass's fields are read by one getter per
class. Values are exactly those the columns held when rows were dicts of `columns(obj)`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from stagewise.composition import Composition
from stagewise.paper import LedgerEntry
from stagewise.planner.model import Order, Plan, Skip
from stagewise.snapshot import Snapshot
from stagewise.store.codec import field_names, field_values, iso, to_json


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
)
PLAN_COLUMNS = ("rule", "refused", "deposit_needed", "notes", "summary")
# The columns of a ledger row, the fields of a LedgerEntry followed by the run.
LEDGER_COLUMNS = ("at", "kind", "asset", "amount", "price", "note", "run_id")

_RUN = insert_sql("runs", RUN_COLUMNS)
_PLANNED_RUN = insert_sql("runs", RUN_COLUMNS + PLAN_COLUMNS)
_ORDER = insert_sql("orders", ("run_id", "seq", *field_names(Order)))
_SKIP = insert_sql("skips", ("run_id", "seq", *field_names(Skip)))
_SNAPSHOT = insert_sql("snapshots", ("run_id", "asset", "amount", "price", "value"))
_LEDGER = insert_sql("ledger", LEDGER_COLUMNS)
_EVENT = insert_sql("events", ("at", "kind", "run_id", "data"))
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
_DAY = insert_sql("simulation_days", DAY_COLUMNS)


def insert_run(
    conn: sqlite3.Connection, run: Sequence[Any], plan: Mapping[str, Any] | None = None
) -> int:
    """One run row: `run` in RUN_COLUMNS order, `plan` the plan's columns by name (None for
    a run without a plan: those columns keep their defaults). Returns the run's id."""
    if plan is None:
        return int(conn.execute(_RUN, run).lastrowid or 0)
    values = (*run, *(plan[name] for name in PLAN_COLUMNS))
    return int(conn.execute(_PLANNED_RUN, values).lastrowid or 0)


def insert_plan(conn: sqlite3.Connection, run_id: int, plan: Plan) -> None:
    """The plan's orders and skips, numbered from 0 in plan order."""
    if plan.orders:
        order = field_values(Order)
        conn.executemany(_ORDER, [(run_id, i, *order(o)) for i, o in enumerate(plan.orders)])
    if plan.skipped:
        skip = field_values(Skip)
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


def insert_event(
    conn: sqlite3.Connection,
    kind: str,
    at: datetime,
    data: Mapping[str, Any],
    run_id: int | None = None,
) -> None:
    """One event, its data as JSON."""
    conn.execute(_EVENT, (iso(at), kind, run_id, to_json(data)))


def insert_composition(conn: sqlite3.Connection, period: str, composition: Composition) -> None:
    """One reconstitution of a rule index (see m006_compositions)."""
    c = composition
    conn.execute(
        "INSERT INTO compositions (index_name, period, moment, close_day, weights, figures,"
        " ranks, notes) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            c.index,
            period,
            iso(c.moment),
            c.close_day.isoformat(),
            to_json(dict(c.weights)),
            to_json(dict(c.figures)),
            to_json(dict(c.ranks)),
            to_json(list(c.notes)),
        ),
    )


def insert_days(conn: sqlite3.Connection, days: Iterable[Any]) -> None:
    """A simulation's days, each with the attributes DAY_COLUMNS name (`day` a date): a
    performance.Day."""
    columns = DAY_COLUMNS[1:]
    conn.executemany(
        _DAY, [(d.day.isoformat(), *(getattr(d, name) for name in columns)) for d in days]
    )
