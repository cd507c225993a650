"""A store kept in memory (for simulations) and saved whole, atomically, as a state file."""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from test_store import T0, order, plan, record, snapshot

from stagewise.errors import StateFull
from stagewise.ledger import LedgerEntry
from stagewise.planner.model import PlanState
from stagewise.store import StateError, Store


def everything(db: sqlite3.Connection) -> dict[str, list[tuple]]:
    """Every row of every table (the migrations' log without its times), and the schema."""
    names = [n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    rows = {
        n: db.execute(f"SELECT * FROM {n} ORDER BY 1, 2").fetchall()
        for n in names
        if n != "_sqlite_migrations"
    }
    rows["_sqlite_migrations"] = db.execute(
        "SELECT migration_set, name FROM _sqlite_migrations ORDER BY id"
    ).fetchall()
    rows["schema"] = db.execute(
        "SELECT type, name, sql FROM sqlite_master ORDER BY type, name"
    ).fetchall()
    return rows


def simulated(store: Store) -> Store:
    """`store` with what a short simulation leaves: a seed, runs, windfalls, a pause."""
    store.seed_ledger({"USDT": 1_000.0}, T0)
    windfall = store.add_pending_windfall(300.0, T0)
    record(
        store,
        plan=plan(order(), order("ETH", "sell", 0.5, "rebalance")),
        snapshot=snapshot(),
        ledger=[
            LedgerEntry(T0, "fill", "BTC", 0.01, 50_000.0),
            LedgerEntry(T0, "fee", "USDT", -0.5),
        ],
        events=[("glide_step", {"step": 1})],
    )
    record(store, "windfall:1", T0 + timedelta(days=1), consume_windfalls=[windfall])
    record(store, "rebalance:2027-Q1", T0 + timedelta(days=2), status="failed", error="down")
    store.set_paused(True, "job loss", T0 + timedelta(days=3))
    return store


def leftovers(folder: Path, keep: set[str]) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


def test_a_memory_store_has_the_schema_of_a_file(tmp_path: Path) -> None:
    memory = Store.open_memory()
    file = Store.open(tmp_path / "s.db")
    assert memory.schema_version() == file.schema_version() == 9
    assert everything(memory.conn) == everything(file.conn)
    assert memory.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    memory.close()
    file.close()


@pytest.mark.parametrize("durable", [True, False])
def test_save_writes_a_state_file_that_reopens_with_the_same_rows(
    tmp_path: Path, durable: bool
) -> None:
    memory = simulated(Store.open_memory())
    path = tmp_path / "sim" / "simulation.db"  # the folder is created

    memory.save(path, durable=durable)  # not durable: the same file, only not synced

    reopened = Store.open(path)
    assert everything(reopened.conn) == everything(memory.conn)
    assert reopened.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert reopened.schema_version() == 9
    assert reopened.integrity_ok()
    assert reopened.plan_state() == memory.plan_state()
    assert reopened.plan_state().paused
    assert reopened.ledger_balances() == memory.ledger_balances() == {"BTC": 0.01, "USDT": 999.5}
    assert reopened.pending_windfalls() == []
    reopened.close()
    assert leftovers(path.parent, keep={"simulation.db"}) == []
    # the memory store goes on, and a later save replaces the file
    record(memory, "dca:2027-02", T0 + timedelta(days=31))
    memory.save(path)
    memory.close()
    again = Store.open(path)
    assert again.has_period("dca:2027-02")
    again.close()


def test_a_saved_file_is_a_wal_database_to_plain_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    Store.open_memory().save(path)
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()


def test_the_cli_reads_the_proposals_of_a_saved_file(tmp_path: Path, write_config, cli) -> None:
    memory = Store.open_memory()
    record(memory, plan=plan(order(), order("ETH", "sell", 0.5, "rebalance")))
    memory.save(tmp_path / "simulation.db")
    memory.close()

    result = cli(
        "--config",
        str(write_config()),
        "proposals",
        "--db",
        str(tmp_path / "simulation.db"),
        "--json",
    )

    assert result.returncode == 0, result.stderr
    proposed = json.loads(result.stdout)
    assert [(p["period"], p["base"], p["side"]) for p in proposed] == [
        ("dca:2027-01", "BTC", "buy"),
        ("dca:2027-01", "ETH", "sell"),
    ]


def test_the_cli_refuses_to_read_proposals_of_a_file_that_is_not_there(
    tmp_path: Path, write_config, cli
) -> None:
    missing = tmp_path / "typo" / "simulation.db"
    result = cli("--config", str(write_config()), "proposals", "--db", str(missing))
    assert result.returncode == 66  # EX_NOINPUT, as the README lists
    assert f"no state file at {missing}" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "typo").exists()  # nothing created


