"""The watch jobs' first question, answered cheaply: is there surely nothing to do?

The drift watch and the profit check run every day (every hour live) and almost always find
nothing. These predicates answer from the snapshot alone, without building a plan. They are
conservative: True only when the full plan (`plan_drift`, `plan_profit`) would have no
orders and leave the state as it is; anything unusual (a price or balance the planner would
refuse or leave out, an asset without a cost basis, an empty account) answers False, and the
full plan decides. tests/test_planner_properties.py checks that over generated accounts.
"""

from __future__ import annotations

import math

from stagewise.planner.book import Book
from stagewise.planner.model import PlanState, Policy
from stagewise.planner.rebalance import breach, scaled_targets
from stagewise.snapshot import Snapshot
from stagewise.targets import Targets


def drift_is_quiet(snapshot: Snapshot, targets: Targets, policy: Policy, state: PlanState) -> bool:
    """True when `plan_drift` would surely propose nothing and change no state."""
    book = _plain_book(snapshot, state)
    if book is None or book.value <= 0:
        return False
    prices, inf = snapshot.prices, math.inf
    try:
        for asset, weight in targets.weights.items():
            if weight > 0 and not 0 < prices[asset] < inf:
                return False  # the plan refuses (or notes) an asset it cannot price
    except (KeyError, TypeError):  # missing, or not a number
        return False
    return breach(book, targets, scaled_targets(book, targets, policy), policy) is None


def profit_is_quiet(snapshot: Snapshot, targets: Targets, state: PlanState) -> bool:
    """True when `plan_profit` would surely propose nothing and change no state: no holding
    has reached a milestone it has not taken."""
    milestones = targets.stage.profit_milestones_pct
    book = _plain_book(snapshot, state)
    if book is None:
        return False
    if not milestones:
        return True
    lowest = min(milestones) / 100
    basis, taken = state.cost_basis, state.milestones_taken
    for asset, price in book.prices.items():
        gain = price / basis[asset] - 1
        if gain >= lowest and any(
            gain >= m / 100 and m not in taken.get(asset, ()) for m in milestones
        ):
            return False
    return True


def _plain_book(snapshot: Snapshot, state: PlanState) -> Book | None:
    """The account valued, when nothing in it needs the planner's judgement: every balance
    usable, every held asset priced and with a positive cost basis. Else None."""
    quote, inf = snapshot.quote, math.inf
    prices, basis = snapshot.prices, state.cost_basis
    cash = snapshot.balances.get(quote, 0.0)
    amounts: dict[str, float] = {}
    held_prices: dict[str, float] = {}
    values: dict[str, float] = {}
    try:
        if not 0 <= cash < inf:
            return None
        for asset, amount in snapshot.balances.items():
            if asset == quote or amount == 0:
                continue
            price = prices[asset]
            # A usable balance, a usable price (NaN compares False) and a cost basis.
            if not (0 < amount < inf and 0 < price < inf and basis[asset] > 0):
                return None
            amounts[asset] = amount
            held_prices[asset] = price
            values[asset] = amount * price
    except (KeyError, TypeError):  # no price or no cost basis, or not a number
        return None
    return Book(quote, cash, amounts, held_prices, values, cash + sum(values.values()))
