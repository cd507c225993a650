"""What goes in and out by stage: each stage's contribution, the guide's ranges as warnings,
and retirement (contributions stop, withdrawals start), pure and through the real CLI."""

from __future__ import annotations

import json
from datetime import date

import pytest
from support import plan_stage, run_cli

from stagewise.contributions import (
    bonus_share_pct,
    choice_warnings,
    contribution_on,
    contribution_warnings,
    monthly_contribution,
    retirement,
    withdrawal_rate,
)
from stagewise.targets import targets_on

# The guide's Linda: "planning to retire at 62"; a pre-retiree (51-64) until then.
LINDA = {
    "investor": {
        "birth_date": "1970-05-01",
        "retirement_age": 62,
        "contribution_start": None,
        "contributions": {"pre_retiree": 3_000},
    }
}
RETIRES = date(2032, 5, 1)


def with_investor(**investor: object) -> dict:
    return {"investor": {"contribution_start": None, **investor}}


# --- a stage's contribution --------------------------------------------------------------------


def test_contribution_rises_by_the_stage_increase_on_each_anniversary(make_config):
    config = make_config(
        {
            "investor": {
                "birth_date": "2000-01-01",
                "monthly_contribution": 400,
                "contribution_start": "2026-07-01",
            }
        }
    )
    assert monthly_contribution(config, date(2027, 6, 30)) == pytest.approx(400)
    assert monthly_contribution(config, date(2027, 7, 1)) == pytest.approx(460)  # +15 %
    # 2031-07-01: age 31, career builder: +10 % on top of four young-professional years.
    assert monthly_contribution(config, date(2031, 7, 1)) == pytest.approx(400 * 1.15**4 * 1.10)


def test_a_stage_named_in_contributions_has_its_own_amount_raised_only_in_that_stage(make_config):
    config = make_config(
        {
            "investor": {
                "birth_date": "2000-01-01",
                "monthly_contribution": 400,
                "contribution_start": "2026-07-01",
                "contributions": {"career_builder": 2_000},
            }
        }
    )
    young = contribution_on(config, date(2030, 12, 31))
    assert young.amount == pytest.approx(400 * 1.15**4)
    assert young.setting == "investor.monthly_contribution"
    career = contribution_on(config, date(2031, 1, 1))  # 31: Career Builders, its own amount
    assert (career.amount, career.setting) == (2_000, "investor.contributions.career_builder")
    assert monthly_contribution(config, date(2032, 7, 1)) == pytest.approx(2_000 * 1.10**2)
    # Peak Earners are not named: the single amount, raised on every anniversary.
    assert monthly_contribution(config, date(2041, 1, 1)) == pytest.approx(400 * 1.15**4 * 1.10**10)


def test_the_retiree_stage_contributes_nothing_unless_the_config_names_it(make_config):
    """The old rule put `monthly_contribution` in every stage: a 72-year-old kept investing
    2,000 a month. The guide's Retirees: "minimal or none (living on assets)"."""
    retiree = make_config(with_investor(birth_date="1955-01-01", monthly_contribution=2_000))
    month = contribution_on(retiree, date(2027, 2, 1))
    assert (month.amount, month.stage.id, month.setting) == (0.0, "retiree", None)
    named = make_config(with_investor(birth_date="1955-01-01", contributions={"retiree": 300}))
    assert contribution_on(named, date(2027, 2, 1)).amount == 300
    assert contribution_on(named, date(2027, 2, 1)).setting == "investor.contributions.retiree"


# --- retirement ----------------------------------------------------------------------------------


def test_contributions_stop_and_withdrawals_start_on_the_retirement_day(make_config):
    config = make_config(LINDA)
    assert retirement(config).on == RETIRES
    assert retirement(config).source == "investor.retirement_age 62"
    the_day_before = date(2032, 4, 30)
    assert monthly_contribution(config, the_day_before) == 3_000
    assert withdrawal_rate(config, the_day_before) is None
    assert monthly_contribution(config, RETIRES) == 0
    assert withdrawal_rate(config, RETIRES) == pytest.approx(0.03)  # the Retirees' 2-4 %
    # The age band still chooses the allocation: a Pre-Retiree's until 65.
    assert targets_on(config.profile, RETIRES).stage.id == "pre_retiree"
    by_age = make_config({**LINDA, "investor": {**LINDA["investor"], "retirement_age": None}})
    assert retirement(by_age).source == "the age band of stage 'retiree'"  # 65 then
    dated = make_config(
        {
            "investor": {
                **LINDA["investor"],
                "retirement_age": None,
                "retirement_date": "2032-05-01",
                "withdrawal_pct": 5,  # Linda's own: "5% withdrawal"
            }
        }
    )
    assert (retirement(dated).on, retirement(dated).source) == (
        RETIRES,
        "investor.retirement_date",
    )
    assert withdrawal_rate(dated, RETIRES) == pytest.approx(0.05)


