"""Money arithmetic shared by every module, and the project's tolerances, stated once.

Amounts are floats (as ccxt returns them); they are put on an exchange's grid once, at the
boundary where an order is made, by `floor_to_step`.
"""

from __future__ import annotations

import math
from decimal import ROUND_FLOOR, Decimal
from functools import lru_cache

# Weights in the plan data (percent) must sum to 100 within this.
WEIGHT_SUM_TOLERANCE_PCT = 0.01
# Fractions that must sum to 1 (targets, glide path steps) do so within this.
WEIGHT_TOLERANCE = 1e-9
# Quote-currency amounts closer than this are equal (a hundredth of a cent).
QUOTE_EPSILON = 1e-4
# Relative slack when checking a float against a step grid.
STEP_EPSILON = 1e-9
# A balance this much (relatively) above an earlier one has grown (read-only cost basis).
AMOUNT_TOLERANCE = 1e-9
# No amount of money stagewise handles is larger, in any quote currency: more than any
# portfolio, and floats still hold cents there (at 1e308 the planner's arithmetic overflows).
MAX_MONEY = 1e12
# A price (quote currency per unit) outside this range is no market's: the finest price steps
# are around 1e-8, and order arithmetic on a price like 1e-300 overflows.
PRICE_RANGE = (1e-12, 1e12)


def floor_to_step(amount: float, step: float) -> float:
    """`amount` rounded down to a whole number of `step` (step 0 = no grid).

    Exact decimal arithmetic on the numbers as written (repr), like ccxt's own truncation:
    binary noise can neither push an amount over a step boundary nor drop it below one
    (0.3 on a 0.1 grid stays 0.3; 99.99999999 on a 1 grid is 99)."""
    if step <= 0:
        return amount
    grid = _decimal(step)
    units = (Decimal(repr(amount)) / grid).to_integral_value(rounding=ROUND_FLOOR)
    return float(units * grid)


@lru_cache(maxsize=256)
def _decimal(step: float) -> Decimal:
    return Decimal(repr(step))


def cents(value: float) -> float:
    """A quote-currency value rounded to two decimals, for display and reports."""
    return round(value + 0.0, 2)


def amount_text(amount: float) -> str:
    """An amount exactly as it is (the shortest decimal that is this float), never rounded
    and never in scientific notation: 82.00355154 stays 82.00355154, 1.32e-06 reads
    0.00000132."""
    if not math.isfinite(amount):
        return repr(amount)
    text = format(Decimal(repr(amount)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def price_text(price: float) -> str:
    """A price with the digits that make it meaningful: cents above 1,000, and at least
    four significant digits below (FET at 0.04317, not 0.04)."""
    if not math.isfinite(price) or price <= 0:
        return repr(price)
    decimals = max(2, 3 - math.floor(math.log10(price)))
    return f"{price:,.{decimals}f}"
