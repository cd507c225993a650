"""Rebalance: back into the bands, sells funding buys, cash at target, the crypto share."""

from __future__ import annotations

import dataclasses

import pytest
from support import POLICY, QUOTE, received, snapshot, spend, targets

from stagewise.planner import PlanState, apply, plan_drift, plan_rebalance

PRICES = {"A": 1.0, "B": 1.0, "C": 1.0}


def test_rebalance_sells_overweight_to_fund_underweight():
    # A 700 / B 300 vs 50/50, band min(5 %, 25 % * 50 %) = 5 %: both 20 points out.
    # Sell 200 A (fee 0.20) -> 199.80; buy B for 199.80: 199.80 / 1.001 = 199.6004 -> 199.60.
    snap = snapshot({"A": 700.0, "B": 300.0, QUOTE: 0.0}, PRICES)
    plan = plan_rebalance(snap, targets({"A": 0.5, "B": 0.5}), POLICY, PlanState())
    assert [(o.side, o.base, o.amount) for o in plan.orders] == [
        ("sell", "A", 200.0),
        ("buy", "B", 199.6),
    ]
    assert plan.orders[0].reason == "A 70.0% vs target 50.0% (band ±5.0%): sell back to target"
    assert "B 30.0% vs target 50.0% (band ±5.0%): buy back to target" in plan.orders[1].reason


def test_rebalance_to_the_band_edge_trades_less():
    # rebalance_to = "band": A down to 55 % (sell 150), B up to 45 % (buy 150 -> 149.85 paid).
    # 150 - 0.15 fee = 149.85 of cash: 149.85 / 1.001 = 149.7003 -> 149.70 B.
    snap = snapshot({"A": 700.0, "B": 300.0, QUOTE: 0.0}, PRICES)
    policy = dataclasses.replace(POLICY, rebalance_to="band")
    plan = plan_rebalance(snap, targets({"A": 0.5, "B": 0.5}), policy, PlanState())
    assert [(o.side, o.base, o.amount) for o in plan.orders] == [
        ("sell", "A", 150.0),
        ("buy", "B", 149.7),
    ]
    assert "to the band's edge 55.0%" in plan.orders[0].reason


def test_an_asset_inside_its_band_is_left_alone():
    # A 52 / B 48 vs 50/50: drift 2 points < 5: nothing to do.
    snap = snapshot({"A": 520.0, "B": 480.0, QUOTE: 0.0}, PRICES)
    plan = plan_rebalance(snap, targets({"A": 0.5, "B": 0.5}), POLICY, PlanState())
    assert plan.orders == () and plan.skipped == ()
    assert "every asset is inside its band: nothing to rebalance" in plan.notes


def test_the_relative_band_is_narrower_for_a_small_target():
    # C target 8 %: band min(5 %, 25 % * 8 % = 2 %) = 2 %. C at 11 % (+3) is out, A/B not.
    # Sell C down to 80 (30 units); A and B (-1.5 points) are inside their bands, so the
    # 29.97 received stays as cash (the next DCA invests it).
    snap = snapshot({"A": 445.0, "B": 445.0, "C": 110.0, QUOTE: 0.0}, PRICES)
    t = targets({"A": 0.46, "B": 0.46, "C": 0.08})
    plan = plan_rebalance(snap, t, POLICY, PlanState())
    assert [(o.side, o.base) for o in plan.orders] == [("sell", "C")]
    assert plan.orders[0].amount == 30.0
    assert "(band ±2.0%)" in plan.orders[0].reason


def test_an_asset_not_in_the_plan_is_sold():
    snap = snapshot({"A": 900.0, "X": 100.0, QUOTE: 0.0}, {"A": 1.0, "X": 1.0})
    plan = plan_rebalance(snap, targets({"A": 1.0}), POLICY, PlanState())
    sell = plan.orders[0]
    assert (sell.side, sell.base, sell.amount) == ("sell", "X", 100.0)
    assert sell.reason == "X 10.0% is not in the plan (target 0.0%): sell"
    # The proceeds (99.90) buy A: 99.90 / 1.001 = 99.8002 -> 99.80.
    assert [(o.side, o.base, o.amount) for o in plan.orders[1:]] == [("buy", "A", 99.8)]


