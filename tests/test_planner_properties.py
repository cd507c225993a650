"""Invariants of every plan, over generated accounts (Hypothesis).

Accounts: 1-6 assets with prices across eight orders of magnitude, exchange grids from none
to whole units, minimums, fees; targets with or without cash; balances anywhere from empty to
far off target, with coins outside the plan.
"""

from __future__ import annotations

import dataclasses
import math

from hypothesis import assume, given, settings
from hypothesis import strategies as st
from support import QUOTE, TAKEN_AT, market, on_step, targets

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
from stagewise.snapshot import Snapshot
from stagewise.targets import Targets

NAMES = ["AAA", "BBB", "CCC", "DDD", "EEE", "FFF"]
PROPERTY = settings(max_examples=300, deadline=None)

prices = st.floats(0.001, 100_000.0)
steps = st.sampled_from([0.0, 1e-8, 1e-4, 0.01, 0.1, 1.0])
values = st.one_of(st.just(0.0), st.floats(0.0, 50_000.0))


@st.composite
def accounts(draw: st.DrawFn) -> tuple[Snapshot, Targets]:
    """A snapshot and targets: some assets in the plan, maybe one held outside it."""
    names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=len(NAMES), unique=True))
    planned = names[: max(1, len(names) - draw(st.integers(0, 1)))]
    cash = draw(st.sampled_from([0.0, 0.05, 0.2]))
    raw = [draw(st.integers(1, 100)) for _ in planned]
    weights = {a: r / sum(raw) * (1 - cash) for a, r in zip(planned, raw, strict=True)}
    price = {a: draw(prices) for a in names}
    balances = {a: draw(values) / price[a] for a in names}
    balances[QUOTE] = draw(values)
    markets = {
        a: market(
            a,
            step=(step := draw(steps)),
            min_notional=draw(st.sampled_from([0.0, 1.0, 10.0])),
            min_amount=step * draw(st.sampled_from([0, 1, 5])),
            fee=draw(st.sampled_from([0.0, 0.001, 0.0075])),
        )
        for a in names
    }
    snap = Snapshot(TAKEN_AT, QUOTE, balances, price, markets)
    return snap, targets(weights, cash=cash)


policies = st.builds(
    Policy,
    band_abs=st.sampled_from([0.01, 0.05, 0.1]),
    band_rel=st.sampled_from([0.1, 0.25, 0.5]),
    rebalance_to=st.sampled_from(["target", "band"]),
    max_order_share=st.sampled_from([0.1, 0.25, 1.0]),
    milestone_sell_share=st.sampled_from([0.25, 0.5, 1.0]),
    profit_min_days=st.sampled_from([0, 90]),
    profit_min_value=st.sampled_from([0.0, 500.0]),
    fee_rate=st.sampled_from([0.0, 0.001]),
    outside_value=st.sampled_from([0.0, 0.0, 1_000.0, 100_000.0]),
    allow_deposit=st.booleans(),
)
states = st.builds(
    PlanState,
    carry=st.sampled_from([0.0, 3.0, 250.0]),
    paused=st.booleans(),
    cost_basis=st.dictionaries(st.sampled_from(NAMES), st.floats(0.001, 100_000.0)),
    profit_base=st.dictionaries(st.sampled_from(NAMES), st.floats(0.001, 100_000.0)),
    held_since=st.dictionaries(
        st.sampled_from(NAMES), st.sampled_from(["2025-01-01", "2026-05-30"])
    ),
)
RULES = {
    "dca": lambda s, t, p, st_, x: plan_dca(s, t, p, st_, x),
    "windfall": lambda s, t, p, st_, x: plan_windfall(s, t, p, st_, x * 2, 0.5),
    "rebalance": lambda s, t, p, st_, x: plan_rebalance(s, t, p, st_),
    "profit": lambda s, t, p, st_, x: plan_profit(s, t, p, st_),
    "withdraw": lambda s, t, p, st_, x: plan_withdraw(s, t, p, st_, 0.04, 12, 2026),
}
rules = st.sampled_from(sorted(RULES))
amounts = st.one_of(st.just(0.0), st.floats(0.0, 20_000.0))


