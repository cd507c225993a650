"""The daemon's memory: one SQLite file, and the only package that speaks SQL (through
sqlite-utils; the file stays readable with its CLI, Datasette or `sqlite3`).

Runs (one per period key) with the orders they proposed, the snapshot they saw and what they
skipped; the planner's carried state; the paper account's append-only ledger; an event log;
windfalls waiting for a run. A run and everything it changed are written in one transaction.
A simulation keeps the same database in memory and saves it as a file when it ends.

    store.py         the Store: opening, saving and closing the file; composes the parts below
    base.py          what every part builds on: the database, its kept reads, the transaction
    runs.py          a run as recorded (RunRecord), its rows hand-written (the hot path), the runs
    plan_state.py    the planner's carried state and the emergency pause
    events.py        the event log
    ledger.py        the paper account's ledger and balances
    windfalls.py     windfalls announced, pending until a run consumes them
    compositions.py  the compositions of rule indices
    candles.py       the candle cache
    simulation.py    what marks a simulation's file, and its value series
    notices.py       the notifications' rows
    files.py         where the database lives: a shared WAL file, or memory saved whole
    schema.py        the tables, as sqlite-utils migrations
    reads.py         what the jobs read on every run, kept until a write
    codec.py         how values become columns and back (times, JSON, the plan state)
"""

from stagewise.store.files import is_database, same_file
from stagewise.store.plan_state import Pause
from stagewise.store.runs import DuplicatePeriod, RunRecord, RunStatus
from stagewise.store.simulation import Contents
from stagewise.store.store import NoStateYet, StateError, Store
from stagewise.store.windfalls import PendingWindfall, Windfall

__all__ = [
    "Contents",
    "DuplicatePeriod",
    "NoStateYet",
    "Pause",
    "PendingWindfall",
    "RunRecord",
    "RunStatus",
    "StateError",
    "Store",
    "Windfall",
    "is_database",
    "same_file",
]