def test_a_portfolio_at_target_gets_no_orders():
    snap = snapshot({"A": 400.0, "B": 300.0, "C": 200.0, QUOTE: 100.0}, PRICES)
    t = targets({"A": 0.4, "B": 0.3, "C": 0.2}, cash=0.1)
    plan = plan_rebalance(snap, t, POLICY, PlanState())
    assert plan.orders == () and plan.refused is None


def test_cash_stays_at_its_target():
    # Cash target 10 % of 1,000 = 100 and there is exactly 100: B's buy is paid by A's sale
    # only. A 600 -> 450 (sell 150, +149.85); B 300 -> 450 wants 150.15 with fee: gets 149.85.
    snap = snapshot({"A": 600.0, "B": 300.0, QUOTE: 100.0}, PRICES)
    t = targets({"A": 0.45, "B": 0.45}, cash=0.1)
    plan = plan_rebalance(snap, t, POLICY, PlanState())
    assert received(plan) == pytest.approx(149.85)
    assert spend(plan) <= received(plan)
    assert "part: the cash allows 149.85 USDT" in plan.orders[1].reason


def test_cash_above_its_target_pays_for_buys():
    # 200 USDT, target 0: A 300 / B 500 vs 50/50 of 1,000: A is 20 points under. Its gap
    # with the fee is 200.20, the cash 200: 200 / 1.001 = 199.8002 -> 199.80 A.
    snap = snapshot({"A": 300.0, "B": 500.0, QUOTE: 200.0}, PRICES)
    plan = plan_rebalance(snap, targets({"A": 0.5, "B": 0.5}), POLICY, PlanState())
    assert [(o.side, o.base, o.amount) for o in plan.orders] == [("buy", "A", 199.8)]


def test_sells_come_before_buys():
    snap = snapshot({"A": 100.0, "B": 300.0, "C": 600.0, QUOTE: 0.0}, PRICES)
    t = targets({"A": 0.3, "B": 0.3, "C": 0.4})
    plan = plan_rebalance(snap, t, dataclasses.replace(POLICY, max_order_share=1.0), PlanState())
    sides = [o.side for o in plan.orders]
    assert sides == sorted(sides, key=lambda s: s != "sell") and sides[0] == "sell"


def test_a_scoped_rebalance_touches_only_its_assets():
    # A +20 points, B and C -10 points (bands 5): with scope {A, B} C is not touched; with
    # scope {C} nothing can pay for C's buy (no cash, no sale in scope).
    snap = snapshot({"A": 500.0, "B": 200.0, "C": 300.0, QUOTE: 0.0}, PRICES)
    t = targets({"A": 0.3, "B": 0.3, "C": 0.4})
    plan = plan_rebalance(snap, t, POLICY, PlanState(), scope={"A", "B"})
    assert {o.base for o in plan.orders} == {"A", "B"}
    plan = plan_rebalance(snap, t, POLICY, PlanState(), scope={"C"})
    assert plan.orders == () and "no cash left" in plan.skipped[0].reason


def test_crypto_above_the_whole_portfolio_band_is_sold_pro_rata_back_to_the_target():
    # Account 1,000 of crypto (A 500, B 500, at target), 1,500 outside: crypto is 40 % of
    # 2,500, band 15-25 %, target (the investor's point) 20 %: sell x with
    # (1,000 - x) / (2,500 - 0.001 x) = 20 %: x = 500 / (1 - 0.2 * 0.001) = 500.1000,
    # pro rata 250.05 of each (step 0.01). Back to the target, not to the band's edge.
    snap = snapshot({"A": 500.0, "B": 500.0, QUOTE: 0.0}, PRICES)
    policy = dataclasses.replace(POLICY, outside_value=1_500.0, max_order_share=1.0)
    plan = plan_rebalance(snap, targets({"A": 0.5, "B": 0.5}), policy, PlanState())
    assert [(o.side, o.base, o.amount) for o in plan.orders] == [
        ("sell", "A", 250.05),
        ("sell", "B", 250.05),
    ]
    assert plan.orders[0].reason.startswith(
        "crypto 40.0% of the whole portfolio (target 20.0%, band 15.0%-25.0%), above the band's "
        "top: sell 50.0% of A into USDT, back to the target 20.0%"
    )
    assert any(
        "crypto 40.0% of the whole portfolio (target 20.0%, band 15.0%-25.0%), above the "
        "band's top: sell 50.0% of each holding, back to the target 20.0%" in n
        for n in plan.notes
    )
    assert plan.summary is not None and plan.summary.crypto_share == pytest.approx(0.4)
    after = apply(plan, snap)
    crypto = after.total_value - after.balances[QUOTE]
    assert crypto / (after.total_value + 1_500) == pytest.approx(0.2, abs=1e-4)


