"""What a plan earned and risked, as investors compare plans; pure figures of given values.

- money-weighted return (XIRR): the yearly rate at which every payment in (seed,
  contributions) and out (withdrawals, and the final value) discounts to zero: the return
  of this investor's own money, timing of the contributions included;
- time-weighted return: the growth of one unit held from the start, the payments in and out
  removed (each day's value over the day before's plus the money moved in since): the
  return of the plan itself, whatever was paid in when;
- max drawdown: the largest fall from a peak, of the value (contributions count as a rise)
  or of the time-weighted curve (the portfolio's own fall).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

from stagewise.money import QUOTE_EPSILON

DAYS_A_YEAR = 365  # a year of a rate, as spreadsheets' XIRR counts it


def max_drawdown(values: Sequence[float]) -> float:
    """The largest fall from a peak, as a fraction of the peak (0 without a fall)."""
    peak, worst = 0.0, 0.0
    for v in values:
        if v > peak:
            peak = v
        elif peak > 0 and (peak - v) / peak > worst:
            worst = (peak - v) / peak
    return worst


def time_weighted(points: Sequence[tuple[float, float]]) -> list[float]:
    """The growth of one unit over `points` of (value, money moved in since the point before;
    negative: moved out): each step multiplies by value / (value before + money moved in).
    A step with (almost) nothing invested at its start leaves the unit as it is."""
    unit, before, curve = 1.0, 0.0, []
    for value, moved_in in points:
        base = before + moved_in
        if base > QUOTE_EPSILON:
            unit *= value / base
        curve.append(unit)
        before = value
    return curve


def annualised(growth: float, days: float) -> float | None:
    """A growth factor over `days` as a yearly rate (None: no span, or nothing left)."""
    if days <= 0 or not growth > 0:
        return None
    return growth ** (DAYS_A_YEAR / days) - 1


def xirr(flows: Sequence[tuple[datetime, float]]) -> float | None:
    """The yearly rate r at which sum(amount / (1 + r) ** years since the first flow) is 0,
    for `flows` of (moment, amount) from the investor's side (paid in negative, received
    positive). None when there is no such rate (no flow in or none out)."""
    if not flows or not any(a < 0 for _, a in flows) or not any(a > 0 for _, a in flows):
        return None
    first = min(t for t, _ in flows)
    timed = [((t - first).total_seconds() / 86_400 / DAYS_A_YEAR, a) for t, a in flows]

    def npv(log_growth: float) -> float:  # at the rate exp(log_growth) - 1
        return sum(a * math.exp(min(700.0, -years * log_growth)) for years, a in timed)

    # Paid in before received, npv falls as the rate rises: bisect on log(1 + r) between a
    # loss of almost everything and a gain no market gives.
    low, high = math.log(1e-6), math.log(1e6)
    at_low = npv(low)
    if at_low * npv(high) > 0:
        return None
    while high - low > 1e-12:
        mid = (low + high) / 2
        at_mid = npv(mid)
        if at_low * at_mid <= 0:
            high = mid
        else:
            low, at_low = mid, at_mid
    return math.expm1((low + high) / 2)
