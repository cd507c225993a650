"""Rebalance: sell what drifted above its band, buy what drifted below, keep cash at target.

An asset is outside its band when |weight - target| > min(band_abs, band_rel * target) (the
5/25 rule); an asset held but not in the plan has target 0 and is sold.

The drift watch (`plan_drift`) rebalances the whole portfolio early, between the scheduled
runs, only when a sleeve (an index's share of the account, an asset held by two indices split
between them as their targets are) is outside its band, an asset outside the plan is held, or
crypto is outside the stage's band of the whole portfolio. Inside a sleeve, assets drift until
the index's own cadence (the guide: Momentum weekly, Value annual). `policy.drift_watch =
"asset"` watches each asset's band instead. A drift-watch rebalance that would move less than
`policy.min_rebalance_share` of the account is not proposed. Outside assets trade back to
target (`rebalance_to = "target"`) or to the band's edge ("band"); assets inside their band
are left alone. Buys are paid by the sells and by cash above its target, biggest gaps first;
the cash target, the DCA money carried (`state.carry`) and the profit proceeds set aside to
be moved out (`state.profit_to_move`: the account is planned as if they were gone) are never
spent.

The crypto share of the WHOLE portfolio (the account plus `policy.outside_value`) has one
target, the investor's point in the stage's band (`targets.crypto_share`); the band is the
tolerance around it:
- inside the band nothing trades for the share: the assets are measured against the plan's
  mix of the crypto the account holds now;
- above the band's top, the whole-portfolio rebalance (scope None) sells every holding pro
  rata, down to the point (not to the edge, which the next up-day would cross again);
- below the band's bottom, it buys toward the point with the cash above the cash target
  (never beyond; read-only mode says what deposit would reach it);
- DCA buys up to the point and holds what would carry the share above it as cash.
With no outside value configured (0) the share cannot be measured and is not checked.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from stagewise.money import WEIGHT_TOLERANCE
from stagewise.planner.book import (
    Book,
    Refusal,
    band_of,
    biggest_gaps_first,
    money,
    open_book,
    outside_band,
    pct,
)
from stagewise.planner.fills import Proposal, finish, refused, unchanged
from stagewise.planner.model import Plan, PlanState, Policy
from stagewise.planner.orders import Trader, trader_for
from stagewise.snapshot import Snapshot
from stagewise.targets import Targets

Wanted = dict[str, tuple[float, str]]  # asset -> (quote value to buy (+) or sell (-), reason)


def plan_rebalance(
    snapshot: Snapshot,
    targets: Targets,
    policy: Policy,
    state: PlanState,
    scope: Collection[str] | None = None,
) -> Plan:
    """Trades back into the bands: the whole portfolio (scope None) or only `scope`'s assets."""
    try:
        start = _begin(snapshot, targets, policy, state, scope)
        proposal = start.proposal
        if proposal.book.value <= 0:
            proposal.notes.append("the account is empty: nothing to rebalance")
            return finish(proposal, state, policy)
        if scope is None:  # the whole portfolio's also trades for the crypto share
            keep, topping = _crypto_share(proposal, targets, policy, snapshot, start)
        else:
            keep, topping = 1.0, False
        _trade(start, targets, policy, snapshot, state, keep, topping)
        return finish(proposal, state, policy)
    except Refusal as why:
        return refused("rebalance", state, why)


