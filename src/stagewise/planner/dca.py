"""DCA: invest the monthly contribution, underweight assets first (cash-flow rebalancing).

Buys only, never sells. The budget is the contribution plus the money carried from earlier
runs. Each asset's gap is measured against the account as it will be once the money is in:
gap = target * value_after - value, where value_after is the account's value plus any part
of the budget not yet on the account (read-only mode's deposit). The biggest gaps are filled
first; money beyond every gap is spread by target weight. Fees come out of the budget; what
cannot be placed (below a market's minimum, rounding) is carried to the next run.

The targets aim at the crypto share's target of the whole portfolio (the investor's point in
the stage's band): when the plan's weights would put crypto above it they are scaled down,
and money beyond the gaps is carried as cash, not bought (it would carry the share above its
target), until a later DCA finds the share back under it.

While the guide's emergency rule is in force (`state.paused`) nothing is bought, the
contribution is not added (contributions stop) and the carry stays as it was.
"""

from __future__ import annotations

import math

from stagewise.money import QUOTE_EPSILON
from stagewise.planner.book import Book, Refusal, biggest_gaps_first, money, open_book, pct
from stagewise.planner.fills import Proposal, finish, refused
from stagewise.planner.model import Plan, PlanState, Policy, Rule
from stagewise.planner.orders import trader_for
from stagewise.planner.rebalance import crypto_scale, scaled_note
from stagewise.snapshot import Snapshot
from stagewise.targets import Targets


def plan_dca(
    snapshot: Snapshot, targets: Targets, policy: Policy, state: PlanState, contribution: float
) -> Plan:
    """Buys for this period's `contribution` (quote currency) plus the carried money."""
    try:
        must_be_money(contribution, "the contribution")
        label = f"DCA of {money(contribution, snapshot.quote)}"
        return invest("dca", snapshot, targets, policy, state, contribution, label)
    except Refusal as why:
        return refused("dca", state, why)


def must_be_money(amount: float, what: str) -> None:
    """Refuse a NaN, infinite or negative amount of money handed to the planner."""
    if not (isinstance(amount, int | float) and math.isfinite(amount) and amount >= 0):
        raise Refusal(f"{what} is {amount!r}: not a usable amount of money")


def invest(
    rule: Rule,
    snapshot: Snapshot,
    targets: Targets,
    policy: Policy,
    state: PlanState,
    new_money: float,
    label: str,
) -> Plan:
    """New money (plus the carry) into the targets, biggest gaps first: DCA and windfalls
    (raises Refusal)."""
    must_be_money(state.carry, "the carried money")
    buyable = {a: t for a, t in targets.weights.items() if t > 0}
    book = open_book(snapshot, targets.weights, buyable, set_aside=state.profit_to_move)
    k = crypto_scale(book.value, targets, policy)
    weights = {a: t * k for a, t in targets.weights.items()}
    aims = {a: t for a, t in weights.items() if t > 0}
    proposal = Proposal(rule, book, aims)
    # Scaled, crypto is at its target share of the whole portfolio: money beyond the gaps
    # stays in cash (carried) instead of carrying the share above the target.
    scaled = k < 1
    if scaled:
        proposal.notes.append(scaled_note(targets, weights))
    if state.paused:
        why = f" ({state.pause_reason})" if state.pause_reason else ""
        proposal.notes.append(
            f"the emergency rule is in force{why}: contributions stop, "
            f"nothing bought, nothing sold; {money(state.carry, book.quote)} "
            "stays carried"
        )
        proposal.skip(
            book.quote, f"{label}: not invested, the emergency rule is in force", new_money
        )
        return finish(proposal, state, policy)
    budget = new_money + state.carry
    available = max(0.0, book.cash - targets.cash * book.value)
    funded = budget if policy.allow_deposit else min(budget, available)
    if funded < budget:
        proposal.notes.append(
            f"only {money(available, book.quote)} of the {money(budget, book.quote)} budget is "
            f"on the account above the cash target: the rest is not invested nor carried"
        )
    external = max(0.0, funded - available)
    value_after = book.value + external
    gaps = {a: t * value_after - book.values.get(a, 0.0) for a, t in aims.items()}
    alloc, rest = biggest_gaps_first(gaps, funded)
    if rest > 0 and not scaled:  # money beyond every gap: spread by target weight
        total = sum(aims.values())
        for asset, t in aims.items():
            alloc[asset] = alloc.get(asset, 0.0) + rest * t / total
    spent = _buy(proposal, policy, aims, gaps, alloc, funded, label, snapshot)
    if spent > available:  # only possible when policy.allow_deposit
        proposal.deposit = deposit_for(spent - available)
    _note_crypto_share(proposal, targets, policy)
    carry = max(0.0, funded - spent)
    if scaled and carry >= QUOTE_EPSILON:
        proposal.notes.append(
            f"{money(carry, book.quote)} carried as cash: buying it would take crypto above "
            f"its target {pct(targets.crypto_share)} of the whole portfolio"
        )
    return finish(proposal, state, policy, carry=carry)


def deposit_for(shortfall: float) -> float:
    """The deposit to ask for: the shortfall rounded up to the cent, one cent more when it
    falls on a cent within float noise (the fills must never overdraw the account)."""
    deposit = math.ceil(shortfall * 100) / 100
    if deposit - shortfall < QUOTE_EPSILON / 100:
        deposit += 0.01
    return deposit


def _buy(
    proposal: Proposal,
    policy: Policy,
    aims: dict[str, float],
    gaps: dict[str, float],
    alloc: dict[str, float],
    funded: float,
    label: str,
    snapshot: Snapshot,
) -> float:
    """Place the buys `alloc` gives each asset; return the money spent (notional + fees)."""
    book = proposal.book
    trader = trader_for(book, snapshot.markets, policy, proposal.rule, alloc)
    left = funded
    for asset in sorted(alloc):
        reason = _reason(book, label, asset, aims[asset], gaps[asset])
        made = proposal.add(trader.buy(asset, min(alloc[asset], left), reason, aims[asset]))
        if made is not None:
            left -= made.notional + made.fee
    return funded - left


def _reason(book: Book, label: str, asset: str, target: float, gap: float) -> str:
    where = (
        f"{gap:,.2f} below target once the money is in"
        if gap > 0
        else "at or above target: its share of what is left after every gap"
    )
    return (
        f"{label}: {asset} {pct(book.weight(asset))} vs target {pct(target)}, {where}: "
        "buy (biggest gaps first)"
    )


def _note_crypto_share(proposal: Proposal, targets: Targets, policy: Policy) -> None:
    book = proposal.book
    if policy.outside_value <= 0:
        return
    share = book.crypto / (book.value + policy.outside_value)
    low, high = targets.crypto_band
    if share > high:
        proposal.notes.append(
            f"crypto is {pct(share)} of the whole portfolio, above the "
            f"stage's band ({pct(low)}-{pct(high)}): consider a smaller "
            f"contribution; the next whole-portfolio rebalance sells down to the target "
            f"{pct(targets.crypto_share)}"
        )
