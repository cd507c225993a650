"""`simulate --db`: a simulation replaces only a simulation database of stagewise's (one it
marked, or one from before the mark at the default place), never the configured state file,
a copy of a live one, or anyone else's file; a refused file is left byte for byte (exit 73).
The real CLI as a subprocess, the shipped sample prices (no network)."""

from __future__ import annotations

import json
import shutil
import sqlite3
import tomllib
from pathlib import Path

import pytest

SPAN = ("--start", "2026-01-01", "--end", "2026-02-01", "--proposals", "0")
EX_CANTCREAT = 73


def state_of(config: Path) -> Path:
    return Path(tomllib.loads(config.read_text())["state"]["path"])


def simulate(cli, config: Path, db: Path | None, *more: str):
    args = ["--config", str(config), "simulate", *SPAN, *more]
    return cli(*args, *(["--db", str(db)] if db is not None else []))


def rows(db: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def assert_refused(done, path: Path, before: bytes) -> None:
    assert done.returncode == EX_CANTCREAT, done.stderr
    assert f"{path} is not a simulation database" in done.stderr
    assert "left as it is" in done.stderr and "Traceback" not in done.stderr
    assert done.stdout == ""  # refused before the simulation ran
    assert path.read_bytes() == before


def test_a_copy_of_a_live_state_file_is_refused_and_left_byte_for_byte(
    standin_config, cli, tmp_path
) -> None:
    config = standin_config()
    assert cli("--config", str(config), "once", "dca").returncode == 0
    assert cli("--config", str(config), "pause", "--reason", "lost my job").returncode == 0
    assert cli("--config", str(config), "windfall", "2500").returncode == 0
    copy = tmp_path / "copy-of-live.db"
    shutil.copy(state_of(config), copy)
    before = copy.read_bytes()

    done = simulate(cli, config, copy)

    assert_refused(done, copy, before)
    assert "a stagewise state file no simulation wrote" in done.stderr
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(copy.name)] == [copy.name]
    assert rows(copy, "SELECT count(*) FROM runs") != [(0,)]  # a live file's runs, still there


def another_apps_database(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE contacts (name TEXT, phone TEXT)")
    conn.execute("INSERT INTO contacts VALUES ('Ada', '555-0100')")
    conn.commit()
    conn.close()


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (lambda p: p.write_text("my tax notes, 2026\n"), "not a stagewise database"),
        (another_apps_database, "not a stagewise database"),
        (lambda p: p.write_bytes(b""), "an empty file"),
    ],
    ids=["text", "other-application", "empty"],
)
def test_a_file_that_is_not_a_simulation_database_is_refused(
    write_config, cli, tmp_path, make, why: str
) -> None:
    path = tmp_path / "out.db"
    make(path)
    before = path.read_bytes()
    done = simulate(cli, write_config(), path)
    assert_refused(done, path, before)
    assert f"({why}" in done.stderr


def test_a_folder_is_refused(write_config, cli, tmp_path) -> None:
    folder = tmp_path / "results"
    folder.mkdir()
    done = simulate(cli, write_config(), folder)
    assert done.returncode == EX_CANTCREAT
    assert "(not a file)" in done.stderr and list(folder.iterdir()) == []


def test_the_configured_state_file_is_refused_however_it_is_named(
    write_config, cli, tmp_path
) -> None:
    config = write_config()
    state = state_of(config)
    assert cli("--config", str(config), "pause", "--reason", "lost my job").returncode == 0
    before = state.read_bytes()
    link = tmp_path / "link.db"
    link.symlink_to(state)
    for spelling in (state, state.parent / ".." / state.parent.name / state.name, link):
        done = simulate(cli, config, spelling)
        assert done.returncode == EX_CANTCREAT, done.stderr
        assert "is the daemon's own state file (state.path): left as it is" in done.stderr
        assert state.read_bytes() == before
    assert link.is_symlink()


