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

A milestone is taken only from a position held at least `policy.profit_min_days` (since
`state.held_since`) and worth at least `policy.profit_min_value`: a new or tiny position's
gain is left to grow (listed among the skipped, tried again later). A milestone is recorded
as taken only when its order is proposed, so a skipped one is tried again on the next run.

The proceeds leave the crypto portfolio (`Plan.moved_out`): paper mode books them off the
account; read-only mode sets them aside (`state.profit_to_move`) until the person moves them.
No rule spends or buys them back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from stagewise.money import price_text
from stagewise.planner.book import Book, Refusal, money, open_book, pct
from stagewise.planner.fills import Proposal, finish, refused
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
    wanted = _wanted(proposal, state, policy, milestones)
    trader = trader_for(book, snapshot.markets, policy, "profit", wanted)
    taken = dict(state.milestones_taken)
    bases = dict(state.profit_base)
    share = policy.milestone_sell_share
    for asset, due in wanted.items():
        done = {*taken.get(asset, ()), *due.milestones}
        rearm = done >= set(milestones)
        value = _sell_value(book, asset, due.base, len(due.milestones), share)
        reason = _reason(book, asset, due, share, rearm)
        if proposal.add(trader.sell(asset, value, reason, targets.weights.get(asset, 0.0))):
            if rearm:
                taken.pop(asset, None)
                bases[asset] = book.prices[asset]
            else:
                taken[asset] = tuple(sorted(done))
    out = sum(d.notional - d.fee for d in proposal.drafts)  # what `Plan.moved_out` says
    if out > 0:
        proposal.notes.append(
            f"profit taken: {money(out, book.quote)} of proceeds leave the crypto portfolio: "
            f"{WHERE_TO} (and count them in investor.outside_investments); stagewise does "
            "not spend them or buy them back"
        )
    return finish(proposal, state, policy, milestones_taken=taken, profit_base=bases)


@dataclass(frozen=True, slots=True)
class Due:
    """Milestones to take on one asset: the price they count from, and the figures why."""

    base: float
    milestones: list[float]
    why: str


def _wanted(
    proposal: Proposal, state: PlanState, policy: Policy, milestones: list[float]
) -> dict[str, Due]:
    """The milestones each held asset reached and may take now; the others are skipped with
    the reason (no cost basis yet; a position too young or too small)."""
    book = proposal.book
    wanted = {}
    for asset in sorted(book.amounts):
        cost = state.cost_basis.get(asset)
        if cost is None or not cost > 0:
            proposal.skip(
                asset,
                f"{asset}: no cost basis yet; milestones count from today's "
                f"price {book.prices[asset]:,.6g}",
            )
            continue
        base = max(cost, state.profit_base.get(asset, 0.0))
        due = _due(milestones, state.milestones_taken.get(asset, ()), book.prices[asset] / base - 1)
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
