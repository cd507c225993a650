"""The account as the planner sees it: a checked snapshot, its values, weights and drift bands.

`open_book` is the one place a snapshot is checked. Anything that would make a plan wrong
(a missing, zero, negative or NaN price, a negative balance) raises `Refusal`, which the rule
entry points turn into a refused plan: the daemon never proposes from bad data.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC
from operator import itemgetter

from stagewise.money import WEIGHT_TOLERANCE
from stagewise.planner.model import Policy
from stagewise.snapshot import Snapshot


class Refusal(Exception):  # noqa: N818 - it is the domain word: the planner refuses to plan
    """No plan can be made from these inputs; the message names the asset and the problem."""


@dataclass(frozen=True, slots=True)
class Book:
    """A checked snapshot: held assets with usable prices, their values, the account's value.

    amounts: positive free balances of the held assets (the quote currency excluded), by name.
    prices: a usable (finite, positive) price for every held asset and every asset to buy.
    values: amount * price of every held asset, in the order of `amounts`.
    cash: the free quote balance, less the profit proceeds set aside to be moved out.
    day: the UTC day of the snapshot (ISO text): what a position opened now is dated.
    notes: what was left out and why (an asset the exchange cannot price and the plan
        does not hold; profit proceeds set aside).
    """

    quote: str
    cash: float
    amounts: Mapping[str, float]
    prices: Mapping[str, float]
    values: Mapping[str, float]
    value: float
    day: str
    notes: tuple[str, ...] = ()

    @property
    def crypto(self) -> float:
        """Value of everything but the quote currency."""
        return self.value - self.cash

    def weight(self, asset: str) -> float:
        """Share of the account's value in `asset` (0 for an empty account)."""
        return self.values.get(asset, 0.0) / self.value if self.value > 0 else 0.0


def usable(number: object) -> bool:
    """A finite positive number (a price): not None, NaN, zero, negative or infinite."""
    try:
        return 0 < number < math.inf  # type: ignore[operator]  # NaN compares False
    except TypeError:
        return False


def non_negative(number: object) -> bool:
    """A finite number at least 0 (a balance, a market's step or minimum, a fee rate)."""
    try:
        return 0 <= number < math.inf  # type: ignore[operator]
    except TypeError:
        return False


def open_book(
    snapshot: Snapshot,
    planned: Collection[str],
    buyable: Iterable[str],
    *,
    set_aside: float = 0.0,
) -> Book:
    """Check `snapshot` and value it; `buyable` assets need a price even when not held.

    A held asset the exchange declared unpriced (`snapshot.unpriced`) that is not in the plan
    (`planned`) is left out with a note (an airdrop or a delisted coin must not stop the
    daemon); every other held asset without a usable price refuses the plan. `set_aside`
    (profit proceeds waiting to be moved out, `PlanState.profit_to_move`) is taken off the
    quote balance, down to 0: the plan sees the account as if they were gone.
    """
    quote = snapshot.quote
    cash = snapshot.balances.get(quote, 0.0)
    if not non_negative(cash):
        raise Refusal(f"the {quote} balance is {cash!r}: not a usable amount")
    if not non_negative(set_aside):
        raise Refusal(f"the profit proceeds set aside are {set_aside!r}: not a usable amount")
    amounts, prices, values, bad, ignored = _held(snapshot, planned)
    for asset in sorted(set(buyable) - prices.keys() - bad.keys() - {quote}):
        price = snapshot.prices.get(asset)
        if usable(price):
            prices[asset] = price  # type: ignore[assignment]  # usable() checked it
        else:
            bad[asset] = _price_problem(asset, price)
    if bad:
        raise Refusal("no usable price: " + "; ".join(bad.values()))
    notes = tuple(
        f"{a} is held but has no price on the exchange: left out of the account's value"
        for a in ignored
    ) + tuple(_locked_note(snapshot, a, n) for a, n in sorted(snapshot.locked.items()))
    if set_aside > 0:
        notes += (
            f"{money(set_aside, quote)} of profit proceeds are set aside to be moved to your "
            f"diversified traditional investments: not counted or spent (the account shows "
            f"{money(cash, quote)})",
        )
        cash = max(0.0, cash - set_aside)
    day = snapshot.taken_at.astimezone(UTC).date().isoformat()
    return Book(quote, cash, amounts, prices, values, cash + sum(values.values()), day, notes)


