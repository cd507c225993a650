"""Withdraw: the yearly rate in periods, overweight assets first, never beyond the balance."""

from __future__ import annotations

import dataclasses

import pytest
from support import POLICY, QUOTE, received, snapshot, targets

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


def test_beyond_the_overweight_part_the_rest_keeps_the_holdings_level_with_their_targets():
    # A 520 / B 480 at 50/50: 100 to raise. 40 from A brings it level with B (480 each); the
    # other 60 from both alike: A 70, B 30, leaving 450 and 450. No fee, step 0.01.
    snap = snapshot({"A": 520.0, "B": 480.0, QUOTE: 0.0}, PRICES, fee=0.0)
    plan = plan_withdraw(snap, T, POLICY, PlanState(), 0.1, 1, 2026)
    amounts = {o.base: o.amount for o in plan.orders}
    assert amounts == {"A": pytest.approx(70.0), "B": pytest.approx(30.0)}


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
    policy = dataclasses.replace(POLICY, max_order_share=1.0, min_order=0.0)  # (B is 7)
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


def test_a_small_withdrawal_is_one_order_from_the_most_overweight_holding() -> None:
    # 20 to raise from five holdings near target: water-filling would take 4 from each,
    # dust under policy.min_order 10; it is one order instead.
    five = targets({a: 0.2 for a in "ABCDE"})
    snap = snapshot(
        {"A": 205.0, "B": 200.0, "C": 199.0, "D": 198.0, "E": 198.0, QUOTE: 0.0},
        {a: 1.0 for a in "ABCDE"},
        fee=0.0,
    )
    plan = plan_withdraw(snap, five, POLICY, PlanState(), 0.02 * 12, 12, 2026)
    assert len(plan.orders) == 1 and plan.orders[0].notional == pytest.approx(20.0, abs=0.01)
    assert all(o.notional >= POLICY.min_order for o in plan.orders)


def test_what_a_period_cannot_raise_is_owed_to_the_next_and_said() -> None:
    # 3 to raise: under the 10 floor, nothing is sold; the 3 is owed and raised with the next.
    snap = snapshot({"A": 150.0, "B": 150.0, QUOTE: 0.0}, PRICES, fee=0.0)
    first = plan_withdraw(snap, T, POLICY, PlanState(), 0.12, 12, 2026)
    assert first.orders == () and first.state.withdraw_due == pytest.approx(3.0)
    assert any("3.00 USDT is owed to the next period" in n for n in first.notes)
    second = plan_withdraw(snap, T, POLICY, first.state, 0.12 * 3, 12, 2026)
    assert received(second) == pytest.approx(9.0 + 3.0, abs=0.01)  # this period's and the owed
    assert second.state.withdraw_due == 0.0


def test_withdrawal_proceeds_leave_the_account_and_a_read_only_one_is_set_aside() -> None:
    from stagewise.planner.fills import state_seen

    snap = snapshot({"A": 600.0, "B": 400.0, QUOTE: 0.0}, PRICES)
    plan = plan_withdraw(snap, T, POLICY, PlanState(), 0.12, 12, 2026)
    assert plan.moved_out == pytest.approx(received(plan)) and plan.moved_out > 0
    assert apply(plan, snap).balances[QUOTE] == 0.0  # the retiree takes the money
    seen = state_seen(snap, None, PlanState(), plan.state, plan.moved_out)
    assert seen.profit_to_move == pytest.approx(received(plan))  # never spent by a rebalance