def test_a_simulations_own_database_is_replaced_and_marked(write_config, cli, tmp_path) -> None:
    config = write_config()
    db = tmp_path / "sim.db"
    assert simulate(cli, config, db).returncode == 0
    second = cli(
        "--config", str(config), "simulate", "--start", "2026-03-01", "--end", "2026-04-01",
        "--proposals", "0", "--db", str(db), "--json",
    )  # fmt: skip
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["start"] == "2026-03-01"
    ((data,),) = rows(db, "SELECT data FROM events WHERE kind = 'simulation'")
    assert json.loads(data)["start"] == "2026-03-01"
    assert rows(db, "SELECT min(period) FROM runs") == [("dca:2026-03",)]


def test_a_simulations_database_is_refused_as_the_daemons_state_file(
    write_config, cli, tmp_path
) -> None:
    """The other way round: state.path at a simulation's database. Its simulated runs and
    paper ledger would read as the account's; every command that writes refuses it, the
    daemon's opening too (runtime: `once`), and the file is left byte for byte."""
    db = tmp_path / "sim.db"
    assert simulate(cli, write_config(), db).returncode == 0
    before = db.read_bytes()
    config = write_config({"state": {"path": str(db)}})
    for command in (["pause", "--reason", "x"], ["windfall", "100"], ["once", "reassess"]):
        done = cli("--config", str(config), *command)
        assert done.returncode == EX_CANTCREAT, (command, done.stderr)
        assert f"{db} is a simulation's database (`stagewise simulate` wrote it)" in done.stderr
        assert "Traceback" not in done.stderr
    assert db.read_bytes() == before


def test_a_simulation_database_with_runs_of_another_mode_is_refused(
    write_config, cli, tmp_path
) -> None:
    config = write_config()
    db = tmp_path / "sim.db"
    assert simulate(cli, config, db).returncode == 0
    conn = sqlite3.connect(db)
    conn.execute("UPDATE runs SET mode = 'read-only' WHERE id = 1")
    conn.commit()
    conn.close()
    before = db.read_bytes()

    done = simulate(cli, config, db)

    assert_refused(done, db, before)
    assert "(it holds read-only runs)" in done.stderr


def test_a_simulation_from_before_the_mark_is_replaced_at_the_default_place_only(
    write_config, cli, tmp_path
) -> None:
    config = write_config()
    default = state_of(config).with_name("simulation.db")
    assert simulate(cli, config, None).returncode == 0
    conn = sqlite3.connect(default)  # what a simulation wrote before it marked its database
    conn.execute("DELETE FROM events WHERE kind = 'simulation'")
    conn.commit()
    conn.close()
    elsewhere = tmp_path / "old-simulation.db"
    shutil.copy(default, elsewhere)
    before = elsewhere.read_bytes()

    assert_refused(simulate(cli, config, elsewhere), elsewhere, before)
    again = simulate(cli, config, None)

    assert again.returncode == 0, again.stderr
    assert len(rows(default, "SELECT 1 FROM events WHERE kind = 'simulation'")) == 1


def test_a_simulation_an_older_version_wrote_is_replaced_at_the_default_place(
    write_config, cli
) -> None:
    """An upgrade: the default simulation.db an older stagewise wrote (an older schema, from
    before the mark) must not block the demo; it is read through a migrated copy, left as
    it was until the new simulation replaces it."""
    config = write_config()
    default = state_of(config).with_name("simulation.db")
    assert simulate(cli, config, None).returncode == 0
    conn = sqlite3.connect(default)  # as the version before migrations m004-m007 left it
    conn.execute("DELETE FROM events WHERE kind = 'simulation'")
    for table in ("notifications", "notify_cursor", "compositions", "simulation_days"):
        conn.execute(f"DROP TABLE {table}")
    conn.execute(
        "DELETE FROM _sqlite_migrations WHERE name IN ('m004_failed_runs_leave_period_open',"
        " 'm005_notifications', 'm006_compositions', 'm007_simulation_days')"
    )
    conn.commit()
    conn.close()

    again = simulate(cli, config, None)

    assert again.returncode == 0, again.stderr
    assert len(rows(default, "SELECT 1 FROM events WHERE kind = 'simulation'")) == 1
