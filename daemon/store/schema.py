"""The state file's schema, as sqlite-utils migrations (each runs once, in a transaction).

Tables are declared in SQL so that types, keys, foreign keys and CHECKs are explicit; a new
schema change is a new migration appended below, never an edit of an applied one.
"""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

MIGRATIONS = Migrations("stagewise")


@MIGRATIONS()
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


@MIGRATIONS()
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


@MIGRATIONS()
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
