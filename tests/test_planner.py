"""The planner's shared behaviour: the guide's figures, refusals, caps, `apply`, the next state.

Plain data in (the builders of tests/support.py), no fixtures needed: the planner is pure.
"""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest
from support import (
    POLICY,
    QUOTE,
    SHIPPED_COMPOSITIONS,
    TAKEN_AT,
    example_config,
    market,
    received,
    snapshot,
    spend,
    targets,
)

from stagewise.planner import (
    Plan,
    PlanState,
    Policy,
    apply,
    plan_dca,
    plan_profit,
    plan_rebalance,
    plan_windfall,
    plan_withdraw,
)
from stagewise.settings import Config
from stagewise.snapshot import Snapshot
from stagewise.targets import Targets, targets_on

# --- builders ------------------------------------------------------------------------------


def config_born(birth: date) -> Config:
    """The example config for an investor born on `birth`."""
    config = example_config()
    investor = config.settings.investor.model_copy(update={"birth_date": birth})
    settings = config.settings.model_copy(update={"investor": investor})
    return dataclasses.replace(config, settings=settings)


# --- the guide's figures -------------------------------------------------------------------

# Prices of the example baskets' assets (any positive figures do; a fine step keeps rounding
# small against the guide's dollars).
GUIDE_PRICES = {
    "AAVE": 95.0, "AVAX": 35.0, "BNB": 580.0, "BTC": 65_000.0, "ETH": 3_400.0, "FET": 1.6,
    "INJ": 25.0, "LINK": 14.0, "MKR": 2_400.0, "NEAR": 5.5, "ONDO": 0.9, "POLYX": 0.3,
    "RENDER": 7.5, "SOL": 150.0, "SUI": 1.1, "TAO": 420.0, "UNI": 9.0,
}  # fmt: skip


def at_target(t: Targets, crypto_value: float, cash: float) -> Snapshot:
    """An account holding exactly its targets' weights of `crypto_value`, plus `cash`."""
    total = sum(t.weights.values())
    balances = {a: w / total * crypto_value / GUIDE_PRICES[a] for a, w in t.weights.items()}
    balances[QUOTE] = cash
    markets = {a: market(a, step=1e-6, min_notional=5.0) for a in GUIDE_PRICES}
    return snapshot(balances, GUIDE_PRICES, markets)


def spend_per_sleeve(config: Config, t: Targets, plan: Plan) -> dict[str, float]:
    """Each sleeve's part of the plan's buys: an asset in two indices (SOL in Momentum and
    Balanced) counts for each in proportion to what each index gives its target weight."""
    per_sleeve = dict.fromkeys(t.sleeves, 0.0)
    for order in plan.orders:
        for name in t.sleeves:
            held = t.members[name].get(order.base, 0.0)
            per_sleeve[name] += order.notional * held / t.weights[order.base]
    return per_sleeve


@pytest.mark.parametrize("allow_deposit", [False, True])
def test_jake_26_invests_1000_as_50_30_20_across_momentum_ai_balanced(allow_deposit):
    config = config_born(date(2000, 3, 10))
    # The shipped Momentum, AI Agents and Balanced indices are rules: composed (as the
    # baskets they were before) for the split across them to be seen.
    t = targets_on(config.profile, date(2026, 6, 1), SHIPPED_COMPOSITIONS)
    assert (t.age, t.stage.id, t.glide) == (26, "young_professional", None)
    # Paper mode deposits the $1,000 first; read-only mode asks for it (deposit_needed).
    cash = 0.0 if allow_deposit else 1_000.0
    snap = at_target(t, 20_000.0, cash)
    policy = config.policy(allow_deposit=allow_deposit)
    plan = plan_dca(snap, t, policy, PlanState(), 1_000.0)
    sleeves = spend_per_sleeve(config, t, plan)
    # 500/300/200 less the 0.1 % fee (1,000 / 1.001 = 999.00) and rounding to 1e-6 units.
    for name, dollars in {
        "momentum_trader": 500,
        "ai_agents": 300,
        "balanced_investor": 200,
    }.items():
        assert dollars / 1.001 - 0.5 <= sleeves[name] <= dollars / 1.001, name
    assert 999.0 <= spend(plan) <= 1_000.0
    assert all(o.side == "buy" for o in plan.orders) and not plan.skipped
    if allow_deposit:  # what the buys cost, rounded up to the cent
        assert spend(plan) < plan.deposit_needed <= spend(plan) + 0.0101
    else:
        assert plan.deposit_needed == 0.0


