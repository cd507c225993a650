"""DCA and windfall: buys for new money, biggest gaps first, carry, the emergency rule."""

from __future__ import annotations

import dataclasses

import pytest
from support import POLICY, QUOTE, market, snapshot, spend, targets

from stagewise.planner import PlanState, apply, plan_dca, plan_windfall


def test_dca_fills_biggest_gap_first():
    # A 400 + B 600 + 100 USDT = 1,100; targets 50/50, the 100 USDT is the contribution.
    # Gaps: A 550 - 400 = 150, B 550 - 600 = -50 -> all 100 to A.
    # 100 / 1.001 / 10 = 9.99000.. A -> 9.99 A (step 0.01): notional 99.90, fee 0.0999.
    # Carry: 100 - 99.9999 = 0.0001.
    snap = snapshot({"A": 40.0, "B": 30.0, QUOTE: 100.0}, {"A": 10.0, "B": 20.0})
    plan = plan_dca(snap, targets({"A": 0.5, "B": 0.5}), POLICY, PlanState(), 100.0)
    [order] = plan.orders
    assert (order.base, order.side, order.amount) == ("A", "buy", 9.99)
    assert (order.notional, order.fee) == (pytest.approx(99.9), pytest.approx(0.0999))
    assert plan.state.carry == pytest.approx(0.0001)
    assert "biggest gaps first" in order.reason and "A 36.4% vs target 50.0%" in order.reason


def test_dca_splits_between_gaps_when_the_budget_covers_several():
    # A 100, B 300, C 600 + 500 USDT = 1,500; targets 40/30/30 -> A 600, B 450, C 450.
    # Gaps: A 500, B 150, C -150. Budget 500: A takes 500 (biggest), nothing left for B.
    # With 600 (100 more USDT on the account): value 1,600 -> A 640 - 100 = 540, B 480 - 300
    # = 180: A 540, B 60.
    prices = {"A": 1.0, "B": 1.0, "C": 1.0}
    t = targets({"A": 0.4, "B": 0.3, "C": 0.3})
    snap = snapshot({"A": 100.0, "B": 300.0, "C": 600.0, QUOTE: 500.0}, prices, fee=0.0)
    plan = plan_dca(snap, t, POLICY, PlanState(), 500.0)
    assert [(o.base, o.notional) for o in plan.orders] == [("A", 500.0)]
    snap = snapshot({"A": 100.0, "B": 300.0, "C": 600.0, QUOTE: 600.0}, prices, fee=0.0)
    plan = plan_dca(snap, t, POLICY, PlanState(), 600.0)
    assert [(o.base, o.notional) for o in plan.orders] == [("A", 540.0), ("B", 60.0)]


def test_dca_never_sells_an_overweight_asset():
    snap = snapshot({"A": 900.0, "B": 0.0, QUOTE: 10.0}, {"A": 1.0, "B": 1.0})
    plan = plan_dca(snap, targets({"A": 0.5, "B": 0.5}), POLICY, PlanState(), 10.0)
    assert [(o.base, o.side) for o in plan.orders] == [("B", "buy")]


def test_dca_carries_money_too_small_to_place_and_places_it_next_run():
    # Run 1: 6 USDT into A at 100 (step 0.001, minimum order 10 USDT): 0.06 A = 6 < 10 ->
    # skipped, 6 carried (it stays on the account as USDT).
    rules = {"step": 0.001, "min_notional": 10.0, "fee": 0.0}
    t = targets({"A": 1.0})
    first = plan_dca(snapshot({QUOTE: 6.0}, {"A": 100.0}, **rules), t, POLICY, PlanState(), 6.0)
    assert first.orders == () and first.state.carry == pytest.approx(6.0)
    [skip] = first.skipped
    assert skip.asset == "A" and "minimum order value 10.00 USDT" in skip.reason
    # Run 2: 6 more deposited -> 12 USDT, budget 6 + 6 carried = 12 -> 0.12 A = 12 >= 10.
    snap = snapshot({QUOTE: 12.0}, {"A": 100.0}, **rules)
    second = plan_dca(snap, t, POLICY, first.state, 6.0)
    assert [(o.base, o.amount, o.notional) for o in second.orders] == [("A", 0.12, 12.0)]
    assert second.state.carry == pytest.approx(0.0)


def test_dca_while_paused_buys_nothing_and_keeps_the_carry():
    state = PlanState(carry=7.5, paused=True, pause_reason="lost job")
    snap = snapshot({QUOTE: 1_000.0}, {"A": 10.0})
    plan = plan_dca(snap, targets({"A": 1.0}), POLICY, state, 500.0)
    assert plan.orders == () and plan.refused is None
    assert plan.state.carry == 7.5  # the contribution is not added: contributions stop
    assert any("emergency rule" in n and "lost job" in n for n in plan.notes)
    assert any("emergency rule" in s.reason for s in plan.skipped)


def test_dca_never_spends_more_than_the_cash_above_its_target():
    # 1,000 account: A 700 + 300 USDT; cash target 20 % = 200 -> 100 available of a 500 budget.
    snap = snapshot({"A": 700.0, QUOTE: 300.0}, {"A": 1.0}, fee=0.0)
    t = targets({"A": 0.8}, cash=0.2)
    plan = plan_dca(snap, t, POLICY, PlanState(), 500.0)
    assert spend(plan) == pytest.approx(100.0)
    assert plan.deposit_needed == 0.0
    assert plan.state.carry == pytest.approx(0.0)  # the unfunded 400 is not carried
    assert any("only 100.00 USDT of the 500.00 USDT budget" in n for n in plan.notes)