def test_without_a_retirement_day_the_retirees_age_band_retires(make_config):
    config = make_config(with_investor(birth_date="1962-03-01", monthly_contribution=2_000))
    assert retirement(config).on == date(2027, 3, 1)  # 65
    assert withdrawal_rate(config, date(2027, 2, 28)) is None
    assert monthly_contribution(config, date(2027, 2, 28)) == 2_000
    assert withdrawal_rate(config, date(2027, 3, 1)) == pytest.approx(0.03)
    assert monthly_contribution(config, date(2027, 3, 1)) == 0


def test_a_retirement_after_65_postpones_the_withdrawals(make_config):
    config = make_config(with_investor(birth_date="1960-01-01", retirement_date="2030-01-01"))
    assert withdrawal_rate(config, date(2027, 6, 1)) is None  # 67, retiree by age, still working
    assert withdrawal_rate(config, date(2030, 1, 1)) == pytest.approx(0.03)


def test_a_contribution_named_for_the_retirement_stage_goes_on_after_retiring(make_config):
    config = make_config(
        {"investor": {**LINDA["investor"], "contributions": {"pre_retiree": 3_000, "retiree": 500}}}
    )
    month = contribution_on(config, RETIRES)
    assert (month.amount, month.stage.id, month.retired) == (500, "retiree", True)


# --- the guide's ranges: warnings ----------------------------------------------------------------


def test_the_investors_own_percentages_outside_the_guide_are_warned_of(make_config):
    """withdrawal_pct = 0.04 (meant as 4 %) withdrew 0.04 % a year without a word; 100 % a
    year passed check-config too. Each figure against the stages still to come that use it:
    withdrawals in retirement (2-4 %), the bonus share in the stages that invest one (young
    professional 50 %, career builder 30-40 %, peak earner 30 %); born 2000, a young
    professional in 2027."""
    config = make_config(
        with_investor(
            birth_date="2000-01-01",
            withdrawal_pct=0.04,
            bonus_share_pct=35,
        )
    )
    assert choice_warnings(config, date(2027, 3, 1)) == [
        "investor.withdrawal_pct: 0.04 % a year, below the guide's 2-4 % for stage 'retiree' "
        "(a percent: 4 is 4 %, 0.04 is 0.04 %)",
        "investor.bonus_share_pct: 35 % of a bonus, below the guide's 50 % for stage "
        "'young_professional'",
        "investor.bonus_share_pct: 35 % of a bonus, above the guide's 30 % for stage 'peak_earner'",
    ]
    # A peak earner (born 1980, 47) has no young professional's stage to come.
    later = make_config(with_investor(birth_date="1980-01-01", bonus_share_pct=35))
    assert choice_warnings(later, date(2027, 3, 1)) == [
        "investor.bonus_share_pct: 35 % of a bonus, above the guide's 30 % for stage 'peak_earner'"
    ]
    inside = make_config(
        with_investor(birth_date="2000-01-01", withdrawal_pct=3.3, derisk_pct_per_year=1.5)
    )
    assert choice_warnings(inside, date(2027, 3, 1)) == []  # unset: each stage's own figure


def test_warnings_name_the_stages_to_come_that_start_outside_the_guides_range(make_config):
    config = make_config(with_investor(birth_date="2000-01-01", monthly_contribution=400))
    assert contribution_warnings(config, date(2027, 3, 1)) == [
        f"investor.monthly_contribution: stage '{stage}' starts with 400.00 USDT a month, "
        f"below the guide's {low}"
        for stage, low in [
            ("career_builder", "1,500-3,000"),
            ("peak_earner", "3,000-6,000"),
            ("pre_retiree", "2,000-4,000"),
        ]
    ]
    named = make_config(
        with_investor(
            birth_date="2000-01-01",
            monthly_contribution=400,
            contributions={"career_builder": 2_000, "peak_earner": 4_000, "pre_retiree": 3_000},
        )
    )
    assert contribution_warnings(named, date(2027, 3, 1)) == []


def test_a_stage_is_judged_by_what_it_starts_with_and_past_stages_not_at_all(make_config):
    # 400 raised 15 % a year is 700 by 2030, above the Young Professionals' 200-500: the
    # guide's "start with 200-500, raise 15 % annually", not a warning.
    rising = make_config(
        {
            "investor": {
                "birth_date": "2000-01-01",
                "monthly_contribution": 400,
                "contribution_start": "2026-07-01",
                "contributions": {
                    "career_builder": 2_000,
                    "peak_earner": 4_000,
                    "pre_retiree": 3_000,
                },
            }
        }
    )
    assert monthly_contribution(rising, date(2030, 7, 1)) > 500
    assert contribution_warnings(rising, date(2030, 7, 1)) == []
    # At 36 the Young Professionals' 1,000 (above 200-500) is history.
    past = make_config(
        with_investor(
            birth_date="1990-01-01",
            contributions={
                "young_professional": 1_000,
                "career_builder": 2_000,
                "peak_earner": 4_000,
                "pre_retiree": 3_000,
            },
        )
    )
    assert contribution_warnings(past, date(2026, 6, 1)) == []


