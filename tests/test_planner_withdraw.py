"""Withdraw: the yearly rate in periods, overweight assets first, never beyond the balance."""

from __future__ import annotations

import dataclasses

import pytest
from test_planner import POLICY, QUOTE, received, snapshot, targets

from stagewise.planner import PlanState, apply, plan_withdraw

T = targets({"A": 0.5, "B": 0.5})
PRICES = {"A": 1.0, "B": 1.0}


def test_a_withdrawal_comes_from_the_most_overweight_asset_first():
    # A 600 / B 400 vs 50/50: 12 % a year in 12 parts of 1,000 of crypto = 10 this month,
    # all from A (100 over target). Grossed up for the 0.1 % fee: 10 / 0.999 = 10.01001 ->
    # 10.01 A, fee 0.01001: 9.99999 received.
    snap = snapshot({"A": 600.0, "B": 400.0, QUOTE: 0.0}, PRICES)
    plan = plan_withdraw(snap, T, POLICY, PlanState(), 0.12, 12, 2026)
    assert [(o.side, o.base, o.amount) for o in plan.orders] == [("sell", "A", 10.01)]
    assert received(plan) == pytest.approx(9.99999)
    assert "overweight first" in plan.orders[0].reason
    assert (plan.state.withdrawn_year, plan.state.withdrawn) == (2026, pytest.approx(9.99999))


def test_beyond_the_overweight_part_the_rest_is_pro_rata():
    # A 520 / B 480: 20 over in A. 100 to raise: 20 from A, then 80 pro rata to what is
    # left (A 500, B 480): A 40.82, B 39.18. No fee, step 0.01.
    snap = snapshot({"A": 520.0, "B": 480.0, QUOTE: 0.0}, PRICES, fee=0.0)
    plan = plan_withdraw(snap, T, POLICY, PlanState(), 0.1, 1, 2026)
    amounts = {o.base: o.amount for o in plan.orders}
    assert amounts == {"A": pytest.approx(60.81), "B": pytest.approx(39.18)}


def test_the_withdrawn_total_resets_with_the_year():
    snap = snapshot({"A": 500.0, "B": 500.0, QUOTE: 0.0}, PRICES, fee=0.0)
    same_year = PlanState(withdrawn_year=2026, withdrawn=50.0)
    plan = plan_withdraw(snap, T, POLICY, same_year, 0.12, 12, 2026)
    assert plan.state.withdrawn == pytest.approx(60.0)
    plan = plan_withdraw(snap, T, POLICY, same_year, 0.12, 12, 2027)
    assert (plan.state.withdrawn_year, plan.state.withdrawn) == (2027, pytest.approx(10.0))


def test_a_withdrawal_never_sells_more_than_the_free_balance():
    # 100 % of everything at once, the fee grossed up on top: capped at the balances.
    snap = snapshot({"A": 3.3333, "B": 7.0, QUOTE: 0.0}, {"A": 3.0, "B": 1.0}, step=0.0001)
    policy = dataclasses.replace(POLICY, max_order_share=1.0)
    plan = plan_withdraw(snap, T, policy, PlanState(), 1.0, 1, 2026)
    after = apply(plan, snap)
    assert after.balances["A"] >= 0 and after.balances["B"] >= 0
    assert {o.base: o.amount for o in plan.orders} == {"A": 3.3333, "B": 7.0}


def test_a_zero_rate_withdraws_nothing():
    snap = snapshot({"A": 500.0, "B": 500.0, QUOTE: 0.0}, PRICES)
    plan = plan_withdraw(snap, T, POLICY, PlanState(), 0.0, 12, 2026)
    assert plan.orders == () and "nothing to sell" in plan.notes[0]


@pytest.mark.parametrize("rate", [float("nan"), -0.01, 3.3])
def test_a_rate_that_is_not_a_fraction_refuses(rate):
    snap = snapshot({"A": 500.0, QUOTE: 0.0}, PRICES)
    plan = plan_withdraw(snap, T, POLICY, PlanState(), rate, 12, 2026)
    assert plan.refused is not None and "withdrawal rate" in plan.refused
