"""Withdraw: sell for the retiree's income, the yearly rate spread over the year's periods.

This period's amount = yearly_rate * crypto value (everything but the quote currency) /
periods, received in the quote currency after fees (sells are grossed up by the fee). It is
taken from the most overweight assets first (down to their targets, biggest drift first) and
the rest pro rata to what is held; never more than the free balance. The state records the
amount withdrawn in the calendar year (reset when the year changes).

The proceeds stay on the account as quote currency until the investor takes them out: the
paper ledger should book them out, or the next rebalance would see cash above target.
"""

from __future__ import annotations

from stagewise.planner.book import (
    Book,
    Refusal,
    biggest_gaps_first,
    money,
    non_negative,
    open_book,
    pct,
)
from stagewise.planner.fills import Proposal, finish, refuses
from stagewise.planner.model import Plan, PlanState, Policy
from stagewise.planner.orders import trader_for
from stagewise.snapshot import Snapshot
from stagewise.targets import Targets


@refuses("withdraw")
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
    crypto value per year, in `periods` parts; `year` is the calendar year of this period."""
    _check(yearly_rate, periods)
    book = open_book(snapshot, targets.weights, ())
    proposal = Proposal("withdraw", book, targets.weights)
    withdrawn = state.withdrawn if state.withdrawn_year == year else 0.0
    amount = yearly_rate * book.crypto / periods
    label = (
        f"withdrawal of {pct(yearly_rate)} a year in {periods} part(s): {money(amount, book.quote)}"
    )
    if amount <= 0:
        proposal.notes.append(f"{label}: nothing to sell")
        return finish(proposal, state, policy, withdrawn_year=year, withdrawn=withdrawn)
    takes = _takes(book, targets, amount)
    trader = trader_for(book, snapshot.markets, policy, "withdraw", takes)
    received = 0.0
    for asset, (take, why) in sorted(takes.items()):
        gross = take / (1 - trader.fee_rates[asset])
        made = proposal.add(
            trader.sell(asset, gross, f"{label}: {why}", targets.weights.get(asset, 0.0))
        )
        if made is not None:
            received += made.notional - made.fee
    if proposal.skipped:
        proposal.notes.append(f"{label}: only {money(received, book.quote)} can be sold now")
    return finish(proposal, state, policy, withdrawn_year=year, withdrawn=withdrawn + received)


def _check(yearly_rate: float, periods: int) -> None:
    if not (non_negative(yearly_rate) and yearly_rate <= 1):
        raise Refusal(f"the withdrawal rate is {yearly_rate!r}: a fraction between 0 and 1")
    if not (isinstance(periods, int) and periods >= 1):
        raise Refusal(f"the withdrawal periods are {periods!r}: a whole number of at least 1")


def _takes(book: Book, targets: Targets, amount: float) -> dict[str, tuple[float, str]]:
    """Quote value to raise per asset: overweight assets first, then pro rata to holdings."""
    over = {a: v - targets.weights.get(a, 0.0) * book.value for a, v in book.values.items()}
    first, rest = biggest_gaps_first(over, min(amount, book.crypto))
    takes = {
        a: (
            v,
            f"from {a}, {pct(book.weight(a))} vs target "
            f"{pct(targets.weights.get(a, 0.0))}: overweight first",
        )
        for a, v in first.items()
    }
    left = {a: v - first.get(a, 0.0) for a, v in book.values.items()}
    total = sum(left.values())
    if rest > 0 and total > 0:
        for asset, value in left.items():
            part = rest * value / total
            if part > 0:
                old, why = takes.get(asset, (0.0, f"from {asset}"))
                takes[asset] = (old + part, f"{why}, then pro rata to holdings")
    return takes