def test_george_70_withdraws_about_8085_of_245000_at_3_3_percent():
    config = config_born(date(1956, 2, 1))
    t = targets_on(config.profile, date(2026, 6, 1))
    assert (t.age, t.stage.id) == (70, "retiree")
    snap = at_target(t, 245_000.0, 0.0)
    policy = config.policy(allow_deposit=False)
    plan = plan_withdraw(snap, t, policy, PlanState(), 0.033, 1, 2026)
    # 0.033 * 245,000 / 1 = 8,085 received after fees (the guide: $8,000 ≈ 3.3 %).
    assert 8_084.0 <= received(plan) <= 8_085.0
    assert plan.state.withdrawn == pytest.approx(received(plan))
    assert plan.state.withdrawn_year == 2026
    assert {o.side for o in plan.orders} == {"sell"}
    # At target nothing is overweight: the sells are pro rata to holdings.
    for order in plan.orders:
        assert order.notional / 8_085 == pytest.approx(t.weights[order.base], rel=0.01)


# --- refusals: never an exception, never an order from bad data -----------------------------

BAD_PRICES = [float("nan"), 0.0, -3.0, float("inf"), None]

RULES = {
    "dca": lambda s, t, p, st: plan_dca(s, t, p, st, 100.0),
    "windfall": lambda s, t, p, st: plan_windfall(s, t, p, st, 1_000.0, 0.5),
    "rebalance": lambda s, t, p, st: plan_rebalance(s, t, p, st),
    "profit": lambda s, t, p, st: plan_profit(s, t, p, st),
    "withdraw": lambda s, t, p, st: plan_withdraw(s, t, p, st, 0.04, 12, 2026),
}


@pytest.mark.parametrize("rule", sorted(RULES))
@pytest.mark.parametrize("bad", BAD_PRICES, ids=repr)
def test_a_bad_price_refuses_the_plan_naming_the_asset(rule, bad):
    prices = {"BTC": 50_000.0, "ETH": bad}
    if bad is None:
        del prices["ETH"]
    snap = snapshot(
        {"BTC": 0.01, "ETH": 1.0, QUOTE: 500.0},
        prices,
        {"BTC": market("BTC"), "ETH": market("ETH")},
    )
    state = PlanState(cost_basis={"BTC": 20_000.0}, carry=3.0)
    plan = RULES[rule](snap, targets({"BTC": 0.5, "ETH": 0.5}), POLICY, state)
    assert plan.refused is not None and plan.refused.count("ETH") == 1  # named, once
    assert plan.orders == () and plan.state == state and plan.rule == rule


@pytest.mark.parametrize("rule", ["dca", "windfall"])
def test_a_refused_plan_keeps_the_state_however_it_was_passed(rule):
    """The refusal is each rule's own: the state comes back unchanged, given by keyword too."""
    snap = snapshot({QUOTE: 10.0}, {"A": 1.0})
    state = PlanState(carry=3.0)
    if rule == "dca":
        plan = plan_dca(snap, targets({"A": 1.0}), POLICY, contribution=-1.0, state=state)
    else:
        plan = plan_windfall(snap, targets({"A": 1.0}), POLICY, bonus=-1.0, share=0.5, state=state)
    assert plan.refused is not None and "not a usable amount" in plan.refused
    assert plan.state is state and plan.orders == () and plan.rule == rule


def test_a_missing_price_of_an_asset_to_buy_refuses_dca():
    snap = snapshot({QUOTE: 500.0}, {"BTC": 50_000.0})
    plan = plan_dca(snap, targets({"BTC": 0.5, "SOL": 0.5}), POLICY, PlanState(), 100.0)
    assert plan.refused is not None and "SOL (missing)" in plan.refused


