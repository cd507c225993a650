"""Profit-taking: each gain milestone sells part of the gain, once."""

from __future__ import annotations

import dataclasses

import pytest
from test_planner import POLICY, QUOTE, snapshot, targets

from stagewise.planner import PlanState, plan_profit

T = targets({"A": 1.0}, milestones=[50, 100])
BIG_ORDERS = dataclasses.replace(POLICY, max_order_share=1.0)


def test_a_milestone_sells_half_the_gain_once():
    # 10 A bought at 100, now 160: gain 60 % >= 50 %. Sell 50 % of the gain's value:
    # 10 * (160 - 100) * 0.5 / 160 = 1.875 A (notional 300 = 15.8 % of 1,900: under the cap).
    snap = snapshot({"A": 10.0, QUOTE: 300.0}, {"A": 160.0}, step=0.001)
    state = PlanState(cost_basis={"A": 100.0})
    plan = plan_profit(snap, T, POLICY, state)
    [order] = plan.orders
    assert (order.side, order.base, order.amount) == ("sell", "A", 1.875)
    assert order.notional == pytest.approx(300.0)
    assert order.reason == (
        "A up 60.0% on its average cost 100.00 USDT (price 160.00 USDT): milestone 50% "
        "reached: sell 50.0% of the gain"
    )
    assert plan.state.milestones_taken == {"A": (50,)}
    assert plan.state.cost_basis["A"] == 100.0  # a sell leaves the average cost unchanged
    # The same prices again (the balance after the sale): the milestone does not fire twice.
    snap = snapshot({"A": 8.125, QUOTE: 599.7}, {"A": 160.0}, step=0.001)
    again = plan_profit(snap, T, POLICY, plan.state)
    assert again.orders == () and again.state.milestones_taken == {"A": (50,)}


def test_two_milestones_at_once_make_one_order_taken_one_after_the_other():
    # Cost 100, price 250: gain 150 % reaches 50 % and 100 %. The gain is 150 / 250 = 60 % of
    # the value; each milestone sells half of it on what is left:
    # 10 -> 10 * (1 - 0.3) = 7 -> 7 * 0.7 = 4.9 left: one sell of 5.1 A.
    snap = snapshot({"A": 10.0, QUOTE: 0.0}, {"A": 250.0}, step=0.001)
    plan = plan_profit(snap, T, BIG_ORDERS, PlanState(cost_basis={"A": 100.0}))
    [order] = plan.orders
    assert order.amount == pytest.approx(5.1)
    assert "milestone 50%, 100% reached: sell 50.0% of the gain at each" in order.reason
    assert plan.state.milestones_taken == {"A": (50, 100)}


def test_the_next_milestone_fires_later():
    snap = snapshot({"A": 10.0, QUOTE: 0.0}, {"A": 210.0}, step=0.001)
    state = PlanState(cost_basis={"A": 100.0}, milestones_taken={"A": (50,)})
    plan = plan_profit(snap, T, BIG_ORDERS, state)
    # Gain 110 %: only 100 % is new. 10 * 110 * 0.5 / 210 = 2.6190 -> 2.619 A.
    assert [o.amount for o in plan.orders] == [2.619]
    assert plan.state.milestones_taken == {"A": (50, 100)}


def test_no_milestone_below_the_first_gain():
    snap = snapshot({"A": 10.0, QUOTE: 0.0}, {"A": 149.0})
    plan = plan_profit(snap, T, POLICY, PlanState(cost_basis={"A": 100.0}))
    assert plan.orders == () and plan.skipped == ()


def test_no_cost_basis_is_skipped_with_a_reason_and_starts_today():
    snap = snapshot({"A": 10.0, QUOTE: 0.0}, {"A": 500.0})
    plan = plan_profit(snap, T, POLICY, PlanState())
    assert plan.orders == ()
    [skip] = plan.skipped
    assert skip.asset == "A" and "no cost basis" in skip.reason
    assert plan.state.cost_basis == {"A": 500.0}


def test_a_skipped_milestone_is_not_recorded_and_is_tried_again():
    # 0.1 A at cost 100, price 160: sell 0.1 * 60 * 0.5 / 160 = 0.01875 A = 3 USDT < 5 minimum.
    snap = snapshot({"A": 0.1, QUOTE: 0.0}, {"A": 160.0}, step=0.00001, min_notional=5.0)
    plan = plan_profit(snap, T, BIG_ORDERS, PlanState(cost_basis={"A": 100.0}))
    assert plan.orders == () and "minimum order value" in plan.skipped[0].reason
    assert plan.state.milestones_taken == {}


def test_a_stage_without_milestones_takes_no_profit():
    snap = snapshot({"A": 10.0, QUOTE: 0.0}, {"A": 1_000.0})
    t = targets({"A": 1.0}, milestones=[])
    plan = plan_profit(snap, t, POLICY, PlanState(cost_basis={"A": 1.0}))
    assert plan.orders == () and "takes no profits" in plan.notes[0]
