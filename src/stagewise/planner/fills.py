"""What the account looks like once a plan fills: `apply`, the plan's summary and next state.

Fills are assumed at the estimated price with the estimated fee. A buy costs notional + fee
in the quote currency; a sell brings notional - fee. A deposit the plan asks for
(`deposit_needed`) is assumed made before the orders.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC
from operator import attrgetter
from typing import Any

from stagewise.money import AMOUNT_TOLERANCE, QUOTE_EPSILON
from stagewise.planner.book import Book, Refusal
from stagewise.planner.model import (
    MOVED_OUT,
    Order,
    Plan,
    PlanState,
    Policy,
    Rule,
    Skip,
    Summary,
)
from stagewise.planner.orders import Draft
from stagewise.snapshot import Snapshot


def refused(rule: Rule, state: PlanState, why: Refusal) -> Plan:
    """The plan a `Refusal` raised while planning ends in: no orders, `state` unchanged."""
    return Plan(rule, (), (), (), state, None, refused=str(why))


@dataclass(slots=True)
class Proposal:
    """A plan being built: its orders and skips so far, and the targets it is measured against."""

    rule: Rule
    book: Book
    aims: Mapping[str, float]
    drafts: list[Draft] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    deposit: float = 0.0

    def add(self, made: Draft | Skip) -> Draft | None:
        """Keep an order or a skip; the order is returned so the caller can count its money."""
        if isinstance(made, Draft):  # the usual answer, and the cheap check for it
            self.drafts.append(made)
            return made
        self.skipped.append(made)
        return None

    def skip(self, asset: str, reason: str, notional: float = 0.0) -> None:
        self.skipped.append(Skip(asset, self.rule, reason, notional))


def finish(proposal: Proposal, state: PlanState, policy: Policy, **updates: Any) -> Plan:
    """The finished plan: sells first then buys, each by asset name; weights after the whole
    plan; the summary; and the next state (`updates` are PlanState fields the rule changed)."""
    book = proposal.book
    by_asset = sorted(proposal.drafts, key=_asset)  # stable: equal assets keep their order
    drafts = [d for d in by_asset if d.side == "sell"] + [d for d in by_asset if d.side != "sell"]
    after = _values_after(book, drafts, proposal.deposit)
    value_after = sum(after.values())
    return Plan(
        rule=proposal.rule,
        orders=_orders(proposal.rule, book, drafts, after, value_after),
        skipped=tuple(proposal.skipped),
        notes=(*book.notes, *proposal.notes),
        state=next_state(book, drafts, state, **updates),
        summary=_summary(book, proposal.aims, after, value_after, policy),
        deposit_needed=proposal.deposit,
    )


def unchanged(proposal: Proposal, state: PlanState) -> Plan:
    """A watch's quiet answer: no orders, the state as the account leaves it, and no summary
    (it is recorded only when it changes the state, and then without one)."""
    book = proposal.book
    return Plan(
        rule=proposal.rule,
        orders=(),
        skipped=tuple(proposal.skipped),
        notes=(*book.notes, *proposal.notes),
        state=next_state(book, [], state),
        summary=None,
        deposit_needed=proposal.deposit,
    )


_asset = attrgetter("asset")


def _orders(
    rule: Rule, book: Book, drafts: list[Draft], after: Mapping[str, float], value_after: float
) -> tuple[Order, ...]:
    """The drafts as orders, with their weights before and after the whole plan."""
    before, total = book.values, book.value or 1.0  # an empty account: every weight 0
    after_total = value_after or 1.0
    return tuple(
        [
            Order(
                d.symbol,
                d.asset,
                d.side,
                d.amount,
                d.price,
                d.notional,
                d.fee,
                rule,
                d.reason,
                before.get(d.asset, 0.0) / total,
                after[d.asset] / after_total,
                d.target,
            )
            for d in drafts
        ]
    )


def _values_after(book: Book, drafts: list[Draft], deposit: float) -> dict[str, float]:
    """Value per asset (the quote under its own name) once the orders fill."""
    amounts = dict(book.amounts)
    cash = book.cash + deposit
    for d in drafts:
        if d.side == "buy":  # a buy costs notional + fee, a sell brings notional - fee
            amounts[d.asset] = amounts.get(d.asset, 0.0) + d.amount
            cash -= d.notional + d.fee
        else:
            amounts[d.asset] = amounts.get(d.asset, 0.0) - d.amount
            cash += d.notional - d.fee
    # Untouched assets keep their value (amount * price, as `book.values` has it), in order;
    # traded ones are valued again (new ones come after, in the order of their first order).
    values = dict(book.values)
    prices = book.prices
    for d in drafts:
        values[d.asset] = amounts[d.asset] * prices[d.asset]
    values[book.quote] = cash
    return values


def _summary(
    book: Book,
    aims: Mapping[str, float],
    after: Mapping[str, float],
    value_after: float,
    policy: Policy,
) -> Summary:
    held = book.amounts
    planned = [a for a, t in aims.items() if t > 0 and a not in held]
    # Sorting the held assets alone is cheap: they are usually in order already.
    assets = sorted(held.keys() | planned) if planned else sorted(held)
    whole = book.value + policy.outside_value
    before, total = book.values, book.value or 1.0  # an empty account: every weight 0
    after_total = value_after or 1.0
    drift_before = {}
    drift_after = {}
    for a in assets:
        aim = aims.get(a, 0.0)
        drift_before[a] = before.get(a, 0.0) / total - aim
        drift_after[a] = after.get(a, 0.0) / after_total - aim
    return Summary(
        value=book.value,
        crypto_share=book.crypto / whole if whole > 0 else 0.0,
        drift_before=drift_before,
        drift_after=drift_after,
    )


def next_state(book: Book, drafts: list[Draft], state: PlanState, **updates: Any) -> PlanState:
    """The state after the plan fills: average cost per unit updated by the buys (fee
    included); sells leave it unchanged. An asset held without a cost basis gets today's price:
    its profit milestones count from when stagewise first saw it. A buy into an asset not held
    starts a fresh position (new cost, its milestones, their re-arm price and a sale owed
    cleared). Every position held once the plan fills keeps the day it was opened, or gets
    today's; one no longer held loses it (and a sale owed on it)."""
    basis = dict(state.cost_basis)
    taken = dict(updates.pop("milestones_taken", state.milestones_taken))
    bases = dict(updates.pop("profit_base", state.profit_base))
    due = dict(updates.pop("profit_due", state.profit_due))
    prices = book.prices
    for asset in book.amounts:
        if asset not in basis:
            basis[asset] = prices[asset]
    held = dict(book.amounts)
    for d in drafts:
        asset = d.asset
        if d.side == "sell":
            held[asset] = held.get(asset, 0.0) - d.amount
            continue
        before = held.get(asset, 0.0)
        if before <= 0:
            taken.pop(asset, None)
            bases.pop(asset, None)
            due.pop(asset, None)
            basis[asset] = (d.notional + d.fee) / d.amount
        else:
            cost = basis[asset] * before + d.notional + d.fee
            basis[asset] = cost / (before + d.amount)
        held[asset] = before + d.amount
    since = state.held_since
    day = book.day
    opened = {a: since.get(a, day) for a, n in held.items() if n > 0}
    return dataclasses.replace(
        state,
        cost_basis=basis,
        milestones_taken=taken,
        profit_base=bases,
        profit_due={a: units for a, units in due.items() if a in opened},
        held_since=opened,
        **updates,
    )