@pytest.mark.parametrize("rule", sorted(RULES))
def test_a_missing_market_refuses_the_plan_naming_it(rule):
    # ETH is held far above its target and is far up on its cost: every rule wants to trade it.
    snap = snapshot(
        {"ETH": 10.0, QUOTE: 100.0}, {"ETH": 100.0, "BTC": 100.0}, {"BTC": market("BTC")}
    )
    # Held long enough for a profit milestone (policy.profit_min_days).
    state = PlanState(cost_basis={"ETH": 10.0}, held_since={"ETH": "2026-01-01"})
    policy = dataclasses.replace(POLICY, max_order_share=1.0)
    plan = RULES[rule](snap, targets({"BTC": 0.5, "ETH": 0.5}), policy, state)
    if rule in ("dca", "windfall"):
        # Buys go to BTC (the gap); ETH needs no market, so a plan is made.
        assert plan.refused is None and {o.base for o in plan.orders} == {"BTC"}
    else:
        assert plan.refused is not None and "ETH" in plan.refused and plan.orders == ()


def test_a_negative_balance_refuses_the_plan():
    snap = snapshot({"BTC": -1.0, QUOTE: 100.0}, {"BTC": 100.0})
    plan = plan_rebalance(snap, targets({"BTC": 1.0}), POLICY, PlanState())
    assert plan.refused is not None and "BTC" in plan.refused


@pytest.mark.parametrize("contribution", [float("nan"), -5.0, float("inf")])
def test_an_unusable_contribution_refuses_dca(contribution):
    snap = snapshot({QUOTE: 100.0}, {"BTC": 100.0})
    plan = plan_dca(snap, targets({"BTC": 1.0}), POLICY, PlanState(), contribution)
    assert plan.refused is not None and "contribution" in plan.refused


def test_an_unpriced_coin_outside_the_plan_is_left_out_with_a_note():
    snap = Snapshot(
        TAKEN_AT,
        QUOTE,
        {"BTC": 1.0, "AIRDROP": 1e6, QUOTE: 0.0},
        {"BTC": 100.0},
        {"BTC": market("BTC")},
        unpriced=("AIRDROP",),
    )
    plan = plan_rebalance(snap, targets({"BTC": 1.0}), POLICY, PlanState())
    assert plan.refused is None and plan.orders == ()
    assert any("AIRDROP" in n for n in plan.notes)


def test_an_order_above_the_markets_maximum_amount_is_skipped_with_the_reason():
    """A first run (no recorded price to compare, see plausible_prices) at an ETH price of
    0.0001: 2,000 USDT of DCA bought 20 million ETH, above the 9,000,000 the exchange takes
    in one order (its maxQty, not read): skipped, the money carried."""
    eth = dataclasses.replace(market("ETH", step=1e-5), max_amount=9_000_000.0)
    snap = Snapshot(TAKEN_AT, QUOTE, {QUOTE: 2_000.0}, {"ETH": 1e-4}, {"ETH": eth})
    plan = plan_dca(snap, targets({"ETH": 1.0}), POLICY, PlanState(), 2_000.0)
    assert plan.orders == ()
    (skip,) = plan.skipped
    assert "above the market's maximum amount 9000000 ETH: the exchange would refuse" in (
        skip.reason
    )
    assert plan.state.carry == pytest.approx(2_000.0)


def test_amounts_held_by_open_orders_are_said_in_every_plan():
    """A read-only account's BTC in a sell order on the exchange (0.04 of 0.05) and USDT in
    a buy order: not free, so not planned with (a buy of BTC toward its target may follow);
    they were dropped without a word."""
    snap = Snapshot(
        TAKEN_AT,
        QUOTE,
        {"BTC": 0.01, QUOTE: 500.0},
        {"BTC": 50_000.0},
        {"BTC": market("BTC")},
        locked={"BTC": 0.04, QUOTE: 250.0},
    )
    plan = plan_rebalance(snap, targets({"BTC": 1.0}), POLICY, PlanState())
    assert plan.refused is None
    assert [n for n in plan.notes if "open orders" in n] == [
        "BTC: 0.04 held by open orders on the exchange (worth 2,000.00 USDT): not counted or "
        "traded; the plan sees the free 0.01 (placing the proposals, mind your orders)",
        "USDT: 250 held by open orders on the exchange (worth 250.00 USDT): not counted or "
        "traded; the plan sees the free 500 (placing the proposals, mind your orders)",
    ]


