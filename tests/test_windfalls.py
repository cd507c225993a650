"""Windfalls from the command line: an amount is finite and plausible (the bound named when
refused, nothing written), `windfall list` and `windfall cancel ID`, the pending ones in
`status`, and a job that meets an unusable amount an older version stored refuses it by name
while the other periods run. The real CLI as a subprocess on real state files; jobs against
the local exchange stand-in."""

from __future__ import annotations

import json
import sqlite3
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from stagewise.planner.model import PlanState
from stagewise.planner.windfall import BONUS_CEILING, bonus_ceiling
from stagewise.snapshot import Snapshot
from stagewise.store import RunRecord, Store

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def state_of(config: Path) -> Path:
    return Path(tomllib.loads(config.read_text())["state"]["path"])


def with_portfolio(state: Path, value: float) -> None:
    """A state file whose last recorded snapshot values the portfolio at `value` USDT."""
    store = Store.open(state)
    try:
        snapshot = Snapshot(
            taken_at=T0,
            quote="USDT",
            balances={"USDT": value / 2, "BTC": 1.0},
            prices={"BTC": value / 2},
            markets={},
        )
        store.record_run(
            RunRecord(
                job="reassess",
                period="reassess:2026",
                scheduled_at=T0,
                started_at=T0,
                finished_at=T0,
                status="ok",
                mode="paper",
                snapshot=snapshot,
                state=PlanState(),
            )
        )
    finally:
        store.close()


def windfall_rows(state: Path) -> list[tuple]:
    conn = sqlite3.connect(f"file:{state}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT id, amount, consumed_run FROM pending_windfalls").fetchall()
    finally:
        conn.close()


# --- the bound -----------------------------------------------------------------------------


def test_the_bound_is_ten_times_the_portfolio_and_never_under_the_ceiling() -> None:
    assert bonus_ceiling(None) == BONUS_CEILING == 1_000_000
    assert bonus_ceiling(20_000) == BONUS_CEILING  # a first bonus may dwarf a new portfolio
    assert bonus_ceiling(350_000) == 3_500_000
    assert bonus_ceiling(float("nan")) == BONUS_CEILING


def test_an_overflowing_windfall_is_refused_naming_the_bound_and_no_file_is_made(
    write_config, cli
) -> None:
    config = write_config()
    done = cli("--config", str(config), "windfall", "1e308")
    assert done.returncode == 2
    assert "a windfall of 1e+308 USDT is not plausible: at most 1,000,000.00 USDT" in done.stderr
    assert "while no portfolio value is recorded" in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert not state_of(config).exists()  # nothing recorded, not even an empty state file


def test_the_bound_follows_the_portfolios_last_recorded_value(write_config, cli) -> None:
    config = write_config()
    with_portfolio(state_of(config), 400_000)
    refused = cli("--config", str(config), "windfall", "4000001")
    assert refused.returncode == 2
    assert "at most 4,000,000.00 USDT" in refused.stderr
    assert "last recorded value (400,000.00 USDT)" in refused.stderr
    assert windfall_rows(state_of(config)) == []

    accepted = cli("--config", str(config), "windfall", "4000000")
    assert accepted.returncode == 0, accepted.stderr
    assert windfall_rows(state_of(config)) == [(1, 4_000_000.0, None)]


@pytest.mark.parametrize(
    ("amount", "says"),
    [
        ("nan", "'nan' is neither an amount"),
        ("inf", "'inf' is neither an amount"),
        ("-5", "'-5' is neither an amount"),
        ("0", "'0' is neither an amount"),
        ("5OOO", "'5OOO' is neither an amount"),
        ("0.00001", "too small to invest: at least 0.0001 USDT"),
    ],
)
def test_an_amount_that_is_not_money_is_refused_and_nothing_is_written(
    write_config, cli, amount: str, says: str
) -> None:
    config = write_config()
    done = cli("--config", str(config), "windfall", amount)
    assert done.returncode == 2
    assert says in done.stderr and "Traceback" not in done.stderr
    assert not state_of(config).exists()


def test_a_plain_amount_is_still_announced_as_before(write_config, cli) -> None:
    config = write_config()
    done = cli("--config", str(config), "windfall", "5000")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("windfall #1 of 5,000.00 USDT recorded")
    assert windfall_rows(state_of(config)) == [(1, 5000.0, None)]


# --- list, cancel, status ------------------------------------------------------------------


