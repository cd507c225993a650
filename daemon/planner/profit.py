"""Profit-taking: at each of the stage's gain milestones (e.g. 50 %, 100 %), sell part of the gain.

For a held asset with an average cost per unit, gain = price / cost - 1. Each milestone m
(percent) the gain has reached and that was not taken before sells
`policy.milestone_sell_share` of the gain's value: amount * (price - cost) * share / price
units. Several milestones reached at once are taken one after the other on what is left of
the position, and proposed as ONE combined order per asset (one market sell, and fewer
orders below the exchange's minimum). A milestone is recorded as taken only when its order is
proposed, so a skipped one is tried again on the next run; each fires once.
"""

from __future__ import annotations

from stagewise.money import price_text
from stagewise.planner.book import Book, open_book, pct
from stagewise.planner.fills import Proposal, finish, refuses
from stagewise.planner.model import Plan, PlanState, Policy
from stagewise.planner.orders import trader_for
from stagewise.snapshot import Snapshot
from stagewise.targets import Targets


@refuses("profit")
def plan_profit(snapshot: Snapshot, targets: Targets, policy: Policy, state: PlanState) -> Plan:
    """Sells at the milestones of `targets.stage.profit_milestones_pct` not yet taken."""
    book = open_book(snapshot, targets.weights, ())
    proposal = Proposal("profit", book, targets.weights)
    milestones = sorted(targets.stage.profit_milestones_pct)
    if not milestones:
        proposal.notes.append(f"the {targets.stage.name} stage takes no profits at milestones")
        return finish(proposal, state, policy)
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
        due = _due(milestones, state.milestones_taken.get(asset, ()), book.prices[asset] / cost - 1)
        if due:
            wanted[asset] = (cost, due)
    trader = trader_for(book, snapshot.markets, policy, "profit", wanted)
    taken = dict(state.milestones_taken)
    for asset, (cost, due) in wanted.items():
        value = _sell_value(book, asset, cost, len(due), policy.milestone_sell_share)
        reason = _reason(book, asset, cost, due, policy.milestone_sell_share)
        if proposal.add(trader.sell(asset, value, reason, targets.weights.get(asset, 0.0))):
            taken[asset] = tuple(sorted({*taken.get(asset, ()), *due}))
    return finish(proposal, state, policy, milestones_taken=taken)


def _due(milestones: list[float], taken: tuple[float, ...], gain: float) -> list[float]:
    """The milestones reached by `gain` (a fraction) and not taken before, ascending."""
    return [m for m in milestones if gain >= m / 100 and m not in taken]


def _sell_value(book: Book, asset: str, cost: float, times: int, share: float) -> float:
    """Quote value to sell for `times` milestones, each taking `share` of the gain left."""
    amount, price = book.amounts[asset], book.prices[asset]
    left = amount
    for _ in range(times):
        left -= left * (price - cost) * share / price
    return (amount - left) * price


def _reason(book: Book, asset: str, cost: float, due: list[float], share: float) -> str:
    price = book.prices[asset]
    reached = ", ".join(f"{m:g}%" for m in due)
    each = " at each" if len(due) > 1 else ""
    return (
        f"{asset} up {pct(price / cost - 1)} on its average cost "
        f"{price_text(cost)} {book.quote} (price {price_text(price)} {book.quote}): milestone "
        f"{reached} reached: sell {pct(share)} of the gain{each}"
    )