def test_a_sell_beyond_the_cap_is_proposed_in_part_up_to_the_cap():
    # 1,000 account: BTC 600 vs target 10 % must sell 500 = 50 % of the account > 25 % cap:
    # 250 of it is proposed now (the rest at a later run), and its proceeds buy ETH.
    snap = snapshot({"BTC": 6.0, "ETH": 4.0, QUOTE: 0.0}, {"BTC": 100.0, "ETH": 100.0})
    plan = plan_rebalance(snap, targets({"BTC": 0.1, "ETH": 0.9}), POLICY, PlanState())
    sells = [o for o in plan.orders if o.side == "sell"]
    assert [(o.base, o.notional) for o in sells] == [("BTC", pytest.approx(250.0))]
    assert "part: 250.00 USDT of 500.00 USDT" in sells[0].reason
    assert "25.0% of the account" in sells[0].reason
    (buy,) = [o for o in plan.orders if o.side == "buy"]
    assert buy.base == "ETH" and buy.notional + buy.fee <= sells[0].notional - sells[0].fee
    assert not [s for s in plan.skipped if "implausible" in s.reason]


def test_the_next_rebalance_proposes_the_rest_of_a_capped_sell():
    snap = snapshot({"BTC": 6.0, "ETH": 4.0, QUOTE: 0.0}, {"BTC": 100.0, "ETH": 100.0})
    t = targets({"BTC": 0.1, "ETH": 0.9})
    first = plan_rebalance(snap, t, POLICY, PlanState())
    after = apply(first, snap)
    second = plan_rebalance(after, t, POLICY, first.state)
    sold = sum(o.amount for p in (first, second) for o in p.orders if o.base == "BTC")
    assert sold == pytest.approx(5.0, abs=0.02)  # 600 -> 100: two parts of 250


def test_dca_buys_are_exempt_from_the_cap():
    snap = snapshot({QUOTE: 1_000.0}, {"BTC": 100.0})
    plan = plan_dca(snap, targets({"BTC": 1.0}), POLICY, PlanState(), 1_000.0)
    assert [o.base for o in plan.orders] == ["BTC"] and plan.orders[0].notional > 250


# --- apply and the next state --------------------------------------------------------------


def test_apply_fills_at_the_estimated_prices_with_fees():
    # Rebalance A 70 %/B 30 % to 50/50 at price 1, fee 0.1 %, step 0.01:
    # sell 200 A -> +199.80; buy B for 199.80 / 1.001 = 199.60 (fee 0.1996) -> -199.7996.
    snap = snapshot({"A": 700.0, "B": 300.0, QUOTE: 0.0}, {"A": 1.0, "B": 1.0})
    plan = plan_rebalance(snap, targets({"A": 0.5, "B": 0.5}), POLICY, PlanState())
    after = apply(plan, snap)
    assert after.balances["A"] == pytest.approx(500.0)
    assert after.balances["B"] == pytest.approx(499.60)
    assert after.balances[QUOTE] == pytest.approx(199.80 - 199.7996)
    assert after.prices == snap.prices and after.taken_at == snap.taken_at


def test_apply_makes_the_deposit_the_plan_asks_for_first():
    snap = snapshot({QUOTE: 0.0}, {"A": 10.0})
    policy = dataclasses.replace(POLICY, allow_deposit=True)
    plan = plan_dca(snap, targets({"A": 1.0}), policy, PlanState(), 100.0)
    # 100 / 1.001 / 10 = 9.99000... -> 9.99 A, notional 99.90, fee 0.0999: 99.9999 spent,
    # deposit rounded up to the cent: 100.00.
    assert plan.deposit_needed == pytest.approx(100.00)
    assert apply(plan, snap).balances[QUOTE] == pytest.approx(0.0001, abs=1e-9)