def plan_drift(snapshot: Snapshot, targets: Targets, policy: Policy, state: PlanState) -> Plan:
    """The drift watch: the whole-portfolio rebalance when a sleeve (or, with
    `policy.drift_watch = "asset"`, an asset) is outside its band, a holding is not in the
    plan or crypto is outside the stage's band; else no orders."""
    try:
        start = _begin(snapshot, targets, policy, state, None)
        proposal, book = start.proposal, start.proposal.book
        if book.value <= 0:
            proposal.notes.append("the account is empty: nothing to rebalance")
            return finish(proposal, state, policy)
        why = breach(book, targets, proposal.aims, policy, start.share, start.spare)
        if why is None:
            proposal.notes.append("nothing is outside the drift watch's bands")
            return unchanged(proposal, state)
        proposal.notes.append(f"rebalancing early: {why}")
        keep, topping = _crypto_share(proposal, targets, policy, snapshot, start)
        _trade(start, targets, policy, snapshot, state, keep, topping)
        moved = sum(d.notional for d in proposal.drafts)
        if proposal.drafts and moved < policy.min_rebalance_share * book.value:
            quiet = Proposal("rebalance", book, proposal.aims)
            quiet.notes.append(
                f"the drift watch would move {money(moved, book.quote)} "
                f"({pct(moved / book.value)} of the account), under policy.min_rebalance_pct "
                f"{pct(policy.min_rebalance_share)}: not worth the orders; the next scheduled "
                "rebalance looks again"
            )
            return finish(quiet, state, policy)
        return finish(proposal, state, policy)
    except Refusal as why:
        return refused("rebalance", state, why)


@dataclass(frozen=True, slots=True)
class Share:
    """The crypto share of the whole portfolio, against its target and band (fractions)."""

    now: float
    point: float
    low: float
    high: float
    total: float  # the whole portfolio's value: the account plus the outside investments

    @property
    def above(self) -> bool:
        return self.now > self.high + WEIGHT_TOLERANCE

    @property
    def below(self) -> bool:
        return self.now < self.low - WEIGHT_TOLERANCE

    def text(self) -> str:
        return (
            f"crypto {pct(self.now)} of the whole portfolio (target {pct(self.point)}, "
            f"band {pct(self.low)}-{pct(self.high)})"
        )


def share_of(book: Book, targets: Targets, policy: Policy) -> Share | None:
    """The crypto share of the whole portfolio, or None when no outside value is configured."""
    if policy.outside_value <= 0:
        return None
    total = book.value + policy.outside_value
    low, high = targets.crypto_band
    return Share(book.crypto / total, targets.crypto_share, low, high, total)


def crypto_scale(value: float, targets: Targets, policy: Policy) -> float:
    """The factor on the plan's weights that puts crypto at its target share of the whole
    portfolio, for an account worth `value`: below 1 when the plan's weights would put it
    above (the difference is held as cash), else 1 (an account too small for the target holds
    the plan's weights)."""
    if policy.outside_value <= 0 or value <= 0:
        return 1.0
    invested = sum(targets.weights.values()) * value
    goal = targets.crypto_share * (value + policy.outside_value)
    if invested <= goal * (1 + WEIGHT_TOLERANCE):
        return 1.0
    return goal / invested


def scaled_targets(value: float, targets: Targets, policy: Policy) -> Mapping[str, float]:
    """The plan's weights scaled by `crypto_scale`: what DCA buys toward, the rebalance of a
    crypto share outside its band trades back to, and `status` shows."""
    k = crypto_scale(value, targets, policy)
    return {a: t * k for a, t in targets.weights.items()}


def _mix_now(book: Book, targets: Targets) -> Mapping[str, float]:
    """The plan's weights scaled to the crypto the account holds now: the mix to keep when
    the share is inside its band (nothing trades for the share itself)."""
    planned = sum(targets.weights.values())
    if planned <= 0 or book.value <= 0:
        return targets.weights
    k = book.crypto / book.value / planned
    return {a: t * k for a, t in targets.weights.items()}


def _around_dca_only(
    book: Book, aims: Mapping[str, float], dca_only: frozenset[str]
) -> Mapping[str, float]:
    """`aims` with the assets only bought (an index of cadence "never") aimed where they
    are, and the others at their plan's mix of what is left: what DCA alone buys is never
    rebalanced against the rest, which neither sells nor hoards cash because of it."""
    if not dca_only or book.value <= 0:
        return aims
    where = {a: book.values.get(a, 0.0) / book.value for a in dca_only if a in aims}
    rest = sum(w for a, w in aims.items() if a not in where)
    if rest <= 0:
        return {**aims, **where}
    k = max(0.0, sum(aims.values()) - sum(where.values())) / rest
    return {a: where[a] if a in where else w * k for a, w in aims.items()}


