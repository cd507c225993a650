"""What the daemon sees of an account at one moment: balances, prices, and market rules.

Plain frozen data, built by an account (read-only exchange or paper ledger) and consumed by
the pure planner. Never raw ccxt dicts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Market:
    """The trading rules of one market `BASE/QUOTE`.

    amount_step: the smallest increment of the base amount (orders are rounded down to it).
    min_amount: the smallest base amount the exchange accepts (0 = none).
    min_notional: the smallest order value in the quote currency (0 = none).
    fee_rate: taker fee as a fraction (0.001 = 0.1 %).
    max_amount: the largest base amount the exchange accepts in one order (inf = none).
    """

    symbol: str
    base: str
    quote: str
    amount_step: float
    min_amount: float = 0.0
    min_notional: float = 0.0
    fee_rate: float = 0.001
    price_step: float = 0.0
    max_amount: float = math.inf


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Balances, prices and market rules at `taken_at`.

    balances: free amount per asset (the quote currency included).
    prices: price of one unit of each asset in the quote currency (the quote itself is 1).
    markets: trading rules keyed by base asset (the market BASE/QUOTE, or the bridge used).
    locked: amount per asset held by the exchange's open orders (a read-only account's): not
        free, so neither planned with nor traded; each plan says so.
    """

    taken_at: datetime
    quote: str
    balances: Mapping[str, float]
    prices: Mapping[str, float]
    markets: Mapping[str, Market]
    unpriced: tuple[str, ...] = field(default=())
    locked: Mapping[str, float] = field(default_factory=dict)

    def value_of(self, asset: str) -> float:
        """Quote-currency value of the free balance of `asset`."""
        if asset == self.quote:
            return self.balances.get(asset, 0.0)
        return self.balances.get(asset, 0.0) * self.prices.get(asset, 0.0)

    @property
    def total_value(self) -> float:
        """Value of everything on the account, in the quote currency."""
        return sum(self.value_of(a) for a in self.balances)