def test_dca_may_need_a_deposit_in_read_only_mode():
    # Nothing on the account; 300 to invest 50/50 at price 1 with no fee: deposit 300.
    snap = snapshot({"A": 0.0, QUOTE: 0.0}, {"A": 1.0, "B": 1.0}, fee=0.0)
    policy = dataclasses.replace(POLICY, allow_deposit=True)
    plan = plan_dca(snap, targets({"A": 0.5, "B": 0.5}), policy, PlanState(), 300.0)
    assert [(o.base, o.notional) for o in plan.orders] == [("A", 150.0), ("B", 150.0)]
    assert plan.deposit_needed == pytest.approx(300.01)  # exact cents get one cent of slack
    assert min(apply(plan, snap).balances.values()) >= 0


def test_dca_orders_are_sorted_by_asset_name():
    snap = snapshot({QUOTE: 300.0}, {"C": 1.0, "A": 1.0, "B": 1.0})
    plan = plan_dca(snap, targets({"C": 0.5, "A": 0.2, "B": 0.3}), POLICY, PlanState(), 300.0)
    assert [o.base for o in plan.orders] == ["A", "B", "C"]


def test_windfall_invests_the_stage_share_of_the_bonus_like_dca():
    # 50 % of a 2,000 bonus = 1,000, plus 4 carried, into A/B 50/50 (price 1, no fee).
    snap = snapshot({QUOTE: 1_004.0}, {"A": 1.0, "B": 1.0}, fee=0.0)
    state = PlanState(carry=4.0)
    plan = plan_windfall(snap, targets({"A": 0.5, "B": 0.5}), POLICY, state, 2_000.0, 0.5)
    assert plan.rule == "windfall"
    assert [(o.base, o.notional) for o in plan.orders] == [("A", 502.0), ("B", 502.0)]
    assert all("50.0% of a 2,000.00 USDT bonus" in o.reason for o in plan.orders)
    assert plan.state.carry == pytest.approx(0.0)


def test_windfall_refuses_a_share_given_in_percent():
    snap = snapshot({QUOTE: 1_000.0}, {"A": 1.0})
    plan = plan_windfall(snap, targets({"A": 1.0}), POLICY, PlanState(), 2_000.0, 50.0)
    assert plan.refused is not None and "fraction" in plan.refused


def test_windfall_waits_while_the_emergency_rule_is_in_force():
    snap = snapshot({QUOTE: 1_000.0}, {"A": 1.0})
    state = PlanState(paused=True)
    plan = plan_windfall(snap, targets({"A": 1.0}), POLICY, state, 2_000.0, 0.5)
    assert plan.orders == () and any("emergency rule" in n for n in plan.notes)


def test_dca_uses_the_policy_fee_where_the_market_states_none():
    # The market's fee is NaN (unknown): the policy's 1 % applies. 101 / 1.01 = 100 A.
    snap = snapshot({QUOTE: 101.0}, {"A": 1.0}, {"A": market("A", fee=float("nan"))})
    policy = dataclasses.replace(POLICY, fee_rate=0.01)
    plan = plan_dca(snap, targets({"A": 1.0}), policy, PlanState(), 101.0)
    [order] = plan.orders
    assert (order.amount, order.fee) == (pytest.approx(100.0), pytest.approx(1.0))


@pytest.mark.parametrize("carry", [float("nan"), -1.0])
def test_an_unusable_carry_refuses_rather_than_invests_it(carry):
    snap = snapshot({QUOTE: 100.0}, {"A": 1.0})
    plan = plan_dca(snap, targets({"A": 1.0}), POLICY, PlanState(carry=carry), 100.0)
    assert plan.refused is not None and "carried money" in plan.refused


def test_dca_keeps_money_in_cash_when_crypto_is_at_its_target_share():
    # Account: A 600 + B 400 + 300 USDT contributed = 1,300; outside investments 3,000, so
    # the whole portfolio is 4,300 and the target share (20 %, the investor's point in the
    # band 15-25 %) is 860 of crypto. Targets 50/50 scaled by 860 / 1,300: A and B aim at
    # 430 each. A (600) has no gap; B has 430 - 400 = 30. Only that is bought; the other 270
    # stays cash, carried, and the note says why.
    snap = snapshot({"A": 600.0, "B": 400.0, QUOTE: 300.0}, {"A": 1.0, "B": 1.0}, fee=0.0)
    t = targets({"A": 0.5, "B": 0.5})
    policy = dataclasses.replace(POLICY, outside_value=3_000.0)
    plan = plan_dca(snap, t, policy, PlanState(), 300.0)
    assert [(o.base, o.notional) for o in plan.orders] == [("B", pytest.approx(30.0))]
    assert plan.state.carry == pytest.approx(270.0)
    assert any("targets scaled" in n for n in plan.notes)
    assert any("270.00 USDT carried as cash" in n for n in plan.notes)
    # The same account without the band problem invests all of it.
    roomy = dataclasses.replace(POLICY, outside_value=100_000.0)
    plan = plan_dca(snap, t, roomy, PlanState(), 300.0)
    assert sum(o.notional for o in plan.orders) == pytest.approx(300.0)
