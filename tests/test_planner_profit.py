"""Profit-taking: each gain milestone sells part of the gain once, from a position old and
big enough; the milestones re-arm from the last one's price; the proceeds leave the account."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from support import POLICY, QUOTE, TAKEN_AT, received, snapshot, spend, targets

from stagewise.planner import PlanState, apply, plan_drift, plan_profit, plan_rebalance
from stagewise.planner.fills import state_seen

T = targets({"A": 1.0}, milestones=[50, 100])
BIG_ORDERS = dataclasses.replace(POLICY, max_order_share=1.0)
# 151 days before TAKEN_AT (2026-06-01): past policy.profit_min_days (90 by default).
OPENED = {"A": "2026-01-01"}
WHERE_TO = (
    "the proceeds leave the crypto portfolio: move them to your diversified traditional investments"
)


def test_a_milestone_sells_half_the_gain_once():
    # 10 A bought at 100, now 160: gain 60 % >= 50 %. Sell 50 % of the gain's value:
    # 10 * (160 - 100) * 0.5 / 160 = 1.875 A (notional 300 = 15.8 % of 1,900: under the cap).
    snap = snapshot({"A": 10.0, QUOTE: 300.0}, {"A": 160.0}, step=0.001)
    state = PlanState(cost_basis={"A": 100.0}, held_since=OPENED)
    plan = plan_profit(snap, T, POLICY, state)
    [order] = plan.orders
    assert (order.side, order.base, order.amount) == ("sell", "A", 1.875)
    assert order.notional == pytest.approx(300.0)
    assert order.reason == (
        "A up 60.0% on its average cost 100.00 USDT (price 160.00 USDT); held 151 days, "
        f"worth 1,600.00 USDT: milestone 50% reached: sell 50.0% of the gain; {WHERE_TO}"
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
    state = PlanState(cost_basis={"A": 100.0}, held_since=OPENED)
    plan = plan_profit(snap, T, BIG_ORDERS, state)
    [order] = plan.orders
    assert order.amount == pytest.approx(5.1)
    assert "milestone 50%, 100% reached: sell 50.0% of the gain at each" in order.reason
    # Every milestone is taken: they re-arm from today's price (was: both used for good).
    assert "every milestone is taken: they re-arm from today's price 250.00 USDT" in order.reason
    assert plan.state.milestones_taken == {} and plan.state.profit_base == {"A": 250.0}


def test_the_next_milestone_fires_later():
    snap = snapshot({"A": 10.0, QUOTE: 0.0}, {"A": 210.0}, step=0.001)
    state = PlanState(cost_basis={"A": 100.0}, milestones_taken={"A": (50,)}, held_since=OPENED)
    plan = plan_profit(snap, T, BIG_ORDERS, state)
    # Gain 110 %: only 100 % is new. 10 * 110 * 0.5 / 210 = 2.6190 -> 2.619 A.
    assert [o.amount for o in plan.orders] == [2.619]
    assert plan.state.milestones_taken == {} and plan.state.profit_base == {"A": 210.0}


def test_no_milestone_below_the_first_gain():
    snap = snapshot({"A": 10.0, QUOTE: 0.0}, {"A": 149.0})
    plan = plan_profit(snap, T, POLICY, PlanState(cost_basis={"A": 100.0}, held_since=OPENED))
    assert plan.orders == () and plan.skipped == ()


def test_no_cost_basis_is_skipped_with_a_reason_and_starts_today():
    snap = snapshot({"A": 10.0, QUOTE: 0.0}, {"A": 500.0})
    plan = plan_profit(snap, T, POLICY, PlanState())
    assert plan.orders == ()
    [skip] = plan.skipped
    assert skip.asset == "A" and "no cost basis" in skip.reason
    assert plan.state.cost_basis == {"A": 500.0}
    assert plan.state.held_since == {"A": "2026-06-01"}  # first seen today: its age starts


def test_a_skipped_milestone_is_not_recorded_and_is_tried_again():
    # 0.1 A at cost 100, price 160: sell 0.1 * 60 * 0.5 / 160 = 0.01875 A = 3 USDT < 5 minimum.
    # (A 16 USDT position: policy.profit_min_value 0 lets the market's minimum decide.)
    snap = snapshot({"A": 0.1, QUOTE: 0.0}, {"A": 160.0}, step=0.00001, min_notional=5.0)
    policy = dataclasses.replace(BIG_ORDERS, profit_min_value=0.0)
    plan = plan_profit(snap, T, policy, PlanState(cost_basis={"A": 100.0}, held_since=OPENED))
    assert plan.orders == () and "minimum order value" in plan.skipped[0].reason
    assert plan.state.milestones_taken == {}


def test_a_stage_without_milestones_takes_no_profit():
    snap = snapshot({"A": 10.0, QUOTE: 0.0}, {"A": 1_000.0})
    t = targets({"A": 1.0}, milestones=[])
    plan = plan_profit(snap, t, POLICY, PlanState(cost_basis={"A": 1.0}))
    assert plan.orders == () and "takes no profits" in plan.notes[0]


# --- a position old and big enough ----------------------------------------------------------


def test_a_milestone_waits_until_the_position_is_policy_profit_min_days_old():
    # UNI's case: +60 % 19 days after its first buy. Not taken, not recorded: tried again.
    snap = snapshot({"A": 10.0, QUOTE: 0.0}, {"A": 160.0}, step=0.001)
    state = PlanState(cost_basis={"A": 100.0}, held_since={"A": "2026-05-13"})
    plan = plan_profit(snap, T, POLICY, state)
    assert plan.orders == ()
    [skip] = plan.skipped
    assert skip.reason == (
        "A up 60.0% on its average cost 100.00 USDT (price 160.00 USDT): milestone 50% "
        "reached, but held 19 days, under policy.profit_min_days 90: not taken yet"
    )
    assert plan.state.milestones_taken == {} and plan.state.held_since == state.held_since
    # 90 days after it was opened the same gain is taken.
    later = dataclasses.replace(snap, taken_at=TAKEN_AT + timedelta(days=71))
    [order] = plan_profit(later, T, POLICY, plan.state).orders
    assert "held 90 days" in order.reason


def test_a_milestone_waits_until_the_position_is_worth_policy_profit_min_value():
    snap = snapshot({"A": 3.0, QUOTE: 0.0}, {"A": 160.0}, step=0.001)  # 480 USDT
    plan = plan_profit(snap, T, POLICY, PlanState(cost_basis={"A": 100.0}, held_since=OPENED))
    assert plan.orders == () and plan.state.milestones_taken == {}
    [skip] = plan.skipped
    assert skip.reason.endswith(
        "milestone 50% reached, but the position is worth 480.00 USDT, under "
        "policy.profit_min_value 500.00 USDT: not taken yet"
    )
    worth_it = dataclasses.replace(POLICY, profit_min_value=480.0)
    assert plan_profit(snap, T, worth_it, plan.state).orders != ()


def test_a_position_is_dated_when_opened_and_forgets_the_day_when_closed():
    # B is bought from nothing today; A, held, keeps its day; C, sold out, loses its own.
    snap = snapshot(
        {"A": 5.0, "C": 2.0, QUOTE: 1_000.0}, {"A": 100.0, "B": 100.0, "C": 100.0}, step=0.001
    )
    state = PlanState(
        cost_basis={"A": 100.0, "C": 100.0}, held_since={"A": "2026-01-01", "C": "2025-03-01"}
    )
    plan = plan_rebalance(snap, targets({"A": 0.5, "B": 0.5}), BIG_ORDERS, state)
    assert {(o.side, o.base) for o in plan.orders} >= {("sell", "C"), ("buy", "B")}
    assert plan.state.held_since == {"A": "2026-01-01", "B": "2026-06-01"}


# --- re-arming ------------------------------------------------------------------------------


def test_the_milestones_re_arm_from_the_last_ones_price_not_the_next_day():
    t = targets({"A": 1.0}, milestones=[50, 100])
    snap = snapshot({"A": 10.0, QUOTE: 0.0}, {"A": 210.0}, step=0.001)
    state = PlanState(cost_basis={"A": 100.0}, milestones_taken={"A": (50,)}, held_since=OPENED)
    first = plan_profit(snap, t, BIG_ORDERS, state)
    assert first.state.profit_base == {"A": 210.0} and first.state.milestones_taken == {}
    after = apply(first, snap)
    # The next day, and at +42.9 % over 210: no milestone of the new round yet.
    for price in (210.0, 300.0):
        next_day = dataclasses.replace(after, prices={"A": price}, taken_at=TAKEN_AT + timedelta(1))
        assert plan_profit(next_day, t, BIG_ORDERS, first.state).orders == ()
    # At 320 (+52.4 % over 210): half the gain above 210 is sold.
    up = dataclasses.replace(after, prices={"A": 320.0})
    plan = plan_profit(up, t, BIG_ORDERS, first.state)
    [order] = plan.orders
    held = after.balances["A"]
    assert order.amount == pytest.approx(held * (320 - 210) * 0.5 / 320, abs=0.001)
    assert order.reason.startswith(
        "A up 52.4% since the last profit taken at 210.00 USDT (average cost 100.00 USDT, "
        "price 320.00 USDT)"
    )
    assert plan.state.milestones_taken == {"A": (50,)}
    assert plan.state.profit_base == {"A": 210.0}


def test_a_fresh_position_counts_from_its_new_cost_not_the_old_re_arm_price():
    snap = snapshot({QUOTE: 1_000.0}, {"A": 100.0}, step=0.001)
    state = PlanState(profit_base={"A": 400.0}, cost_basis={"A": 50.0})
    plan = plan_rebalance(snap, targets({"A": 1.0}), BIG_ORDERS, state)
    assert [o.side for o in plan.orders] == ["buy"]
    assert plan.state.profit_base == {} and plan.state.held_since == {"A": "2026-06-01"}


# --- the proceeds leave the crypto portfolio -------------------------------------------------

# A 60 % / B 40 %, A up 60 % on its cost: in its band (60.0 %) until profit is taken.
TWO = targets({"A": 0.6, "B": 0.4}, milestones=[50, 100])


def two_assets():
    snap = snapshot({"A": 10.0, "B": 10.6667, QUOTE: 0.0}, {"A": 160.0, "B": 100.0}, step=0.0001)
    state = PlanState(
        cost_basis={"A": 100.0, "B": 100.0}, held_since={"A": "2026-01-01", "B": "2026-01-01"}
    )
    return snap, state


def test_profit_proceeds_are_moved_out_and_not_bought_back_by_the_next_drift_or_rebalance():
    snap, state = two_assets()
    profit = plan_profit(snap, TWO, POLICY, state)
    [sale] = profit.orders
    assert profit.moved_out == pytest.approx(sale.notional - sale.fee) and profit.moved_out > 290
    assert any("diversified traditional investments" in n for n in profit.notes)
    after = apply(profit, snap)
    assert after.balances[QUOTE] == snap.balances[QUOTE]  # the proceeds left the account
    assert after.total_value == pytest.approx(snap.total_value - sale.notional)
    # A is now 54.9 % (band 55-65 %): the drift watch trades back, with B's money only.
    for rule in (plan_drift, plan_rebalance):
        plan = rule(after, TWO, POLICY, profit.state)
        assert plan.orders, rule
        assert spend(plan) <= received(plan), (rule, plan.orders)


def test_read_only_proceeds_are_set_aside_until_the_account_shows_them_gone():
    snap, state = two_assets()
    profit = plan_profit(snap, TWO, POLICY, state)
    [sale] = profit.orders
    # Proposed on the account as read (nothing sold yet): set aside, the milestone taken.
    seen = state_seen(snap, snap.balances, state, profit.state, profit.moved_out)
    assert seen.profit_to_move == pytest.approx(profit.moved_out)
    assert seen.milestones_taken == {"A": (50,)}
    # The person sold but has not moved the money yet: the drift watch does not spend it.
    balances = dict(snap.balances)
    balances["A"] -= sale.amount
    balances[QUOTE] += sale.notional - sale.fee
    sold = dataclasses.replace(snap, balances=balances)
    drift = plan_drift(sold, TWO, POLICY, seen)
    assert spend(drift) <= received(drift)
    assert any("profit proceeds are set aside" in n for n in drift.notes)
    careless = plan_drift(sold, TWO, POLICY, dataclasses.replace(seen, profit_to_move=0.0))
    assert spend(careless) > received(careless) + 250  # what the set-aside prevents
    # Seen sold: the value fell by the sale's fee only, and by that much the set-aside.
    still = state_seen(sold, snap.balances, seen, drift.state)
    assert still.profit_to_move == pytest.approx(profit.moved_out - sale.fee)
    # Seen moved out: gone, and nothing is set aside any more.
    moved = dataclasses.replace(sold, balances={**balances, QUOTE: 0.0})
    done = state_seen(moved, sold.balances, still, still)
    assert done.profit_to_move == 0.0
    # A deposit is not a move: it leaves the set-aside alone.
    deposit = dataclasses.replace(sold, balances={**balances, QUOTE: balances[QUOTE] + 500})
    assert state_seen(deposit, sold.balances, still, still).profit_to_move == still.profit_to_move


def test_read_only_dates_a_position_when_first_seen_and_forgets_it_when_gone():
    snap, _ = two_assets()
    seen = state_seen(snap, None, PlanState(), PlanState())
    assert seen.held_since == {"A": "2026-06-01", "B": "2026-06-01"}
    later = dataclasses.replace(
        snap, balances={**snap.balances, "A": 0.0}, taken_at=TAKEN_AT + timedelta(days=30)
    )
    state = dataclasses.replace(seen, profit_base={"A": 160.0})
    again = state_seen(later, snap.balances, state, state)
    assert again.held_since == {"B": "2026-06-01"} and again.profit_base == {}


def test_a_milestone_sale_above_the_cap_is_sold_in_parts_until_it_is_all_sold():
    # Cost 100, price 250: both milestones at once sell 5.1 A (1,275 USDT, 51 % of the
    # 2,500 account): over the 25 % cap, so 625 USDT (2.5 A) now and 2.6 A owed.
    snap = snapshot({"A": 10.0, QUOTE: 0.0}, {"A": 250.0}, step=0.001)
    state = PlanState(cost_basis={"A": 100.0}, held_since=OPENED)
    first = plan_profit(snap, T, POLICY, state)
    [order] = first.orders
    assert order.amount == pytest.approx(2.5)
    assert "(part: 625.00 USDT of 1,275.00 USDT" in order.reason
    assert first.state.profit_due == {"A": pytest.approx(2.6)}
    assert first.state.profit_base == {"A": 250.0}  # the milestones re-armed at the sale
    # The next run (the proceeds moved out): the rest, up to the cap of 1,875: 1.875 A.
    snap = snapshot({"A": 7.5, QUOTE: 0.0}, {"A": 250.0}, step=0.001)
    second = plan_profit(snap, T, POLICY, first.state)
    [order] = second.orders
    assert order.amount == pytest.approx(1.875)
    assert order.reason.startswith(
        "A: the rest of a profit sale the cap split: 2.6 A of it left to sell"
    )
    assert second.state.profit_due == {"A": pytest.approx(0.725)}
    # The third sells what is left (0.725 A, under the cap) and owes nothing: 5.1 A in all.
    snap = snapshot({"A": 5.625, QUOTE: 0.0}, {"A": 250.0}, step=0.001)
    third = plan_profit(snap, T, POLICY, second.state)
    [order] = third.orders
    assert order.amount == pytest.approx(0.725)
    assert third.state.profit_due == {}
    # And then nothing: the milestones count from 250 again.
    snap = snapshot({"A": 4.9, QUOTE: 0.0}, {"A": 250.0}, step=0.001)
    assert plan_profit(snap, T, POLICY, third.state).orders == ()


def test_a_profit_sale_owed_is_forgotten_with_the_position():
    snap = snapshot({"A": 0.0, "B": 1.0, QUOTE: 10.0}, {"A": 250.0, "B": 1.0}, step=0.001)
    state = PlanState(cost_basis={"A": 100.0}, held_since=OPENED, profit_due={"A": 2.6})
    plan = plan_profit(snap, T, POLICY, state)
    assert plan.orders == () and plan.state.profit_due == {}
    seen = state_seen(snap, {"A": 2.6}, state, plan.state)
    assert seen.profit_due == {}


def test_a_rest_owed_under_the_minimum_order_is_skipped_with_the_reason_and_forgotten():
    # 0.01 A at 250 = 2.50 USDT, under policy.min_order (10): no dust order, nothing owed.
    snap = snapshot({"A": 5.0, QUOTE: 0.0}, {"A": 250.0}, step=0.001)
    state = PlanState(cost_basis={"A": 250.0}, held_since=OPENED, profit_due={"A": 0.01})
    plan = plan_profit(snap, T, POLICY, state)
    assert plan.orders == () and plan.state.profit_due == {}
    [skip] = plan.skipped
    assert skip.asset == "A" and "the rest of a profit sale the cap split" in skip.reason