@dataclass(slots=True)
class _Start:
    """What a rebalance starts from: the proposal (its book and aims), the crypto share, the
    cash above its target and the carry (`spare`), and the scope it trades (None: all)."""

    proposal: Proposal
    share: Share | None
    spare: float
    scope: Collection[str] | None


def _begin(
    snapshot: Snapshot,
    targets: Targets,
    policy: Policy,
    state: PlanState,
    scope: Collection[str] | None,
) -> _Start:
    weights = targets.weights
    if scope is None:
        buyable = [a for a, w in weights.items() if w > 0]
    else:
        scoped = set(scope)
        buyable = [a for a, w in weights.items() if w > 0 and a in scoped]
    book = open_book(snapshot, weights, buyable, set_aside=state.profit_to_move)
    share = share_of(book, targets, policy)
    if share is None:
        aims = _around_dca_only(book, targets.weights, targets.dca_only)
    elif scope is None and (share.above or share.below):
        aims = scaled_targets(book.value, targets, policy)  # back to the point
    else:
        aims = _around_dca_only(book, _mix_now(book, targets), targets.dca_only)
    spare = max(0.0, book.cash - book.value * (1 - sum(aims.values())) - state.carry)
    return _Start(Proposal("rebalance", book, aims), share, spare, scope)


def _trade(
    start: _Start,
    targets: Targets,
    policy: Policy,
    snapshot: Snapshot,
    state: PlanState,
    keep: float,
    topping: bool,
) -> None:
    """Propose the sells and buys back into the bands (after the crypto share's `keep` and
    `topping`, see `_crypto_share`)."""
    proposal = start.proposal
    book, aims = proposal.book, proposal.aims
    # What it may trade: every asset held or planned, or those of the scope.
    in_scope = {a for a, n in snapshot.balances.items() if n} | targets.weights.keys()
    in_scope.discard(snapshot.quote)
    if start.scope is not None:
        in_scope &= set(start.scope)
    wanted = _wanted(book, aims, policy, in_scope, keep, start.share, topping, targets.dca_only)
    trader = trader_for(book, snapshot.markets, policy, "rebalance", wanted)
    cash = _sell(proposal, trader, wanted, aims)
    cash_target = book.value * max(0.0, 1 - sum(aims.values())) + state.carry
    _buy(proposal, trader, wanted, aims, max(0.0, cash - cash_target))
    if not wanted:
        proposal.notes.append("every asset is inside its band: nothing to rebalance")


def breach(
    book: Book,
    targets: Targets,
    aims: Mapping[str, float],
    policy: Policy,
    share: Share | None,
    spare: float,
) -> str | None:
    """What puts the account outside the drift watch's bands (the first found), or None."""
    total = book.value
    worth = max(policy.min_order, WEIGHT_TOLERANCE * total)  # a holding worth noticing
    for asset, value in book.values.items():
        if value >= worth and aims.get(asset, 0.0) <= 0:
            return f"{asset} is held ({pct(value / total)}) but not in the plan"
    if share is not None:
        if share.above:
            return f"{share.text()}: above the band's top"
        # Below the band, cash worth a band's width of the account is worth investing early
        # (a seed, a deposit); less waits for the next DCA or scheduled rebalance (in the
        # 10-year benchmark, spare change of 1 % of the account fired 82 early rebalances).
        if share.below and spare >= max(policy.min_order, policy.band_abs * total):
            return f"{share.text()}: below the band's bottom, {money(spare, book.quote)} in cash"
    # (name, the weight it holds of each asset): each index, or each asset on its own.
    groups: list[tuple[str, Mapping[str, float]]]
    # An index of cadence "never" is only bought: its drift is no breach (`targets.dca_only`).
    if policy.drift_watch == "sleeve" and targets.members:
        groups = [
            (f"sleeve {targets.sleeves[i].name}", m)
            for i, m in targets.members.items()
            if targets.sleeves[i].cadence != "never"
        ]
    else:
        groups = [
            (f"asset {asset}", {asset: w})
            for asset, w in targets.weights.items()
            if asset not in targets.dca_only
        ]
    values, weights = book.values, targets.weights
    for name, held in groups:
        # An asset of two indices counts for each as their targets split it, aim and value.
        aim = value = 0.0
        for a, w in held.items():
            if w > 0:
                weight = weights[a]
                aim += aims.get(a, 0.0) * w / weight
                value += values.get(a, 0.0) * w / weight
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
        f"targets scaled to {pct(k)} of the plan's weights so crypto is at its target "
        f"{pct(targets.crypto_share)} of the whole portfolio; the rest is held as cash"
    )


