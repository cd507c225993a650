"""The state file's schema, as sqlite-utils migrations (each runs once; those a file lacks
run together in one transaction).

Tables are declared in SQL so that types, keys, foreign keys and CHECKs are explicit; a new
schema change is a new migration appended below, never an edit of an applied one.
"""

from __future__ import annotations

import functools
import sqlite3
import threading
from collections.abc import Callable
from typing import TypeVar

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

MIGRATIONS = Migrations("stagewise")
_NAMES: list[str] = []  # every migration's name, to tell a current file in one query

_M = TypeVar("_M", bound=Callable[[Database], None])


def migration(fn: _M) -> _M:
    """Register `fn` as the next migration (named after it)."""
    _NAMES.append(fn.__name__)
    return MIGRATIONS()(fn)


def migrate(db: Database) -> None:
    """Bring the file's schema up to date: one query when it already is; otherwise every
    pending migration in one write transaction, taken before reading what is applied (two
    processes opening a new file at once apply each migration once)."""
    if _applied(db).issuperset(_NAMES):
        return
    if db.conn.in_transaction:  # the caller's transaction: migrations become savepoints
        MIGRATIONS.apply(db)
        return
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        MIGRATIONS.apply(db)  # each migration a savepoint inside this transaction
    except BaseException:
        db.conn.rollback()
        raise
    db.conn.execute("COMMIT")


def copy_schema(conn: sqlite3.Connection) -> None:
    """Give a new, empty database that no one else can see yet the current schema: a page
    copy of a database migrated once per process (migrating costs dozens of schema statements
    and queries; the copy a fraction of a millisecond)."""
    with _template_lock:  # one backup from the template at a time
        _template().backup(conn)


_template_lock = threading.Lock()


@functools.cache
def _template() -> sqlite3.Connection:
    db = Database(sqlite3.connect(":memory:", check_same_thread=False), execute_plugins=False)
    migrate(db)
    return db.conn


def _applied(db: Database) -> set[str]:
    try:
        rows = db.conn.execute(
            "SELECT name FROM _sqlite_migrations WHERE migration_set = ?", [MIGRATIONS.name]
        ).fetchall()
    except sqlite3.OperationalError:  # no such table: a new file
        return set()
    return {name for (name,) in rows}


@migration
def m001_initial(db: Database) -> None:
    """The first schema: every table declared with its types, keys and checks."""
    for statement in _SCHEMA_V1:
        db.execute(statement)


# Written out, not derived from planner.model.Rule: an applied migration must never change.
_RULES = "('dca', 'rebalance', 'profit', 'withdraw', 'windfall')"
_SCHEMA_V1 = (
    f"""CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        job TEXT NOT NULL,
        period TEXT NOT NULL UNIQUE,
        scheduled_at TEXT NOT NULL,
        started_at TEXT NOT NULL,
        finished_at TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('ok', 'failed', 'skipped', 'missed')),
        error TEXT,
        mode TEXT NOT NULL CHECK (mode IN ('paper', 'read-only', 'simulate')),
        rule TEXT CHECK (rule IS NULL OR rule IN {_RULES}),
        refused TEXT,
        deposit_needed REAL NOT NULL DEFAULT 0,
        notes TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(notes)),
        summary TEXT CHECK (summary IS NULL OR json_valid(summary)),
        snapshot_at TEXT
    )""",
    "CREATE INDEX runs_job ON runs (job, id)",
    f"""CREATE TABLE orders (
        run_id INTEGER NOT NULL REFERENCES runs (id),
        seq INTEGER NOT NULL,
        symbol TEXT NOT NULL,
        base TEXT NOT NULL,
        side TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
        amount REAL NOT NULL,
        price REAL NOT NULL,
        notional REAL NOT NULL,
        fee REAL NOT NULL,
        rule TEXT NOT NULL CHECK (rule IN {_RULES}),
        reason TEXT NOT NULL,
        weight_before REAL NOT NULL,
        weight_after REAL NOT NULL,
        weight_target REAL NOT NULL,
        PRIMARY KEY (run_id, seq)
    )""",
    f"""CREATE TABLE skips (
        run_id INTEGER NOT NULL REFERENCES runs (id),
        seq INTEGER NOT NULL,
        asset TEXT NOT NULL,
        rule TEXT NOT NULL CHECK (rule IN {_RULES}),
        reason TEXT NOT NULL,
        notional REAL NOT NULL DEFAULT 0,
        PRIMARY KEY (run_id, seq)
    )""",
    """CREATE TABLE snapshots (
        run_id INTEGER NOT NULL REFERENCES runs (id),
        asset TEXT NOT NULL,
        amount REAL NOT NULL,
        price REAL,
        value REAL,
        PRIMARY KEY (run_id, asset)
    )""",
    """CREATE TABLE ledger (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        run_id INTEGER REFERENCES runs (id),
        kind TEXT NOT NULL
            CHECK (kind IN ('seed', 'deposit', 'fill', 'withdrawal', 'fee')),
        asset TEXT NOT NULL,
        amount REAL NOT NULL,
        price REAL,
        note TEXT NOT NULL DEFAULT ''
    )""",
    "CREATE INDEX ledger_run ON ledger (run_id)",
    """CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger
        BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END""",
    """CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger
        BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END""",
    """CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind <> ''),
        run_id INTEGER REFERENCES runs (id),
        data TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(data))
    )""",
    "CREATE INDEX events_kind ON events (kind, id)",
    """CREATE TABLE plan_state (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        state TEXT NOT NULL CHECK (json_valid(state)),
        updated_at TEXT NOT NULL
    )""",
    """CREATE TABLE pending_windfalls (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        amount REAL NOT NULL CHECK (amount > 0),
        consumed_run INTEGER REFERENCES runs (id)
    )""",
)


@migration
def m002_price_cache(db: Database) -> None:
    """Closes downloaded for `simulate`, so a second run over the same span needs no network."""
    db.execute(
        """CREATE TABLE price_cache (
            exchange TEXT NOT NULL,
            symbol TEXT NOT NULL,
            timeframe TEXT NOT NULL,
            ts INTEGER NOT NULL,
            close REAL NOT NULL CHECK (close > 0),
            PRIMARY KEY (exchange, symbol, timeframe, ts)
        ) WITHOUT ROWID"""
    )


@migration
def m003_ledger_balances(db: Database) -> None:
    """Paper balances kept beside the ledger by a trigger, in the same transaction as each
    entry: reading them costs one row per asset instead of a sum over the whole ledger."""
    db.execute(
        """CREATE TABLE ledger_balances (
            asset TEXT PRIMARY KEY,
            balance REAL NOT NULL
        ) WITHOUT ROWID"""
    )
    db.execute(
        "INSERT INTO ledger_balances (asset, balance) "
        "SELECT asset, SUM(amount) FROM ledger GROUP BY asset"
    )
    db.execute(
        """CREATE TRIGGER ledger_balances_follow AFTER INSERT ON ledger BEGIN
            INSERT INTO ledger_balances (asset, balance) VALUES (NEW.asset, NEW.amount)
            ON CONFLICT (asset) DO UPDATE SET balance = balance + NEW.amount;
        END"""
    )
