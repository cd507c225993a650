"""Indices by rule: rankings, weights and caps by hand, point in time, ties, too few assets."""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, date, datetime, timedelta

import pytest

from stagewise.composition import (
    capped,
    compose,
    left_reason,
    median_volume,
    momentum,
    volatility,
)
from stagewise.errors import PriceHistoryError
from stagewise.history import PriceHistory
from stagewise.stages import Index

DAYS = tuple(date(2027, 1, 1) + timedelta(days=i) for i in range(40))
# The moment of a reconstitution on 31 Jan: the last close it may read is 30 Jan's (day 29).
MOMENT = datetime(2027, 1, 31, 0, 0, tzinfo=UTC)


def rule(**fields) -> Index:
    base = {"name": "Momentum Trader", "cadence": "weekly", "universe": ["AAA", "BBB"]}
    return Index.model_validate(base | fields)


def history(**columns) -> PriceHistory:
    return PriceHistory(DAYS, {a: tuple(c) for a, c in columns.items()}, "test")


def ramp(start: float, end_at_30: float) -> list[float]:
    """Closes rising linearly from `start` (day 0) to `end_at_30` (day 29), then flat at 999."""
    step = (end_at_30 - start) / 29
    return [start + step * i for i in range(30)] + [999.0] * 10


def test_capped_pins_the_top_and_shares_its_excess_in_proportion():
    # 50/30/15/5 with at most 40: A pinned at 40, its 10 shared 30:15:5 -> 36, 18, 6.
    out = capped({"A": 0.5, "B": 0.3, "C": 0.15, "D": 0.05}, 40, None)
    assert {a: round(w * 100, 2) for a, w in out.items()} == {
        "A": 40.0,
        "B": 36.0,
        "C": 18.0,
        "D": 6.0,
    }


def test_capped_raises_the_bottom_to_the_floor_from_the_free_assets():
    # ... and at least 10: D pinned at 10, B and C share 50 as 36:18 -> 33.33, 16.67.
    out = capped({"A": 0.5, "B": 0.3, "C": 0.15, "D": 0.05}, 40, 10)
    assert {a: round(w * 100, 2) for a, w in out.items()} == {
        "A": 40.0,
        "B": 33.33,
        "C": 16.67,
        "D": 10.0,
    }
    assert math.isclose(sum(out.values()), 1.0)


def test_capped_repeats_until_no_free_asset_is_over():
    # 50/35/15, at most 40: A pinned, B gets 35/50 of 60 = 42 > 40, pinned too; C takes 20.
    out = capped({"A": 0.5, "B": 0.35, "C": 0.15}, 40, None)
    assert {a: round(w * 100, 2) for a, w in out.items()} == {"A": 40.0, "B": 40.0, "C": 20.0}


def test_capped_gives_equal_weights_when_too_few_assets_can_meet_the_cap():
    notes: list[str] = []
    out = capped({"A": 0.7, "B": 0.3}, 40, None, notes)
    assert out == {"A": 0.5, "B": 0.5}
    assert notes == ["the weight caps cannot hold with 2 assets: equal weights"]


def test_momentum_is_the_return_over_the_lookback_skipping_recent_days():
    column = [100.0, 110.0, 120.0, 150.0, 90.0]
    assert momentum(column, 2, 0) == pytest.approx(90 / 120 - 1)
    assert momentum(column, 2, 1) == pytest.approx(150 / 110 - 1)
    assert momentum(column, 5, 0) is None  # too short


def test_volatility_is_the_deviation_of_daily_log_returns():
    column = [100.0, 110.0, 99.0]
    r = [math.log(1.1), math.log(0.9)]
    mean = sum(r) / 2
    expected = math.sqrt(sum((x - mean) ** 2 for x in r) / 2)
    assert volatility(column, 2) == pytest.approx(expected)
    assert volatility([None, 1.0, 2.0], 2) is None


