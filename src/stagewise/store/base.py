"""What every part of the Store builds on: the database, its connection and kept reads, and
the transaction each write runs in.

The Store is one class composed of a part per thing it keeps, each in the module named for it
(runs.py, plan_state.py, events.py, ledger.py, windfalls.py, compositions.py, candles.py,
simulation.py; store.py opens the file and composes them). A part is a small class of the
methods callers know (`store.record_run(...)`, `store.plan_state()`), and subclasses the parts
it uses: a cancelled windfall is recorded as a run (WindfallStore(RunStore)), a run carries the
plan state (RunStore(PlanStateStore)), seeding the ledger logs an event (LedgerStore(EventStore)).
So mypy checks every call between parts against its definition, and the modules import one
another in the direction the classes do, never back.

Parts rather than objects the Store holds (`store.ledger.entries()`): every caller keeps calling
the Store as before, and the Store does not repeat each method to pass it on.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from typing import Any

from sqlite_utils import Database

from stagewise.store.codec import decode
from stagewise.store.files import file_of, locked, unavailable
from stagewise.store.reads import Reads


class StoreBase:
    """What every part of the Store works on, set by the Store's constructor: `db` (which the
    store owns), `conn` its connection, `_reads` the reads kept until a write."""

    db: Database
    conn: sqlite3.Connection
    _reads: Reads

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