def test_after_the_crypto_share_sale_the_next_rebalance_neither_buys_back_nor_sells_again():
    # The account after the sale above: crypto is at its target, inside the band: nothing
    # trades for the share (the cash is kept), and the mix is at target.
    snap = snapshot({"A": 500.0, "B": 500.0, QUOTE: 0.0}, PRICES)
    policy = dataclasses.replace(POLICY, outside_value=1_500.0, max_order_share=1.0)
    t = targets({"A": 0.5, "B": 0.5})
    after = apply(plan_rebalance(snap, t, policy, PlanState()), snap)
    plan = plan_rebalance(after, t, policy, PlanState())
    assert plan.orders == () and plan.skipped == ()
    assert not any("band's top" in n or "band's bottom" in n for n in plan.notes)


def test_inside_the_band_nothing_trades_for_the_crypto_share():
    # Crypto at 24 % (band 15-25 %, target 20 %), the mix at target: no order, although the
    # share is above its target (a trim here would be undone by the next DCA's room).
    snap = snapshot({"A": 600.0, "B": 600.0, QUOTE: 0.0}, PRICES)
    policy = dataclasses.replace(POLICY, outside_value=3_800.0)
    plan = plan_rebalance(snap, targets({"A": 0.5, "B": 0.5}), policy, PlanState())
    assert plan.orders == () and plan.skipped == ()


def test_crypto_below_the_band_without_cash_suggests_a_higher_contribution():
    snap = snapshot({"A": 50.0, "B": 50.0, QUOTE: 0.0}, PRICES)
    policy = dataclasses.replace(POLICY, outside_value=10_000.0)
    plan = plan_rebalance(snap, targets({"A": 0.5, "B": 0.5}), policy, PlanState())
    assert plan.orders == ()
    assert any("below the band's bottom" in n and "higher contribution" in n for n in plan.notes)


def test_crypto_below_the_band_buys_toward_the_target_with_the_cash_never_beyond():
    # A 100, B 300 and 1,600 USDT, 8,000 outside: crypto 4 % of 10,000 (band 15-25 %, target
    # 20 %): the target is 2,000 of crypto, 1,000 each; 1,600 of cash buys A's 900 gap and
    # 700 of B's (biggest gaps first), fee included: all the cash, never beyond it.
    snap = snapshot({"A": 100.0, "B": 300.0, QUOTE: 1_600.0}, PRICES)
    policy = dataclasses.replace(POLICY, outside_value=8_000.0)
    plan = plan_rebalance(snap, targets({"A": 0.5, "B": 0.5}), policy, PlanState())
    assert {o.side for o in plan.orders} == {"buy"}
    spent = sum(o.notional + o.fee for o in plan.orders)
    assert spent <= 1_600.0 and spent == pytest.approx(1_600.0, abs=2.0)
    assert "below the band's bottom: buy A toward its target" in plan.orders[0].reason
    # DCA money carried is set aside: the rebalance does not spend it.
    carried = plan_rebalance(snap, targets({"A": 0.5, "B": 0.5}), policy, PlanState(carry=600))
    assert sum(o.notional + o.fee for o in carried.orders) <= 1_000.0


