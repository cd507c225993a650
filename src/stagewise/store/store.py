"""The Store: the daemon's state file (a sqlite-utils Database) behind a small API of domain
nouns, one part per thing it keeps (base.py says how they fit). Here: opening, saving and
closing the file, and the notifications (their rows: notices.py)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from stagewise.errors import OutputRefused, StagewiseError
from stagewise.store import notices
from stagewise.store.base import StoreBase
from stagewise.store.candles import CandleStore
from stagewise.store.compositions import CompositionStore
from stagewise.store.events import EventStore
from stagewise.store.files import (
    connect_file,
    connect_memory,
    connect_reading,
    enable_wal,
    file_of,
    result_code,
    save_copy,
    unavailable,
)
from stagewise.store.ledger import LedgerStore
from stagewise.store.plan_state import PlanStateStore
from stagewise.store.reads import Reads
from stagewise.store.runs import RunStore
from stagewise.store.schema import applied, copy_schema, migrate, up_to_date
from stagewise.store.simulation import SimulationStore
from stagewise.store.windfalls import WindfallStore


class StateError(StagewiseError):
    """The state file cannot be opened or saved, is not a stagewise database, or holds a
    record that cannot be used."""


class NoStateYet(StateError):
    """The state file exists but holds nothing of stagewise's yet (0 bytes, no tables): what
    a first write that failed leaves, or a file made by hand. A reader takes it for no state
    file; a writer starts the state there."""


class Store(
    WindfallStore,
    RunStore,
    PlanStateStore,
    LedgerStore,
    CompositionStore,
    SimulationStore,
    EventStore,
    CandleStore,
    StoreBase,
):
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
        self._opened_as = _identity(file_of(db))  # the file this store has open, by its path

    @classmethod
    def open(cls, path: Path) -> Store:
        """Open (creating it and its folder if needed) the state file at `path`, in WAL mode.
        Another application's SQLite file is refused, and left exactly as it is."""
        return cls._opened(path, connect_file, enable_wal, "use")

    @classmethod
    def open_state(cls, path: Path) -> Store:
        """`open` the daemon's own state file (the daemon, `once`, `pause`, `windfall` ...):
        a simulation's database is refused (OutputRefused), left as it is: its simulated
        runs and paper ledger would read as the account's."""
        store = cls.open(path)
        if store.is_simulation():
            store.close()
            raise OutputRefused(
                f"{path} is a simulation's database (`stagewise simulate` wrote it), not a "
                "state file: left as it is; point state.path at another file"
            )
        return store

    @classmethod
    def read(cls, path: Path) -> Store:
        """Open the existing state file at `path` for reading only: nothing is created or
        migrated, so it works on a file the reader may not write (e.g. the daemon's). A file
        an older stagewise wrote is refused until a writer (the daemon) upgrades it."""

        def upgraded(db: Database) -> None:
            if not db.table_names():  # a file of 0 bytes (or an SQLite file of no tables)
                raise NoStateYet(
                    f"{path} holds no stagewise state yet (an empty file): the daemon or a "
                    "command that writes (e.g. `stagewise once reassess`) starts it there"
                )
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
                hint = ""
                if verb == "use" and result_code(e) == sqlite3.SQLITE_CANTOPEN:
                    hint = " (stagewise writes the file and, beside it, SQLite's journal files"
                    hint += ": may it write the file and its folder?)"
                raise StateError(f"cannot {verb} the state file {path}: {e}{hint}") from None
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
        self._write_copy(path, durable, "the database", "cannot save the state to")

    def file_moved(self) -> str | None:
        """What became of the file this store has open, by its path: None while the path
        still names it (or in memory); "gone" when it was deleted or renamed away (what is
        written goes to a file no one will open again), "replaced" when another is there."""
        if self._opened_as is None:
            return None
        path, device, inode = self._opened_as
        try:
            found = path.stat()
        except FileNotFoundError:
            return "gone"
        except OSError:
            return None  # not to be told now (a permission): the writes will say
        return None if (found.st_dev, found.st_ino) == (device, inode) else "replaced"

    def put_back(self) -> Path:
        """Write the open database, whole, to its path after it was deleted there (see
        `file_moved`): atomically, as `save`; returns the path."""
        if self._opened_as is None or self.file_moved() != "gone":
            raise StateError("the state file is where it was opened: nothing to put back")
        path = self._opened_as[0]
        self._write_copy(path, True, "the state file", "cannot put the state back at")
        return path

    def _write_copy(self, path: Path, durable: bool, what: str, failed: str) -> None:
        """`save_copy` to `path`; a busy, read-only or full disk named (`what` the file is),
        any other failure a StateError starting with `failed`."""
        try:
            save_copy(self.db, path, durable=durable)
        except (sqlite3.Error, OSError) as e:
            if (named := unavailable(e, path, what)) is not None:
                raise named from e
            raise StateError(f"{failed} {path}: {e}") from e

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


def _identity(path: Path | None) -> tuple[Path, int, int] | None:
    """`path` with its file's device and inode (None: in memory, or not to be read)."""
    if path is None:
        return None
    try:
        found = path.stat()
    except OSError:
        return None
    return path, found.st_dev, found.st_ino
