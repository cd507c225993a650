"""Profit-taking: at each of the stage's gain milestones (e.g. 50 %, 100 %), sell part of the
gain and move it out of crypto (the guide: "move gains to diversified traditional assets").

For a held asset, gain = price / base - 1, the base being its average cost per unit, or,
once every milestone was taken, the price of the last one (`state.profit_base`, when above
the cost): the milestones then re-arm from there, so the next profit is taken on new gains
only, never on the same gain the next day. Each milestone m (percent) the gain has reached
and that was not taken before sells `policy.milestone_sell_share` of the gain's value:
amount * (price - base) * share / price units. Several milestones reached at once are taken
one after the other on what is left of the position, and proposed as ONE combined order per
asset (one market sell, and fewer orders below the exchange's minimum).

A sale above the implausible-order cap is proposed in parts (see `OrderTrader.sell`): what
it could not sell is owed (`state.profit_due`, in units of the asset) and sold at the next
runs, up to the cap each, before any new milestone of that asset; it is forgotten with the
position, or when what is left is under a minimum order (said among the skipped).

A milestone is taken only from a position held at least `policy.profit_min_days` (since
`state.held_since`) and worth at least `policy.profit_min_value`: a new or tiny position's
gain is left to grow (listed among the skipped, tried again later). A milestone is recorded
as taken only when its order is proposed, so a skipped one is tried again on the next run.

The proceeds leave the crypto portfolio (`Plan.moved_out`): paper mode books them off the
account; read-only mode sets them aside (`state.profit_to_move`) until the person moves them.
No rule spends or buys them back.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date

from stagewise.money import QUOTE_EPSILON, price_text
from stagewise.planner.book import Book, Refusal, money, open_book, pct
from stagewise.planner.fills import Proposal, finish, refused, unchanged
from stagewise.planner.model import Plan, PlanState, Policy
from stagewise.planner.orders import trader_for
from stagewise.snapshot import Snapshot
from stagewise.targets import Targets

WHERE_TO = "move them to your diversified traditional investments"


def plan_profit(snapshot: Snapshot, targets: Targets, policy: Policy, state: PlanState) -> Plan:
    """Sells at the milestones of `targets.stage.profit_milestones_pct` not yet taken."""
    try:
        return _take_profits(snapshot, targets, policy, state)
    except Refusal as why:
        return refused("profit", state, why)


def _take_profits(snapshot: Snapshot, targets: Targets, policy: Policy, state: PlanState) -> Plan:
    book = open_book(snapshot, targets.weights, (), set_aside=state.profit_to_move)
    proposal = Proposal("profit", book, targets.weights)
    milestones = sorted(targets.stage.profit_milestones_pct)
    if not milestones:
        proposal.notes.append(f"the {targets.stage.name} stage takes no profits at milestones")
        return finish(proposal, state, policy)
    owed = {a: units for a, units in state.profit_due.items() if book.amounts.get(a, 0.0) > 0}
    wanted = _wanted(proposal, state, policy, milestones, owed.keys())
    if not wanted and not owed:
        return unchanged(proposal, state)  # no milestone to take today: no orders to weigh
    trader = trader_for(book, snapshot.markets, policy, "profit", {*wanted, *owed})
    taken = dict(state.milestones_taken)
    bases = dict(state.profit_base)
    share = policy.milestone_sell_share
    for asset, units in sorted(owed.items()):
        price = book.prices[asset]
        reason = (
            f"{asset}: the rest of a profit sale the cap split: {units:,.8g} {asset} of it left "
            f"to sell; the proceeds leave the crypto portfolio: {WHERE_TO}"
        )
        target = targets.weights.get(asset, 0.0)
        sold = proposal.add(trader.sell_units(asset, units, reason, target))
        # Nothing sold (the rest is under a minimum: listed among the skipped): forgotten.
        left = units - sold.amount if sold else 0.0
        owed[asset] = left if left * price >= QUOTE_EPSILON else 0.0
    for asset, due in wanted.items():
        done = {*taken.get(asset, ()), *due.milestones}
        rearm = done >= set(milestones)
        value = _sell_value(book, asset, due.base, len(due.milestones), share)
        reason = _reason(book, asset, due, share, rearm)
        sold = proposal.add(trader.sell(asset, value, reason, targets.weights.get(asset, 0.0)))
        if sold:
            if rearm:
                taken.pop(asset, None)
                bases[asset] = book.prices[asset]
            else:
                taken[asset] = tuple(sorted(done))
            if value > trader.cap:  # sold in part: the rest is owed, in units at this price
                owed[asset] = value / sold.price - sold.amount
    out = sum(d.notional - d.fee for d in proposal.drafts)  # what `Plan.moved_out` says
    if out > 0:
        proposal.notes.append(
            f"profit taken: {money(out, book.quote)} of proceeds leave the crypto portfolio: "
            f"{WHERE_TO} (and count them in investor.outside_investments); stagewise does "
            "not spend them or buy them back"
        )
    still_owed = {a: units for a, units in owed.items() if units > 0}
    return finish(
        proposal, state, policy, milestones_taken=taken, profit_base=bases, profit_due=still_owed
    )


@dataclass(frozen=True, slots=True)
class Due:
    """Milestones to take on one asset: the price they count from, and the figures why."""

    base: float
    milestones: list[float]
    why: str


def _wanted(
    proposal: Proposal,
    state: PlanState,
    policy: Policy,
    milestones: list[float],
    owed: Collection[str],
) -> dict[str, Due]:
    """The milestones each held asset reached and may take now; the others are skipped with
    the reason (no cost basis yet; a position too young or too small). An asset still owing
    a sale (`owed`) takes no new milestone until it is sold."""
    book = proposal.book
    wanted = {}
    lowest = milestones[0] / 100  # a gain under the lowest milestone has none to take
    for asset in book.amounts:  # by name
        if asset in owed:
            continue
        cost = state.cost_basis.get(asset)
        if cost is None or not cost > 0:
            proposal.skip(
                asset,
                f"{asset}: no cost basis yet; milestones count from today's "
                f"price {book.prices[asset]:,.6g}",
            )
            continue
        base = max(cost, state.profit_base.get(asset, 0.0))
        rise = book.prices[asset] / base - 1
        if rise < lowest:
            continue
        due = _due(milestones, state.milestones_taken.get(asset, ()), rise)
        if not due:
            continue
        gain = _gain_text(book, asset, cost, base)
        since = state.held_since.get(asset)
        days = _days_held(book, since)
        wait = _too_soon(book, asset, days, since, policy)
        if wait:
            proposal.skip(asset, f"{gain}: milestone {_listed(due)} reached, but {wait}")
            continue
        held = f"held {days} days, worth {money(book.values[asset], book.quote)}"
        wanted[asset] = Due(base, due, f"{gain}; {held}")
    return wanted


def _due(milestones: list[float], taken: tuple[float, ...], gain: float) -> list[float]:
    """The milestones reached by `gain` (a fraction) and not taken before, ascending."""
    return [m for m in milestones if gain >= m / 100 and m not in taken]


def _days_held(book: Book, since: str | None) -> int | None:
    """Whole days since the position was opened (0 without a day: it counts from today);
    None when the stored day cannot be read."""
    if since is None:
        return 0
    try:
        return (date.fromisoformat(book.day) - date.fromisoformat(since)).days
    except (TypeError, ValueError):
        return None


def _too_soon(
    book: Book, asset: str, days: int | None, since: str | None, policy: Policy
) -> str | None:
    """Why the position is too young or too small for a milestone yet (None: it is not)."""
    if days is None:
        return f"the day it was opened in the state file ({since!r}) is not a date: not taken"
    if days < policy.profit_min_days:
        minimum = policy.profit_min_days
        return f"held {days} days, under policy.profit_min_days {minimum}: not taken yet"
    value = book.values[asset]
    if value < policy.profit_min_value:
        return (
            f"the position is worth {money(value, book.quote)}, under "
            f"policy.profit_min_value {money(policy.profit_min_value, book.quote)}: not taken yet"
        )
    return None


def _sell_value(book: Book, asset: str, base: float, times: int, share: float) -> float:
    """Quote value to sell for `times` milestones, each taking `share` of the gain left."""
    amount, price = book.amounts[asset], book.prices[asset]
    left = amount
    for _ in range(times):
        left -= left * (price - base) * share / price
    return (amount - left) * price


def _reason(book: Book, asset: str, due: Due, share: float, rearm: bool) -> str:
    each = " at each" if len(due.milestones) > 1 else ""
    reason = (
        f"{due.why}: milestone {_listed(due.milestones)} reached: sell {pct(share)} of the "
        f"gain{each}; the proceeds leave the crypto portfolio: {WHERE_TO}"
    )
    if rearm:
        reason += (
            f"; every milestone is taken: they re-arm from today's price "
            f"{price_text(book.prices[asset])} {book.quote}"
        )
    return reason


def _gain_text(book: Book, asset: str, cost: float, base: float) -> str:
    price, quote = book.prices[asset], book.quote
    now = f"price {price_text(price)} {quote}"
    if base > cost:
        return (
            f"{asset} up {pct(price / base - 1)} since the last profit taken at "
            f"{price_text(base)} {quote} (average cost {price_text(cost)} {quote}, {now})"
        )
    return (
        f"{asset} up {pct(price / cost - 1)} on its average cost {price_text(cost)} {quote} ({now})"
    )


def _listed(milestones: list[float]) -> str:
    return ", ".join(f"{m:g}%" for m in milestones)