def weights_of(snap: Snapshot) -> dict[str, float]:
    total = snap.total_value
    return {a: snap.value_of(a) / total for a in snap.balances if a != QUOTE}


def largest_drift(snap: Snapshot, t: Targets) -> float:
    w = weights_of(snap)
    return max(abs(w.get(a, 0.0) - t.weights.get(a, 0.0)) for a in {*w, *t.weights})


@PROPERTY
@given(accounts(), policies, states, rules, amounts)
def test_no_balance_goes_negative_after_apply(account, policy, state, rule, amount):
    snap, t = account
    plan = RULES[rule](snap, t, policy, state, amount)
    after = apply(plan, snap)
    assert all(b >= 0 for b in after.balances.values()), (plan, after.balances)


@PROPERTY
@given(accounts(), policies, states, rules, amounts)
def test_every_order_is_on_its_step_and_above_its_minimums(account, policy, state, rule, amount):
    snap, t = account
    plan = RULES[rule](snap, t, policy, state, amount)
    for order in plan.orders:
        rules_ = snap.markets[order.base]
        assert order.amount > 0 and on_step(order.amount, rules_.amount_step)
        assert order.amount >= rules_.min_amount and order.notional >= rules_.min_notional
        assert order.notional == order.amount * order.price
        if order.side == "sell":
            assert order.amount <= snap.balances[order.base]


@PROPERTY
@given(accounts(), policies, states, st.sampled_from(["dca", "windfall", "rebalance"]), amounts)
def test_buys_never_exceed_the_available_cash(account, policy, state, rule, amount):
    snap, t = account
    policy = dataclasses.replace(policy, allow_deposit=False)
    plan = RULES[rule](snap, t, policy, state, amount)
    bought = sum(o.notional + o.fee for o in plan.orders if o.side == "buy")
    sold = sum(o.notional - o.fee for o in plan.orders if o.side == "sell")
    above_target = max(0.0, snap.balances[QUOTE] - t.cash * snap.total_value)
    # Within float noise: these sums add in another order than the planner's running cash.
    assert bought <= (above_target + sold) * (1 + 1e-12)
    assert plan.deposit_needed == 0.0


@PROPERTY
@given(
    accounts(),
    policies,
    states,
    st.sampled_from([1.0, 100.0, 10_000.0]),
    st.sampled_from(["dca", "windfall", "rebalance"]),
    amounts,
)
def test_buys_never_spend_the_profit_proceeds_set_aside(
    account, policy, state, set_aside, rule, amount
):
    snap, t = account
    policy = dataclasses.replace(policy, allow_deposit=False)
    state = dataclasses.replace(state, profit_to_move=set_aside)
    plan = RULES[rule](snap, t, policy, state, amount)
    bought = sum(o.notional + o.fee for o in plan.orders if o.side == "buy")
    sold = sum(o.notional - o.fee for o in plan.orders if o.side == "sell")
    cash = snap.balances[QUOTE]
    free = max(0.0, cash - set_aside)  # the account as if the proceeds were gone
    above_target = max(0.0, free - t.cash * (snap.total_value - cash + free))
    assert bought <= (above_target + sold) * (1 + 1e-12)


@PROPERTY
@given(accounts(), policies, states)
def test_profit_proceeds_leave_the_account(account, policy, state):
    snap, t = account
    t = dataclasses.replace(
        t, stage=t.stage.model_copy(update={"profit_milestones_pct": [50, 100]})
    )
    plan = plan_profit(snap, t, policy, state)
    after = apply(plan, snap)
    assert after.balances[QUOTE] == snap.balances[QUOTE]
    assert plan.moved_out == sum(o.notional - o.fee for o in plan.orders)
    assert all(o.side == "sell" for o in plan.orders)


