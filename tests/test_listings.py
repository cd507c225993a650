"""Assets that list later: left out of the targets until their first close is known, their
weight spread over the listed assets of their index, or held as cash when none is."""

from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest
from support import plan_stage

from stagewise.history import PriceHistory
from stagewise.listings import ListedTargets, listed_only
from stagewise.settings import load_config
from stagewise.targets import TargetsOn, targets_on


@pytest.fixture
def config(write_plan, write_config):
    """Index 'large' {A 60, B 40} and 'small' {C 100}, half each; 10 % of the account cash."""
    plan = write_plan(
        {"large": ("quarterly", {"A": 60, "B": 40}), "small": ("quarterly", {"C": 100})},
        [plan_stage("only", sleeves={"large": 50, "small": 50})],
    )
    return load_config(write_config({**plan, "policy": {"cash_pct": 10}}))


def test_an_unlisted_asset_gives_its_weight_to_the_listed_assets_of_its_index(config):
    t = targets_on(config.profile, date(2030, 1, 1))
    assert t.weights == pytest.approx({"A": 0.27, "B": 0.18, "C": 0.45})  # 90 % invested
    without_b = listed_only(t, {"A", "C"})
    # B's 0.18 goes to A, the one listed asset of 'large': A 0.27 + 0.18 = 0.45.
    assert without_b.weights == pytest.approx({"A": 0.45, "C": 0.45})
    assert without_b.members == {"large": pytest.approx({"A": 0.45}), "small": {"C": 0.45}}
    assert without_b.cash == t.cash == pytest.approx(0.10)
    assert set(without_b.sleeves) == {"large", "small"}


def test_an_index_with_no_listed_asset_is_held_as_cash(config):
    t = targets_on(config.profile, date(2030, 1, 1))
    without_c = listed_only(t, {"A", "B"})
    assert without_c.weights == pytest.approx({"A": 0.27, "B": 0.18})
    assert without_c.cash == pytest.approx(0.10 + 0.45)
    assert set(without_c.sleeves) == set(without_c.members) == {"large"}
    assert sum(without_c.weights.values()) + without_c.cash == pytest.approx(1.0)


def test_the_targets_of_a_day_hold_the_assets_with_a_close_known_at_its_midnight(config):
    days = tuple(date(2030, 1, 1) + timedelta(days=i) for i in range(5))
    history = PriceHistory(
        days,
        {"A": (1.0,) * 5, "B": (None, None, 2.0, 2.0, 2.0), "C": (3.0,) * 5},
        "hand",
    )
    tz = ZoneInfo("Europe/Berlin")
    targets = ListedTargets(TargetsOn(config.profile), history, tz)
    # B's first close is that of 3 January, known from the midnight ending it.
    assert "B" not in targets(date(2030, 1, 3)).weights
    assert targets(date(2030, 1, 3)).weights == pytest.approx({"A": 0.45, "C": 0.45})
    full = targets(date(2030, 1, 4))
    assert full.weights == pytest.approx({"A": 0.27, "B": 0.18, "C": 0.45})
    assert full == targets_on(config.profile, date(2030, 1, 4))  # nothing left out: the plan's own
