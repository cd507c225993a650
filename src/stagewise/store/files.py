"""Where the state lives: a file opened with the daemon's pragmas, or memory saved whole;
each as a sqlite-utils Database.

A file is shared (the daemon, the CLI), so it runs in WAL mode with a busy timeout. A
simulation writes thousands of runs no one else reads until it ends: it keeps them in memory
and saves the database once, as a file that appears complete or not at all.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import tenacity
from sqlite_utils import Database

from stagewise.errors import StateBusy, StateFull, StateReadOnly, StateUnavailable


def connect_file(path: Path) -> Database:
    """The SQLite file at `path` (created with its folder if missing), with the daemon's
    pragmas; `enable_wal` makes it a state file's journal mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = _connect(str(path))
    conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
    conn.execute("PRAGMA synchronous=NORMAL")
    return database(conn)


BUSY_TIMEOUT_S = 5.0


def connect_reading(path: Path) -> Database:
    """The existing SQLite file at `path`, read-only, creating nothing (no file, folder, -wal
    or -shm), so a person's `status` works on a file they may not write and leaves no file
    of theirs beside the daemon's. With a writer present (its -wal is there) SQLite reads
    through the writer's -shm. With none, the file is read as immutable: a read-only
    connection would otherwise create a -shm it cannot remove, owned by the reader (a root
    -shm the daemon's own user could not open). A writer starting within the milliseconds
    of that read writes its -wal, not this file, until it closes."""
    if not path.is_file():
        raise FileNotFoundError(f"no state file at {path}")
    uri = path.resolve().as_uri()
    writer = Path(f"{path}-wal").exists()
    conn = sqlite3.connect(
        f"{uri}?mode=ro" if writer else f"{uri}?immutable=1", uri=True, check_same_thread=False
    )
    conn.isolation_level = None
    conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
    return database(conn)


def database(conn: sqlite3.Connection) -> Database:
    """`conn` as a sqlite-utils Database, without its plugins: the state must not depend on
    what else is installed (and looking for them costs every process)."""
    return Database(conn, execute_plugins=False)


def _connect(name: str) -> sqlite3.Connection:
    # isolation_level=None: no transaction is ever opened behind the store's back; each one
    # is an explicit `atomic` block (statements outside one commit on their own). The daemon
    # hands the store from its main thread to the scheduler's single worker; it never uses
    # one connection from two threads at once.
    return sqlite3.connect(name, check_same_thread=False, isolation_level=None)


def enable_wal(db: Database) -> None:
    """WAL mode. Switching a new file to it needs the file alone for a moment, and SQLite
    answers "database is locked" at once instead of waiting the busy timeout: two processes
    opening a new file together retry, within that timeout."""
    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(
            lambda e: isinstance(e, sqlite3.OperationalError) and "locked" in str(e)
        ),
        stop=tenacity.stop_after_delay(BUSY_TIMEOUT_S),
        wait=tenacity.wait_fixed(0.005),
        reraise=True,
    )
    retrying(db.enable_wal)


def connect_memory() -> Database:
    """A new, empty database in memory that no other connection can see."""
    return database(_connect(":memory:"))


@contextlib.contextmanager
def locked(db: Database) -> Iterator[None]:
    """`db.atomic()` that takes the write lock first (BEGIN IMMEDIATE): what the block reads
    no other process changes before it writes. atomic's BEGIN takes the lock at the first
    write; a WAL file changed since the block's first read then refuses it at once, without
    waiting the busy timeout. Inside a transaction, a savepoint like atomic's."""
    if db.conn.in_transaction:
        with db.atomic():
            yield
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        with db.atomic():  # a savepoint inside the transaction
            yield
        db.execute("COMMIT")
    except BaseException:
        db.rollback()  # also a COMMIT SQLite refused: every later write would join it
        raise


def result_code(error: BaseException) -> int:
    """SQLite's primary result code of `error` (0: none). Extended codes (SQLITE_BUSY_SNAPSHOT,
    ...) carry the primary one in the low byte."""
    return (getattr(error, "sqlite_errorcode", None) or 0) & 0xFF


def unavailable(
    error: BaseException, path: Path | None, what: str = "the state file"
) -> StateUnavailable | None:
    """The named error for a write refused because another connection holds the file's
    write lock, because the file may not be written, or because the disk is full (SQLite's
    "disk I/O error" on a file system with no byte left is one); None for any other error.
    `what`: the file `path` is, as its message names it."""
    where = f"{what} {path}" if path is not None else "the state database"
    code = result_code(error)
    if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return StateBusy(f"{where} is busy: another stagewise process is writing it; try again")
    if code == sqlite3.SQLITE_READONLY:
        return StateReadOnly(
            f"cannot write {where}: it is read-only (its permissions, its folder's or a "
            "read-only file system); nothing was written"
        )
    if (
        code == sqlite3.SQLITE_FULL
        or (isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT))
        or (code == sqlite3.SQLITE_IOERR and path is not None and _no_space(path))
    ):
        return StateFull(f"cannot write {where}: the disk is full; free some space, try again")
    return None


def _no_space(path: Path) -> bool:
    """True when the file system holding `path` (or its folder) has no byte left."""
    for place in (path, path.parent):
        with contextlib.suppress(OSError):
            return shutil.disk_usage(place).free == 0
    return False


def same_file(path: Path, other: Path) -> bool:
    """True when `path` names `other`: the same path once resolved, or a link to it."""
    if path.resolve() == other.resolve():
        return True
    return path.exists() and other.exists() and path.samefile(other)


def is_database(path: Path) -> bool:
    """True when `path` is a file that starts as every SQLite database does."""
    try:
        with path.open("rb") as f:
            return f.read(16) == b"SQLite format 3\x00"
    except OSError:  # not a file, or not readable: not one to guard
        return False


def file_of(db: Database) -> Path | None:
    """The file behind `db`'s main database; None in memory."""
    for _, name, file in db.conn.execute("PRAGMA database_list").fetchall():
        if name == "main":
            return Path(file) if file else None
    return None


def save_copy(db: Database, path: Path, *, durable: bool = True) -> None:
    """Write `db`'s whole database to `path` as a WAL-mode state file, replacing any file
    there: written beside it under a temporary name, synced, then renamed over it.
    `durable=False` skips the syncs: the file is still whole or absent for every reader, but
    an operating system crash soon after may lose it (for output that can be made again)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        _copy(db.conn, temp)
        if durable:
            _sync(temp)
        # A WAL left beside the old file would be replayed into the new one when opened.
        for suffix in ("-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        os.replace(temp, path)
        if durable:
            _sync(path.parent)
    finally:
        for leftover in ("", "-journal", "-wal", "-shm"):
            Path(f"{temp}{leftover}").unlink(missing_ok=True)


def _copy(conn: sqlite3.Connection, temp: Path) -> None:
    target = sqlite3.connect(str(temp))
    try:
        # Until it is renamed the copy is nobody's: no journal, and one sync of the whole
        # file afterwards instead of one per step.
        target.execute("PRAGMA journal_mode=OFF")
        target.execute("PRAGMA synchronous=OFF")
        conn.backup(target)
        target.execute("PRAGMA journal_mode=WAL")  # as Store.open leaves a state file
    finally:
        target.close()


def _sync(path: Path) -> None:
    """fsync a file, or a folder (so that a rename in it is durable; POSIX only)."""
    if path.is_dir() and os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