def test_list_and_cancel_and_status_over_a_real_job(standin_config, cli) -> None:
    config = str(standin_config())
    state = state_of(Path(config))
    assert cli("--config", config, "windfall", "1000").returncode == 0
    invested = cli("--config", config, "once", "dca", "--json")  # invests windfall #1 first
    assert invested.returncode == 0, invested.stderr
    assert [o["period"] for o in json.loads(invested.stdout)][0] == "windfall:1"
    for amount in ("2000", "3000"):
        assert cli("--config", config, "windfall", amount).returncode == 0

    cancelled = cli("--config", config, "windfall", "cancel", "2")
    assert cancelled.returncode == 0, cancelled.stderr
    assert "windfall #2 of 2,000.00 USDT" in cancelled.stdout and "cancelled" in cancelled.stdout

    listed = cli("--config", config, "windfall", "list")
    assert listed.returncode == 0, listed.stderr
    header, rule, *rows = listed.stdout.splitlines()
    assert header.split() == ["id", "announced", "amount", "(USDT)", "status", "settled", "run"]
    cells = [row.split() for row in rows]
    assert [(c[0], c[4], c[5]) for c in cells] == [
        ("1", "1,000.00", "done"),
        ("2", "2,000.00", "cancelled"),
        ("3", "3,000.00", "pending"),
    ]
    assert cells[0][-1] == "windfall:1" and cells[1][-1] == "windfall:2:cancelled"

    status = cli("--config", config, "status")
    assert status.returncode == 0, status.stderr
    lines = status.stdout.splitlines()
    at = lines.index("windfalls waiting for the next job (`stagewise windfall cancel ID`):")
    assert lines[at + 1].split() == ["id", "announced", "amount"]
    assert lines[at + 3].split()[0::3] == ["3", "3,000.00"]  # id, (date, time), amount
    assert lines[at + 4] == ""  # only the pending one
    pending = json.loads(cli("--config", config, "status", "--json").stdout)["pending_windfalls"]
    assert [(w["id"], w["amount"]) for w in pending] == [(3, 3000.0)]

    again = cli("--config", config, "once", "rebalance", "--json")  # a job after the cancel
    periods = [o["period"] for o in json.loads(again.stdout)]
    assert "windfall:3" in periods and "windfall:2" not in periods
    assert windfall_rows(state)[1][2] is not None  # #2 stays consumed by its cancellation


def test_cancel_refuses_an_unknown_or_settled_id_and_changes_nothing(write_config, cli) -> None:
    config = str(write_config())
    assert cli("--config", config, "windfall", "cancel", "1").returncode == 2  # no state file
    assert not state_of(Path(config)).exists()
    assert cli("--config", config, "windfall", "700").returncode == 0
    assert cli("--config", config, "windfall", "cancel", "1").returncode == 0
    before = windfall_rows(state_of(Path(config)))

    unknown = cli("--config", config, "windfall", "cancel", "9")
    assert unknown.returncode == 2
    assert "there is no windfall #9" in unknown.stderr
    settled = cli("--config", config, "windfall", "cancel", "1")
    assert settled.returncode == 2
    assert "windfall #1 is not pending: cancelled by the run windfall:1:cancelled" in (
        settled.stderr
    )
    assert windfall_rows(state_of(Path(config))) == before
    for args in (["cancel"], ["list", "1"], ["700", "1"], ["cancel", "x"]):
        wrong = cli("--config", config, "windfall", *args)
        assert wrong.returncode == 2 and "Traceback" not in wrong.stderr, args


def test_list_without_a_state_file_says_so_and_creates_none(write_config, cli) -> None:
    config = write_config()
    done = cli("--config", str(config), "windfall", "list")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("no windfalls announced: no state file at")
    assert not state_of(config).exists()


# --- the job side --------------------------------------------------------------------------


def test_a_windfall_an_older_version_stored_is_refused_by_name_and_the_jobs_go_on(
    standin_config, cli
) -> None:
    config = str(standin_config())
    state = state_of(Path(config))
    Store.open(state).close()
    conn = sqlite3.connect(state)  # as an older stagewise stored `windfall 1e308`
    conn.execute("INSERT INTO pending_windfalls (at, amount) VALUES (?, 1e308)", [T0.isoformat()])
    conn.commit()
    conn.close()

    done = cli("--config", config, "once", "dca", "--json")

    assert done.returncode == 1  # a run failed (the windfall's attempt)
    assert "Traceback" not in done.stderr and "OverflowError" not in done.stderr
    windfall, dca = json.loads(done.stdout)
    assert windfall["period"] == "windfall:1"  # a failed attempt: the period stays open
    assert windfall["status"] == "failed"
    error = windfall["error"]
    assert "windfall #1 in the state file is 1e+308 USDT: not a usable amount" in error
    assert "`stagewise windfall cancel 1` removes it" in error
    assert (dca["period"].split(":")[0], dca["status"]) == ("dca", "ok") and dca["orders"] > 0

    assert cli("--config", config, "windfall", "cancel", "1").returncode == 0
    assert "1e+308" in cli("--config", config, "windfall", "list").stdout
    assert windfall_rows(state)[0][2] is not None


def test_the_store_refuses_a_windfall_that_is_not_money(store: Store) -> None:
    for amount in (float("inf"), float("nan"), 1e308, 0.0, -1.0):
        with pytest.raises(ValueError, match="not a usable amount of money"):
            store.add_pending_windfall(amount, T0)
    assert store.windfalls() == []