def test_top_n_by_momentum_rank_weighted_by_hand():
    h = history(AAA=ramp(100, 130), BBB=ramp(100, 160), CCC=ramp(100, 110), DDD=ramp(100, 90))
    index = rule(
        universe=["AAA", "BBB", "CCC", "DDD"],
        select={"top": 3, "by": "momentum", "lookback_days": 10},
        weigh="rank",
    )
    made = compose("momentum_trader", index, h, MOMENT)
    assert made.close_day == date(2027, 1, 30)
    assert list(made.weights) == ["BBB", "AAA", "CCC"]  # by 10-day return, highest first
    # Rank weights 3:2:1 of 6.
    assert {a: round(w, 2) for a, w in made.weights.items()} == {
        "BBB": 50.0,
        "AAA": 33.33,
        "CCC": 16.67,
    }
    assert made.ranks == {"BBB": 1, "AAA": 2, "CCC": 3, "DDD": 4}
    assert left_reason(index, made, "DDD") == (
        "DDD left Momentum Trader: rank 4 by 10-day return, top 3 kept"
    )


def test_a_price_after_the_moment_changes_nothing_chosen_at_it():
    index = rule(
        universe=["AAA", "BBB", "CCC"],
        select={"top": 2, "by": "momentum", "lookback_days": 10},
        weigh="inverse_volatility",
        volatility_days=5,
        max_weight_pct=60,
    )
    before = history(AAA=ramp(100, 130), BBB=ramp(100, 160), CCC=ramp(100, 110))
    made = compose("m", index, before, MOMENT)
    for day in range(29, 40):  # 30 Jan's close is the moment's last; from 31 Jan on, none
        for asset in ("AAA", "BBB", "CCC"):
            closes = {a: list(c) for a, c in before.closes.items()}
            closes[asset][day] *= 7 if day > 29 else 1
            after = compose("m", index, history(**closes), MOMENT)
            assert (after.weights, after.figures, after.ranks) == (
                made.weights,
                made.figures,
                made.ranks,
            )
    changed = {a: list(c) for a, c in before.closes.items()}
    changed["CCC"][29] *= 7  # the moment's own last close does count
    assert compose("m", index, history(**changed), MOMENT).weights != made.weights


def test_ties_keep_a_stable_order_by_name():
    flat = ramp(100, 120)
    h = history(ZZZ=flat, AAA=flat, MMM=flat)
    index = rule(
        universe=["ZZZ", "MMM", "AAA"],
        select={"top": 2, "by": "momentum", "lookback_days": 10},
    )
    made = compose("m", index, h, MOMENT)
    assert list(made.weights) == ["AAA", "MMM"]
    assert made.weights == {"AAA": 50.0, "MMM": 50.0}


def test_lowest_volatility_first():
    calm = [100.0 + (i % 2) for i in range(40)]
    wild = [100.0 + 20 * (i % 2) for i in range(40)]
    h = history(AAA=wild, BBB=calm)
    index = rule(select={"top": 1, "by": "volatility", "lookback_days": 10})
    assert list(compose("m", index, h, MOMENT).weights) == ["BBB"]


def test_too_few_eligible_assets_holds_what_qualifies_with_a_note():
    young = [None] * 25 + [100.0] * 15  # listed on day 25: no 10-day return on day 29
    h = history(AAA=ramp(100, 130), BBB=young)
    index = rule(select={"top": 2, "by": "momentum", "lookback_days": 10})
    made = compose("m", index, h, MOMENT)
    assert made.weights == {"AAA": 100.0}
    assert "BBB excluded: less than 10 days of closes" in made.notes
    assert "only 1 of the top 2 qualify: it holds those" in made.notes
    assert left_reason(index, made, "BBB") == (
        "BBB left Momentum Trader: excluded: less than 10 days of closes"
    )


def test_zero_qualifying_is_an_error_naming_the_index():
    h = history(AAA=[None] * 40, BBB=[None] * 30 + [1.0] * 10)
    index = rule(select={"top": 1, "by": "momentum", "lookback_days": 10})
    with pytest.raises(PriceHistoryError, match="index Momentum Trader: no asset of its universe"):
        compose("m", index, h, MOMENT)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"constituents": {"BTC": 100}},
            "give one of constituents .*not constituents and universe",
        ),
        ({"select": {"top": 3, "by": "momentum", "lookback_days": 30}}, "select.top: 3"),
        ({"weigh": "rank"}, "weigh: 'rank' needs a ranking"),
        ({"max_weight_pct": 40}, "max_weight_pct: 2 assets at most 40"),
        ({"min_weight_pct": 60}, "min_weight_pct: 2 assets at least 60"),
        ({"universe": ["AAA", "AAA"]}, "listed twice"),
        ({"universe": ["aaa"]}, "universe: asset 'aaa'"),
        ({"select": {"top": 1, "by": "marketcap", "lookback_days": 30}}, "select"),
    ],
)
def test_a_bad_rule_is_refused_naming_the_field(fields, message):
    with pytest.raises(ValueError, match=message):
        rule(**fields)


