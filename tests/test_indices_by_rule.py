"""Rule indices through the jobs: a simulation reconstitutes weekly, records each
composition and event, sells what left with the rule's reason; the live daemon refuses."""

from __future__ import annotations

import json
import sqlite3
from datetime import date

import pytest
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


def test_the_shipped_demo_reconstitutes_its_rule_indices(cli, tmp_path):
    """The README's first command: the shipped example config holds the Balanced and AI
    Agents rule indices; the sample's warm-up lets them be composed from the first day."""
    result = cli("simulate", "--db", str(tmp_path / "demo.db"), "--proposals", "0", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["start"] == "2023-01-01"  # the first day every rule index can be composed
    assert report["runs_by_status"] == {"ok": report["runs_by_status"]["ok"]}  # none failed
    shown = report["rule_indices"]
    assert set(shown) == {"ai_agents", "balanced_investor"}
    assert shown["balanced_investor"]["reconstitutions"] == 17  # 16 quarters and the first
    assert shown["ai_agents"]["left"] > 0  # its top 4 changed
    conn = sqlite3.connect(tmp_path / "demo.db")
    sells = conn.execute(
        "SELECT reason FROM orders WHERE side = 'sell' AND reason LIKE '% left AI Agents: %'"
    ).fetchall()
    assert sells and all("by 90-day return, top 4 kept" in r for (r,) in sells)
    text = cli("simulate", "--db", str(tmp_path / "demo.db"), "--proposals", "0").stdout
    assert "rule index         reconstituted" in text


def test_simulate_reads_volumes_from_a_second_csv(write_plan, write_config, tmp_path, cli):
    path = rule_plan(
        write_plan,
        write_config,
        universe=["SOL", "AVAX", "SUI"],
        select={"top": 2, "by": "volume", "lookback_days": 3},
    )
    prices = tmp_path / "prices.csv"
    volumes = tmp_path / "volumes.csv"
    days = [f"2023-01-{d:02d}" for d in range(1, 11)]
    prices.write_text("date,SOL,AVAX,SUI\n" + "".join(f"{d},10,11,1\n" for d in days))
    # SUI trades the most, then SOL, then AVAX (a day without AVAX's volume is not known).
    volumes.write_text(
        "date,SOL,AVAX,SUI\n"
        + "".join(f"{d},500,{'' if i == 3 else 100},900\n" for i, d in enumerate(days))
    )
    db = tmp_path / "sim.db"
    args = ["--config", str(path), "simulate", "--prices", str(prices), "--db", str(db)]
    refused = cli(*args)
    assert refused.returncode == 65
    assert refused.stderr.strip() == (
        "stagewise: index Momentum Trader (momentum) reads traded volumes, but the price "
        "history has no volumes (simulate: --volumes FILE, or --from-exchange; live: the "
        "exchange's candles)"
    )
    done = cli(*args, "--volumes", str(volumes), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rule_indices"]["momentum"]["weights"] == {
        "SOL": 50.0,
        "SUI": 50.0,
    }
    bad = tmp_path / "bad.csv"
    bad.write_text("date,SOL,XRP\n2023-01-01,1,2\n")
    wrong = cli(*args, "--volumes", str(bad))
    assert wrong.returncode == 65
    assert f"{bad}: column XRP has no prices in {prices}" in wrong.stderr


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


def test_stage_and_status_show_each_index_constituents_and_when_chosen(
    write_plan, write_config, tmp_path
):
    from datetime import UTC, datetime

    from stagewise.composition import Composition
    from stagewise.store import Store

    path = rule_plan(write_plan, write_config)
    config = load_config(path)
    store = Store.open(config.settings.state.path)
    chosen = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    made = Composition(
        "momentum", chosen, date(2026, 11, 29), {"SOL": 50.0, "FET": 30.0, "SUI": 20.0}
    )
    store.add_composition("rebalance:momentum:2026-W49", made, {"index": "momentum"})
    store.close()

    shown = run_cli("--config", str(path), "stage", "--at", "2026-12-01", "--json")
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["indices"] == {
        "momentum": {
            "name": "Momentum Trader",
            "kind": "rule",
            "cadence": "weekly",
            "constituents": {"FET": 30.0, "SOL": 50.0, "SUI": 20.0},
            "chosen_at": "2026-11-30T10:00:00+01:00",  # the example investor's Berlin time
            "close_day": "2026-11-29",
        }
    }
    assert set(data["weights"]) == {"FET", "SOL", "SUI"}  # the targets hold them
    before = json.loads(
        run_cli("--config", str(path), "stage", "--at", "2026-11-29", "--json").stdout
    )
    assert before["indices"]["momentum"]["constituents"] is None  # not chosen by then
    assert before["weights"] == {}
    text = run_cli("--config", str(path), "stage", "--at", "2026-12-01").stdout
    assert (
        "  Momentum Trader (rule, weekly): chosen 2026-11-30 10:00 from the closes of 2026-11-29\n"
        "    SOL 50.00 %, FET 30.00 %, SUI 20.00 %"  # by weight: nothing ranked them
    ) in text
    status = run_cli("--config", str(path), "status", "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["indices"]["momentum"]["chosen_at"] == (
        "2026-11-30T10:00:00+01:00"
    )
    assert (
        "Momentum Trader (rule, weekly): chosen 2026-11-30 10:00"
        in run_cli("--config", str(path), "status").stdout
    )


@pytest.mark.parametrize(
    ("fields", "described"),
    [
        (
            {"universe": "exchange", "exclude": ["XYZ"], "weigh": "volume"},
            "the exchange's assets (less stablecoins, fiat, wrapped, leveraged and XYZ), "
            "volume weights",
        ),
        (
            {
                "universe": SAMPLE,
                "select": {"top": 5, "by": "volume", "lookback_days": 30},
                "liquidity": {"min_quote_volume": 5_000_000, "days": 30},
            },
            "top 5 of 8 by 30-day volume with a median daily quote volume over 30 days of "
            "at least 5,000,000, equal weights",
        ),
        (
            {"universe": None, "source": "/data/h.json"},
            "the holdings in /data/h.json (re-read at each reconstitution)",
        ),
    ],
)
def test_indices_describes_each_kind_of_rule(fields, described):
    from stagewise.cli.indices import describe
    from stagewise.stages import Index

    base = {"name": "X", "cadence": "weekly", "universe": SAMPLE}
    assert describe(Index.model_validate(base | fields)) == described