@PROPERTY
@given(accounts(), policies, states, amounts)
def test_dca_and_windfalls_never_sell(account, policy, state, amount):
    snap, t = account
    for rule in ("dca", "windfall"):
        plan = RULES[rule](snap, t, policy, state, amount)
        assert all(o.side == "buy" for o in plan.orders)
        if state.paused:
            assert plan.orders == () and plan.state.carry == state.carry


@PROPERTY
@given(accounts(), policies, states, rules, amounts)
def test_the_same_inputs_give_the_same_plan(account, policy, state, rule, amount):
    snap, t = account
    first = RULES[rule](snap, t, policy, state, amount)
    assert RULES[rule](snap, t, policy, state, amount) == first
    assert_orders_in_stable_order(first)


def assert_orders_in_stable_order(plan: Plan) -> None:
    keys = [(o.side != "sell", o.base) for o in plan.orders]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)


@st.composite
def accounts_at_target(draw: st.DrawFn) -> tuple[Snapshot, Targets, Policy]:
    """An account holding exactly its targets, its crypto share inside the stage's band (or
    not measured)."""
    snap, t = draw(accounts())
    value = draw(st.floats(1.0, 1e6))
    balances = {a: w * value / snap.prices[a] for a, w in t.weights.items()}
    balances[QUOTE] = t.cash * value
    snap = dataclasses.replace(snap, balances=balances)
    low, high = t.crypto_band
    share = draw(st.floats(low, high))
    outside = draw(st.sampled_from([0.0, value * (1 - t.cash) / share - value]))
    policy = draw(policies)
    return snap, t, dataclasses.replace(policy, outside_value=max(0.0, outside))


@PROPERTY
@given(accounts_at_target(), states)
def test_a_portfolio_at_target_gets_no_rebalance_order(account, state):
    snap, t, policy = account
    plan = plan_rebalance(snap, t, policy, state)
    assert plan.refused is None and plan.orders == (), plan


@PROPERTY
@given(accounts(), policies, states)
def test_a_rebalance_never_increases_the_largest_drift(account, policy, state):
    snap, t = account
    # The crypto share of the whole portfolio moves the account's targets; measured without it.
    policy = dataclasses.replace(policy, outside_value=0.0)
    assume(snap.total_value > 0)
    plan = plan_rebalance(snap, t, policy, state)
    after = apply(plan, snap)
    assume(after.total_value > 0)
    # Beyond rounding: the fees shrink the account (every weight grows by fees / value) and
    # each order stops up to one step short of its goal.
    fees = sum(o.fee for o in plan.orders)
    steps_ = sum(o.price * snap.markets[o.base].amount_step for o in plan.orders)
    tolerance = (fees + steps_) / after.total_value + 1e-9
    assert largest_drift(after, t) <= largest_drift(snap, t) + tolerance


@PROPERTY
@given(accounts(), policies, states, st.sampled_from([1_000.0, 20_000.0, 100_000.0]))
def test_a_rebalance_with_the_crypto_share_reduces_drift_from_its_own_targets(
    account, policy, state, outside
):
    # Drift from the targets the plan measured against (scaled down when crypto would be
    # above the whole-portfolio band): the summary's.
    snap, t = account
    policy = dataclasses.replace(policy, outside_value=outside)
    assume(snap.total_value > 0)
    plan = plan_rebalance(snap, t, policy, state)
    assume(plan.summary is not None)
    before = max(map(abs, plan.summary.drift_before.values()))
    after = max(map(abs, plan.summary.drift_after.values()))
    fees = sum(o.fee for o in plan.orders)
    steps_ = sum(o.price * snap.markets[o.base].amount_step for o in plan.orders)
    assert after <= before + (fees + steps_) / plan.summary.value + 1e-9
    assert not math.isnan(after)
