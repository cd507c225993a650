"""Money text: amounts exactly as proposed, prices with the digits that matter."""

from __future__ import annotations

import pytest

from stagewise.money import amount_text, floor_to_step, price_text


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        (82.00355154, "82.00355154"),  # not rounded up to 82.003552
        (1.32e-06, "0.00000132"),  # never in scientific notation
        (100.0, "100"),
        (0.5, "0.5"),
        (12_345_678.9, "12345678.9"),
        (floor_to_step(0.123456789, 0.00001), "0.12345"),  # on the market's step
    ],
)
def test_an_amount_reads_exactly_as_proposed(amount: float, text: str) -> None:
    assert amount_text(amount) == text
    assert float(text) == amount


@pytest.mark.parametrize(
    ("price", "text"),
    [
        (40_770.33498, "40,770.33"),
        (0.043171, "0.04317"),  # FET: four significant digits, not 0.04
        (0.08, "0.08000"),
        (1.5, "1.500"),
        (0.00001234, "0.00001234"),
    ],
)
def test_a_price_keeps_the_digits_that_make_it_meaningful(price: float, text: str) -> None:
    assert price_text(price) == text