def test_without_outside_investments_the_crypto_share_is_not_checked():
    snap = snapshot({"A": 500.0, "B": 500.0, QUOTE: 0.0}, PRICES)
    plan = plan_rebalance(snap, targets({"A": 0.5, "B": 0.5}), POLICY, PlanState())
    assert plan.orders == ()
    assert any("not checked" in n for n in plan.notes)


def test_an_empty_account_has_nothing_to_rebalance():
    plan = plan_rebalance(snapshot({}, PRICES), targets({"A": 1.0}), POLICY, PlanState())
    assert plan.orders == () and plan.refused is None and "empty" in plan.notes[0]


def test_a_sell_below_the_minimum_is_skipped_and_buys_nothing():
    # X 3 USDT of dust not in the plan, minimum order 5: skipped; no cash to buy with.
    snap = snapshot({"A": 997.0, "X": 3.0, QUOTE: 0.0}, {"A": 1.0, "X": 1.0}, min_notional=5.0)
    plan = plan_rebalance(snap, targets({"A": 1.0}), POLICY, PlanState())
    assert plan.orders == ()
    assert [s.asset for s in plan.skipped] == ["X"] and "minimum" in plan.skipped[0].reason


# --- the drift watch: sleeves (indices) against their bands ---------------------------------


def two_sleeves(shared: float = 0.0):
    """Momentum (A, B: 50 % of the account) and Value (C, and `shared` of B's weight too)."""
    from stagewise.targets import SleeveTarget

    members = {
        "momentum": {"A": 0.25, "B": 0.25 - shared},
        "value": {"C": 0.5, "B": shared} if shared else {"C": 0.5},
    }
    weights = {"A": 0.25, "B": 0.25, "C": 0.5}
    sleeves = {
        i: SleeveTarget(i, i.title(), sum(m.values()), "weekly" if i == "momentum" else "annual")
        for i, m in members.items()
    }
    return dataclasses.replace(targets(weights), sleeves=sleeves, members=members)


def test_the_drift_watch_leaves_assets_drifting_inside_a_sleeve_in_band():
    # A 35 % / B 15 % vs 25/25: each far outside its asset band (±5), but Momentum is 50 %.
    snap = snapshot({"A": 350.0, "B": 150.0, "C": 500.0, QUOTE: 0.0}, PRICES)
    plan = plan_drift(snap, two_sleeves(), POLICY, PlanState())
    assert plan.orders == () and plan.refused is None
    assert "nothing is outside the drift watch's bands" in plan.notes
    by_asset = dataclasses.replace(POLICY, drift_watch="asset")
    plan = plan_drift(snap, two_sleeves(), by_asset, PlanState())
    assert [(o.side, o.base, o.amount) for o in plan.orders] == [
        ("sell", "A", 100.0),
        ("buy", "B", 99.8),
    ]
    assert (
        "rebalancing early: the asset A is 35.0% of the account vs target 25.0%" in (plan.notes[0])
    )


def test_a_sleeve_outside_its_band_rebalances_the_whole_portfolio():
    # Momentum 60 % (A 36, B 24) vs 50 % ± 5: out. The whole-portfolio rebalance then trades
    # every ASSET outside its own band: A (+11) sells, C (-10) buys; B (-1) is left alone.
    snap = snapshot({"A": 360.0, "B": 240.0, "C": 400.0, QUOTE: 0.0}, PRICES)
    plan = plan_drift(snap, two_sleeves(), POLICY, PlanState())
    assert plan.notes[0] == (
        "rebalancing early: the sleeve Momentum is 60.0% of the account vs target 50.0% "
        "(band ±5.0%)"
    )
    assert [(o.side, o.base) for o in plan.orders] == [("sell", "A"), ("buy", "C")]
    assert plan.orders == plan_rebalance(snap, two_sleeves(), POLICY, PlanState()).orders


def test_two_sleeves_with_the_same_name_are_watched_apart():
    # Both indices named "Mine" (names are free text in indices.toml): Momentum at 60 % of
    # its 50 % must still be seen, not merged with the other into 100 % of 100 %.
    t = two_sleeves()
    t = dataclasses.replace(
        t, sleeves={i: dataclasses.replace(s, name="Mine") for i, s in t.sleeves.items()}
    )
    snap = snapshot({"A": 360.0, "B": 240.0, "C": 400.0, QUOTE: 0.0}, PRICES)
    plan = plan_drift(snap, t, POLICY, PlanState())
    assert plan.notes[0].startswith("rebalancing early: the sleeve Mine is 60.0% of the account")
    assert plan.orders