def _crypto_share(
    proposal: Proposal, targets: Targets, policy: Policy, snapshot: Snapshot, start: _Start
) -> tuple[float, bool]:
    """The whole-portfolio rebalance's trade for the crypto share, with its note: the part of
    each holding to keep (a pro rata trim above the band's top, to the point), and whether to
    top up toward the point with the spare cash (below the band's bottom)."""
    book, share, spare = proposal.book, start.share, start.spare
    if share is None:
        proposal.notes.append(
            "outside investments are not configured (0): the crypto share "
            "of the whole portfolio is not checked"
        )
        return 1.0, False
    if share.above:
        # The fees leave the portfolio too: (crypto - x) / (total - fee * x) = point.
        excess = (book.crypto - share.point * share.total) / (1 - share.point * policy.fee_rate)
        if _sellable(book, snapshot, excess):
            keep = 1 - excess / book.crypto
            proposal.notes.append(
                f"{share.text()}, above the band's top: sell {pct(1 - keep)} of each holding, "
                f"back to the target {pct(share.point)}"
            )
            return keep, False
    if share.below:
        if spare >= policy.min_order:
            proposal.notes.append(
                f"{share.text()}, below the band's bottom: buy toward the target "
                f"{pct(share.point)} with the {money(spare, book.quote)} above the cash target"
            )
            return 1.0, True
        proposal.notes.append(
            f"{share.text()}, below the band's bottom: no cash above the cash target to buy "
            "with; a higher contribution (or a deposit) would reach the target"
        )
    return 1.0, False


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
    keep: float,
    share: Share | None,
    topping: bool,
    dca_only: Collection[str] = (),
) -> Wanted:
    """Per asset to trade: the quote value to buy (+) or sell (-), and why. `keep` < 1 trims
    every holding pro rata first (the crypto `share` is above its band); `topping` buys every
    asset below its aim, band or not (the share is below its band). `dca_only` assets are
    never traded for their drift."""
    total, values, to_target = book.value, book.values, policy.rebalance_to == "target"
    wanted: Wanted = {}
    for asset in sorted(in_scope):
        value = values.get(asset, 0.0)
        aim = aims.get(asset, 0.0)
        goal = value * keep
        band = band_of(aim, policy)
        drift = goal / total - aim
        outside = outside_band(drift, band) and asset not in dca_only
        trimmed = keep < 1 and value > 0
        if topping and share is not None and drift < 0:
            if aim * total - value < policy.min_order:
                continue  # as good as at its aim: no dust order to top it up
            reason = (
                f"{share.text()}, below the band's bottom: buy {asset} toward its target "
                f"{pct(aim)} (now {pct(value / total)})"
            )
            wanted[asset] = (aim * total - value, reason)
            continue
        if not outside and not trimmed:
            continue  # the common case, kept cheap: nothing to do
        reasons = []
        if trimmed and share is not None:
            reasons.append(
                f"{share.text()}, above the band's top: sell {pct(1 - keep)} of {asset} into "
                f"{book.quote}, back to the target {pct(share.point)}"
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
