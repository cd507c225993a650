"""The command line's contract: exit codes as the README lists them, and `--json` answering
on stdout even when the command fails. The real console script, as a subprocess."""

from __future__ import annotations

import json
import re
import sqlite3

import pytest
from support import REPO

from stagewise.cli import output as cli_output

EX_FAILURE, EX_USAGE, EX_NOINPUT = 1, 2, 66


def test_every_exit_code_of_the_cli_is_listed_in_the_readme_and_the_help(cli):
    codes = {
        value
        for name, value in vars(cli_output).items()
        if name.startswith("EX_") and isinstance(value, int)
    }
    readme = (REPO / "README.md").read_text()
    listed = readme[readme.index("Exit codes:") :].split("\n\n")[0]
    in_help = cli("--help").stdout
    in_help = in_help[in_help.index("Exit codes:") :]
    for code in codes:
        assert re.search(rf"\b{code} ", listed), (code, listed)
        assert re.search(rf"\b{code} ", in_help), (code, in_help)


@pytest.mark.parametrize(
    "args",
    [["stage", "--at", "1987-06-14"], ["stage", "--at", "1950-01-01", "--json"]],
    ids=["stage", "stage-json"],
)
def test_a_day_before_the_investors_birth_is_a_bad_argument(cli, write_config, args):
    result = cli("--config", str(write_config()), *args)
    assert result.returncode == EX_USAGE, result.stderr
    assert f"{args[2]} is before the investor's birth date 1987-06-15" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["stage", "--at", "9999-12-31"], "--at: '9999-12-31' is not a day from 1900-01-01"),
        (["stage", "--at", "9999-12-31", "--json"], "'9999-12-31' is not a day from 1900-01-01"),
        (["indices", "--at", "9999-12-31"], "'9999-12-31' is not a day from 1900-01-01"),
        (["once", "dca", "--at", "0001-01-01"], "'0001-01-01' is not a day from 1900-01-01"),
        (["proposals", "--since", "0001-01-01"], "'0001-01-01' is not a day from 1900-01-01"),
        (["simulate", "--end", "9999-12-31"], "--end: '9999-12-31' is not a day from 1900-01-01"),
        (["simulate", "--windfall", "9999-01-01:5"], "'9999-01-01:5' is not a day from 1900"),
        (["view", "--port", "99999"], "--port: '99999' is not a port number (1 to 65535)"),
        (["view", "--port", "-1"], "--port: '-1' is not a port number (1 to 65535)"),
    ],
    ids=["stage", "stage-json", "indices", "once", "proposals", "end", "windfall", "port", "neg"],
)
def test_a_day_or_port_out_of_range_is_a_bad_argument(cli, write_config, args, named):
    """Days far outside a plan's lifetime (Python's calendar ends at 0001 and 9999: a day's
    arithmetic there overflowed), ports outside 1-65535: refused as they are read."""
    result = cli("--config", str(write_config()), *args)
    assert result.returncode == EX_USAGE, result.stderr
    assert named in result.stderr
    assert "Traceback" not in result.stderr


def test_view_of_a_file_that_is_no_state_file_names_it(cli, write_config, tmp_path):
    text = tmp_path / "notes.db"
    text.write_text("not a database\n")
    result = cli("--config", str(write_config()), "view", "--db", str(text))
    assert result.returncode == EX_FAILURE, result.stderr
    assert f"cannot read the state file {text}: file is not a database" in result.stderr
    assert "Traceback" not in result.stderr
    assert text.read_text() == "not a database\n"


@pytest.mark.parametrize("stub", ["empty", "no-tables"])
def test_a_state_file_with_nothing_in_it_reads_as_no_state_yet(cli, write_config, tmp_path, stub):
    """What a first write that failed (a full disk: exit 75, "nothing was written") leaves,
    or a file made by hand: the read commands answer as before anything ran (they exited 1
    with "holds no stagewise state yet"), and the file is left as it is."""
    config = write_config()
    state = tmp_path / "state" / "stagewise.db"
    state.parent.mkdir()
    state.touch()
    if stub == "no-tables":
        conn = sqlite3.connect(state)
        conn.execute("CREATE TABLE t (x)")
        conn.execute("DROP TABLE t")
        conn.commit()
        conn.close()
    before = state.read_bytes()
    for args, said in [
        (["status"], f"state: {state} (nothing recorded yet: nothing has run with this config)"),
        (["proposals"], "no proposals recorded"),
        (["windfall", "list"], "no windfalls announced"),
        (["indices"], "not composed yet"),
    ]:
        result = cli("--config", str(config), *args)
        assert result.returncode == 0, (args, result.stderr)
        assert said in result.stdout, (args, result.stdout)
    assert state.read_bytes() == before


def test_once_at_a_time_before_birth_is_refused_before_the_exchange(
    cli, standin_config, plan_standin
):
    result = cli("--config", str(standin_config()), "once", "dca", "--at", "1980-01-01")
    assert result.returncode == EX_USAGE, result.stderr
    assert "1980-01-01 is before the investor's birth date" in result.stderr
    assert plan_standin.requests == []