def test_an_asset_in_two_sleeves_counts_for_each_as_their_targets_split_it():
    # B's 25 % target: 15 % for Momentum, 10 % for Value. B at 25 % splits the same way, so
    # Momentum = A 25 + B 15 = its 40 % target; Value = C 50 + B 10 = its 60 %.
    snap = snapshot({"A": 250.0, "B": 250.0, "C": 500.0, QUOTE: 0.0}, PRICES)
    t = two_sleeves(shared=0.1)
    assert plan_drift(snap, t, POLICY, PlanState()).orders == ()
    # B up to 40 % (C down): Momentum A 25 + B 24 = 49 % vs 40 % ± 5 is out.
    snap = snapshot({"A": 250.0, "B": 400.0, "C": 350.0, QUOTE: 0.0}, PRICES)
    plan = plan_drift(snap, t, POLICY, PlanState())
    assert plan.notes[0].startswith("rebalancing early: the sleeve Momentum is 49.0%")


def test_the_drift_watch_sells_a_holding_outside_the_plan():
    snap = snapshot(
        {"A": 250.0, "B": 250.0, "C": 480.0, "X": 20.0, QUOTE: 0.0}, PRICES | {"X": 1.0}
    )
    plan = plan_drift(snap, two_sleeves(), POLICY, PlanState())
    assert plan.notes[0] == "rebalancing early: X is held (2.0%) but not in the plan"
    assert ("sell", "X", 20.0) in [(o.side, o.base, o.amount) for o in plan.orders]


def test_the_drift_watch_sells_crypto_above_the_stage_band():
    # 1,000 of crypto beside 2,000 outside: 33 % of the whole portfolio, band 15-25 %, target
    # 20 %: every holding is sold pro rata, x = 400 / (1 - 0.2 * 0.001) = 400.08 in all.
    snap = snapshot({"A": 250.0, "B": 250.0, "C": 500.0, QUOTE: 0.0}, PRICES)
    policy = dataclasses.replace(POLICY, outside_value=2_000.0)
    plan = plan_drift(snap, two_sleeves(), policy, PlanState())
    assert plan.notes[0] == (
        "rebalancing early: crypto 33.3% of the whole portfolio (target 20.0%, band "
        "15.0%-25.0%): above the band's top"
    )
    assert {o.side for o in plan.orders} == {"sell"}
    assert {o.base: o.amount for o in plan.orders} == {
        "A": pytest.approx(100.02),
        "B": pytest.approx(100.02),
        "C": pytest.approx(200.04),
    }


def test_below_the_band_the_drift_watch_invests_a_seed_early_but_not_spare_change():
    # Crypto far below its band (outside investments 20,000): 3 % of the account in spare
    # cash (under the 5-point band) waits for the next DCA; 60 % (a seed) is invested now.
    policy = dataclasses.replace(POLICY, outside_value=20_000.0)
    t = targets({"A": 0.5, "B": 0.5})
    change = snapshot({"A": 485.0, "B": 485.0, QUOTE: 30.0}, PRICES)
    assert plan_drift(change, t, policy, PlanState()).orders == ()
    seed = snapshot({"A": 200.0, "B": 200.0, QUOTE: 600.0}, PRICES)
    plan = plan_drift(seed, t, policy, PlanState())
    assert (
        plan.notes[0].startswith("rebalancing early: crypto") and "below the band" in plan.notes[0]
    )
    assert {o.side for o in plan.orders} == {"buy"}


# --- an index of cadence "never": only bought (pure DCA) --------------------------------------


