"""Rebalance: sell what drifted above its band, buy what drifted below, keep cash at target.

An asset is outside its band when |weight - target| > min(band_abs, band_rel * target) (the
5/25 rule); an asset held but not in the plan has target 0 and is sold.

The drift watch (`plan_drift`) rebalances the whole portfolio early, between the scheduled
runs, only when a sleeve (an index's share of the account, an asset held by two indices split
between them as their targets are) is outside its band, an asset outside the plan is held, or
crypto is above the stage's band of the whole portfolio. Inside a sleeve, assets drift until
the index's own cadence (the guide: Momentum weekly, Value annual). `policy.drift_watch =
"asset"` watches each asset's band instead. Outside assets trade
back to target (`rebalance_to = "target"`) or to the band's edge ("band"); assets inside
their band are left alone. Buys are paid by the sells and by cash above its target, biggest
gaps first; the cash target is never spent.

The crypto share of the WHOLE portfolio (the account plus `policy.outside_value`) is kept
at or under the top of the stage's band:
- the plan's targets are scaled down when holding them would put crypto above the band's
  top (the excess is held as cash), so a rebalance never buys the share over the band;
- the whole-portfolio rebalance (scope None) also sells every holding pro rata when crypto is
  above the band, down to the band's top, into the quote currency; when crypto is below the
  band it notes that a higher contribution would help (it never buys beyond the cash).
With no outside value configured (0) the share cannot be measured and is not checked.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from stagewise.money import WEIGHT_TOLERANCE
from stagewise.planner.book import (
    Book,
    band_of,
    biggest_gaps_first,
    money,
    open_book,
    outside_band,
    pct,
)
from stagewise.planner.fills import Proposal, finish, refuses
from stagewise.planner.model import Plan, PlanState, Policy
from stagewise.planner.orders import Trader, trader_for
from stagewise.snapshot import Snapshot
from stagewise.targets import Targets

Wanted = dict[str, tuple[float, str]]  # asset -> (quote value to buy (+) or sell (-), reason)


@refuses("rebalance")
def plan_rebalance(
    snapshot: Snapshot,
    targets: Targets,
    policy: Policy,
    state: PlanState,
    scope: Collection[str] | None = None,
) -> Plan:
    """Trades back into the bands: the whole portfolio (scope None) or only `scope`'s assets."""
    return _rebalance(snapshot, targets, policy, state, scope, watch=False)


@refuses("rebalance")
def plan_drift(snapshot: Snapshot, targets: Targets, policy: Policy, state: PlanState) -> Plan:
    """The drift watch: the whole-portfolio rebalance when a sleeve (or, with
    `policy.drift_watch = "asset"`, an asset) is outside its band, a holding is not in the
    plan or crypto is above the stage's band; else no orders."""
    return _rebalance(snapshot, targets, policy, state, None, watch=True)


def _rebalance(
    snapshot: Snapshot,
    targets: Targets,
    policy: Policy,
    state: PlanState,
    scope: Collection[str] | None,
    *,
    watch: bool,
) -> Plan:
    held = {a for a, n in snapshot.balances.items() if n and a != snapshot.quote}
    in_scope = (held | set(targets.weights)) - {snapshot.quote}
    if scope is not None:
        in_scope &= set(scope)
    buyable = [a for a in in_scope if targets.weights.get(a, 0.0) > 0]
    book = open_book(snapshot, targets.weights, buyable)
    aims = scaled_targets(book, targets, policy)
    proposal = Proposal("rebalance", book, aims)
    if book.value <= 0:
        proposal.notes.append("the account is empty: nothing to rebalance")
        return finish(proposal, state, policy)
    if watch:
        why = breach(book, targets, aims, policy)
        if why is None:
            proposal.notes.append("nothing is outside the drift watch's bands")
            return finish(proposal, state, policy)
        proposal.notes.append(f"rebalancing early: {why}")
    if aims is not targets.weights:
        proposal.notes.append(scaled_note(targets, aims))
    excess = _crypto_excess(proposal, targets, policy, snapshot) if scope is None else 0.0
    wanted = _wanted(book, aims, policy, in_scope, excess)
    trader = trader_for(book, snapshot.markets, policy, "rebalance", wanted)
    cash = _sell(proposal, trader, wanted, aims)
    cash_target = book.value * max(0.0, 1 - sum(aims.values()))
    _buy(proposal, trader, wanted, aims, max(0.0, cash - cash_target))
    if not wanted:
        proposal.notes.append("every asset is inside its band: nothing to rebalance")
    return finish(proposal, state, policy)