def _held(
    snapshot: Snapshot, planned: Collection[str]
) -> tuple[dict[str, float], dict[str, float], dict[str, float], dict[str, str], list[str]]:
    """Held assets (not the quote): amounts, prices and values of the usable ones, the price
    problems by asset, and the unpriced ones outside the plan to leave out."""
    amounts: dict[str, float] = {}
    prices: dict[str, float] = {}
    values: dict[str, float] = {}
    bad: dict[str, str] = {}
    ignored: list[str] = []
    quote, balances, quoted = snapshot.quote, snapshot.balances, snapshot.prices
    inf = math.inf
    for asset in sorted(balances):
        amount = balances[asset]
        if asset == quote or amount == 0:
            continue
        price = quoted.get(asset)
        try:  # a usable amount and price (`usable`, written out: this runs for every asset)
            fine = 0.0 < amount < inf and 0.0 < price < inf  # type: ignore[operator]
        except TypeError:
            fine = False
        if fine:
            amounts[asset] = amount
            prices[asset] = price  # type: ignore[assignment]
            values[asset] = amount * price  # type: ignore[operator]
        elif not non_negative(amount):
            raise Refusal(f"the {asset} balance is {amount!r}: not a usable amount")
        elif asset in snapshot.unpriced and asset not in planned:
            ignored.append(asset)
        else:
            bad[asset] = _price_problem(asset, price)
    return amounts, prices, values, bad, ignored


def _locked_note(snapshot: Snapshot, asset: str, amount: float) -> str:
    """What the plan says of `amount` of `asset` held by the exchange's open orders."""
    price = 1.0 if asset == snapshot.quote else snapshot.prices.get(asset, 0.0)
    worth = f" (worth {money(amount * price, snapshot.quote)})" if usable(price) else ""
    free = snapshot.balances.get(asset, 0.0)
    return (
        f"{asset}: {amount:,.8g} held by open orders on the exchange{worth}: not counted or "
        f"traded; the plan sees the free {free:,.8g} (placing the proposals, mind your orders)"
    )


def _price_problem(asset: str, price: object) -> str:
    if price is None:
        return f"{asset} (missing)"
    return f"{asset} ({price!r})"


def band_of(target: float, policy: Policy) -> float:
    """Half-width of an asset's drift band: the smaller of the absolute and relative bands."""
    relative = policy.band_rel * target
    # min(band_abs, relative) without the call (runs per asset): the first unless the second
    # is smaller, as min() does.
    return relative if relative < policy.band_abs else policy.band_abs


def outside_band(drift: float, band: float) -> bool:
    """True when a drift leaves its band (float noise at the edge does not count)."""
    return abs(drift) > band + WEIGHT_TOLERANCE


def biggest_gaps_first(gaps: Mapping[str, float], budget: float) -> tuple[dict[str, float], float]:
    """Money per asset, filling the biggest gaps first (ties by name); and what is left over."""
    alloc: dict[str, float] = {}
    left = budget
    # By name, then (stable) biggest gap first: ties stay by name.
    for asset, gap in sorted(sorted(gaps.items()), key=itemgetter(1), reverse=True):
        if left <= 0:
            break
        if gap > 0:
            alloc[asset] = min(gap, left)
            left -= alloc[asset]
    return alloc, max(left, 0.0)


def pct(fraction: float) -> str:
    """A fraction as a human reads a weight: 0.142 -> '14.2%'."""
    return f"{fraction * 100:.1f}%"


def money(amount: float, quote: str) -> str:
    """An amount of the quote currency for a reason string: '1,234.50 USDT'."""
    return f"{amount:,.2f} {quote}"
