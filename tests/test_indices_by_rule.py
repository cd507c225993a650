"""Rule indices through the jobs: a simulation reconstitutes weekly, records each
composition and event, sells what left with the rule's reason; the live daemon refuses."""

from __future__ import annotations

import json
import sqlite3
from datetime import date

import tomli_w
from support import SAMPLE_PRICES, plan_stage, run_cli

from stagewise.history import load_csv
from stagewise.settings import load_config
from stagewise.simulate import simulate

EX_CONFIG = 78
SAMPLE = ["SOL", "AVAX", "SUI", "INJ", "NEAR", "LINK", "FET", "RENDER"]


def rule_plan(write_plan, write_config, **rule) -> object:
    overrides = write_plan(
        {"momentum": ("weekly", {"BTC": 100})},
        stages=[plan_stage("only", sleeves={"momentum": 100})],
    )
    path = overrides["plan"]["indices"]
    index = {
        "name": "Momentum Trader",
        "cadence": "weekly",
        "universe": SAMPLE,
        "select": {"top": 3, "by": "momentum", "lookback_days": 30},
    } | rule
    with open(path, "w") as f:
        f.write(tomli_w.dumps({"index": {"momentum": index}}))
    return write_config(overrides | {"paper": {"initial_balances": {"USDT": 10_000}}})


def test_simulation_reconstitutes_weekly_and_sells_leavers_with_the_rule(
    write_plan, write_config, tmp_path
):
    config = load_config(rule_plan(write_plan, write_config, weigh="equal"))
    db = tmp_path / "sim.db"
    simulate(config, load_csv(SAMPLE_PRICES), date(2023, 3, 1), date(2023, 7, 1), db)
    conn = sqlite3.connect(db)
    rows = conn.execute(
        "SELECT period, close_day, moment FROM compositions ORDER BY moment, id"
    ).fetchall()
    weekly = [r for r in rows if r[0].startswith("rebalance:momentum:")]
    assert len(weekly) >= 16  # one per week of four months
    # Between reconstitutions nothing is chosen: besides the weekly ones, only the first need.
    assert len(rows) - len(weekly) <= 1
    for period, close_day, moment in weekly:
        assert len(period.split(":")[-1]) == 8  # a week key like 2023-W10
        assert close_day < moment[:10]  # the previous day's close at the latest (UTC)
    events = conn.execute("SELECT data FROM events WHERE kind = 'reconstituted'").fetchall()
    assert len(events) == len(rows)
    sells = conn.execute(
        "SELECT base, reason FROM orders WHERE side = 'sell' AND reason LIKE '% left %'"
    ).fetchall()
    assert sells, "some asset left the top 3 in four months and was sold"
    for base, reason in sells:
        assert reason.startswith(f"{base} left Momentum Trader: rank ")
        assert reason.endswith("by 30-day return, top 3 kept")
    held = conn.execute("SELECT DISTINCT base FROM orders WHERE side = 'buy'").fetchall()
    assert {b for (b,) in held} <= set(SAMPLE)


def test_the_live_daemon_refuses_a_rule_index_at_check_config(write_plan, write_config):
    result = run_cli("--config", str(rule_plan(write_plan, write_config)), "check-config")
    assert result.returncode == EX_CONFIG
    assert "indices momentum: rule indices need price history: live support comes later" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr


def test_indices_command_shows_the_rule_and_the_latest_composition(
    write_plan, write_config, tmp_path
):
    path = rule_plan(write_plan, write_config, max_weight_pct=50)
    db = tmp_path / "sim.db"
    simulate(load_config(path), load_csv(SAMPLE_PRICES), date(2023, 3, 1), date(2023, 4, 1), db)
    shown = run_cli("--config", str(path), "indices", "--db", str(db), "--json")
    assert shown.returncode == 0, shown.stderr
    momentum = json.loads(shown.stdout)["momentum"]
    assert momentum["rule"] == "top 3 of 8 by 30-day momentum, equal weights (at most 50 % each)"
    assert len(momentum["constituents"]) == 3
    assert momentum["chosen_at"] >= "2023-03-27"  # the last week's reconstitution
    early = run_cli(
        "--config", str(path), "indices", "--db", str(db), "--at", "2023-03-02", "--json"
    )
    assert early.returncode == 0, early.stderr
    first = json.loads(early.stdout)["momentum"]
    assert first["chosen_at"] < "2023-03-02" < momentum["chosen_at"]
    text = run_cli("--config", str(path), "indices", "--db", str(db)).stdout
    assert text.startswith("Momentum Trader (momentum), weekly: top 3 of 8")
