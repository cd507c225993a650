"""The emergency pause from the command line: a second `pause` says since when and why and
keeps the first reason (unless `--replace`), a blank reason is refused, and `resume` when not
paused records nothing. The real CLI as a subprocess on real state files."""

from __future__ import annotations

import json
import sqlite3
import tomllib
from pathlib import Path

import pytest


def state_of(config: Path) -> Path:
    return Path(tomllib.loads(config.read_text())["state"]["path"])


def recorded(state: Path) -> tuple[list[tuple], list[tuple]]:
    """The events and the plan-state row of the state file, as stored."""
    conn = sqlite3.connect(f"file:{state}?mode=ro", uri=True)
    try:
        events = conn.execute("SELECT id, at, kind, data FROM events ORDER BY id").fetchall()
        plan_state = conn.execute("SELECT state, updated_at FROM plan_state").fetchall()
        return events, plan_state
    finally:
        conn.close()


@pytest.fixture
def config(write_config) -> str:
    return str(write_config({"investor": {"timezone": "Europe/Berlin"}}))


def test_pause_while_paused_says_since_when_and_why_and_keeps_the_first_reason(config, cli) -> None:
    first = cli("--config", config, "pause", "--reason", "lost my job")
    assert first.returncode == 0, first.stderr
    before = recorded(state_of(Path(config)))

    again = cli("--config", config, "pause", "--reason", "car broke down")

    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("already paused, since 20")
    assert ": lost my job. Nothing changed" in again.stdout
    assert "CET" in again.stdout or "CEST" in again.stdout  # the investor's time zone
    assert recorded(state_of(Path(config))) == before  # nothing written
    status = json.loads(cli("--config", config, "status", "--json").stdout)
    assert (status["paused"], status["pause_reason"]) == (True, "lost my job")
    assert status["paused_since"] is not None
    shown = cli("--config", config, "status").stdout
    assert "PAUSED (emergency rule): lost my job (since 20" in shown


def test_replace_gives_the_pause_a_new_reason_and_keeps_its_start(config, cli) -> None:
    assert cli("--config", config, "pause", "--reason", "lost my job").returncode == 0
    since = json.loads(cli("--config", config, "status", "--json").stdout)["paused_since"]

    replaced = cli("--config", config, "pause", "--reason", "still looking", "--replace")

    assert replaced.returncode == 0, replaced.stderr
    assert "the reason is now: still looking (was: lost my job)" in replaced.stdout
    status = json.loads(cli("--config", config, "status", "--json").stdout)
    assert (status["pause_reason"], status["paused_since"]) == ("still looking", since)
    events, _ = recorded(state_of(Path(config)))
    assert [(kind, json.loads(data)) for _, _, kind, data in events] == [
        ("paused", {"reason": "lost my job"}),
        ("pause_replaced", {"reason": "still looking", "was": "lost my job"}),
    ]


@pytest.mark.parametrize("reason", ["", "   ", "\t\n"])
def test_a_blank_reason_is_refused_and_nothing_is_written(config, cli, reason: str) -> None:
    done = cli("--config", config, "pause", "--reason", reason)
    assert done.returncode == 2
    assert "give a reason" in done.stderr and "Traceback" not in done.stderr
    assert not state_of(Path(config)).exists()


@pytest.mark.parametrize("reason", ["a\nFAKE line", "red \x1b[31mtext"])
def test_a_reason_with_control_characters_is_refused(config, cli, reason: str) -> None:
    """It was echoed as given by pause, resume and status: a line break forged a line, an
    escape sequence ran in the reader's terminal."""
    done = cli("--config", config, "pause", "--reason", reason)
    assert done.returncode == 2
    assert "the reason holds a control character" in done.stderr
    assert "\x1b" not in done.stderr + done.stdout
    assert not state_of(Path(config)).exists()


def test_resume_when_not_paused_records_nothing_and_says_so(config, cli) -> None:
    never = cli("--config", config, "resume")
    assert never.returncode == 0, never.stderr
    assert never.stdout.startswith("not paused: nothing to resume, nothing recorded")
    assert not state_of(Path(config)).exists()  # no state file made to say so

    assert cli("--config", config, "pause", "--reason", "lost my job").returncode == 0
    resumed = cli("--config", config, "resume")
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.startswith("resumed: the pause since 20")
    assert "(lost my job) has ended" in resumed.stdout
    before = recorded(state_of(Path(config)))

    again = cli("--config", config, "resume")

    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("not paused: nothing to resume, nothing recorded")
    assert recorded(state_of(Path(config))) == before
    assert [kind for _, _, kind, _ in before[0]] == ["paused", "resumed"]