def test_rule_fields_on_a_fixed_basket_are_refused():
    with pytest.raises(ValueError, match="weigh: only for a rule index"):
        Index.model_validate(
            {"name": "X", "cadence": "weekly", "constituents": {"BTC": 100}, "weigh": "equal"}
        )


# --- volume, liquidity, inverse volatility, exchange universes (hand-computed) ---------------


def with_volumes(h: PriceHistory, **columns) -> PriceHistory:
    return dataclasses.replace(h, volumes={a: tuple(c) for a, c in columns.items()})


def last_five(*values: float | None) -> list[float | None]:
    """A volume column whose days 25..29 (the last five a 31 January moment reads) are
    `values`, 1.0 before them, and 10**9 after (days no reconstitution at MOMENT may see)."""
    return [1.0] * 25 + list(values) + [1e9] * 10


FLAT = [1.0] * 40


def test_top_n_by_median_quote_volume_by_hand_ties_by_name():
    h = with_volumes(
        history(AAA=FLAT, BBB=FLAT, CCC=FLAT, DDD=FLAT),
        AAA=last_five(10, 50, 20, 40, 30),  # sorted 10 20 30 40 50: median 30
        BBB=last_five(100, 100, 100, 100, 100),  # 100
        CCC=last_five(5, 5, 200, 5, 5),  # one big day does not move a median: 5
        DDD=last_five(30, 30, 30, 30, 30),  # 30: tied with AAA, after it by name
    )
    index = rule(
        universe=["DDD", "CCC", "BBB", "AAA"],
        select={"top": 3, "by": "volume", "lookback_days": 5},
    )
    made = compose("m", index, h, MOMENT)
    assert list(made.weights) == ["BBB", "AAA", "DDD"]
    assert {a: round(w, 2) for a, w in made.weights.items()} == {
        "BBB": 33.33,
        "AAA": 33.33,
        "DDD": 33.33,
    }
    assert made.figures == {"AAA": 30.0, "BBB": 100.0, "CCC": 5.0, "DDD": 30.0}
    assert made.ranks == {"BBB": 1, "AAA": 2, "DDD": 3, "CCC": 4}
    assert left_reason(index, made, "CCC") == (
        "CCC left Momentum Trader: rank 4 by 5-day median daily quote volume, top 3 kept"
    )


def test_volume_weights_by_hand_with_both_caps_to_the_cent():
    # Medians 500, 300, 150, 50 -> 50/30/15/5 %; at most 40, at least 10: A pinned at 40 and
    # D at 10, B and C share the other 50 as 300:150 -> 33.33, 16.67.
    h = with_volumes(
        history(AAA=FLAT, BBB=FLAT, CCC=FLAT, DDD=FLAT),
        AAA=[500.0] * 40,
        BBB=[300.0] * 40,
        CCC=[150.0] * 40,
        DDD=[50.0] * 40,
    )
    index = rule(
        universe=["AAA", "BBB", "CCC", "DDD"],
        weigh="volume",
        volume_days=4,
        max_weight_pct=40,
        min_weight_pct=10,
    )
    made = compose("m", index, h, MOMENT)
    assert {a: round(w, 2) for a, w in made.weights.items()} == {
        "AAA": 40.0,
        "BBB": 33.33,
        "CCC": 16.67,
        "DDD": 10.0,
    }
    assert math.isclose(sum(made.weights.values()), 100.0)


def test_the_median_of_an_even_window_is_the_mean_of_the_middle_two():
    assert median_volume([7.0, 1.0, 2.0, 3.0, 10.0], 4) == 2.5  # of 1, 2, 3, 10
    assert median_volume([1.0, 2.0, 3.0], 2, skip=1) == 1.5  # the two before the last
    assert median_volume([1.0, None, 3.0], 2) is None  # a day without a volume
    assert median_volume([1.0], 2) is None  # too short


