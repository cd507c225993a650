"""End to end: the real daemon and the real `stagewise` command as subprocesses, real ccxt
against the local Binance stand-in, a real SQLite file. Paper mode under `run` (every schedule
firing each second: tests/every_second.py), read-only mode under `once`."""

from __future__ import annotations

import json
import secrets
import signal
import sqlite3
import time
import tomllib
from pathlib import Path

import pytest
from support import EVERY_SECOND

from stagewise.settings import load_config

WRITE_METHODS = ("POST", "PUT", "DELETE", "PATCH")


def never_traded(standin) -> None:
    """The stand-in saw only GETs, and nothing near an order endpoint."""
    assert {r.method for r in standin.requests} == {"GET"}
    assert sum(standin.count(method=m) for m in WRITE_METHODS) == 0
    assert not [r.path for r in standin.requests if "order" in r.path.lower()]


def db_rows(db_path: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_run_in_paper_mode_records_runs_and_proposals_and_logs_json(
    standin_config, plan_standin, spawn, cli
) -> None:
    config = standin_config()
    db_path = load_config(config).settings.state.path
    daemon = spawn("run", "--config", str(config), command=EVERY_SECOND)
    daemon.wait_for_event("daemon_started", timeout=30)
    daemon.wait_for_event("run_finished")
    # Read while the daemon goes on firing every job each second (WAL): the command parses.
    live = cli("proposals", "--json", "--limit", "100000", "--config", str(config))
    assert live.returncode == 0, live.stderr
    assert json.loads(live.stdout)

    daemon.proc.send_signal(signal.SIGTERM)
    began = time.monotonic()
    assert daemon.finish(timeout=10) == 0
    assert time.monotonic() - began < 5

    runs = db_rows(db_path, "SELECT job, period, status FROM runs")
    orders = db_rows(db_path, "SELECT run_id, seq, symbol, side FROM orders")
    assert {job for job, _, _ in runs} >= {"dca", "rebalance"}
    assert all(status in ("ok", "skipped") for _, _, status in runs)
    assert orders

    after = cli("proposals", "--json", "--limit", "100000", "--config", str(config))
    assert after.returncode == 0, after.stderr
    proposals = json.loads(after.stdout)
    assert len(proposals) == len(orders)
    assert {p["period"] for p in proposals} <= {period for _, period, _ in runs}

    # Not a terminal: every line of both streams is a JSON event.
    assert daemon.stdout == []
    events = [json.loads(line) for line in daemon.stderr]
    assert all(isinstance(e, dict) and e.get("event") for e in events)
    proposed = [e for e in events if e["event"] == "proposal"]
    assert len(proposed) == len(orders)  # one event per recorded order
    assert sorted((e["period"], e["symbol"], e["side"]) for e in proposed) == sorted(
        (p["period"], p["symbol"], p["side"]) for p in proposals
    )
    never_traded(plan_standin)


def test_once_in_read_only_mode_proposes_with_deposit_needed_and_never_leaks_the_key(
    standin_config, plan_standin, cli
) -> None:
    plan_standin.set_balance("USDT", 250)
    plan_standin.set_balance("BTC", "0.01")
    api_key = "rk-live-" + secrets.token_hex(24)
    api_secret = "sk-live-" + secrets.token_hex(32)
    config = standin_config({"exchange": {"mode": "read-only"}})
    db_path = Path(tomllib.loads(config.read_text())["state"]["path"])  # (keys: env only)

    done = cli(
        "once",
        "dca",
        "--json",
        "--config",
        str(config),
        env={"STAGEWISE_EXCHANGE__API_KEY": api_key, "STAGEWISE_EXCHANGE__SECRET": api_secret},
    )
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout)
    assert [(o["status"], o["period"].split(":")[0]) for o in outcome] == [("ok", "dca")]
    assert outcome[0]["orders"] > 0

    (mode, deposit_needed), *_ = db_rows(db_path, "SELECT mode, deposit_needed FROM runs")
    assert mode == "read-only"
    assert deposit_needed > 0  # nothing is deposited for real: the run says how much to
    assert db_rows(db_path, "SELECT COUNT(*) FROM ledger") == [(0,)]  # no paper ledger

    never_traded(plan_standin)
    # The key was used (signed balance read), so its absence below means something.
    assert any(r.headers.get("x-mbx-apikey") == api_key for r in plan_standin.requests)
    files = [p for p in db_path.parent.iterdir() if p.name.startswith(db_path.name)]
    assert db_path in files
    for secret in (api_key, api_secret):
        assert secret not in done.stdout and secret not in done.stderr
        for path in files:
            assert secret.encode() not in path.read_bytes(), path.name


def test_once_a_switched_off_job_says_so_without_a_traceback(write_config, cli):
    path = write_config({"schedule": {"drift_enabled": False}})
    result = cli("--config", str(path), "once", "drift", timeout=60)
    assert result.returncode == 1
    assert "drift job is switched off" in result.stderr and "drift_enabled" in result.stderr
    assert "Traceback" not in result.stderr


def period_rows(db_path: Path) -> list[tuple]:
    return db_rows(db_path, "SELECT period, status, scheduled_at, started_at FROM runs ORDER BY id")