def scaled_targets(book: Book, targets: Targets, policy: Policy) -> Mapping[str, float]:
    """The targets, scaled down when holding them would put crypto above the top of the stage's
    band of the whole portfolio (the difference is held as cash); else `targets.weights`."""
    if policy.outside_value <= 0 or book.value <= 0:
        return targets.weights
    invested = sum(targets.weights.values()) * book.value
    ceiling = targets.crypto_band[1] * (book.value + policy.outside_value)
    if invested <= ceiling * (1 + WEIGHT_TOLERANCE):  # at the top within float noise
        return targets.weights
    k = ceiling / invested
    return {a: t * k for a, t in targets.weights.items()}


def breach(book: Book, targets: Targets, aims: Mapping[str, float], policy: Policy) -> str | None:
    """What puts the account outside the drift watch's bands (the first found), or None."""
    total = book.value
    for asset, value in book.values.items():
        if aims.get(asset, 0.0) <= 0 and value / total > WEIGHT_TOLERANCE:
            return f"{asset} is held ({pct(value / total)}) but not in the plan"
    if policy.outside_value > 0:
        share, high = book.crypto / (total + policy.outside_value), targets.crypto_band[1]
        if share > high + WEIGHT_TOLERANCE:
            return (
                f"crypto is {pct(share)} of the whole portfolio, above the band's top {pct(high)}"
            )
    # (name, the weight it holds of each asset): each index, or each asset on its own.
    groups: list[tuple[str, Mapping[str, float]]]
    if policy.drift_watch == "sleeve" and targets.members:
        groups = [(f"sleeve {targets.sleeves[i].name}", m) for i, m in targets.members.items()]
    else:
        groups = [(f"asset {asset}", {asset: w}) for asset, w in targets.weights.items()]
    scale = 1.0 if aims is targets.weights else sum(aims.values()) / sum(targets.weights.values())
    values, weights = book.values, targets.weights
    for name, held in groups:
        target = sum(held.values())
        aim = scale * target
        value = sum(values.get(a, 0.0) * w / weights[a] for a, w in held.items() if w > 0)
        band = band_of(aim, policy)
        if outside_band(value / total - aim, band):
            return (
                f"the {name} is {pct(value / total)} of the account vs target "
                f"{pct(aim)} (band ±{pct(band)})"
            )
    return None


def scaled_note(targets: Targets, aims: Mapping[str, float]) -> str:
    k = sum(aims.values()) / sum(targets.weights.values())
    return (
        f"targets scaled to {pct(k)} of the plan's weights so crypto stays at the top of "
        f"the stage's band ({pct(targets.crypto_band[1])} of the whole portfolio); the rest "
        "is kept as cash"
    )


def _crypto_excess(
    proposal: Proposal, targets: Targets, policy: Policy, snapshot: Snapshot
) -> float:
    """Crypto value to sell to bring the share to the band's top (the policy's fee assumed),
    with a note when the share is outside the band. An excess too small for any holding's
    grid (less than one step of each) is the top within the exchange's precision: none."""
    book = proposal.book
    if policy.outside_value <= 0:
        proposal.notes.append(
            "outside investments are not configured (0): the crypto share "
            "of the whole portfolio is not checked"
        )
        return 0.0
    total = book.value + policy.outside_value
    share, (low, high) = book.crypto / total, targets.crypto_band
    # The fees leave the portfolio too: (crypto - x) / (total - fee * x) = high.
    excess = (book.crypto - high * total) / (1 - high * policy.fee_rate)
    if share > high + WEIGHT_TOLERANCE and _sellable(book, snapshot, excess):
        proposal.notes.append(
            f"crypto is {pct(share)} of the whole portfolio, above the "
            f"stage's band ({pct(low)}-{pct(high)}): selling pro rata down "
            f"to {pct(high)}"
        )
        return excess
    if share < low - WEIGHT_TOLERANCE:
        proposal.notes.append(
            f"crypto is {pct(share)} of the whole portfolio, below the "
            f"stage's band ({pct(low)}-{pct(high)}): consider a higher "
            "contribution (a rebalance never buys beyond the cash)"
        )
    return 0.0