@pytest.mark.parametrize("command", ["proposals", "indices", "view"])
def test_a_db_that_does_not_exist_is_no_input(cli, write_config, tmp_path, command):
    """A mistyped --db must not read as "no proposals" or "not composed yet" (indices said
    so, exit 0); a folder is named as one."""
    missing = tmp_path / "simulaton.db"  # mistyped
    for extra in ([], ["--json"]) if command != "view" else ([],):  # view has no --json
        result = cli("--config", str(write_config()), command, "--db", str(missing), *extra)
        assert result.returncode == EX_NOINPUT, result.stderr
        assert f"stagewise: no state file at {missing}\n" in result.stderr
        assert not missing.exists()
    if command != "view":
        assert json.loads(result.stdout)["errors"] == [f"no state file at {missing}"]
    result = cli("--config", str(write_config()), command, "--db", str(tmp_path))
    assert result.returncode == EX_NOINPUT, result.stderr
    assert f"--db {tmp_path} is a folder: name the state file" in result.stderr


def test_proposals_of_a_db_that_does_not_exist_answers_in_json(cli, write_config, tmp_path):
    missing = tmp_path / "simulaton.db"  # mistyped
    for extra in ([], ["--json"]):
        result = cli("--config", str(write_config()), "proposals", "--db", str(missing), *extra)
        assert result.returncode == EX_NOINPUT
        assert f"no state file at {missing}" in result.stderr
        assert not missing.exists()
    assert json.loads(result.stdout) == {
        "ok": False,
        "exit_code": EX_NOINPUT,
        "error": f"no state file at {missing}",
        "errors": [f"no state file at {missing}"],
    }


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["simulate", "--start", "2025-02-29"], "argument --start: "),
        (["once", "bogus"], "argument job: invalid choice: 'bogus'"),
        (["once"], "the following arguments are required: job"),
        (["proposals", "--limit", "-1"], "argument --limit: "),
        (["once", "dca", "--record"], "--record needs --at (the moment of the period to run)"),
    ],
    ids=["bad-day", "unknown-job", "no-job", "bad-limit", "record-without-at"],
)
def test_a_bad_argument_with_json_is_answered_in_json(cli, write_config, args, said):
    """The README: "With --json, an error is printed on stdout too": argparse's errors left
    stdout empty (a script reading it got nothing to parse)."""
    result = cli("--config", str(write_config()), *args, "--json")
    assert result.returncode == EX_USAGE, result.stderr
    answer = json.loads(result.stdout)
    assert answer["ok"] is False and answer["exit_code"] == EX_USAGE
    assert said in answer["error"] and answer["errors"] == [answer["error"]]
    assert said in result.stderr and "Traceback" not in result.stderr
    without = cli("--config", str(write_config()), *args)
    assert without.returncode == EX_USAGE and without.stdout == ""


def test_once_json_answers_in_json_when_there_is_nothing_to_run(cli, standin_config):
    config = str(standin_config())
    first = cli("--config", config, "once", "dca", "--json")
    assert first.returncode == 0, first.stderr
    assert [o["status"] for o in json.loads(first.stdout)] == ["ok"]
    again = cli("--config", config, "once", "dca", "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) == []  # no outcome; the reason on stderr
    assert "nothing to run: period dca:" in again.stderr


def test_once_json_of_a_job_switched_off_answers_in_json(cli, write_config):
    path = write_config({"schedule": {"drift_enabled": False}})
    result = cli("--config", str(path), "once", "drift", "--json")
    assert result.returncode == EX_FAILURE
    answer = json.loads(result.stdout)
    assert answer["ok"] is False and answer["exit_code"] == EX_FAILURE
    assert "the drift job is switched off" in answer["error"]


def test_status_shows_the_profit_proceeds_set_aside_to_move_out(cli, standin_config):
    from datetime import UTC, datetime

    from stagewise.planner import PlanState
    from stagewise.settings import load_config
    from stagewise.store import RunRecord, Store

    config = standin_config({"exchange": {"mode": "read-only"}})
    env = {"STAGEWISE_EXCHANGE__API_KEY": "k" * 16, "STAGEWISE_EXCHANGE__SECRET": "s" * 16}
    at = datetime(2027, 5, 5, 16, tzinfo=UTC)
    store = Store.open(load_config(config).settings.state.path)
    store.record_run(
        RunRecord(
            job="profit",
            period="profit:2027-05-05",
            scheduled_at=at,
            started_at=at,
            finished_at=at,
            status="ok",
            mode="read-only",
            state=PlanState(profit_to_move=9_990.25),
        )
    )
    store.close()
    status = cli("--config", str(config), "status", "--json", env=env)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["profit_to_move"] == 9_990.25
    shown = cli("--config", str(config), "status", env=env).stdout
    assert (
        "proceeds to move off the account (profit taken, to your traditional investments; " in shown
    )
    assert "withdrawals, to you): 9,990.25 USDT (set aside: not spent)" in shown