def test_once_at_another_time_is_a_dry_run_that_records_nothing(standin_config, cli) -> None:
    config = standin_config()
    db_path = load_config(config).settings.state.path
    dry = cli("once", "dca", "--at", "2031-01-05", "--config", str(config))
    assert dry.returncode == 0, dry.stderr
    assert "dry run as at 2031-01-05" in dry.stderr and "nothing is recorded" in dry.stderr
    assert "dca:2031-01" in dry.stdout and "ok" in dry.stdout  # what that DCA would do
    assert not db_path.exists()  # not even a file

    future = cli("once", "dca", "--at", "2031-01-05", "--record", "--config", str(config))
    assert future.returncode == 2 and "future period cannot be recorded" in future.stderr
    assert not db_path.exists()

    done = cli("once", "dca", "--config", str(config))
    assert done.returncode == 0, done.stderr
    before = db_path.read_bytes()
    again = cli("once", "dca", "--at", "2031-01-05", "--config", str(config))
    assert again.returncode == 0, again.stderr
    assert db_path.read_bytes() == before  # the state file is read, never written
    assert [r[0].split(":")[0] for r in period_rows(db_path)] == ["dca"]


def test_once_record_runs_a_missed_past_period_now(standin_config, cli) -> None:
    config = standin_config()
    db_path = load_config(config).settings.state.path
    done = cli("once", "dca", "--at", "2026-11-05T09:00", "--record", "--config", str(config))
    assert done.returncode == 0, done.stderr
    ((period, status, scheduled_at, started_at),) = period_rows(db_path)
    assert (period, status) == ("dca:2026-11", "ok")
    assert scheduled_at.startswith("2026-11-05T08:00")  # 09:00 in Berlin
    assert started_at > "2026-12"  # it ran now, with today's prices


def test_a_once_whose_exchange_check_fails_records_a_failed_attempt_and_the_period_stays_open(
    standin_config, plan_standin, cli
) -> None:
    config = standin_config()
    db_path = load_config(config).settings.state.path
    plan_standin.inject("/api/v3/exchangeInfo", "auth", times=10)
    failed = cli("once", "dca", "--config", str(config))
    assert failed.returncode == 69, failed.stderr
    ((period, status, *_),) = period_rows(db_path)
    assert period.startswith("dca:") and status == "failed"

    plan_standin.clear_faults()
    retried = cli("once", "dca", "--config", str(config))
    assert retried.returncode == 0, retried.stderr
    assert [r[:2] for r in period_rows(db_path)] == [(period, "failed"), (period, "ok")]


def test_once_read_only_tells_the_deposit_and_the_notes_and_the_table_has_dates(
    standin_config, plan_standin, cli
) -> None:
    config = standin_config({"exchange": {"mode": "read-only"}})
    env = {"STAGEWISE_EXCHANGE__API_KEY": "k" * 16, "STAGEWISE_EXCHANGE__SECRET": "s" * 16}
    done = cli("once", "dca", "--config", str(config), env=env)
    assert done.returncode == 0, done.stderr
    db_path = load_config(config).settings.state.path
    ((deposit, notes),) = db_rows(db_path, "SELECT deposit_needed, notes FROM runs")
    assert deposit > 0
    assert f"deposit {deposit:,.2f} USDT on the account" in done.stdout
    for note in json.loads(notes):
        assert note in done.stdout
    header = next(line for line in done.stdout.splitlines() if "est. price" in line)
    assert header.split()[:2] == ["date", "period"]
    amounts = db_rows(db_path, "SELECT amount FROM orders")
    for (amount,) in amounts:  # exactly as proposed, never in scientific notation
        assert repr(amount) in done.stdout or f"{amount:f}".rstrip("0") in done.stdout
    assert "e-0" not in done.stdout

    shown = cli("proposals", "--config", str(config), env=env)
    assert f"deposit {deposit:,.2f} USDT" in shown.stdout
    status = cli("status", "--config", str(config), env=env)
    assert f"deposit {deposit:,.2f} USDT" in status.stdout


def test_status_in_paper_mode_shows_the_holdings_after_the_last_fills(standin_config, cli) -> None:
    config = standin_config()
    done = cli("once", "dca", "--json", "--config", str(config))
    assert done.returncode == 0, done.stderr
    status = json.loads(cli("status", "--json", "--config", str(config)).stdout)
    db_path = load_config(config).settings.state.path
    bought = db_rows(db_path, "SELECT base, SUM(amount) FROM orders GROUP BY base")
    assert bought
    held = {h["asset"]: h["amount"] for h in status["holdings"]}
    for base, amount in bought:
        assert held[base] == amount  # the paper ledger's balance, not the snapshot's 0


def test_status_shows_the_targets_the_planner_pursues(standin_config, cli) -> None:
    # Outside investments as large as the account: the crypto share's target (the point)
    # scales every asset's target down; status shows the scaled ones, not the plan's weights.
    config = standin_config({"investor": {"outside_investments": 2_000}})
    assert cli("once", "dca", "--config", str(config)).returncode == 0
    status = json.loads(cli("status", "--json", "--config", str(config)).stdout)
    total = sum(h["value"] or 0 for h in status["holdings"])
    point = status["targets"]["crypto_share"]
    crypto_aim = sum(h["target"] for h in status["holdings"] if h["asset"] != "USDT")
    # (the JSON rounds the share to 6 places)
    assert crypto_aim == pytest.approx(min(1.0, point * (total + 2_000) / total), rel=1e-3)
    assert crypto_aim < 0.99  # scaled: the plan's own weights sum to 1
    (cash,) = [h["target"] for h in status["holdings"] if h["asset"] == "USDT"]
    assert cash == pytest.approx(1 - crypto_aim)