def dca_and_value(never: bool = True):
    """Momentum (A, B: 50 %), of cadence "never" unless `never` is False, and Value (C, D)."""
    from stagewise.targets import SleeveTarget

    members = {"momentum": {"A": 0.25, "B": 0.25}, "value": {"C": 0.25, "D": 0.25}}
    weights = {"A": 0.25, "B": 0.25, "C": 0.25, "D": 0.25}
    sleeves = {
        "momentum": SleeveTarget("momentum", "Momentum", 0.5, "never" if never else "weekly"),
        "value": SleeveTarget("value", "Value", 0.5, "annual"),
    }
    return dataclasses.replace(
        targets(weights),
        sleeves=sleeves,
        members=members,
        dca_only=frozenset({"A", "B"} if never else ()),
    )


FOUR = {"A": 1.0, "B": 1.0, "C": 1.0, "D": 1.0}


@pytest.mark.parametrize("momentum", [640.0, 360.0], ids=["above", "below"])
def test_a_dca_only_sleeve_away_from_its_target_trips_no_drift_watch(momentum):
    # Momentum 64 % (or 36 %) vs 50 % ± 5 trips the watch when it is rebalanced; when only
    # DCA buys it, Value is aimed at what is left (36 %, 64 %) and nothing trades.
    value = 1_000.0 - momentum
    balances = {"A": momentum / 2, "B": momentum / 2, "C": value / 2, "D": value / 2}
    snap = snapshot({**balances, QUOTE: 0.0}, FOUR)
    assert plan_drift(snap, dca_and_value(never=False), POLICY, PlanState()).orders
    plan = plan_drift(snap, dca_and_value(), POLICY, PlanState())
    assert plan.orders == () and "nothing is outside the drift watch's bands" in plan.notes
    by_asset = dataclasses.replace(POLICY, drift_watch="asset")
    assert plan_drift(snap, dca_and_value(), by_asset, PlanState()).orders == ()
    assert plan_rebalance(snap, dca_and_value(), POLICY, PlanState()).orders == ()


def test_the_rest_is_rebalanced_among_itself_around_a_dca_only_sleeve():
    # Momentum 40 % (A 15, B 25); Value 60 %: C 45, D 15. Value is aimed at the 60 % left,
    # C and D at 30 % each: C sells 150 (to 30 %), its 149.85 buys D (149.70 after the fee).
    # Rebalanced, A (15 % vs 25 %) would be bought too.
    snap = snapshot({"A": 150.0, "B": 250.0, "C": 450.0, "D": 150.0, QUOTE: 0.0}, FOUR)
    by_asset = dataclasses.replace(POLICY, drift_watch="asset")
    rebalanced = plan_drift(snap, dca_and_value(never=False), by_asset, PlanState())
    assert "A" in {o.base for o in rebalanced.orders}
    plan = plan_drift(snap, dca_and_value(), by_asset, PlanState())
    assert plan.notes[0].startswith("rebalancing early: the asset C is 45.0% of the account")
    assert [(o.side, o.base, o.amount) for o in plan.orders] == [
        ("sell", "C", 150.0),
        ("buy", "D", 149.7),
    ]
    assert "C 45.0% vs target 30.0%" in plan.orders[0].reason
    # Value's own (annual) rebalance aims the same way.
    scheduled = plan_rebalance(snap, dca_and_value(), POLICY, PlanState(), scope={"C", "D"})
    assert scheduled.orders == plan.orders


def test_crypto_above_the_whole_portfolio_band_trims_a_dca_only_sleeve_too():
    # The crypto share is a rule of the whole portfolio: 1,000 of crypto beside 2,000 outside
    # is 33 %, band 15-25 %: every holding is sold pro rata back to the target 20 %,
    # 400.08 in all (as test_the_drift_watch_sells_crypto_above_the_stage_band).
    snap = snapshot({"A": 250.0, "B": 250.0, "C": 250.0, "D": 250.0, QUOTE: 0.0}, FOUR)
    policy = dataclasses.replace(POLICY, outside_value=2_000.0)
    plan = plan_drift(snap, dca_and_value(), policy, PlanState())
    assert {o.side for o in plan.orders} == {"sell"}
    assert {o.base: o.amount for o in plan.orders} == {a: pytest.approx(100.02) for a in FOUR}
