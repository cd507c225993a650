"""The guide's figures no rule trades on are reported: `stage` prints and `--json` holds
them, the yearly re-assessment records the goal's progress, `simulate` sets its drawdown
and values against them, and the emergency rule accepts only what stagewise does."""

from __future__ import annotations

import json
import tomllib
from datetime import date

import tomli_w
from support import REPO

from stagewise.guidance import Goal, guidance_lines, simulation_notes
from stagewise.settings import load_config

YOUNG = {"investor": {"birth_date": "2001-05-10"}}  # 25 on 2026-06-01: Young Professionals


def test_stage_prints_every_figure_of_the_guide_for_the_stage(cli, write_config) -> None:
    config = write_config(YOUNG)
    done = cli("stage", "--at", "2026-06-01", "--config", str(config))
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert "the guide for Young Professionals (ages 22-30, 40+ years to retirement):" in text
    assert "emergency fund: 3 months of expenses in cash, outside crypto" in text
    assert "drawdowns: be ready to sit through falls of 70 % without selling" in text
    assert "portfolio goal: 50,000-100,000 USDT by age 30" in text
    assert (
        "expected returns (the guide's, not a forecast): Primary 150-400 % (bull markets); "
        "Secondary 200-500 % (strong sectors); Foundation 80-150 % (annually)"
    ) in text
    assert (
        "between stages: weights glide over 12-24 months (the guide's example: age 39 -> 41, "
        "5 % of the weights a year)"
    ) in text
    assert "`stagewise pause` stops contributions and sells nothing" in text


def test_stage_json_holds_the_same_figures(cli, write_config) -> None:
    config = write_config(YOUNG)
    done = cli("stage", "--json", "--at", "2026-06-01", "--config", str(config))
    assert done.returncode == 0, done.stderr
    guide = json.loads(done.stdout)["guide"]
    assert guide["emergency_fund_months"] == [3, 3]
    assert guide["max_drawdown_accepted_pct"] == 70
    assert guide["portfolio_goal"] == {"min": 50_000, "max": 100_000, "by_age": 30}
    assert guide["expected_return_pct"]["Primary"] == {
        "min": 150,
        "max": 400,
        "when": "bull markets",
    }
    assert guide["transition_months"] == [12, 24]
    assert guide["emergency_rule"] == {
        "stop_contributions": True,
        "sell": False,
        "use_emergency_fund_first": True,
        "resume": "on command",
    }


def test_a_stage_without_a_growth_goal_says_so(write_config) -> None:
    config = load_config(write_config({"investor": {"birth_date": "1955-01-01"}}))
    retiree = config.plan.stages[-1]
    lines = guidance_lines(retiree, config.plan, "USDT")
    assert "  portfolio goal: none to grow toward; preserve the portfolio" in lines
    assert not any(line.startswith("  drawdowns:") for line in lines)  # the guide gives none


def test_an_emergency_rule_stagewise_does_not_implement_is_refused_by_name(
    cli, write_config, tmp_path
) -> None:
    stages = tomllib.loads((REPO / "config" / "stages.toml").read_text())
    stages["emergency_rule"]["sell"] = True
    path = tmp_path / "stages.toml"
    path.write_text(tomli_w.dumps(stages))
    config = write_config({"plan": {"stages": str(path)}})
    done = cli("check-config", "--config", str(config))
    assert done.returncode == 78, done.stdout + done.stderr
    assert "emergency_rule.sell" in done.stderr
    assert "Traceback" not in done.stderr


def test_goal_progress_in_words() -> None:
    goal = Goal(50_000, 100_000, 30)
    assert goal.progress(12_500) == "25.0 % of the goal's lower end"
    assert goal.progress(50_000) == "inside the goal's range"
    assert goal.progress(100_000) == "at or above the top of the goal"
    assert Goal(0, 0, 65).progress(1.0).startswith("the guide sets no growth goal")


def test_simulation_notes_set_the_drawdown_and_the_goal_day_against_the_guide(
    write_config,
) -> None:
    config = load_config(write_config(YOUNG))
    young, builder = config.plan.stages[0], config.plan.stages[1]
    values = [(date(2031, 5, 1), 40_000.0), (date(2031, 5, 9), 61_000.0), (date(2031, 6, 1), 1.0)]
    notes = simulation_notes(
        [young, builder],
        values,
        {young.id: date(2031, 5, 10), builder.id: date(2041, 5, 10)},  # 2041: not reached
        0.712,
        "USDT",
    )
    assert notes == [
        "the value fell at most 71.2 %: beyond the 70 % the guide asks Young Professionals "
        "to sit through without selling",
        # The last value known on the goal day (9 May): 61,000.
        "at age 30 (2031-05-10) the account was worth 61,000.00 USDT against the guide's goal "
        "of 50,000-100,000 for Young Professionals: inside the goal's range",
    ]
    within = simulation_notes([young], values, {}, 0.4, "USDT")
    assert within == [
        "the value fell at most 40.0 %: within the 70 % the guide asks Young Professionals "
        "to sit through without selling"
    ]


def test_a_simulation_across_the_goal_age_reports_it_beside_the_drawdown(
    cli, write_config, tmp_path
) -> None:
    # 30 on 2024-06-01, inside the sample's 2023-2026: Young Professionals until then.
    config = write_config({"investor": {"birth_date": "1994-06-01"}})
    db = tmp_path / "sim.db"
    done = cli("simulate", "--config", str(config), "--db", str(db), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    [goal] = [n for n in report["notes"] if n.startswith("at age 30 (2024-06-01)")]
    assert "against the guide's goal of 50,000-100,000 for Young Professionals" in goal
    [fell] = [n for n in report["notes"] if n.startswith("the value fell at most")]
    assert f"{report['max_drawdown'] * 100:.1f} %" in fell  # a fraction in the JSON
    assert "the 70 % the guide asks Young Professionals" in fell


def test_stage_shows_the_guides_worked_example_of_the_stage(cli, write_config) -> None:
    config = write_config({"investor": {"birth_date": "1980-01-01"}})  # 46: Peak Earners
    done = cli("stage", "--at", "2026-06-01", "--config", str(config))
    assert done.returncode == 0, done.stderr
    assert (
        "the guide's example: Robert, age 46: income 250,000, monthly 5,000, share of gross "
        "income 24 %, portfolio value 1,800,000, retire at 55, retirement goal 4,000,000"
    ) in done.stdout


def test_indices_shows_each_index_focus_from_the_guide(cli) -> None:
    # No config: the read command uses the shipped example (said on stderr).
    done = cli("indices", "--json")
    assert done.returncode == 0, (done.returncode, done.stderr)
    shown = json.loads(done.stdout)
    assert shown["value_investor"]["focus"] == (
        "Quality and stability; Bitcoin/Ethereum heavy, large caps"
    )
    text = cli("indices").stdout
    assert (
        "  focus (the guide's): Quality and stability; Bitcoin/Ethereum heavy, large caps" in text
    )
