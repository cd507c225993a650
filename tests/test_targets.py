"""Stages by age, the glide path of the transition protocol, and targets on a day."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from support import SHIPPED_COMPOSITIONS, plan_stage

from stagewise.money import WEIGHT_TOLERANCE
from stagewise.targets import (
    TargetsOn,
    add_months,
    age_on,
    glide_on,
    months_between,
    stage_on,
    targets_on,
)

BIRTH = date(1990, 3, 15)


@pytest.fixture
def config(make_config):
    return make_config({"investor": {"birth_date": BIRTH.isoformat()}})


@pytest.mark.parametrize(
    ("age", "stage"),
    [
        (18, "young_professional"),  # under 22: stage 1 (documented choice)
        (21, "young_professional"),
        (22, "young_professional"),
        (30, "young_professional"),
        (31, "career_builder"),
        (40, "career_builder"),
        (41, "peak_earner"),
        (50, "peak_earner"),
        (51, "pre_retiree"),
        (64, "pre_retiree"),
        (65, "retiree"),  # 65 is a retiree (documented choice)
        (66, "retiree"),
        (99, "retiree"),
    ],
)
def test_every_age_boundary_lands_in_its_documented_stage(config, age, stage):
    on_birthday = date(BIRTH.year + age, BIRTH.month, BIRTH.day)
    assert stage_on(config.profile, on_birthday).id == stage
    # The day before the birthday still belongs to the previous age.
    day_before = date(BIRTH.year + age, BIRTH.month, BIRTH.day - 1)
    assert age_on(BIRTH, day_before) == age - 1


def test_leap_day_birthday_ages_on_28_february():
    assert age_on(date(2000, 2, 29), date(2021, 2, 28)) == 20
    assert age_on(date(2000, 2, 29), date(2021, 2, 27)) == 20
    assert age_on(date(2000, 2, 29), date(2021, 3, 1)) == 21


def test_calendar_month_arithmetic_clamps_to_month_end():
    assert add_months(date(2027, 1, 31), 1) == date(2027, 2, 28)
    assert add_months(date(2028, 1, 31), 1) == date(2028, 2, 29)
    assert add_months(date(2027, 3, 15), -24) == date(2025, 3, 15)
    # Consistent with add_months: a month after 31 January is 28 February.
    assert months_between(date(2027, 1, 31), date(2027, 2, 28)) == 1
    assert months_between(date(2027, 1, 31), date(2027, 2, 27)) == 0
    assert months_between(date(2027, 1, 15), date(2027, 2, 15)) == 1
    assert months_between(date(2027, 1, 15), date(2027, 2, 14)) == 0


def test_glide_ends_on_the_birthday_that_enters_the_new_stage(config):
    # The guide: a transition from 39 to 41 over 24 months ends on the 41st birthday.
    turns_41 = date(BIRTH.year + 41, 3, 15)
    turns_39 = date(BIRTH.year + 39, 3, 15)
    assert glide_on(config.profile, turns_39 - (turns_39 - turns_39.replace(day=14))) is None
    start = glide_on(config.profile, turns_39)
    assert start is not None
    assert (start.from_stage, start.to_stage, start.step, start.steps) == (
        "career_builder",
        "peak_earner",
        0,
        24,
    )
    assert start.starts == turns_39 and start.ends == turns_41
    last = glide_on(config.profile, date(BIRTH.year + 41, 3, 14))
    assert last is not None and last.step == 23
    assert glide_on(config.profile, turns_41) is None
    assert targets_on(config.profile, turns_41).sleeves["value_investor"].weight == pytest.approx(
        0.60
    )


def test_glide_can_start_on_the_birthday_instead(make_config):
    config = make_config(
        {
            "investor": {"birth_date": BIRTH.isoformat()},
            "plan": {"transition_anchor": "start", "transition_months": 12},
        }
    )
    turns_41 = date(BIRTH.year + 41, 3, 15)
    g = glide_on(config.profile, turns_41)
    assert g is not None and g.step == 0 and g.ends == date(BIRTH.year + 42, 3, 15)
    assert glide_on(config.profile, date(BIRTH.year + 41, 3, 14)) is None
    # On the birthday the stage is already the new one, the targets still the old one's.
    assert stage_on(config.profile, turns_41).id == "peak_earner"
    assert targets_on(config.profile, turns_41).sleeves["value_investor"].weight == pytest.approx(
        0.40
    )


def month_starts(first: date, count: int) -> list[date]:
    return [add_months(first, i) for i in range(count)]


def test_glide_moves_monotonically_in_monthly_steps_summing_to_one(config):
    steps = 24
    days = month_starts(date(BIRTH.year + 39, 1, 15), 30)  # from before the start to after the end
    sleeve_value = [targets_on(config.profile, d).sleeves["value_investor"].weight for d in days]
    # Career builder holds 40 % Value, peak earner 60 %: +20 points over 24 steps.
    one_step = 0.20 / steps
    for before, after in zip(sleeve_value, sleeve_value[1:], strict=False):
        assert after >= before - WEIGHT_TOLERANCE
        assert after - before <= one_step + WEIGHT_TOLERANCE
    assert sleeve_value[0] == pytest.approx(0.40)
    assert sleeve_value[-1] == pytest.approx(0.60)
    for d in days:
        t = targets_on(config.profile, d, SHIPPED_COMPOSITIONS)  # every rule index holds something
        assert sum(t.weights.values()) + t.cash == pytest.approx(1, abs=WEIGHT_TOLERANCE)
        assert sum(s.weight for s in t.sleeves.values()) + t.cash == pytest.approx(1)
        assert all(w > 0 for w in t.weights.values())
        # Each index holds its weight, split over its assets; together they make `weights`.
        assert t.members.keys() == t.sleeves.keys()
        for index, held in t.members.items():
            assert sum(held.values()) == pytest.approx(t.sleeves[index].weight)
        for asset, weight in t.weights.items():
            assert sum(m.get(asset, 0.0) for m in t.members.values()) == pytest.approx(weight)


def test_glide_within_a_month_holds_its_step(config):
    a = targets_on(config.profile, date(BIRTH.year + 40, 1, 15))
    b = targets_on(config.profile, date(BIRTH.year + 40, 2, 14))
    assert a.glide and b.glide and a.glide.step == b.glide.step == 10
    assert a.weights == b.weights


def test_every_glide_between_all_five_stages_sums_to_one(config):
    for age in (29, 30, 39, 40, 49, 50, 63, 64):
        for month in range(1, 13):
            t = targets_on(config.profile, date(BIRTH.year + age, month, 20), SHIPPED_COMPOSITIONS)
            assert sum(t.weights.values()) == pytest.approx(1, abs=WEIGHT_TOLERANCE)


def test_a_rule_index_not_composed_yet_holds_nothing(config):
    """The shipped Momentum, AI Agents and Balanced indices are rules: until the jobs compose
    them (at their first run), their weight is in no asset's; the fixed Value basket's is."""
    day = date(BIRTH.year + 26, 6, 1)  # a young professional: momentum, AI, balanced
    t = targets_on(config.profile, day)
    assert set(t.sleeves) == {"momentum_trader", "ai_agents", "balanced_investor"}
    assert t.weights == {} and all(held == {} for held in t.members.values())
    composed = targets_on(config.profile, day, SHIPPED_COMPOSITIONS)
    assert composed.members["ai_agents"] == pytest.approx(
        {a: 0.3 * pct / 100 for a, pct in SHIPPED_COMPOSITIONS["ai_agents"].items()}
    )


def test_crypto_share_target_is_a_point_in_the_stage_band(make_config):
    config = make_config(
        {"investor": {"birth_date": BIRTH.isoformat(), "crypto_share_point": 0.25}}
    )
    t = targets_on(config.profile, date(BIRTH.year + 26, 6, 1))
    # Young professionals: 20-30 %; a quarter of the way up is 22.5 %.
    assert t.crypto_share == pytest.approx(0.225)
    assert t.crypto_band == pytest.approx((0.20, 0.30))


def test_pre_retirees_derisk_yearly_down_to_the_band_floor(make_config):
    config = make_config({"investor": {"birth_date": BIRTH.isoformat(), "derisk_pct_per_year": 2}})
    share = {
        age: targets_on(config.profile, date(BIRTH.year + age, 6, 1)).crypto_share
        for age in (53, 54, 60)
    }
    # Band 5-15 %, midpoint 10 %, minus 2 points a year since 51: 53 -> 6 %, 54 -> 5 % (floor).
    assert share[53] == pytest.approx(0.06)
    assert share[54] == pytest.approx(0.05)
    assert share[60] == pytest.approx(0.05)


def test_targets_are_a_pure_function_of_config_and_day(config):
    day = date(2030, 7, 4)
    assert targets_on(config.profile, day) == targets_on(config.profile, day)


def test_young_professional_sleeves_are_the_guides_50_30_20(config):
    t = targets_on(config.profile, date(BIRTH.year + 26, 6, 1))
    assert {k: round(s.weight, 6) for k, s in t.sleeves.items()} == {
        "momentum_trader": 0.5,
        "ai_agents": 0.3,
        "balanced_investor": 0.2,
    }
    assert t.sleeves["momentum_trader"].cadence == "weekly"
    assert t.sleeves["balanced_investor"].cadence == "quarterly"


def test_remembered_targets_are_targets_on_for_every_day(make_config):
    """TargetsOn shares one computation between days of the same age and glide step: day by
    day over the Career Builder -> Peak Earner glide, it must equal targets_on."""
    config = make_config({"investor": {"birth_date": BIRTH.isoformat()}})
    remembered = TargetsOn(config.profile)
    day, end = date(BIRTH.year + 37, 6, 1), date(BIRTH.year + 41, 3, 1)
    while day < end:
        assert remembered(day) == targets_on(config.profile, day), day
        day += timedelta(days=1)
    assert remembered._of.cache_info().misses <= 24 + 5  # steps and ages, not days


def test_an_index_of_cadence_never_holds_assets_only_bought(make_config, write_plan):
    plan = write_plan(
        {
            "dca": ("never", {"BTC": 50, "ETH": 50}),
            "core": ("quarterly", {"ETH": 50, "SOL": 50}),
        },
        [plan_stage("only", sleeves={"dca": 50, "core": 50})],
    )
    t = targets_on(make_config(plan).profile, date(2030, 1, 1))
    assert t.sleeves["dca"].cadence == "never"
    # ETH is also Core's, rebalanced with it; BTC only DCA buys.
    assert t.dca_only == frozenset({"BTC"})