def test_inverse_volatility_weights_by_hand_and_capped():
    # Closes alternating by 10 %, 20 % and 5 %: the daily log returns are +-a, mean 0, so
    # the volatility is a = ln 1.1, ln 1.2, ln 1.05 (0.09531, 0.18232, 0.04879). Parts 1/a:
    # 10.4921, 5.4848, 20.4959 of 36.4728 -> 28.77, 15.04, 56.20 %.
    def alternating(up: float) -> list[float]:
        return [100.0 * (up if i % 2 else 1.0) for i in range(40)]

    h = history(AAA=alternating(1.1), BBB=alternating(1.2), CCC=alternating(1.05))
    index = rule(universe=["AAA", "BBB", "CCC"], weigh="inverse_volatility", volatility_days=4)
    made = compose("m", index, h, MOMENT)
    assert {a: round(w, 2) for a, w in made.weights.items()} == {
        "AAA": 28.77,
        "BBB": 15.04,
        "CCC": 56.2,
    }
    # At most 50 %: CCC pinned, AAA and BBB share 50 as 10.4921:5.4848 -> 32.84, 17.16.
    capped_index = rule(
        universe=["AAA", "BBB", "CCC"],
        weigh="inverse_volatility",
        volatility_days=4,
        max_weight_pct=50,
    )
    made = compose("m", capped_index, h, MOMENT)
    assert {a: round(w, 2) for a, w in made.weights.items()} == {
        "AAA": 32.84,
        "BBB": 17.16,
        "CCC": 50.0,
    }


def test_the_liquidity_floor_leaves_out_thin_markets_with_a_note():
    h = with_volumes(
        history(AAA=ramp(100, 130), BBB=ramp(100, 160), CCC=ramp(100, 200)),
        AAA=last_five(100, 100, 100, 100, 100),
        BBB=last_five(150, 90, 120, 300, 110),  # median 120
        CCC=last_five(5, 5, 5, 5, 5),  # the best return, but 5 a day
    )
    index = rule(
        universe=["AAA", "BBB", "CCC"],
        liquidity={"min_quote_volume": 100, "days": 5},
        select={"top": 2, "by": "momentum", "lookback_days": 10},
    )
    made = compose("m", index, h, MOMENT)
    assert list(made.weights) == ["BBB", "AAA"]
    note = "CCC excluded: median daily quote volume 5 over 5 days, under the floor of 100"
    assert note in made.notes
    assert left_reason(index, made, "CCC") == f"CCC left Momentum Trader: {note[4:]}"


def test_an_asset_without_a_volume_in_the_window_is_left_out():
    h = with_volumes(
        history(AAA=FLAT, BBB=FLAT), AAA=last_five(1, 2, 3, 4, 5), BBB=last_five(9, None, 9, 9, 9)
    )
    index = rule(select={"top": 2, "by": "volume", "lookback_days": 5})
    made = compose("m", index, h, MOMENT)
    assert made.weights == {"AAA": 100.0}
    assert "BBB excluded: no quote volume for each of 5 days" in made.notes
    assert "only 1 of the top 2 qualify: it holds those" in made.notes


@pytest.mark.parametrize(
    "fields",
    [
        {"select": {"top": 1, "by": "volume", "lookback_days": 5}},
        {"weigh": "volume"},
        {"liquidity": {"min_quote_volume": 1}},
    ],
)
def test_a_volume_rule_without_volumes_is_an_error_naming_the_index(fields):
    with pytest.raises(PriceHistoryError, match="index Momentum Trader reads traded volumes"):
        compose("m", rule(**fields), history(AAA=FLAT, BBB=FLAT), MOMENT)


def test_zero_assets_over_the_liquidity_floor_is_an_error_for_that_index():
    h = with_volumes(history(AAA=FLAT, BBB=FLAT), AAA=[1.0] * 40, BBB=[2.0] * 40)
    index = rule(liquidity={"min_quote_volume": 1000, "days": 5})
    with pytest.raises(PriceHistoryError, match="index Momentum Trader: no asset of its universe"):
        compose("m", index, h, MOMENT)