def _sellable(book: Book, snapshot: Snapshot, excess: float) -> bool:
    """True when selling `excess` pro rata moves at least one step of some holding."""
    for asset, value in book.values.items():
        market = snapshot.markets.get(asset)
        step = market.amount_step if market is not None else 0.0
        if excess * value / book.crypto >= book.prices[asset] * step:
            return True
    return False


def _wanted(
    book: Book,
    aims: Mapping[str, float],
    policy: Policy,
    in_scope: Collection[str],
    excess: float,
) -> Wanted:
    """Per asset to trade: the quote value to buy (+) or sell (-), and why."""
    keep = 1 - excess / book.crypto if excess > 0 else 1.0
    total, values, to_target = book.value, book.values, policy.rebalance_to == "target"
    wanted: Wanted = {}
    for asset in sorted(in_scope):
        value = values.get(asset, 0.0)
        aim = aims.get(asset, 0.0)
        goal = value * keep
        band = band_of(aim, policy)
        drift = goal / total - aim
        outside = outside_band(drift, band)
        if not outside and not (excess > 0 and value > 0):
            continue  # the common case, kept cheap: nothing to do
        reasons = []
        if excess > 0 and value > 0:
            reasons.append(
                f"crypto above the whole-portfolio band: sell {pct(1 - keep)} of "
                f"{asset} into {book.quote}"
            )
        if outside:
            edge = aim if to_target else aim + (band if drift > 0 else -band)
            reasons.append(_drift_reason(asset, goal / total, aim, band, edge, policy))
            goal = edge * total
        wanted[asset] = (goal - value, "; ".join(reasons))
    return wanted


def _drift_reason(
    asset: str, weight: float, aim: float, band: float, edge: float, policy: Policy
) -> str:
    """E.g. 'SOL 14.2% vs target 10.0% (band ±2.5%): sell back to target' (one f-string: this
    runs for every asset out of its band)."""
    if aim <= 0:
        return f"{asset} {weight * 100:.1f}% is not in the plan (target 0.0%): sell"
    side = "sell" if weight > aim else "buy"
    where = (
        "back to target" if policy.rebalance_to == "target" else f"to the band's edge {pct(edge)}"
    )
    return (
        f"{asset} {weight * 100:.1f}% vs target {aim * 100:.1f}% (band ±{band * 100:.1f}%): "
        f"{side} {where}"
    )


def _sell(proposal: Proposal, trader: Trader, wanted: Wanted, aims: Mapping[str, float]) -> float:
    """Propose the sells (by asset name); return the cash once they fill."""
    cash = proposal.book.cash
    for asset, (trade, reason) in sorted(wanted.items()):
        if trade < 0:
            made = proposal.add(trader.sell(asset, -trade, reason, aims.get(asset, 0.0)))
            if made is not None:
                cash += made.notional - made.fee
    return cash


def _buy(
    proposal: Proposal, trader: Trader, wanted: Wanted, aims: Mapping[str, float], budget: float
) -> None:
    """Propose the buys the budget allows, biggest gaps first (fee included in each gap)."""
    gaps = {
        asset: trade * (1 + trader.fee_rates[asset])
        for asset, (trade, _) in wanted.items()
        if trade > 0
    }
    alloc, _ = biggest_gaps_first(gaps, budget)
    left, quote = budget, proposal.book.quote
    for asset in sorted(alloc):
        if alloc[asset] < gaps[asset]:
            reason = wanted[asset][1] + f" (part: the cash allows {money(alloc[asset], quote)})"
        else:
            reason = wanted[asset][1]
        made = proposal.add(trader.buy(asset, min(alloc[asset], left), reason, aims[asset]))
        if made is not None:
            left -= made.notional + made.fee
    unfunded = sorted(set(gaps) - set(alloc))
    for asset in unfunded:
        proposal.skip(asset, wanted[asset][1] + ": no cash left for it after the sells")
