"""The state file's schema, as sqlite-utils migrations (each runs once; those a file lacks run
together in one transaction).

Tables are declared in SQL so that types, keys, foreign keys and CHECKs are explicit; a new
schema change is a new migration appended below, never an edit of an applied one. Applied
migrations are listed in sqlite-utils' `_sqlite_migrations` table: `sqlite-utils migrate`
and the store agree on what a file has had applied.
"""

from __future__ import annotations

import functools
import sqlite3
import threading
from collections.abc import Callable

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from stagewise.store.files import connect_memory, locked

Migration = Callable[[sqlite3.Connection], None]  # SQL on the database's connection

MIGRATION_SET = "stagewise"
MIGRATIONS = Migrations(MIGRATION_SET)


def migration(fn: Migration) -> Migration:
    """Register `fn` as the next migration (named after it)."""
    MIGRATIONS(name=fn.__name__)(lambda db: fn(db.conn))
    return fn


def migrate(db: Database) -> None:
    """Bring the file's schema up to date: a query or two when it already is; otherwise every
    pending migration in one write transaction, taken before reading what is applied (two
    processes opening a new file at once apply each migration once). Inside the caller's
    transaction, the migrations join it."""
    if up_to_date(db):
        return
    # A table rebuild (m004) drops a table others reference: SQLite's procedure switches the
    # foreign keys off around the transaction and checks them before it commits. (Inside a
    # caller's transaction the pragma is a no-op: only a new, empty file migrates there.)
    keys_on = db.conn.execute("PRAGMA foreign_keys").fetchone()[0]
    db.conn.execute("PRAGMA foreign_keys=OFF")
    try:
        with locked(db):
            MIGRATIONS.apply(db)  # each migration a savepoint of this transaction
            broken = db.conn.execute("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise sqlite3.IntegrityError(f"a migration broke foreign keys: {broken[:3]}")
    finally:
        db.conn.execute(f"PRAGMA foreign_keys={'ON' if keys_on else 'OFF'}")


def up_to_date(db: Database) -> bool:
    """True when every migration has been applied to the file."""
    return not MIGRATIONS.pending(db)


def applied(db: Database) -> list[str]:
    """The names of the migrations the file has had applied, in the order applied."""
    return [m.name for m in MIGRATIONS.applied(db)]


def copy_schema(db: Database) -> None:
    """Give a new, empty database that no one else can see yet the current schema: a page
    copy of a database migrated once per process (migrating costs dozens of schema statements
    and queries; the copy a fraction of a millisecond)."""
    with _template_lock:  # one backup from the template at a time
        _template().conn.backup(db.conn)


_template_lock = threading.Lock()


@functools.cache
def _template() -> Database:
    db = connect_memory()
    migrate(db)
    return db


@migration
def m001_initial(conn: sqlite3.Connection) -> None:
    """The first schema: every table declared with its types, keys and checks."""
    for statement in _SCHEMA_V1:
        conn.execute(statement)


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
def m002_price_cache(conn: sqlite3.Connection) -> None:
    """Closes downloaded for `simulate`, so a second run over the same span needs no network."""
    conn.execute(
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
def m003_ledger_balances(conn: sqlite3.Connection) -> None:
    """Paper balances kept beside the ledger by a trigger, in the same transaction as each
    entry: reading them costs one row per asset instead of a sum over the whole ledger."""
    conn.execute(
        """CREATE TABLE ledger_balances (
            asset TEXT PRIMARY KEY,
            balance REAL NOT NULL
        ) WITHOUT ROWID"""
    )
    conn.execute(
        "INSERT INTO ledger_balances (asset, balance) "
        "SELECT asset, SUM(amount) FROM ledger GROUP BY asset"
    )
    conn.execute(
        """CREATE TRIGGER ledger_balances_follow AFTER INSERT ON ledger BEGIN
            INSERT INTO ledger_balances (asset, balance) VALUES (NEW.asset, NEW.amount)
            ON CONFLICT (asset) DO UPDATE SET balance = balance + NEW.amount;
        END"""
    )


@migration
def m004_failed_runs_leave_period_open(conn: sqlite3.Connection) -> None:
    """A failed run no longer uses up its period: the period is unique among the runs that
    ran, were skipped or were missed, and a failed attempt is recorded beside them (the
    period stays open to be retried). The table is rebuilt to drop the column's UNIQUE."""
    conn.execute(
        f"""CREATE TABLE runs_new (
            id INTEGER PRIMARY KEY,
            job TEXT NOT NULL,
            period TEXT NOT NULL,
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
        )"""
    )
    conn.execute("INSERT INTO runs_new SELECT * FROM runs")
    conn.execute("DROP TABLE runs")
    conn.execute("ALTER TABLE runs_new RENAME TO runs")
    conn.execute("CREATE INDEX runs_job ON runs (job, id)")
    conn.execute("CREATE UNIQUE INDEX runs_period_done ON runs (period) WHERE status <> 'failed'")
    conn.execute("CREATE INDEX runs_period ON runs (period, id)")


@migration
def m005_notifications(conn: sqlite3.Connection) -> None:
    """What the daemon told through Apprise (one message per run or event, each sent at most
    once, across restarts) and how far it has looked: the newest run and event it has judged
    (a message is claimed, its row written as 'sending', in the transaction that moves the
    cursor past it). Target URLs are secrets: never stored, only the services' names."""
    conn.execute(
        """CREATE TABLE notifications (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind <> ''),
            level TEXT NOT NULL CHECK (level IN ('info', 'warning', 'error')),
            run_id INTEGER UNIQUE REFERENCES runs (id),
            event_id INTEGER UNIQUE REFERENCES events (id),
            title TEXT NOT NULL,
            body TEXT NOT NULL,
            status TEXT NOT NULL
                CHECK (status IN ('sending', 'sent', 'failed', 'interrupted')),
            targets INTEGER NOT NULL DEFAULT 0,
            delivered INTEGER NOT NULL DEFAULT 0,
            failed_services TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(failed_services)),
            finished_at TEXT,
            CHECK ((run_id IS NULL) <> (event_id IS NULL))
        )"""
    )
    conn.execute("CREATE INDEX notifications_status ON notifications (status, id)")
    conn.execute(
        """CREATE TABLE notify_cursor (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            run_id INTEGER NOT NULL,
            event_id INTEGER NOT NULL,
            updated_at TEXT NOT NULL
        )"""
    )


@migration
def m006_compositions(conn: sqlite3.Connection) -> None:
    """Each reconstitution of a rule index: when, from which day's closes, what it chose in
    which weights (percent) and the ranking figures that chose them; one per index and period."""
    conn.execute(
        """CREATE TABLE compositions (
            id INTEGER PRIMARY KEY,
            index_name TEXT NOT NULL,
            period TEXT NOT NULL,
            moment TEXT NOT NULL,
            close_day TEXT NOT NULL,
            weights TEXT NOT NULL CHECK (json_valid(weights)),
            figures TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(figures)),
            ranks TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(ranks)),
            notes TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(notes)),
            UNIQUE (index_name, period)
        )"""
    )
    conn.execute("CREATE INDEX compositions_moment ON compositions (index_name, moment)")


@migration
def m007_simulation_days(conn: sqlite3.Connection) -> None:
    """A simulation's value series: the account at the end of each day with a close or a
    payment (its value at the last close known then, its cash, crypto's share of the whole
    portfolio with the value held outside crypto, and the money in and out to date), for any
    SQLite tool to chart. Empty in a live state file."""
    conn.execute(
        """CREATE TABLE simulation_days (
            day TEXT PRIMARY KEY CHECK (day = date(day)),
            value REAL NOT NULL,
            cash REAL NOT NULL,
            crypto_share REAL,
            outside_value REAL NOT NULL,
            invested REAL NOT NULL,
            moved_in REAL NOT NULL,
            contributions REAL NOT NULL,
            withdrawals REAL NOT NULL,
            profit_moved_out REAL NOT NULL
        ) WITHOUT ROWID"""
    )


@migration
def m008_candles(conn: sqlite3.Connection) -> None:
    """Daily candles for rule indices: the quote volume beside each cached close (NULL: not
    known, as for closes cached before), and when each market's candles were last asked for
    and from how far back (a market is asked at most once a day)."""
    conn.execute(
        "ALTER TABLE price_cache ADD COLUMN volume REAL CHECK (volume IS NULL OR volume >= 0)"
    )
    conn.execute(
        """CREATE TABLE candle_fetches (
            exchange TEXT NOT NULL,
            symbol TEXT NOT NULL,
            timeframe TEXT NOT NULL,
            fetched_on TEXT NOT NULL,
            since INTEGER NOT NULL,
            PRIMARY KEY (exchange, symbol, timeframe)
        ) WITHOUT ROWID"""
    )


@migration
def m009_checks_without_lists(conn: sqlite3.Connection) -> None:
    """The CHECKs of the tables every run writes compare with each allowed value instead of
    an IN list: SQLite builds an IN list's lookup table again for every row written (2.3 us a
    row of the ledger, measured: a third of a 10-year simulation's writes), the comparisons
    cost nothing. Same constraints; each table rebuilt by SQLite's procedure (a copy under
    the new declaration, the old dropped, the copy renamed, its indexes and triggers made
    again), as m004 rebuilt runs."""
    rule = _one_of("rule", _RULE_NAMES)
    _rebuild(
        conn,
        "runs",
        f"""(
            id INTEGER PRIMARY KEY,
            job TEXT NOT NULL,
            period TEXT NOT NULL,
            scheduled_at TEXT NOT NULL,
            started_at TEXT NOT NULL,
            finished_at TEXT NOT NULL,
            status TEXT NOT NULL CHECK ({_one_of("status", ("ok", "failed", "skipped", "missed"))}),
            error TEXT,
            mode TEXT NOT NULL CHECK ({_one_of("mode", ("paper", "read-only", "simulate"))}),
            rule TEXT CHECK (rule IS NULL OR {rule}),
            refused TEXT,
            deposit_needed REAL NOT NULL DEFAULT 0,
            notes TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(notes)),
            summary TEXT CHECK (summary IS NULL OR json_valid(summary)),
            snapshot_at TEXT
        )""",
    )
    _rebuild(
        conn,
        "orders",
        f"""(
            run_id INTEGER NOT NULL REFERENCES runs (id),
            seq INTEGER NOT NULL,
            symbol TEXT NOT NULL,
            base TEXT NOT NULL,
            side TEXT NOT NULL CHECK ({_one_of("side", ("buy", "sell"))}),
            amount REAL NOT NULL,
            price REAL NOT NULL,
            notional REAL NOT NULL,
            fee REAL NOT NULL,
            rule TEXT NOT NULL CHECK ({rule}),
            reason TEXT NOT NULL,
            weight_before REAL NOT NULL,
            weight_after REAL NOT NULL,
            weight_target REAL NOT NULL,
            PRIMARY KEY (run_id, seq)
        )""",
    )
    _rebuild(
        conn,
        "skips",
        f"""(
            run_id INTEGER NOT NULL REFERENCES runs (id),
            seq INTEGER NOT NULL,
            asset TEXT NOT NULL,
            rule TEXT NOT NULL CHECK ({rule}),
            reason TEXT NOT NULL,
            notional REAL NOT NULL DEFAULT 0,
            PRIMARY KEY (run_id, seq)
        )""",
    )
    kinds = ("seed", "deposit", "fill", "withdrawal", "fee")
    _rebuild(
        conn,
        "ledger",
        f"""(
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            run_id INTEGER REFERENCES runs (id),
            kind TEXT NOT NULL CHECK ({_one_of("kind", kinds)}),
            asset TEXT NOT NULL,
            amount REAL NOT NULL,
            price REAL,
            note TEXT NOT NULL DEFAULT ''
        )""",
    )


_RULE_NAMES = ("dca", "rebalance", "profit", "withdraw", "windfall")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    """`column` equal to one of `values`, as comparisons: (side = 'buy' OR side = 'sell')."""
    return "(" + " OR ".join(f"{column} = '{v}'" for v in values) + ")"


def _rebuild(conn: sqlite3.Connection, table: str, columns: str) -> None:
    """Declare `table` anew with `columns`, keeping its rows, indexes and triggers (foreign
    keys are off around a migration, see `migrate`)."""
    kept = [
        sql
        for (sql,) in conn.execute(
            "SELECT sql FROM sqlite_master WHERE tbl_name = ? AND type IN ('index', 'trigger')"
            " AND sql IS NOT NULL",
            [table],
        )
    ]
    conn.execute(f"CREATE TABLE {table}_new {columns}")
    names = ", ".join(row[1] for row in conn.execute(f"PRAGMA table_info({table}_new)"))
    conn.execute(f"INSERT INTO {table}_new ({names}) SELECT {names} FROM {table}")
    conn.execute(f"DROP TABLE {table}")  # its indexes and triggers with it
    conn.execute(f"ALTER TABLE {table}_new RENAME TO {table}")
    for sql in kept:
        conn.execute(sql)