def test_next_state_averages_the_cost_of_buys_including_the_fee():
    # 10 A held at 100; DCA buys 5 A at 130 (notional 650, fee 0.65):
    # (10 * 100 + 650 + 0.65) / 15 = 110.0433...
    snap = snapshot({"A": 10.0, QUOTE: 650.65}, {"A": 130.0}, step=1.0)
    state = PlanState(cost_basis={"A": 100.0})
    plan = plan_dca(snap, targets({"A": 1.0}), POLICY, state, 650.65)
    assert [(o.side, o.amount) for o in plan.orders] == [("buy", 5.0)]
    assert plan.state.cost_basis["A"] == pytest.approx((1_000 + 650 + 0.65) / 15)


def test_next_state_gives_an_asset_without_cost_basis_todays_price():
    snap = snapshot({"A": 1.0, "B": 2.0, QUOTE: 0.0}, {"A": 50.0, "B": 50.0})
    plan = plan_rebalance(snap, targets({"A": 1 / 3, "B": 2 / 3}), POLICY, PlanState())
    assert plan.orders == ()
    assert plan.state.cost_basis == {"A": 50.0, "B": 50.0}


def test_a_sell_leaves_the_average_cost_unchanged():
    snap = snapshot({"A": 700.0, "B": 300.0, QUOTE: 0.0}, {"A": 1.0, "B": 1.0})
    state = PlanState(cost_basis={"A": 0.5, "B": 2.0})
    plan = plan_rebalance(snap, targets({"A": 0.5, "B": 0.5}), POLICY, state)
    assert plan.state.cost_basis["A"] == 0.5
    # B: 300 units at 2.0 + 199.60 units for 199.7996 -> (600 + 199.7996) / 499.60.
    assert plan.state.cost_basis["B"] == pytest.approx((600 + 199.7996) / 499.60)


def test_every_order_says_its_weights_before_after_and_target():
    snap = snapshot({"A": 700.0, "B": 300.0, QUOTE: 0.0}, {"A": 1.0, "B": 1.0})
    plan = plan_rebalance(snap, targets({"A": 0.5, "B": 0.5}), POLICY, PlanState())
    sell, buy = plan.orders
    assert (sell.weight_before, sell.weight_target) == (pytest.approx(0.7), 0.5)
    assert sell.weight_after == pytest.approx(500 / (1_000 - 0.2 - 0.1996))
    assert buy.weight_after == pytest.approx(499.6 / (1_000 - 0.2 - 0.1996))
    assert plan.summary is not None and plan.summary.value == pytest.approx(1_000.0)
    assert plan.summary.drift_before == {"A": pytest.approx(0.2), "B": pytest.approx(-0.2)}


# --- policy from settings ------------------------------------------------------------------


def test_policy_from_settings_turns_percent_into_fractions():
    policy = example_config().policy(allow_deposit=True)
    assert policy == Policy(
        band_abs=0.05,
        band_rel=0.25,
        rebalance_to="target",
        max_order_share=0.25,
        milestone_sell_share=0.5,
        fee_rate=0.001,
        slippage=0.0005,
        outside_value=400_000.0,
        allow_deposit=True,
    )


def test_estimated_prices_include_the_assumed_slippage():
    # Buys are estimated 1 % above the snapshot price, sells 1 % below; a buy of 1,000 USDT
    # with fee 0.1 % gets 1_000 / 1.001 / (2.0 * 1.01) = 494.5549... units on a 0.0001 grid.
    snap = snapshot({"A": 1_000.0, "B": 0.0, QUOTE: 0.0}, {"A": 1.0, "B": 2.0})
    slipping = Policy(
        band_abs=0.05, band_rel=0.25, max_order_share=1.0, fee_rate=0.001, slippage=0.01
    )
    plan = plan_rebalance(snap, targets({"A": 0.5, "B": 0.5}), slipping, PlanState())
    sell, buy = plan.orders
    assert sell.price == pytest.approx(0.99) and buy.price == pytest.approx(2.02)
    assert buy.notional + buy.fee <= sell.notional - sell.fee + 1e-9  # paid from the sale only
