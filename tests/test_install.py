"""Installed like released software: the console script from any folder, the config found
where people keep it, `init`, one state file, read commands that create nothing.

Every CLI run here is the installed `stagewise` run from an empty temporary folder
(conftest.run_cli), with $XDG_CONFIG_HOME and $XDG_STATE_HOME inside the test's tmp_path.
"""

from __future__ import annotations

import importlib.metadata
import os
import sqlite3
from pathlib import Path

import pytest
from support import REPO

from stagewise import shipped


def test_the_installed_package_is_not_the_checkout():
    import stagewise

    installed = Path(stagewise.__file__).resolve()
    # The wheel's files in site-packages (conftest checks they are the checkout's), not the
    # checkout's stagewise/.
    assert "site-packages" in installed.parts and (REPO / "src") not in installed.parents
    for name in (shipped.STAGES, shipped.INDICES, shipped.EXAMPLE, shipped.SAMPLE_PRICES):
        assert shipped.path(name).parent == installed.parent / "data"
    assert "Type=notify" in shipped.text(shipped.UNIT)
    assert "STAGEWISE_EXCHANGE__API_KEY" in shipped.text(shipped.ENV_EXAMPLE)


def test_version(cli):
    result = cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"stagewise {importlib.metadata.version('stagewise')}"


def test_without_a_config_read_commands_use_the_shipped_example_and_say_so(cli, tmp_path):
    for args in (["check-config"], ["stage", "--json"], ["status"], ["proposals"]):
        result = cli(*args)
        assert result.returncode == 0, (args, result.stderr)
        assert "no config found" in result.stderr and "shipped example" in result.stderr
        assert "stagewise init" in result.stderr
    assert not (tmp_path / "xdg-state").exists()  # and nothing was created


@pytest.mark.parametrize(
    "args", [["pause", "--reason", "x"], ["resume"], ["windfall", "100"], ["once", "dca"]]
)
def test_without_a_config_commands_that_write_refuse(cli, tmp_path, args):
    result = cli(*args)
    assert result.returncode == 78, result.stderr
    assert "no config found" in result.stderr and "stagewise init" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "xdg-state").exists()


def test_the_users_config_is_found_in_xdg_config_home(cli, tmp_path):
    result = cli("init")
    assert result.returncode == 0, result.stderr
    config = tmp_path / "xdg-config" / "stagewise" / "config.toml"
    assert f"wrote  {config}" in result.stdout and "next steps" in result.stdout
    checked = cli("check-config")
    assert checked.returncode == 0, checked.stderr
    assert f"config OK: {config}" in checked.stdout
    assert "no config found" not in checked.stderr
    # Its state defaults to $XDG_STATE_HOME/stagewise, never beside the package.
    assert f"state: {tmp_path / 'xdg-state' / 'stagewise' / 'stagewise.db'}" in checked.stdout


def test_init_never_overwrites_and_plan_copies_the_plan_to_edit(cli, tmp_path):
    folder = tmp_path / "mine"
    assert cli("init", str(folder)).returncode == 0
    config = folder / "config.toml"
    config.write_text(config.read_text().replace("1987-06-15", "1990-01-01"))
    edited = config.read_bytes()
    again = cli("init", str(folder), "--plan")
    assert again.returncode == 0, again.stderr
    assert f"kept (exists)  {config}" in again.stdout
    assert config.read_bytes() == edited  # the user's edit survives
    assert (folder / "stages.toml").read_text() == shipped.text(shipped.STAGES)
    assert (folder / "indices.toml").read_text() == shipped.text(shipped.INDICES)
    # The kept config still reads the shipped plan: editing the copies would change nothing.
    assert (
        "note: the kept config.toml does not use the plan files copied beside it: set "
        'stages = "stages.toml" and indices = "indices.toml" in its [plan] table'
    ) in again.stdout
    # A fresh --plan config names the copies, so editing them changes the plan.
    other = tmp_path / "other"
    assert cli("init", str(other), "--plan").returncode == 0
    stages = other / "stages.toml"
    stages.write_text(stages.read_text().replace('name = "Young Professionals"', 'name = "Mine"'))
    shown = cli("--config", str(other / "config.toml"), "stage", "--at", "2010-01-01")
    assert shown.returncode == 0, shown.stderr
    assert "stage 1 of 5: Mine" in shown.stdout
    assert f"--config {other / 'config.toml'} check-config" in cli("init", str(other)).stdout
    assert "note:" not in cli("init", str(other), "--plan").stdout  # it names them


def test_init_refuses_a_folder_it_cannot_write(cli, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = cli("init", str(blocker / "sub"))
    assert result.returncode == 73
    assert "cannot write" in result.stderr and "Traceback" not in result.stderr


def test_init_given_a_file_asks_for_its_folder(cli, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("# mine\n")
    result = cli("init", str(config))
    assert result.returncode == 2, result.stderr
    assert result.stderr == (
        f"stagewise: init: {config} is a file: give the folder to write config.toml into "
        f"(e.g. {tmp_path})\n"
    )
    assert config.read_text() == "# mine\n"


def test_read_commands_need_no_secret_and_create_nothing(cli, write_config, tmp_path):
    state = tmp_path / "nowhere" / "state.db"
    path = write_config({"exchange": {"mode": "read-only"}, "state": {"path": str(state)}})
    for args in (["status"], ["status", "--json"], ["proposals"], ["stage"]):
        result = cli("--config", str(path), *args)
        assert result.returncode == 0, (args, result.stderr)
    assert not state.parent.exists()
    assert f"state: {state} (no file yet" in cli("--config", str(path), "status").stdout
    # What reads the account does need the key, and says which.
    for args in (["check-config"], ["once", "dca"]):
        result = cli("--config", str(path), *args)
        assert result.returncode == 78, (args, result.stderr)
        assert "STAGEWISE_EXCHANGE__API_KEY" in result.stderr
    assert not state.parent.exists()


def test_read_commands_leave_the_state_file_as_it_is(cli, write_config, tmp_path):
    from stagewise.store import Store

    state = tmp_path / "state" / "stagewise.db"
    path = write_config({"state": {"path": str(state)}})
    assert cli("--config", str(path), "pause", "--reason", "lost my job").returncode == 0
    before = {p.name: p.read_bytes() for p in state.parent.iterdir()}
    assert set(before) == {"stagewise.db"}  # the writer closed it: no -wal, no -shm
    os.utime(state, (0, 0))
    for args in (["status"], ["proposals"], ["status", "--json"]):
        result = cli("--config", str(path), *args)
        assert result.returncode == 0, result.stderr
    assert "PAUSED (emergency rule): lost my job" in cli("--config", str(path), "status").stdout
    assert {p.name: p.read_bytes() for p in state.parent.iterdir()} == before
    assert state.stat().st_mtime == 0
    reading = Store.read(state)
    try:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            reading.conn.execute("DELETE FROM events")
    finally:
        reading.close()


def test_the_demo_from_an_empty_folder_matches_the_checkouts_files(cli, tmp_path):
    """`stagewise simulate` as the README's first command runs it (installed, any folder)."""
    result = cli("simulate", "--json")
    assert result.returncode == 0, result.stderr
    assert '"final_value"' in result.stdout
    # The demo read the shipped files, which are the checkout's own (byte for byte).
    for name in ("example.toml", "stages.toml", "indices.toml", "sample-prices.csv"):
        assert shipped.path(name).read_bytes() == (REPO / "config" / name).read_bytes()
    # Its database went to the user's state folder.
    assert (tmp_path / "xdg-state" / "stagewise" / "simulation.db").is_file()