def test_an_exchange_universe_leaves_out_the_exclusions_and_the_index_own():
    listed = ["BTC", "ETH", "USDC", "WBTC", "BTCUP", "JUP", "EUR", "XYZ"]
    h = history(**{a: FLAT for a in listed})
    index = rule(universe="exchange", exclude=["XYZ"])
    made = compose("m", index, h, MOMENT)
    assert list(made.weights) == ["BTC", "ETH", "JUP"]  # JUP is no leveraged J
    assert (
        "5 excluded as stablecoins, fiat, wrapped or leveraged tokens or by the index's "
        "exclude list: BTCUP, EUR, USDC, WBTC, XYZ"
    ) in made.notes
    assert made.excluded["BTCUP"] == "a leveraged token"
    assert left_reason(index, made, "USDC") == "USDC left Momentum Trader: excluded: a stablecoin"


def test_an_exchange_universe_takes_caps_it_can_only_check_when_composed():
    index = rule(universe="exchange", max_weight_pct=10)  # any number of assets, so valid
    made = compose("m", index, history(AAA=FLAT, BBB=FLAT), MOMENT)
    assert made.weights == {"AAA": 50.0, "BBB": 50.0}
    assert "the weight caps cannot hold with 2 assets: equal weights" in made.notes


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"exclude": ["XYZ"]}, 'exclude: only for universe = "exchange"'),
        ({"universe": "exchange", "exclude": ["xyz"]}, "exclude: asset 'xyz'"),
        ({"universe": "everything"}, "universe"),
        ({"liquidity": {"min_quote_volume": 0}}, "liquidity.min_quote_volume"),
        ({"universe": None, "source": "h.json", "weigh": "rank"}, "weigh: only for a rule"),
        ({"source": "h.json"}, "not universe and source"),
    ],
)
def test_bad_universe_fields_are_refused_naming_the_field(fields, message):
    with pytest.raises(ValueError, match=message):
        rule(**fields)


def test_a_csv_history_is_read_by_the_investors_midnight():
    """A CSV's days are the investor's: at 21:00 on 30 January in New York (02:00 UTC on the
    31st) the 30th has not ended there, so its close is not known yet."""
    from zoneinfo import ZoneInfo

    from stagewise.reconstitution import HistoryData

    h = history(AAA=ramp(100, 130), BBB=ramp(100, 160))
    data = HistoryData(h, "USDT", ZoneInfo("America/New_York"))
    evening = datetime(2027, 1, 31, 2, 0, tzinfo=UTC)
    index = rule(select={"top": 1, "by": "momentum", "lookback_days": 10})
    made = compose("m", index, data.history(["AAA", "BBB"], evening, 11), evening)
    assert made.close_day == date(2027, 1, 29)
    later = datetime(2027, 1, 31, 5, 0, tzinfo=UTC)  # midnight in New York
    assert compose("m", index, data.history(["AAA", "BBB"], later, 11), later).close_day == date(
        2027, 1, 30
    )


def test_a_simulations_index_data_are_the_days_a_rule_reads_known_at_the_moment():
    """As the exchange's candles: the `days` days whose close is known at the moment and one
    more, of the assets asked (nothing later: point in time)."""
    from stagewise.reconstitution import HistoryData

    h = history(AAA=ramp(100, 130), BBB=ramp(100, 160))
    data = HistoryData(h, "USDT", UTC)
    at = datetime(2027, 1, 20, 12, 0, tzinfo=UTC)  # the 19th's close is the last known
    window = data.history(["AAA"], at, 5)
    assert window.days == tuple(date(2027, 1, d) for d in range(14, 20))
    assert window.closes == {"AAA": h.closes["AAA"][13:19]}
    early = data.history(["AAA", "BBB"], datetime(2027, 1, 3, tzinfo=UTC), 5)
    assert early.days == (date(2027, 1, 1), date(2027, 1, 2))  # what there is of it


def test_a_zero_close_is_no_price_for_a_ranking() -> None:
    # A 0 (a bad row, a dead market) must neither divide by zero nor rank: it is a gap.
    from stagewise.composition import momentum, volatility

    assert momentum([0.0, 1.0, 2.0], 2, 0) is None
    assert momentum([1.0, 1.5, 2.0], 2, 0) == 1.0
    assert volatility([1.0, 0.0, 1.0, 1.0], 3) is None
    assert volatility([1.0, 1.0, 1.0, 1.0], 3) == 0.0
