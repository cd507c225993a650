"""The store on real SQLite files: schema, atomic runs, plan state, queries, the ledger."""

from __future__ import annotations

import re
import sqlite3
import subprocess
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from stagewise.churn import ProposedOrder
from stagewise.errors import StateBusy, StateFull, StateReadOnly
from stagewise.ledger import LedgerEntry
from stagewise.planner.model import Order, Plan, PlanState, Skip, Summary
from stagewise.snapshot import Market, Snapshot
from stagewise.store import Contents, DuplicatePeriod, NoStateYet, RunRecord, StateError, Store
from stagewise.store.files import database
from stagewise.store.schema import MIGRATION_SET, m001_initial, m002_price_cache

T0 = datetime(2027, 1, 1, 9, 0, tzinfo=UTC)
TABLES = ("runs", "orders", "skips", "snapshots", "ledger", "events", "plan_state")


def order(base: str = "BTC", side: str = "buy", amount: float = 0.01, rule: str = "dca") -> Order:
    price = {"BTC": 50_000.0, "ETH": 2_000.0}[base]
    return Order(
        symbol=f"{base}/USDT",
        base=base,
        side=side,  # type: ignore[arg-type]
        amount=amount,
        price=price,
        notional=amount * price,
        fee=amount * price * 0.001,
        rule=rule,  # type: ignore[arg-type]
        reason="furthest below target",
        weight_before=0.40,
        weight_after=0.45,
        weight_target=0.50,
    )


def plan(*orders: Order, state: PlanState | None = None) -> Plan:
    return Plan(
        rule="dca",
        orders=orders or (order(),),
        skipped=(Skip("ETH", "dca", "below the market minimum", 3.5),),
        notes=("contribution 500 USDT",),
        state=state or PlanState(carry=3.5),
        summary=Summary(1_000.0, 0.25, {"BTC": -0.1}, {"BTC": -0.05}),
    )


def snapshot() -> Snapshot:
    market = Market("BTC/USDT", "BTC", "USDT", amount_step=0.00001)
    return Snapshot(
        taken_at=T0,
        quote="USDT",
        balances={"USDT": 500.0, "BTC": 0.01},
        prices={"USDT": 1.0, "BTC": 50_000.0, "ETH": 2_000.0},
        markets={"BTC": market},
    )


# Every migration of the schema, in the order they apply.
MIGRATION_NAMES = (
    "m001_initial",
    "m002_price_cache",
    "m003_ledger_balances",
    "m004_failed_runs_leave_period_open",
    "m005_notifications",
    "m006_compositions",
    "m007_simulation_days",
    "m008_candles",
    "m009_checks_without_lists",
)


def record(store: Store, period: str = "dca:2027-01", at: datetime = T0, **extra: Any) -> int:
    """Record an ok paper run of `period` finishing at `at`; `extra` overrides any argument."""
    args: dict[str, Any] = {
        "job": period.split(":")[0],
        "period": period,
        "scheduled_at": at,
        "started_at": at,
        "finished_at": at + timedelta(seconds=2),
        "status": "ok",
        "mode": "paper",
        **extra,
    }
    return store.record_run(RunRecord(**args))


def counts(store: Store) -> dict[str, int]:
    return {t: count(store.conn, t) for t in TABLES}


def count(conn: sqlite3.Connection, table: str) -> int:
    return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


# --- the file ------------------------------------------------------------------------------


def test_open_creates_the_folder_and_sets_the_pragmas(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "deep" / "state" / "s.db")
    pragma = {
        name: store.conn.execute(f"PRAGMA {name}").fetchone()[0]
        for name in ("journal_mode", "foreign_keys", "busy_timeout", "synchronous")
    }
    assert pragma == {
        "journal_mode": "wal",
        "foreign_keys": 1,
        "busy_timeout": 5000,
        "synchronous": 1,
    }
    assert store.integrity_ok()
    store.close()


def test_another_applications_database_is_refused_and_left_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "theirs.db"
    theirs = sqlite3.connect(path)
    theirs.execute("CREATE TABLE runs (lap INTEGER)")  # a name the state file also uses
    theirs.commit()
    theirs.close()
    before = path.read_bytes()

    with pytest.raises(StateError, match="not a stagewise state file: left as it is"):
        Store.open(path)

    assert path.read_bytes() == before  # not even switched to WAL
    assert sorted(p.name for p in tmp_path.iterdir()) == ["theirs.db"]


