"""Withdraw: sell for the retiree's income, the yearly rate spread over the year's periods.

This period's amount = yearly_rate * crypto value (everything but the quote currency) /
periods, plus what earlier periods could not raise (`state.withdraw_due`), received in the
quote currency after fees (sells are grossed up by the fee). It comes in few orders: from the
holdings furthest above their targets first, each sold down to a common level of its target
(what is not in the plan first of all), never more than the free balance; a part too small
for `policy.min_order` goes to the biggest sale. What cannot be raised now (minimums,
rounding) is owed to the next period and said. The state records the amount withdrawn in
the calendar year (reset when the year changes).

The proceeds leave the account (the paper ledger books them out): the investor takes them.
"""

from __future__ import annotations

from collections.abc import Mapping

from stagewise.money import QUOTE_EPSILON
from stagewise.planner.book import Book, Refusal, money, non_negative, open_book, pct
from stagewise.planner.fills import Proposal, finish, refused
from stagewise.planner.model import Plan, PlanState, Policy
from stagewise.planner.orders import trader_for
from stagewise.snapshot import Snapshot
from stagewise.targets import Targets


def plan_withdraw(
    snapshot: Snapshot,
    targets: Targets,
    policy: Policy,
    state: PlanState,
    yearly_rate: float,
    periods: int,
    year: int,
) -> Plan:
    """Sells for this period's withdrawal: `yearly_rate` (a fraction, 0.033 = 3.3 %) of the
    crypto value per year, in `periods` parts, plus what is owed; `year` is the calendar year
    of this period."""
    try:
        return _withdraw(snapshot, targets, policy, state, yearly_rate, periods, year)
    except Refusal as why:
        return refused("withdraw", state, why)


def _withdraw(
    snapshot: Snapshot,
    targets: Targets,
    policy: Policy,
    state: PlanState,
    yearly_rate: float,
    periods: int,
    year: int,
) -> Plan:
    _check(yearly_rate, periods)
    book = open_book(snapshot, targets.weights, ())
    proposal = Proposal("withdraw", book, targets.weights)
    withdrawn = state.withdrawn if state.withdrawn_year == year else 0.0
    due = state.withdraw_due if non_negative(state.withdraw_due) else 0.0
    amount = yearly_rate * book.crypto / periods + due
    label = (
        f"withdrawal of {pct(yearly_rate)} a year in {periods} part(s): {money(amount, book.quote)}"
        + (f" (with {money(due, book.quote)} owed from before)" if due else "")
    )
    if amount <= 0:
        proposal.notes.append(f"{label}: nothing to sell")
        return finish(proposal, state, policy, withdrawn_year=year, withdrawn=withdrawn)
    takes = _takes(book, targets, min(amount, book.crypto), policy.min_order)
    trader = trader_for(book, snapshot.markets, policy, "withdraw", takes)
    received = 0.0
    for asset, (take, why) in sorted(takes.items()):
        gross = take / (1 - trader.fee_rates[asset])
        made = proposal.add(
            trader.sell(asset, gross, f"{label}: {why}", targets.weights.get(asset, 0.0))
        )
        if made is not None:
            received += made.notional - made.fee
    owed = max(0.0, amount - received)
    if owed < QUOTE_EPSILON:
        owed = 0.0
    else:
        proposal.notes.append(
            f"{label}: {money(received, book.quote)} can be raised now; "
            f"{money(owed, book.quote)} is owed to the next period"
        )
    return finish(
        proposal,
        state,
        policy,
        withdrawn_year=year,
        withdrawn=withdrawn + received,
        withdraw_due=owed,
    )


def _check(yearly_rate: float, periods: int) -> None:
    if not (non_negative(yearly_rate) and yearly_rate <= 1):
        raise Refusal(f"the withdrawal rate is {yearly_rate!r}: a fraction between 0 and 1")
    if not (isinstance(periods, int) and periods >= 1):
        raise Refusal(f"the withdrawal periods are {periods!r}: a whole number of at least 1")


def _takes(
    book: Book, targets: Targets, amount: float, min_order: float
) -> dict[str, tuple[float, str]]:
    """Quote value to raise per asset, in few orders: what is not in the plan first, then
    the holdings furthest above their targets, each down to one common level of its target
    (water-filling: the sales leave them equally far from it). A part under `min_order` is
    added to the biggest one (when that holding can give it)."""
    values, weights = book.values, targets.weights
    takes: dict[str, tuple[float, str]] = {}
    left = amount
    for asset in sorted(a for a in values if weights.get(a, 0.0) <= 0):
        if left <= 0:
            break
        take = min(values[asset], left)
        takes[asset] = (take, f"from {asset}, not in the plan: first")
        left -= take
    planned = {a: v for a, v in values.items() if weights.get(a, 0.0) > 0}
    level = _level(planned, weights, left)
    for asset, value in planned.items():
        take = value - level * weights[asset]
        if take > QUOTE_EPSILON:
            takes[asset] = (
                take,
                f"from {asset}, {pct(book.weight(asset))} vs target {pct(weights[asset])}: "
                "the most overweight first",
            )
    small = [a for a, (t, _) in takes.items() if t < min_order]
    if small and len(takes) > 1:
        big = max(takes, key=lambda a: (takes[a][0], a))
        for asset in small:
            if asset == big:
                continue
            take, _ = takes[asset]
            if takes[big][0] + take <= values[big]:
                takes[big] = (takes[big][0] + take, takes[big][1] + f" (with {asset}'s small part)")
                del takes[asset]
    return takes


def _level(values: Mapping[str, float], weights: Mapping[str, float], amount: float) -> float:
    """The level L (value per unit of target) such that selling every holding above L * its
    target down to it raises `amount`; 0 when that takes everything."""
    if amount <= 0 or not values:
        return max((v / weights[a] for a, v in values.items()), default=0.0)
    ratios = sorted(((v / weights[a], a) for a, v in values.items()), reverse=True)
    above_value = above_weight = 0.0
    for i, (_ratio, asset) in enumerate(ratios):
        above_value += values[asset]
        above_weight += weights[asset]
        nxt = ratios[i + 1][0] if i + 1 < len(ratios) else 0.0
        # Selling the first i+1 holdings down to `nxt` raises above_value - nxt * above_weight.
        if above_value - nxt * above_weight >= amount:
            return (above_value - amount) / above_weight
    return 0.0