def test_save_drops_the_wal_of_the_file_it_replaces(tmp_path: Path) -> None:
    """A WAL left beside a replaced file would be replayed into the new one when opened."""
    old = tmp_path / "old.db"
    writer = Store.open(old)
    record(writer, "dca:2020-01", state=PlanState(carry=1.0))
    stale_wal = (tmp_path / "old.db-wal").read_bytes()  # committed, not yet checkpointed
    writer.close()
    path = tmp_path / "s.db"
    Store.open(path).close()
    (tmp_path / "s.db-wal").write_bytes(stale_wal)

    memory = Store.open_memory()
    record(memory, "dca:2027-01")
    memory.save(path)

    assert not (tmp_path / "s.db-wal").exists()
    reopened = Store.open(path)
    assert [r["period"] for r in reopened.runs()] == ["dca:2027-01"]
    assert reopened.integrity_ok()
    reopened.close()


def test_a_failed_save_leaves_the_old_file_and_no_partial_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "s.db"
    old = Store.open_memory()
    record(old, "dca:2020-01")
    old.save(path)
    before = path.read_bytes()
    memory = simulated(Store.open_memory())

    def disk_error(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", disk_error)  # the copy is written, its sync fails
    with pytest.raises(StateError, match="Input/output error"):
        memory.save(path)

    assert path.read_bytes() == before
    assert leftovers(tmp_path, keep={"s.db"}) == []
    monkeypatch.undo()
    memory.save(path)  # the store is still whole and can be saved
    assert Store.open(path).has_period("windfall:1")


def test_a_failed_first_save_leaves_no_file_at_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    memory = simulated(Store.open_memory())
    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(28, "No space")))

    with pytest.raises(StateFull, match="the disk is full"):  # exit 75, as every full disk
        memory.save(tmp_path / "s.db")

    assert leftovers(tmp_path, keep=set()) == []


def test_save_over_a_folder_fails_and_cleans_up(tmp_path: Path) -> None:
    (tmp_path / "s.db").mkdir()
    with pytest.raises(StateError, match="cannot save"):
        simulated(Store.open_memory()).save(tmp_path / "s.db")
    assert leftovers(tmp_path, keep={"s.db"}) == []
    assert list((tmp_path / "s.db").iterdir()) == []


def test_save_is_refused_during_a_write_and_over_its_own_file(tmp_path: Path) -> None:
    memory = Store.open_memory()
    with memory.db.atomic(), pytest.raises(StateError, match="in progress"):
        memory.save(tmp_path / "s.db")
    assert not (tmp_path / "s.db").exists()
    file = Store.open(tmp_path / "f.db")
    with pytest.raises(StateError, match="over itself"):
        file.save(tmp_path / "f.db")
    file.save(tmp_path / "copy.db")  # a file store can be copied elsewhere
    assert Store.open(tmp_path / "copy.db").schema_version() == 9
    file.close()


def test_a_memory_run_is_whole_or_absent_too() -> None:
    memory = Store.open_memory()
    record(memory, plan=plan())
    with pytest.raises(sqlite3.IntegrityError):
        record(
            memory,
            "dca:2027-02",
            plan=plan(state=PlanState(carry=99.0)),
            ledger=[LedgerEntry(T0, "gift", "BTC", 1.0)],  # type: ignore[arg-type]
        )
    assert not memory.has_period("dca:2027-02")
    assert memory.plan_state() == PlanState(carry=3.5)
    assert memory.ledger_balances() == {}
