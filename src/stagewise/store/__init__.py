"""The daemon's memory: one SQLite file, and the only package that speaks SQL (through
sqlite-utils; the file stays readable with its CLI, Datasette or `sqlite3`).

Runs (one per period key) with the orders they proposed, the snapshot they saw and what they
skipped; the planner's carried state; the paper account's append-only ledger; an event log;
windfalls waiting for a run. A run and everything it changed are written in one transaction.
A simulation keeps the same database in memory and saves it as a file when it ends.

    store.py    the Store: the whole API, on a sqlite-utils Database
    files.py    where the database lives: a shared WAL file, or memory saved whole
    schema.py   the tables, as sqlite-utils migrations
    runs.py     a run as recorded (RunRecord) and its rows, hand-written (the hot path)
    reads.py    what the jobs read on every run, kept until a write
    notices.py  the notifications' rows
    codec.py    how values become columns and back (times, JSON, the plan state)
"""

from stagewise.store.runs import RunRecord, RunStatus
from stagewise.store.store import (
    Contents,
    DuplicatePeriod,
    Pause,
    PendingWindfall,
    StateError,
    Store,
    Windfall,
)

__all__ = [
    "Contents",
    "DuplicatePeriod",
    "Pause",
    "PendingWindfall",
    "RunRecord",
    "RunStatus",
    "StateError",
    "Store",
    "Windfall",
]
