"""The guide's worked examples as configs (config/examples/, installed as
stagewise.data.examples): each holds the guide's figures, and the sweep its comment gives
runs from the installed file; `stagewise init --example NAME` hands one out."""

from __future__ import annotations

import json
import tomllib
from datetime import date

import pytest

from stagewise import shipped
from stagewise.contributions import monthly_contribution, retirement, withdrawal_rate
from stagewise.settings import load_config
from stagewise.targets import age_on, targets_on

# What the guide says of each (shared/seed/life-stage-guide.txt), as the config should hold
# it: the age on the day the shipped sample starts, the stage and sleeve mix at the age the
# guide gives, the monthly contribution, the starting balance, retirement and withdrawals.
GUIDE = {
    "jake": {
        "age": 26,
        "at_guide_age": (26, "young_professional", [50, 30, 20]),
        "monthly": 1_000,
        "seed": 0,
        "retires": 65,  # not in the guide: the Retirees' age band
    },
    "maria": {  # the claim's six years: from 29, six years before the guide's 35
        "age": 29,
        "at_guide_age": (35, "career_builder", [40, 35, 25]),
        "monthly": 2_500,
        "seed": 0,
        "retires": 50,
    },
    "robert": {
        "age": 46,
        "at_guide_age": (46, "peak_earner", [60, 25, 15]),
        "monthly": 5_000,
        "seed": 1_800_000,
        "retires": 55,
    },
    "linda": {
        "age": 58,
        "at_guide_age": (58, "pre_retiree", [70, 20, 10]),
        "monthly": 3_000,
        "seed": 2_400_000,
        "retires": 62,
        "withdrawal_pct": 5,
    },
    "george": {
        "age": 70,
        "at_guide_age": (70, "retiree", [80, 20]),
        "monthly": 0,
        "seed": 245_000,
        "retires": 65,  # the Retirees' age band
        "withdrawal_pct": 3.3,
    },
}
SAMPLE_STARTS = date(2023, 1, 1)


def test_every_worked_example_of_the_guide_is_shipped():
    assert shipped.examples() == sorted(GUIDE)


@pytest.mark.parametrize("name", sorted(GUIDE))
def test_an_example_holds_the_guides_figures(name):
    figures = GUIDE[name]
    path = shipped.path(shipped.example(name))
    assert path.parent.name == "examples" and path.parent.parent.name == "data"  # installed
    config = load_config(path)
    investor = config.settings.investor
    assert age_on(investor.birth_date, SAMPLE_STARTS) == figures["age"]
    age, stage, mix = figures["at_guide_age"]
    on = investor.birth_date.replace(year=investor.birth_date.year + age)
    targets = targets_on(config.profile, on)
    assert targets.glide is None and targets.stage.id == stage
    assert [s.weight_pct for s in targets.stage.sleeve] == mix
    assert monthly_contribution(config, SAMPLE_STARTS) == figures["monthly"]
    assert monthly_contribution(config, date(2026, 12, 1)) == figures["monthly"]  # no increase
    assert config.settings.paper.initial_balances.get("USDT", 0) == figures["seed"]
    retires = retirement(config).on
    assert retires == investor.birth_date.replace(
        year=investor.birth_date.year + figures["retires"]
    )
    if "withdrawal_pct" in figures:
        assert withdrawal_rate(config, date(2040, 1, 1)) == figures["withdrawal_pct"] / 100
    text = path.read_text()
    assert f"Real Example: {name.title()}," in text  # the guide's words, quoted
    assert f"stagewise simulate --config {name}.toml --windows" in text


def test_george_keeps_seven_percent_of_his_whole_portfolio_in_crypto():
    config = load_config(shipped.path(shipped.example("george")))
    investor = config.settings.investor
    whole = investor.outside_investments + config.settings.paper.initial_balances["USDT"]
    assert whole == 3_500_000
    target = targets_on(config.profile, SAMPLE_STARTS).crypto_share
    assert target == pytest.approx(0.07, abs=0.0001)
    assert pytest.approx(investor.withdrawal_pct / 100, abs=0.0005) == 8_000 / 245_000


def test_jakes_claim_is_answered_from_the_installed_example(cli):
    jake = str(shipped.path(shipped.example("jake")))
    result = cli("--config", jake, "simulate", "--windows", "48m", "--goal", "210000", "--json")
    assert result.returncode == 0, result.stderr
    swept = json.loads(result.stdout)
    (window,) = swept["windows"]  # the 4-year sample holds one 48-month window
    assert (window["start"], window["end"]) == ("2023-01-01", "2027-01-01")
    assert window["contributions"] == 48_000.0 and window["seed_value"] == 0  # "$48,000 invested"
    assert window["reached_goal"] == (window["final_value"] >= 210_000)
    assert swept["variants"][0]["reaching_goal"] == float(window["reached_goal"])
    text = cli("--config", jake, "simulate", "--windows", "48m", "--goal", "210000")
    assert text.returncode == 0, text.stderr
    assert "sweep: 1 window of 48m, 2023-01-01 .. 2026-12-31" in text.stdout
    assert "end at or above 210,000.00 USDT" in text.stdout
    assert "contributions  48,000.00 USDT in every window" in text.stdout


def test_init_hands_out_an_example_and_the_sweep_that_tests_it(cli, tmp_path):
    result = cli("init", "--example", "linda")
    assert result.returncode == 0, result.stderr
    written = tmp_path / "xdg-config" / "stagewise" / "linda.toml"
    assert written.read_text() == shipped.text(shipped.example("linda"))
    assert f"wrote  {written}" in result.stdout
    assert (
        f"stagewise --config {written} simulate --windows 96m --goal 2400000 "
        "--prices YOUR-HISTORY.csv" in result.stdout
    )
    checked = cli("--config", str(written), "check-config")
    assert checked.returncode == 0, checked.stderr
    again = cli("init", "--example", "linda")
    assert f"kept (exists)  {written}" in again.stdout
    # With --plan, the copy names the plan files beside it.
    folder = tmp_path / "mine"
    assert cli("init", str(folder), "--example", "jake", "--plan").returncode == 0
    plan = tomllib.loads((folder / "jake.toml").read_text())["plan"]
    assert (plan["stages"], plan["indices"]) == ("stages.toml", "indices.toml")
    assert plan["transition_months"] == 12


def test_init_refuses_an_example_it_does_not_ship_and_one_with_system(cli):
    unknown = cli("init", "--example", "zoe")
    assert unknown.returncode == 2 and "invalid choice: 'zoe'" in unknown.stderr
    both = cli("init", "--example", "jake", "--system")
    assert both.returncode == 2 and "give --example or --system, not both" in both.stderr
