"""Windfall: invest the share of a bonus the stage gives (e.g. 50 % for young professionals).

Exactly like DCA (buys only, biggest gaps first, carry kept) with budget = bonus * share
plus the carry. A windfall is a contribution: while the emergency rule is in force it is
not invested (the guide: "use the emergency fund first").
"""

from __future__ import annotations

import math

from stagewise.money import MAX_MONEY, QUOTE_EPSILON
from stagewise.planner.book import Refusal, money, pct
from stagewise.planner.dca import invest, must_be_money
from stagewise.planner.fills import refused
from stagewise.planner.model import Plan, PlanState, Policy
from stagewise.snapshot import Snapshot
from stagewise.targets import Targets


def plan_windfall(
    snapshot: Snapshot,
    targets: Targets,
    policy: Policy,
    state: PlanState,
    bonus: float,
    share: float,
) -> Plan:
    """Buys for `share` (a fraction, 0.5 = 50 %) of `bonus` (quote currency), plus the carry."""
    try:
        must_be_money(bonus, "the bonus")
        must_be_money(share, "the bonus share")
        if share > 1:
            raise Refusal(f"the bonus share is {share!r}: a fraction between 0 and 1 (0.5 = 50 %)")
        label = (
            f"windfall: {pct(share)} of a {money(bonus, snapshot.quote)} bonus "
            f"= {money(bonus * share, snapshot.quote)}"
        )
        return invest("windfall", snapshot, targets, policy, state, bonus * share, label)
    except Refusal as why:
        return refused("windfall", state, why)


# A bonus above both bounds is taken for a typo (an extra zero or three, 1e308) and refused:
# ten times the portfolio, or this much of the quote currency (a first bonus may well dwarf
# a new portfolio).
BONUS_CEILING = 1_000_000.0
BONUS_PORTFOLIO_MULTIPLE = 10


def bonus_ceiling(portfolio_value: float | None) -> float:
    """The largest bonus taken as plausible, given the portfolio's last recorded value (None
    when none is recorded): the larger of ten times that value and BONUS_CEILING."""
    if portfolio_value is None or not math.isfinite(portfolio_value):
        return BONUS_CEILING
    return min(MAX_MONEY, max(BONUS_CEILING, BONUS_PORTFOLIO_MULTIPLE * portfolio_value))


def implausible(amount: float, portfolio_value: float | None, quote: str) -> str | None:
    """Why `amount` is no bonus to record: too small to be money, or above `bonus_ceiling`
    (a typo); None when it is plausible. `portfolio_value`: the last recorded (None: none)."""
    if amount < QUOTE_EPSILON:
        return (
            f"a windfall of {amount:g} {quote} is too small to invest: at least "
            f"{QUOTE_EPSILON:g} {quote}"
        )
    ceiling = bonus_ceiling(portfolio_value)
    if amount <= ceiling:
        return None
    times = f"{BONUS_PORTFOLIO_MULTIPLE} times the portfolio's"
    if portfolio_value is None:
        why = f"while no portfolio value is recorded (then {times} value, if larger)"
    else:
        why = (
            f"the larger of {BONUS_CEILING:,.2f} {quote} and {times} last recorded value "
            f"({portfolio_value:,.2f} {quote})"
        )
    return (
        f"a windfall of {shown_amount(amount)} {quote} is not plausible: at most "
        f"{ceiling:,.2f} {quote}, {why}"
    )


def shown_amount(amount: float) -> str:
    """A windfall's amount to read: 5,000.00 (and 1e+308 for what an older version took)."""
    return f"{amount:,.2f}" if amount < 1e15 else f"{amount:.3g}"