def test_a_retirement_stage_contribution_is_judged_from_the_retirement_day(make_config):
    config = make_config(
        {"investor": {**LINDA["investor"], "contributions": {"pre_retiree": 3_000, "retiree": 500}}}
    )
    assert contribution_warnings(config, date(2030, 1, 1)) == [
        "investor.contributions.retiree: stage 'retiree' starts with 500.00 USDT a month, "
        "above the guide's 0-0"
    ]


# --- the command line ----------------------------------------------------------------------------


def born_years_ago(years: int) -> str:
    today = date.today()
    return today.replace(year=today.year - years, day=min(today.day, 28)).isoformat()


def test_check_config_warns_on_stdout_of_a_stage_outside_the_guides_range(write_config):
    contributions = {
        "young_professional": 1_000,  # a past stage: no warning
        "career_builder": 5_000,
        "peak_earner": 4_000,
        "pre_retiree": 3_000,
    }
    path = write_config(with_investor(birth_date=born_years_ago(35), contributions=contributions))
    result = run_cli("--config", str(path), "check-config")
    assert result.returncode == 0, result.stderr
    warning = (
        "investor.contributions.career_builder: stage 'career_builder' starts with 5,000.00 "
        "USDT a month, above the guide's 1,500-3,000"
    )
    assert [line for line in result.stdout.splitlines() if "warning" in line] == [
        f"  warning: {warning}"
    ]
    assert result.stderr == ""
    as_json = run_cli("--config", str(path), "check-config", "--json")
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout)["warnings"] == [warning]
    inside = write_config(
        with_investor(
            birth_date=born_years_ago(35), contributions={**contributions, "career_builder": 2_500}
        ),
        name="inside.toml",
    )
    calm = run_cli("--config", str(inside), "check-config")
    assert calm.returncode == 0 and "warning" not in calm.stdout


def test_stage_shows_the_retirement_day_and_what_changes_on_it(write_config):
    path = str(write_config(LINDA))
    before = run_cli("--config", path, "stage", "--at", "2032-04-30")
    assert before.returncode == 0, before.stderr
    assert (
        "retirement on 2032-05-01 (investor.retirement_age 62): withdrawals start, "
        "contributions stop"
    ) in before.stdout
    assert "monthly contribution: 3,000.00 USDT (from investor.contributions.pre_retiree" in (
        before.stdout
    )
    after = run_cli("--config", path, "stage", "--at", "2032-05-01", "--json")
    assert after.returncode == 0, after.stderr
    shown = json.loads(after.stdout)
    assert shown["stage"]["id"] == "pre_retiree"  # the age band keeps the allocation
    assert shown["retirement"] == {
        "date": "2032-05-01",
        "source": "investor.retirement_age 62",
        "retired": True,
        "monthly_contribution": 0.0,
    }
    assert shown["contribution"]["monthly"] == 0.0 and shown["contribution"]["stage"] == "retiree"
    assert shown["withdrawal_pct"] == 3.0


def test_status_shows_the_retirement_day(write_config):
    path = str(write_config({"investor": {"retirement_age": 62}}))  # born 1987-06-15
    result = run_cli("--config", path, "status")
    assert result.returncode == 0, result.stderr
    assert "retirement on 2049-06-15 (investor.retirement_age 62)" in result.stdout
    shown = json.loads(run_cli("--config", path, "status", "--json").stdout)
    assert shown["retirement"]["date"] == "2049-06-15" and shown["retirement"]["retired"] is False


# --- refused on load ----------------------------------------------------------------------------


def test_a_retirement_needs_a_stage_with_withdrawals_to_retire_into(write_config, write_plan):
    plan = write_plan({"basket": ("quarterly", {"BTC": 100})}, [plan_stage("only")])
    path = write_config({**plan, "investor": {"retirement_age": 62}})
    result = run_cli("--config", str(path), "check-config")
    assert result.returncode == 78
    assert "investor.retirement_age: no stage of the plan has withdrawals" in result.stderr
    assert "Traceback" not in result.stderr


# --- windfalls -----------------------------------------------------------------------------------


def test_a_bonus_share_is_the_investors_choice_else_the_stages_low_end(make_config):
    config = make_config()
    stage = config.plan.stage_for_age(30)
    assert bonus_share_pct(config, stage) == stage.contribution.bonus_share_pct.min
    chosen = make_config({"investor": {"bonus_share_pct": 35}})
    assert bonus_share_pct(chosen, stage) == 35
