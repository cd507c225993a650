"""Money arithmetic shared by every module, and the project's tolerances, stated once.

Amounts are floats (as ccxt returns them); they are put on an exchange's grid once, at the
boundary where an order is made, by `floor_to_step`.
"""

from __future__ import annotations

import math

# Weights in the plan data (percent) must sum to 100 within this.
WEIGHT_SUM_TOLERANCE_PCT = 0.01
# Fractions that must sum to 1 (targets, glide path steps) do so within this.
WEIGHT_TOLERANCE = 1e-9
# Quote-currency amounts closer than this are equal (a hundredth of a cent).
QUOTE_EPSILON = 1e-4
# Relative slack when checking a float against a step grid.
STEP_EPSILON = 1e-9


def floor_to_step(amount: float, step: float) -> float:
    """`amount` rounded down to a whole number of `step` (step 0 = no grid)."""
    if step <= 0:
        return amount
    units = math.floor(amount / step * (1 + STEP_EPSILON))
    # round() strips the binary noise of units * step (0.1 * 3 = 0.30000000000000004).
    decimals = max(0, -math.floor(math.log10(step))) + 2
    return round(units * step, decimals)


def on_step(amount: float, step: float) -> bool:
    """True when `amount` is a whole number of `step`, within float noise."""
    if step <= 0:
        return True
    units = amount / step
    return abs(units - round(units)) <= 1e-6 * max(1.0, abs(units))


def cents(value: float) -> float:
    """A quote-currency value rounded to two decimals, for display and reports."""
    return round(value + 0.0, 2)