def apply(plan: Plan, snapshot: Snapshot) -> Snapshot:
    """`snapshot` with the balances after `plan` fills at its estimated prices and fees
    (its deposit, if any, made first; a profit sale's proceeds moved off the account, see
    `Plan.moved_out`, and a withdrawal's). Prices and markets are unchanged."""
    balances = dict(snapshot.balances)
    quote = snapshot.quote
    balances[quote] = balances.get(quote, 0.0) + plan.deposit_needed
    kept = plan.rule not in MOVED_OUT  # profit and withdrawal proceeds leave the account
    for order in plan.orders:
        if order.side == "buy":
            balances[order.base] = balances.get(order.base, 0.0) + order.amount
            balances[quote] -= order.notional + order.fee
        else:
            balances[order.base] = balances.get(order.base, 0.0) - order.amount
            if kept:
                balances[quote] += order.notional - order.fee
    return dataclasses.replace(snapshot, balances=balances)


def state_seen(
    snapshot: Snapshot,
    before: Mapping[str, float] | None,
    state: PlanState,
    planned: PlanState,
    moved_out: float = 0.0,
) -> PlanState:
    """Read-only mode: the state after a run whose proposals the person may never place.

    The cost basis follows what the account shows, not what was proposed: an asset held
    without a basis, or more of it than at the last recorded snapshot (`before`, None when
    there is none), is costed at today's price for the part added (the person's own fills,
    whose prices stagewise cannot see); an asset no longer held loses its basis, its
    milestones, a sale owed on it and its opening day; one held without an opening day gets
    today's. The plan's own decisions (carry, withdrawals, milestones sold at, sales owed)
    come from `planned`: a proposed profit sale is proposed once, not every day until it is
    placed.

    Profit proceeds to move out (`moved_out`, this plan's; `state.profit_to_move`, earlier
    ones) stay set aside until stagewise sees money leave the account: each run lowers them
    by the fall of the account's value since `before`, both valued at today's prices (trades
    leave it about equal, deposits raise it, moving the proceeds off lowers it)."""
    quote = snapshot.quote
    basis = dict(state.cost_basis)
    taken = dict(planned.milestones_taken)
    bases = dict(planned.profit_base)
    due = dict(planned.profit_due)
    for asset in set(basis) | set(taken) | set(bases) | set(due):
        if asset != quote and snapshot.balances.get(asset, 0.0) <= 0:
            basis.pop(asset, None)
            taken.pop(asset, None)
            bases.pop(asset, None)
            due.pop(asset, None)
    day = snapshot.taken_at.astimezone(UTC).date().isoformat()
    opened = {}
    for asset, amount in snapshot.balances.items():
        price = snapshot.prices.get(asset)
        if asset == quote or amount <= 0 or price is None or not 0 < price < math.inf:
            continue
        opened[asset] = state.held_since.get(asset, day)
        if asset not in basis:
            basis[asset] = price
            continue
        held = None if before is None else before.get(asset, 0.0)
        if held is not None and amount > held * (1 + AMOUNT_TOLERANCE):
            basis[asset] = (basis[asset] * held + price * (amount - held)) / amount
    to_move = max(0.0, state.profit_to_move - _value_left(snapshot, before)) + moved_out
    return dataclasses.replace(
        planned,
        cost_basis=basis,
        milestones_taken=taken,
        profit_base=bases,
        profit_due=due,
        held_since=opened,
        profit_to_move=to_move if to_move >= QUOTE_EPSILON else 0.0,
    )


def _value_left(snapshot: Snapshot, before: Mapping[str, float] | None) -> float:
    """How much the account's value fell since `before` (0 if it rose), both valued at the
    prices of `snapshot`; an asset it cannot price is left out."""
    if before is None:
        return 0.0
    quote, now, prices = snapshot.quote, snapshot.balances, snapshot.prices
    fall = 0.0
    for asset in before.keys() | now.keys():
        price = 1.0 if asset == quote else prices.get(asset)
        if price is not None and 0 < price < math.inf:
            fall += (before.get(asset, 0.0) - now.get(asset, 0.0)) * price
    return max(0.0, fall)