def test_a_file_that_is_not_sqlite_is_refused_with_sqlites_reason(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("shopping list\n" * 100)
    with pytest.raises(StateError, match="file is not a database"):
        Store.open(path)
    assert path.read_text() == "shopping list\n" * 100


def test_an_empty_file_is_read_as_no_state_yet_and_a_writer_starts_it(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    path.touch()  # e.g. made by hand, or by a tool that creates the file first
    said = f"{path} holds no stagewise state yet (an empty file)"
    with pytest.raises(NoStateYet, match=re.escape(said)):
        Store.read(path)
    assert path.read_bytes() == b""
    Store.open(path).close()  # a writer starts it, as a new file
    reader = Store.read(path)
    assert reader.schema_version() == 9
    reader.close()


def test_migrations_rerun_harmlessly_and_data_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    first = Store.open(path)
    assert first.schema_version() == 9
    record(first)
    first.close()

    again = Store.open(path)
    assert again.schema_version() == 9
    assert again.has_period("dca:2027-01")
    assert not again.has_period("dca:2027-02")
    assert count(again.conn, "_sqlite_migrations") == 9  # each migration applied once
    again.close()


def test_sqlite_utils_migrate_finds_a_new_file_up_to_date(tmp_path: Path) -> None:
    """The `_sqlite_migrations` rows are sqlite-utils' own: its Migrations (what the
    `sqlite-utils migrate` command runs) see every stagewise migration applied."""
    Store.open(tmp_path / "s.db").close()
    theirs = Migrations(MIGRATION_SET)
    names = MIGRATION_NAMES
    for name in names:
        theirs(name=name)(lambda db: pytest.fail("sqlite-utils re-applied a migration"))
    db = Database(tmp_path / "s.db")
    assert [m.name for m in theirs.applied(db)] == list(names)
    assert theirs.pending(db) == []
    theirs.apply(db)  # nothing to do: the lambda above would fail
    db.close()


def test_a_file_migrated_by_sqlite_utils_gets_only_the_later_migrations(tmp_path: Path) -> None:
    """A state file made when the store ran its migrations through sqlite-utils (here, the
    first two) opens with its data, and only the migration it lacks is applied."""
    theirs = Migrations(MIGRATION_SET)
    theirs(name="m001_initial")(lambda db: m001_initial(db.conn))
    theirs(name="m002_price_cache")(lambda db: m002_price_cache(db.conn))
    db = Database(tmp_path / "s.db")
    theirs.apply(db)
    db.execute(
        "INSERT INTO ledger (at, kind, asset, amount) VALUES ('2027-01-01T00:00:00+00:00',"
        " 'seed', 'USDT', 100.0)"
    )
    db.conn.commit()
    db.close()

    store = Store.open(tmp_path / "s.db")
    assert store.schema_version() == 9
    names = store.conn.execute("SELECT name FROM _sqlite_migrations ORDER BY id").fetchall()
    assert tuple(n for (n,) in names) == MIGRATION_NAMES
    assert store.ledger_balances() == {"USDT": 100.0}  # m003 built the balances from the rows
    store.close()


def test_tables_are_declared_with_types_and_foreign_keys(store: Store) -> None:
    columns = {row[1]: row for row in store.conn.execute("PRAGMA table_info(orders)")}
    assert columns["amount"][2] == "REAL"
    assert sorted((row[5], name) for name, row in columns.items() if row[5]) == [
        (1, "run_id"),
        (2, "seq"),
    ]
    keys = store.conn.execute("PRAGMA foreign_key_list(ledger)").fetchall()
    assert {(fk[3], fk[2]) for fk in keys} == {("run_id", "runs")}


def test_a_store_works_on_an_in_memory_database() -> None:
    store = Store(Database(memory=True))
    record(store)
    assert store.has_period("dca:2027-01")


def test_no_two_parts_of_the_store_define_the_same_name() -> None:
    """The Store is composed of a part per thing it keeps (store/base.py): a method two parts
    defined would silently be the first one's, by the order of the Store's bases."""
    owner: dict[str, str] = {}
    clashes = []
    for part in Store.__mro__[:-1]:  # the Store and its parts, `object` aside
        for name in vars(part):
            if name.startswith("__"):
                continue
            if name in owner:
                clashes.append(f"{name}: {owner[name]} and {part.__name__}")
            owner[name] = part.__name__
    assert {"open", "record_run", "plan_state", "ledger_entries", "_writing"} <= owner.keys()
    assert clashes == []


def test_foreign_keys_are_enforced(store: Store) -> None:
    with pytest.raises(sqlite3.IntegrityError):
        record(store, plan=plan())  # a run to copy the order of
        store.conn.execute(
            "INSERT INTO orders SELECT 99, seq + 1, symbol, base, side, amount, price, notional,"
            " fee, rule, reason, weight_before, weight_after, weight_target FROM orders"
        )


# --- recording a run -----------------------------------------------------------------------


def test_record_run_writes_the_run_and_everything_it_changed(store: Store) -> None:
    fill = LedgerEntry(T0, "fill", "BTC", 0.01, 50_000.0, "dca buy")
    run_id = record(
        store,
        plan=plan(order(), order("ETH", "sell", 0.5, "rebalance")),
        snapshot=snapshot(),
        ledger=[fill],
        events=[("glide_step", {"step": 3})],
    )

    run = store.runs()[0]
    assert run["id"] == run_id
    assert (run["job"], run["status"], run["rule"]) == ("dca", "ok", "dca")
    assert run["summary"]["drift_before"] == {"BTC": -0.1}
    assert run["notes"] == ["contribution 500 USDT"]
    assert run["finished_at"] == T0 + timedelta(seconds=2)
    assert [(o["seq"], o["base"], o["side"]) for o in store.proposals()] == [
        (0, "BTC", "buy"),
        (1, "ETH", "sell"),
    ]
    assert counts(store) == {
        "runs": 1,
        "orders": 2,
        "skips": 1,
        "snapshots": 3,  # USDT, BTC held, ETH priced
        "ledger": 1,
        "events": 1,
        "plan_state": 1,
    }
    assert store.plan_state() == PlanState(carry=3.5)
    assert store.ledger_entries() == [fill]
    assert store.events()[0]["run_id"] == run_id
    btc = store.conn.execute("SELECT amount, price, value FROM snapshots WHERE asset='BTC'")
    assert btc.fetchone() == (0.01, 50_000.0, 500.0)


def test_a_duplicate_period_raises_and_writes_nothing(store: Store) -> None:
    record(store, plan=plan())
    before = counts(store)

    with pytest.raises(DuplicatePeriod, match="dca:2027-01"):
        record(
            store,
            plan=plan(state=PlanState(carry=99.0)),
            snapshot=snapshot(),
            ledger=[LedgerEntry(T0, "deposit", "USDT", 500.0)],
            events=[("windfall", {})],
        )

    assert counts(store) == before
    assert store.plan_state().carry == 3.5


def bad_ledger_kind(store: Store) -> dict[str, Any]:
    return {"ledger": [LedgerEntry(T0, "deposit", "USDT", 5), LedgerEntry(T0, "gift", "BTC", 1)]}  # type: ignore[arg-type]


def windfall_not_pending(store: Store) -> dict[str, Any]:
    return {"consume_windfalls": [store.add_pending_windfall(100.0, T0), 12345]}


def event_not_json(store: Store) -> dict[str, Any]:
    return {"events": [("fault", {"fine": 1}), ("fault", {"when": object()})]}


def nan_in_state(store: Store) -> dict[str, Any]:
    return {"state": PlanState(cost_basis={"BTC": float("nan")})}


@pytest.mark.parametrize(
    ("failure", "error"),
    [
        (bad_ledger_kind, sqlite3.IntegrityError),  # the ledger's CHECK, after run and orders
        (windfall_not_pending, ValueError),  # the very last step of the transaction
        (event_not_json, TypeError),
        (nan_in_state, ValueError),
    ],
)
def test_record_run_is_all_or_nothing(store: Store, failure, error) -> None:
    extra = failure(store)
    before = counts(store)
    pending = store.pending_windfalls()

    with pytest.raises(error):
        record(store, plan=plan(), snapshot=snapshot(), ledger=extra.pop("ledger", ()), **extra)

    assert counts(store) == before
    assert not store.has_period("dca:2027-01")
    assert store.pending_windfalls() == pending
    assert store.plan_state() == PlanState()
    assert store.integrity_ok()


def test_a_run_without_a_plan_records_its_status(store: Store) -> None:
    record(store, "rebalance:2027-Q1", status="failed", error="exchange unavailable")
    record(store, "dca:2027-02", status="missed")
    runs = store.runs()
    assert [(r["period"], r["status"], r["error"]) for r in runs] == [
        ("dca:2027-02", "missed", None),
        ("rebalance:2027-Q1", "failed", "exchange unavailable"),
    ]
    assert runs[0]["summary"] is None and runs[0]["notes"] == []


def test_unknown_status_is_refused(store: Store) -> None:
    with pytest.raises(sqlite3.IntegrityError):
        record(store, status="maybe")
    assert counts(store)["runs"] == 0


def test_runs_and_last_run_by_job(store: Store) -> None:
    record(store, "dca:2027-01", T0)
    record(store, "rebalance:2027-W01", T0 + timedelta(days=2))
    record(store, "dca:2027-02", T0 + timedelta(days=31))
    assert [r["period"] for r in store.runs(job="dca")] == ["dca:2027-02", "dca:2027-01"]
    assert [r["period"] for r in store.runs(limit=1)] == ["dca:2027-02"]
    assert store.last_run("rebalance")["period"] == "rebalance:2027-W01"  # type: ignore[index]
    assert store.last_run("profit") is None


def test_counts_of_runs_by_status_and_orders_by_side(store: Store) -> None:
    record(store, "dca:2027-01", T0, plan=plan(order("BTC"), order("ETH")))
    record(store, "dca:2027-02", T0 + timedelta(days=31), status="failed", error="no price")
    record(store, "rebalance:2027-W01", T0, plan=plan(order("BTC", "sell", rule="rebalance")))
    assert store.counts() == {
        "runs": {("dca", "ok"): 1, ("dca", "failed"): 1, ("rebalance", "ok"): 1},
        "orders": {("dca", "buy"): 2, ("rebalance", "sell"): 1},
    }


def test_proposed_orders_oldest_first_with_their_runs_job_and_time(store: Store) -> None:
    first = record(store, "dca:2027-01", T0, plan=plan(order("BTC"), order("ETH", amount=0.5)))
    record(store, "dca:2027-02", T0 + timedelta(days=31), status="failed", error="no price")
    drift = record(
        store, "drift:2027-01-05T10", T0 + timedelta(days=4), plan=plan(order("BTC", "sell"))
    )
    assert store.proposed_orders() == [
        ProposedOrder(first, "dca", T0 + timedelta(seconds=2), 0.01 * 50_000.0),
        ProposedOrder(first, "dca", T0 + timedelta(seconds=2), 0.5 * 2_000.0),
        ProposedOrder(drift, "drift", T0 + timedelta(days=4, seconds=2), 0.01 * 50_000.0),
    ]


# --- time ----------------------------------------------------------------------------------


def test_naive_datetimes_are_refused_and_nothing_is_written(store: Store) -> None:
    naive = datetime(2027, 1, 1, 9, 0)
    with pytest.raises(ValueError, match="naive"):
        record(store, started_at=naive)
    with pytest.raises(ValueError, match="naive"):
        record(store, ledger=[LedgerEntry(naive, "deposit", "USDT", 1.0)])
    with pytest.raises(ValueError, match="naive"):
        store.add_event("fault", naive, {})
    with pytest.raises(ValueError, match="naive"):
        store.proposals(since=naive)
    assert counts(store) == dict.fromkeys(TABLES, 0)


def test_the_two_local_times_of_the_repeated_hour_are_stored_an_hour_apart() -> None:
    from zoneinfo import ZoneInfo

    from stagewise.store.codec import iso

    first = datetime(2026, 10, 25, 2, 30, tzinfo=ZoneInfo("Europe/Berlin"))  # CEST
    second = first.replace(fold=1)  # CET: equal to `first` as Python compares them
    assert iso(first) == "2026-10-25T00:30:00.000000+00:00"
    assert iso(second) == "2026-10-25T01:30:00.000000+00:00"


def test_times_are_stored_as_utc_text_and_come_back_aware(store: Store) -> None:
    paris = timezone(timedelta(hours=1))
    record(store, at=datetime(2027, 1, 1, 10, 0, tzinfo=paris))
    stored = store.conn.execute("SELECT scheduled_at FROM runs").fetchone()[0]
    assert stored == "2027-01-01T09:00:00.000000+00:00"
    assert store.runs()[0]["scheduled_at"] == T0


# --- plan state and pause ------------------------------------------------------------------


def test_plan_state_is_the_default_until_saved(store: Store) -> None:
    assert store.plan_state() == PlanState()


def test_plan_state_round_trips_mappings_and_tuples(store: Store) -> None:
    state = PlanState(
        cost_basis={"BTC": 41_234.5678, "ETH": 1_999.99},
        milestones_taken={"BTC": (100.0, 200.0), "SOL": (50.0,)},
        profit_base={"SOL": 212.5},
        held_since={"BTC": "2026-01-31", "SOL": "2027-02-01"},
        carry=12.34,
        profit_to_move=4_801.99,
        withdrawn_year=2027,
        withdrawn=1_500.0,
    )
    record(store, state=state)
    back = store.plan_state()
    assert back == state
    assert isinstance(back.milestones_taken["BTC"], tuple)


def test_pause_and_resume_change_the_state_and_log_events(store: Store) -> None:
    store.set_paused(True, "job loss", T0)
    assert store.plan_state().paused
    assert store.plan_state().pause_reason == "job loss"
    store.set_paused(False, "new job", T0 + timedelta(days=90))
    assert not store.plan_state().paused
    assert [(e["kind"], e["data"]) for e in store.events()] == [
        ("resumed", {"reason": "new job"}),
        ("paused", {"reason": "job loss"}),
    ]


def test_a_run_cannot_undo_a_pause_made_while_it_ran(store: Store) -> None:
    state_read_by_the_job = store.plan_state()
    store.set_paused(True, "emergency", T0)
    record(store, state=state_read_by_the_job)
    assert store.plan_state().paused
    assert store.plan_state().pause_reason == "emergency"


# --- proposals and events ------------------------------------------------------------------


def test_proposals_newest_first_filtered_by_since_and_job(store: Store) -> None:
    record(store, "dca:2027-01", T0, plan=plan(order("BTC")))
    record(store, "rebalance:2027-Q1", T0 + timedelta(days=5), plan=plan(order("ETH", "sell")))
    record(store, "dca:2027-02", T0 + timedelta(days=31), plan=plan(order("ETH")))

    every = store.proposals()
    assert [(p["period"], p["base"]) for p in every] == [
        ("dca:2027-02", "ETH"),
        ("rebalance:2027-Q1", "ETH"),
        ("dca:2027-01", "BTC"),
    ]
    assert every[0]["finished_at"] == T0 + timedelta(days=31, seconds=2)
    assert [p["period"] for p in store.proposals(job="dca")] == ["dca:2027-02", "dca:2027-01"]
    since = T0 + timedelta(days=1)
    assert [p["period"] for p in store.proposals(since=since)] == [
        "dca:2027-02",
        "rebalance:2027-Q1",
    ]
    assert [p["period"] for p in store.proposals(since=since, job="dca")] == ["dca:2027-02"]


def test_events_newest_first_and_by_kind(store: Store) -> None:
    store.add_event("stage_changed", T0, {"from": "builder", "to": "accumulator"})
    store.add_event("config_reloaded", T0 + timedelta(hours=1), {})
    store.add_event("stage_changed", T0 + timedelta(days=365), {"from": "accumulator"})
    assert [e["kind"] for e in store.events()] == [
        "stage_changed",
        "config_reloaded",
        "stage_changed",
    ]
    changed = store.events(kind="stage_changed", limit=1)
    assert changed == [
        {
            "id": 3,
            "at": T0 + timedelta(days=365),
            "kind": "stage_changed",
            "run_id": None,
            "data": {"from": "accumulator"},
        }
    ]


# --- windfalls -----------------------------------------------------------------------------


def test_windfalls_wait_until_a_run_consumes_them(store: Store) -> None:
    first = store.add_pending_windfall(1_000.0, T0)
    second = store.add_pending_windfall(250.0, T0 + timedelta(hours=1))
    assert [(w.id, w.amount, w.at) for w in store.pending_windfalls()] == [
        (first, 1_000.0, T0),
        (second, 250.0, T0 + timedelta(hours=1)),
    ]
    run_id = record(store, "windfall:2027-01-01", consume_windfalls=[first])
    assert [w.id for w in store.pending_windfalls()] == [second]
    consumed = store.conn.execute("SELECT consumed_run FROM pending_windfalls WHERE id=?", [first])
    assert consumed.fetchone()[0] == run_id
    with pytest.raises(ValueError, match="not pending"):
        record(store, "windfall:2027-01-02", consume_windfalls=[first])
    assert [e["data"]["amount"] for e in store.events(kind="windfall")] == [250.0, 1_000.0]


# --- ledger --------------------------------------------------------------------------------


def test_seed_only_an_empty_ledger(store: Store) -> None:
    assert store.seed_ledger({"USDT": 1_000.0, "BTC": 0.5, "ETH": 0.0}, T0, prices={"BTC": 40e3})
    assert not store.seed_ledger({"USDT": 5.0}, T0)
    assert store.ledger_entries() == [
        LedgerEntry(T0, "seed", "BTC", 0.5, 40_000.0, "initial balance"),
        LedgerEntry(T0, "seed", "USDT", 1_000.0, None, "initial balance"),
    ]
    assert store.events(kind="ledger_seeded")[0]["data"]["balances"]["USDT"] == 1_000.0


def test_ledger_balances_are_the_sums_per_asset(store: Store) -> None:
    store.seed_ledger({"USDT": 1_000.0}, T0)
    record(
        store,
        ledger=[
            LedgerEntry(T0, "deposit", "USDT", 500.0),
            LedgerEntry(T0, "fill", "BTC", 0.01, 50_000.0),
            LedgerEntry(T0, "fill", "USDT", -500.0),
            LedgerEntry(T0, "fee", "USDT", -0.5),
        ],
    )
    assert store.ledger_balances() == {"BTC": 0.01, "USDT": 999.5}


def test_compositions_are_the_latest_of_each_index_reading_one_row_each(store: Store) -> None:
    """Per index, the newest composition at or before `at` (of `period`), whatever how many
    were recorded before: a weekly index's years of them are not read on every run."""
    from stagewise.composition import Composition

    for week in range(1, 41):
        moment = T0 + timedelta(weeks=week)
        for index in ("momentum", "sector"):
            made = Composition(index, moment, moment.date(), {f"W{week}": 100.0})
            store.add_composition(f"rebalance:{index}:w{week}", made, {"index": index})
    read: list[str] = []
    store.conn.set_trace_callback(read.append)
    latest = store.compositions(indices=["momentum", "sector", "none"])
    store.conn.set_trace_callback(None)
    assert {i: c["weights"] for i, c in latest.items()} == {
        "momentum": {"W40": 100.0},
        "sector": {"W40": 100.0},
    }
    assert len(read) == 3 and all("LIMIT 1" in sql for sql in read)  # a row an index
    at = T0 + timedelta(weeks=10, days=3)
    assert store.compositions(at=at)["sector"]["weights"] == {"W10": 100.0}
    assert store.compositions(at=at)["sector"]["moment"] == T0 + timedelta(weeks=10)
    assert store.compositions(period="rebalance:momentum:w7") == {
        "momentum": store.compositions(at=T0 + timedelta(weeks=7))["momentum"]
    }
    assert store.compositions(at=T0) == {}


def test_the_ledger_is_append_only(store: Store) -> None:
    store.seed_ledger({"USDT": 1_000.0}, T0)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.conn.execute("UPDATE ledger SET amount = 2000")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.conn.execute("DELETE FROM ledger")
    assert store.ledger_balances() == {"USDT": 1_000.0}


def test_the_daemon_and_the_cli_share_the_file(tmp_path: Path) -> None:
    """Two connections to one WAL file, as the running daemon and a `stagewise pause`."""
    daemon = Store.open(tmp_path / "s.db")
    cli = Store.open(tmp_path / "s.db")
    state_read_by_the_job = daemon.plan_state()
    cli.set_paused(True, "emergency", T0)
    record(daemon, state=replace(state_read_by_the_job, carry=7.0))
    assert cli.has_period("dca:2027-01")
    assert cli.plan_state() == PlanState(carry=7.0, paused=True, pause_reason="emergency")
    daemon.close()
    cli.close()


def test_repeated_reads_see_what_another_connection_wrote(tmp_path: Path) -> None:
    """The daemon's cached reads (plan state, balances, windfalls) follow the CLI's writes."""
    daemon = Store.open(tmp_path / "s.db")
    cli = Store.open(tmp_path / "s.db")
    assert daemon.plan_state() == PlanState()  # now cached
    assert daemon.pending_windfalls() == []
    assert daemon.ledger_balances() == {}
    cli.set_paused(True, "lost my job", T0)
    cli.add_pending_windfall(1_000.0, T0)
    cli.seed_ledger({"USDT": 50.0}, T0)
    assert daemon.plan_state().paused
    assert [w.amount for w in daemon.pending_windfalls()] == [1_000.0]
    assert daemon.ledger_balances() == {"USDT": 50.0}
    # and its own writes too
    record(daemon, state=PlanState(carry=3.0))
    assert daemon.plan_state().carry == 3.0
    daemon.close()
    cli.close()


# --- kept reads after the store's own writes -----------------------------------------------


def test_reads_after_a_run_are_what_the_file_gives_back(tmp_path: Path) -> None:
    """What the writer reads after each run equals, types and order included, what another
    connection reads (its kept reads are dropped by the write, not predicted)."""
    writer = Store.open(tmp_path / "s.db")
    writer.seed_ledger({"USDT": 100.0}, T0)
    windfalls = [writer.add_pending_windfall(a, T0) for a in (10.0, 20.0)]
    states = [
        PlanState(cost_basis={"ETH": 2_000.0, "BTC": 50_000.0}, carry=1.25),  # unsorted
        PlanState(cost_basis={"BTC": 5}, milestones_taken={"SOL": [100, 50.0]}, carry=0),
        PlanState(milestones_taken={"BTC": (50.0,), "ADA": ()}, withdrawn_year=2027),
        PlanState(
            held_since={"SOL": "2027-01-02", "BTC": "2026-12-31"},
            profit_base={"SOL": 3, "BTC": 60_000.5},
            profit_to_move=5_781.0,
        ),
    ]
    fills = [
        [LedgerEntry(T0, "fill", "BTC", 0.01, 50_000.0), LedgerEntry(T0, "fee", "USDT", -0.0)],
        [LedgerEntry(T0, "deposit", "DOT", -0.0), LedgerEntry(T0, "deposit", "USDT", 7)],
        [],
        [],
    ]
    for i, (state, ledger) in enumerate(zip(states, fills, strict=True)):
        cached = (writer.plan_state(), writer.pending_windfalls(), writer.ledger_balances())
        assert cached  # every read is cached before the run
        record(
            writer,
            f"dca:2027-0{i + 1}",
            state=state,
            ledger=ledger,
            consume_windfalls=windfalls[i : i + 1],
        )
        reader = Store.open(tmp_path / "s.db")
        assert repr(writer.plan_state()) == repr(reader.plan_state())
        assert writer.pending_windfalls() == reader.pending_windfalls()
        assert repr(writer.ledger_balances()) == repr(reader.ledger_balances())
        reader.close()
    writer.close()


def test_a_failed_run_leaves_no_cached_read_behind(store: Store) -> None:
    store.seed_ledger({"USDT": 100.0}, T0)
    assert store.ledger_balances() == {"USDT": 100.0}
    with pytest.raises(ValueError, match="not pending"):
        record(
            store,
            state=PlanState(carry=5.0),
            ledger=[LedgerEntry(T0, "deposit", "USDT", 50.0)],
            consume_windfalls=[404],
        )
    assert store.plan_state() == PlanState()
    assert store.ledger_balances() == {"USDT": 100.0}


def test_a_run_inside_a_callers_transaction_that_rolls_back_is_not_cached(store: Store) -> None:
    assert store.plan_state() == PlanState()
    with pytest.raises(RuntimeError), store.db.atomic():
        record(store, state=PlanState(carry=5.0))
        raise RuntimeError("the caller's transaction fails after the run")
    assert store.plan_state() == PlanState()
    assert not store.has_period("dca:2027-01")


def test_every_field_of_a_ledger_entry_has_a_column() -> None:
    from dataclasses import fields

    from stagewise.store.runs import LEDGER_COLUMNS

    assert [f.name for f in fields(LedgerEntry)] == list(LEDGER_COLUMNS[:-1])


def test_a_file_of_m008_rebuilt_by_m009_keeps_rows_indexes_triggers_and_checks(
    tmp_path: Path,
) -> None:
    """m009 declares runs, orders, skips and the ledger anew (their CHECKs compare values
    instead of IN lists): the rows stay, so do the indexes and the ledger's triggers, and
    every CHECK still refuses what it refused."""
    from stagewise.store import schema

    theirs = Migrations(MIGRATION_SET)
    for name in MIGRATION_NAMES[: MIGRATION_NAMES.index("m009_checks_without_lists")]:
        step = getattr(schema, name)
        theirs(name=name)(lambda db, step=step: step(db.conn))
    path = tmp_path / "old.db"
    db = Database(path)
    theirs.apply(db)
    at = "2027-01-01T08:00:00.000000+00:00"
    db.execute(
        "INSERT INTO runs (job, period, scheduled_at, started_at, finished_at, status, mode,"
        " rule) VALUES ('dca', 'dca:2027-01', ?, ?, ?, 'ok', 'paper', 'dca')",
        [at, at, at],
    )
    db.execute(
        "INSERT INTO orders VALUES (1, 0, 'BTC/USDT', 'BTC', 'buy', 0.01, 50000, 500, 0.5,"
        " 'dca', 'why', 0, 0.5, 0.5)"
    )
    db.execute("INSERT INTO skips VALUES (1, 0, 'ETH', 'dca', 'too small', 3)")
    db.execute(
        "INSERT INTO ledger (at, run_id, kind, asset, amount) VALUES (?, 1, 'deposit', 'USDT', 9)",
        [at],
    )
    db.conn.commit()
    before = {
        t: db.execute(f"SELECT * FROM {t}").fetchall()
        for t in ("runs", "orders", "skips", "ledger")
    }
    objects = "SELECT type, name FROM sqlite_master WHERE type IN ('index', 'trigger') ORDER BY 2"
    kept = db.execute(objects).fetchall()
    db.close()

    store = Store.open(path)
    assert store.schema_version() == 9 and store.integrity_ok()
    conn = store.conn
    assert {t: conn.execute(f"SELECT * FROM {t}").fetchall() for t in before} == before
    assert conn.execute(objects).fetchall() == kept
    assert " IN (" not in "".join(
        sql
        for (sql,) in conn.execute(
            "SELECT sql FROM sqlite_master WHERE name IN ('runs', 'orders', 'skips', 'ledger')"
        )
    )
    assert store.ledger_balances() == {"USDT": 9.0}
    bad = [
        "INSERT INTO runs (job, period, scheduled_at, started_at, finished_at, status, mode)"
        f" VALUES ('dca', 'x', '{at}', '{at}', '{at}', 'done', 'paper')",
        "INSERT INTO runs (job, period, scheduled_at, started_at, finished_at, status, mode)"
        f" VALUES ('dca', 'y', '{at}', '{at}', '{at}', 'ok', 'live')",
        "INSERT INTO runs (job, period, scheduled_at, started_at, finished_at, status, mode,"
        f" rule) VALUES ('dca', 'z', '{at}', '{at}', '{at}', 'ok', 'paper', 'yolo')",
        "INSERT INTO orders VALUES (1, 1, 'BTC/USDT', 'BTC', 'hold', 1, 1, 1, 0, 'dca', 'w', 0,"
        " 0, 0)",
        "INSERT INTO orders VALUES (1, 2, 'BTC/USDT', 'BTC', 'buy', 1, 1, 1, 0, 'bet', 'w', 0, 0,"
        " 0)",
        "INSERT INTO skips VALUES (1, 1, 'ETH', 'bet', 'w', 0)",
        f"INSERT INTO ledger (at, kind, asset, amount) VALUES ('{at}', 'gift', 'USDT', 1)",
    ]
    for sql in bad:
        with pytest.raises(sqlite3.IntegrityError, match="CHECK constraint failed"):
            conn.execute(sql)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM ledger")
    conn.execute(f"INSERT INTO ledger (at, kind, asset, amount) VALUES ('{at}', 'fee', 'USDT', -1)")
    balances = conn.execute("SELECT asset, balance FROM ledger_balances").fetchall()
    assert balances == [("USDT", 8.0)]  # the balances trigger follows again
    store.close()


# --- opening -------------------------------------------------------------------------------


def test_two_processes_creating_the_file_at_once_apply_each_migration_once(
    tmp_path: Path,
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    for attempt in range(5):
        path = tmp_path / f"s{attempt}.db"
        with ThreadPoolExecutor(4) as pool:
            stores = list(pool.map(Store.open, [path] * 4))
        for opened in stores:
            assert opened.schema_version() == 9
            opened.close()
        check = Store.open(path)
        assert count(check.conn, "_sqlite_migrations") == 9
        check.close()


# --- failed runs leave their period open --------------------------------------------------------


def test_failed_attempts_leave_the_period_open_and_the_first_done_run_closes_it(
    store: Store,
) -> None:
    for n in range(2):
        record(store, status="failed", error=f"bad price {n}", at=T0 + timedelta(minutes=n))
    assert not store.has_period("dca:2027-01") and store.failed_attempts("dca:2027-01") == 2
    assert [r["period"] for r in store.open_failures(T0)] == ["dca:2027-01"]
    record(store, at=T0 + timedelta(minutes=5))
    assert store.has_period("dca:2027-01") and store.failed_attempts("dca:2027-01") == 0
    assert store.open_failures(T0) == []
    with pytest.raises(DuplicatePeriod):
        record(store, at=T0 + timedelta(minutes=6))
    assert [r["status"] for r in store.runs()] == ["ok", "failed", "failed"]  # all kept


def test_a_file_from_before_failed_runs_reopened_keeps_its_runs_and_opens_failed_periods(
    tmp_path: Path,
) -> None:
    """A state file whose runs table still has its UNIQUE period (m001-m003) is rebuilt: the
    rows, and the rows that refer to them, are kept; a period that had failed is open."""
    from stagewise.store.schema import m003_ledger_balances

    path = tmp_path / "old.db"
    theirs = Migrations(MIGRATION_SET)
    theirs(name="m001_initial")(lambda db: m001_initial(db.conn))
    theirs(name="m002_price_cache")(lambda db: m002_price_cache(db.conn))
    theirs(name="m003_ledger_balances")(lambda db: m003_ledger_balances(db.conn))
    db = Database(path)
    theirs.apply(db)
    at = "2027-01-01T08:00:00.000000+00:00"
    for period, status in (("dca:2027-01", "failed"), ("dca:2027-02", "ok")):
        db.execute(
            "INSERT INTO runs (job, period, scheduled_at, started_at, finished_at, status, mode)"
            " VALUES ('dca', ?, ?, ?, ?, ?, 'paper')",
            [period, at, at, at, status],
        )
    db.execute(
        "INSERT INTO ledger (at, run_id, kind, asset, amount) VALUES (?, 2, 'deposit', 'USDT', 9)",
        [at],
    )
    db.conn.commit()
    db.close()

    store = Store.open(path)
    assert store.schema_version() == 9 and store.integrity_ok()
    assert [r["period"] for r in store.runs()] == ["dca:2027-02", "dca:2027-01"]
    assert store.ledger_balances() == {"USDT": 9.0}
    assert not store.has_period("dca:2027-01") and store.has_period("dca:2027-02")
    record(store, "dca:2027-01")  # the month that had failed can now run
    with pytest.raises(DuplicatePeriod):
        record(store, "dca:2027-02")
    store.close()


# --- a file another process is writing, a full disk ---------------------------------------

BUSY = "is busy: another stagewise process is writing it; try again"


@pytest.fixture
def held(tmp_path: Path):
    """A state file, and a second, real connection to it holding a write transaction (as
    another process would: `BEGIN IMMEDIATE` takes the write lock and keeps it)."""
    path = tmp_path / "s.db"
    Store.open(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    yield path, holder
    holder.close()


def every_write(store: Store) -> dict[str, Callable[[], object]]:
    """One call of each kind of write the store makes, by name."""
    return {
        "pause": lambda: store.set_paused(True, "emergency", T0),
        "windfall": lambda: store.add_pending_windfall(1_000.0, T0),
        "run": lambda: record(store, state=PlanState(carry=5.0)),
        "event": lambda: store.add_event("daemon_started", T0, {}),
        "seed": lambda: store.seed_ledger({"USDT": 100.0}, T0),
    }


def test_every_write_to_a_file_another_process_is_writing_raises_state_busy(held) -> None:
    path, holder = held
    store = Store.open(path)
    store.conn.execute("PRAGMA busy_timeout=50")  # the test's patience, not the daemon's 5 s
    for name, write in every_write(store).items():
        with pytest.raises(StateBusy) as caught:
            write()
        assert str(caught.value) == f"the state file {path} {BUSY}", name
        assert not store.conn.in_transaction, name
    holder.execute("ROLLBACK")
    assert counts(store) == dict.fromkeys(TABLES, 0)  # nothing was written
    store.set_paused(True, "emergency", T0)  # the lock gone, the same store writes
    record(store)
    assert store.plan_state().paused and store.has_period("dca:2027-01")
    store.close()


def test_opening_a_new_file_another_process_is_writing_raises_state_busy(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # before any table: the schema cannot be created
    try:
        with pytest.raises(StateBusy, match=f"^the state file {path} {BUSY}$"):
            Store.open(path)
    finally:
        holder.close()
    assert Store.open(path).schema_version() == 9


def test_the_cli_meets_a_busy_file_with_one_line_and_exit_75(standin_config, cli) -> None:
    """`pause`, `windfall` and `once` while another process holds the write lock: after the
    busy timeout, one line naming the file and what to do, EX_TEMPFAIL, nothing written."""
    from concurrent.futures import ThreadPoolExecutor

    from stagewise.settings import load_config

    config = standin_config()
    path = load_config(config).settings.state.path
    Store.open(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    commands = [("pause", "--reason", "lost my job"), ("windfall", "1000"), ("once", "dca")]
    try:
        with ThreadPoolExecutor(len(commands)) as pool:  # the three wait out one timeout
            results = list(pool.map(lambda c: cli(*c, "--config", str(config)), commands))
    finally:
        holder.close()
    for command, result in zip(commands, results, strict=True):
        assert result.returncode == 75, (command, result.stderr)
        said = [line for line in result.stderr.splitlines() if not line.startswith("{")]
        assert said == [f"stagewise: the state file {path} {BUSY}"], command  # (and JSON logs)
    store = Store.read(path)
    try:
        assert counts(store) == dict.fromkeys(TABLES, 0)
        assert store.pending_windfalls() == [] and not store.plan_state().paused
    finally:
        store.close()


def test_a_full_disk_raises_state_full_and_writes_nothing(store: Store) -> None:
    store.seed_ledger({"USDT": 100.0}, T0)
    before = counts(store)
    # The file may not grow by a page: SQLite answers SQLITE_FULL, as for a full disk.
    pages = store.conn.execute("PRAGMA page_count").fetchone()[0]
    store.conn.execute(f"PRAGMA max_page_count={pages}")
    path = store.conn.execute("PRAGMA database_list").fetchone()[2]
    with pytest.raises(StateFull) as caught:
        record(store, state=PlanState(carry=5.0), error="x" * 100_000)
    assert str(caught.value) == (
        f"cannot write the state file {path}: the disk is full; free some space, try again"
    )
    assert not store.conn.in_transaction
    assert counts(store) == before
    assert store.plan_state() == PlanState()


READ_ONLY = (
    "it is read-only (its permissions, its folder's or a read-only file system); nothing was "
    "written"
)


def test_every_write_to_a_file_that_may_not_be_written_raises_state_read_only(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.db"
    Store.open(path).close()
    store = Store.open(path)
    # SQLite's answer to a write on a file it may only read (as for a file without write
    # permission): SQLITE_READONLY.
    store.conn.execute("PRAGMA query_only=ON")
    for name, write in every_write(store).items():
        with pytest.raises(StateReadOnly) as caught:
            write()
        assert str(caught.value) == f"cannot write the state file {path}: {READ_ONLY}", name
        assert not store.conn.in_transaction, name
    assert counts(store) == dict.fromkeys(TABLES, 0)
    store.close()


def test_the_cli_meets_a_read_only_state_file_with_one_line_and_exit_75(
    tmp_path: Path, write_config, cli
) -> None:
    """An immutable file (`chattr +i`: read-only even for root, who runs these tests): every
    command that writes says so in one line, EX_TEMPFAIL, and the file is left as it was."""
    config = write_config()
    path = tmp_path / "state" / "stagewise.db"
    assert cli("pause", "--reason", "lost my job", "--config", str(config)).returncode == 0
    before = path.read_bytes()
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not allowed here: no way to make the file read-only for root")
    try:
        for command in (("resume",), ("windfall", "1000"), ("pause", "--reason", "x", "--replace")):
            result = cli(*command, "--config", str(config))
            assert result.returncode == 75, (command, result.stderr)
            said = [line for line in result.stderr.splitlines() if not line.startswith("{")]
            assert said == [f"stagewise: cannot write the state file {path}: {READ_ONLY}"], said
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)
    assert path.read_bytes() == before


def test_a_commit_sqlite_refuses_is_rolled_back_not_left_open(tmp_path: Path) -> None:
    """A rollback-journal file: the COMMIT needs every reader gone and, refused, would leave
    the transaction open for every later write to join and never commit."""
    writer = sqlite3.connect(tmp_path / "j.db", isolation_level=None)
    writer.execute("CREATE TABLE t (x)")
    writer.execute("PRAGMA busy_timeout=50")
    reader = sqlite3.connect(tmp_path / "j.db", isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT * FROM t").fetchall()  # a read lock, kept
    with pytest.raises(sqlite3.OperationalError, match="locked"), database(writer).atomic():
        writer.execute("INSERT INTO t VALUES (1)")
    assert not writer.in_transaction
    reader.execute("ROLLBACK")
    with database(writer).atomic():
        writer.execute("INSERT INTO t VALUES (2)")
    assert reader.execute("SELECT x FROM t").fetchall() == [(2,)]
    writer.close()
    reader.close()


# --- a file written before the store ran on sqlite-utils -----------------------------------

OLD = Path(__file__).parent / "data" / "state-m006.db"


def sorted_contents(c: Contents) -> tuple[bool, list[str], list[str], int]:
    return (c.simulation, sorted(c.run_modes), sorted(c.event_kinds), c.windfalls)


def old_reads(store: Store) -> dict[str, str]:
    """What tests/data/state-m006.reads.json holds: each read of the store, as its repr."""
    since = datetime(2025, 1, 1, tzinfo=UTC)
    reads = {
        "runs": store.runs(limit=100),
        "proposals": store.proposals(),
        "counts": store.counts(),
        "proposed_orders": store.proposed_orders(),
        "ledger_entries": store.ledger_entries(),
        "ledger_balances": store.ledger_balances(),
        "plan_state": store.plan_state(),
        "pause": store.pause(),
        "events": store.events(),
        "windfalls": store.windfalls(),
        "pending_windfalls": store.pending_windfalls(),
        "compositions": store.compositions(),
        "contents": sorted_contents(store.contents()),
        "latest_snapshot": store.latest_snapshot(),
        "notice_counts": store.notice_counts(),
        "open_failures": store.open_failures(since),
        # The old store's cached closes read through the candles that replaced them (m008
        # added the volume beside each close: unknown, None, for closes cached before).
        "cached_closes": [
            (c.ts, c.close)
            for c in store.cached_candles("binance", ["BTC/USDT"], "1d", 0, 2**62).get(
                "BTC/USDT", []
            )
        ],
    }
    return {name: repr(value) for name, value in reads.items()}


def test_a_file_the_store_wrote_before_sqlite_utils_opens_unchanged(tmp_path: Path) -> None:
    """A state file with every table holding rows, written by the store of 36ba89f (its own
    migrations code, sqlite-utils' `_sqlite_migrations` format): opened, it has nothing
    applied again, keeps every row, and reads back as that store read it."""
    import json

    path = tmp_path / "state.db"
    path.write_bytes(OLD.read_bytes())
    before = sqlite3.connect(path)
    rows = {
        t: before.execute(f"SELECT * FROM {t}").fetchall() for t in (*TABLES, "_sqlite_migrations")
    }
    before.close()
    expected = json.loads((OLD.parent / "state-m006.reads.json").read_text())
    # A field PlanState gained since (a profit sale owed, `profit_due`) reads as its default.
    before_field = "held_since="
    assert "profit_due=" not in expected["plan_state"]
    expected["plan_state"] = expected["plan_state"].replace(
        before_field, "profit_due={}, " + before_field, 1
    )

    store = Store.open(path)
    assert store.integrity_ok()
    for table, held in rows.items():
        assert store.conn.execute(f"SELECT * FROM {table}").fetchall()[: len(held)] == held
    assert store.conn.execute(
        "SELECT name FROM _sqlite_migrations WHERE id <= 6 ORDER BY id"
    ).fetchall() == [(n,) for (_, _, n, _) in rows["_sqlite_migrations"]]
    assert old_reads(store) == expected
    store.close()
    reading = Store.read(path)  # read-only, once a writer has brought it up to date
    assert old_reads(reading) == expected
    reading.close()
