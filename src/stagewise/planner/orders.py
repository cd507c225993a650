"""Making one order: on the market's grid, above its minimums, in parts under the cap.

Amounts are rounded DOWN to the market's step, once, here. A buy never spends more than the
money given to it (notional + fee); a sell never exceeds the free balance. A sell worth more
than `policy.max_order_share` of the account is proposed in part, up to the cap (the rest
waits for a later run): one order never moves more than that share. Buys spend cash the
account holds (or new money), so they are bounded by it and not capped. A rebalance, drift,
profit or withdrawal order worth less than `policy.min_order` is not worth placing (dust).
What cannot be proposed comes back as a `Skip` with the reason.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from stagewise.money import STEP_EPSILON, amount_text, floor_to_step
from stagewise.planner.book import Book, Refusal, money, pct
from stagewise.planner.model import Policy, Rule, Side, Skip
from stagewise.snapshot import Market

# Rules that invest new money: every part of it is placed, however small (what cannot be
# is carried to the next run), so the dust floor does not apply to them.
_NEW_MONEY = ("dca", "windfall")

# Amounts tried (the floored one, then a step down each time) to undo float noise before
# giving up on an order (one or two are ever needed).
_TRIES = 8


@dataclass(slots=True)
class Draft:
    """An order before the whole plan is known (weight_after comes last)."""

    asset: str
    symbol: str
    side: Side
    amount: float
    price: float
    notional: float
    fee: float
    reason: str
    target: float


@dataclass(frozen=True, slots=True)
class Trader:
    """What every order of one plan shares: the account, the markets, the policy, the rule."""

    book: Book
    markets: Mapping[str, Market]
    # Per asset: the market's fee, or the policy's where the market states none (or nonsense:
    # negative, NaN, 100 % or more).
    fee_rates: Mapping[str, float]
    policy: Policy
    rule: Rule

    def buy(self, asset: str, spend: float, reason: str, target: float) -> Draft | Skip:
        """Buy `asset` for at most `spend` of the quote currency, fee included."""
        market = self.markets[asset]
        step = market.amount_step
        price = self.book.prices[asset] * (1 + self.policy.slippage)  # expected fill
        rate = self.fee_rates[asset]
        amount = floor_to_step(spend / (1 + rate) / price, step)
        notional = amount * price
        # Float noise can lift notional + fee a hair above `spend`: step down until it fits.
        # (notional + notional * rate is how the plan and `apply` add up what a buy costs.)
        if not (amount <= 0 or notional + notional * rate <= spend):

            def fits(a: float) -> bool:
                return a <= 0 or a * price + a * price * rate <= spend

            amount = _stepped_down(amount, step, fits)
            notional = amount * price
        draft = Draft(
            asset, market.symbol, "buy", amount, price, notional, notional * rate, reason, target
        )
        return self._checked(draft, market)

    @property
    def cap(self) -> float:
        """The most one sell may move (quote): the implausible-order cap's share of the account."""
        return self.policy.max_order_share * self.book.value

    def sell(self, asset: str, value: float, reason: str, target: float) -> Draft | Skip:
        """Sell about `value` (quote, before fee) of `asset`, never more than its free balance
        and never more than the cap's share of the account (then in part, said in the reason)."""
        market = self.markets[asset]
        cap = self.cap
        if value > cap:
            reason += (
                f" (part: {money(cap, self.book.quote)} of {money(value, self.book.quote)}, "
                f"the most one order may move is {pct(self.policy.max_order_share)} of the "
                "account; the rest at a later run)"
            )
            value = cap
        price = self.book.prices[asset] * (1 - self.policy.slippage)  # expected fill
        rate = self.fee_rates[asset]
        free = self.book.amounts.get(asset, 0.0)
        wanted = value / price
        # min(wanted, free) as min() picks it, without the call (this runs per order)
        amount = floor_to_step(free if free < wanted else wanted, market.amount_step)
        if not amount <= free:  # a guard: the smaller of the two, floored, is already within
            amount = _stepped_down(amount, market.amount_step, lambda a: a <= free)
        notional = amount * price
        draft = Draft(
            asset, market.symbol, "sell", amount, price, notional, notional * rate, reason, target
        )
        return self._checked(draft, market)

    def sell_units(self, asset: str, units: float, reason: str, target: float) -> Draft | Skip:
        """`sell` of `units` of `asset` at the expected fill price (STEP_EPSILON: units *
        price / price may come back a hair under the units, a step less once floored)."""
        price = self.book.prices[asset] * (1 - self.policy.slippage)
        return self.sell(asset, units * price * (1 + STEP_EPSILON), reason, target)

    def _checked(self, draft: Draft, market: Market) -> Draft | Skip:
        amount, notional = draft.amount, draft.notional
        if amount <= 0 or amount < market.min_amount:
            return self._skip(
                draft,
                f"below the market's minimum amount {amount_text(market.min_amount)} {draft.asset} "
                f"(step {amount_text(market.amount_step)})",
            )
        if amount > market.max_amount:
            return self._skip(
                draft,
                f"above the market's maximum amount {amount_text(market.max_amount)} "
                f"{draft.asset}: the exchange would refuse it (a bad price?)",
            )
        if notional < market.min_notional:
            return self._skip(
                draft,
                f"below the market's minimum order value "
                f"{money(market.min_notional, self.book.quote)}",
            )
        if notional < self.policy.min_order and self.rule not in _NEW_MONEY:
            return self._skip(
                draft,
                f"under policy.min_order {money(self.policy.min_order, self.book.quote)}: "
                "not worth an order",
            )
        return draft

    def _skip(self, draft: Draft, why: str) -> Skip:
        value = money(draft.notional, self.book.quote)
        amount = amount_text(draft.amount)
        reason = f"{draft.side} {amount} {draft.asset} ({value}): {why} (wanted because: "
        reason += f"{draft.reason})"
        return Skip(draft.asset, self.rule, reason, draft.notional)


def _stepped_down(amount: float, step: float, fits: Callable[[float], bool]) -> float:
    """The first of `amount`'s next _TRIES - 1 steps down that `fits`; 0 if none does."""
    for _ in range(_TRIES - 1):
        amount = _step_down(amount, step)
        if fits(amount):
            return amount
    return 0.0


def _step_down(amount: float, step: float) -> float:
    """One step less; without a grid, a hair less (always strictly less: float noise only)."""
    if step <= 0:
        return min(amount * (1 - 1e-12), math.nextafter(amount, 0.0))
    return max(0.0, floor_to_step(amount - step, step))


def trader_for(
    book: Book,
    markets: Mapping[str, Market],
    policy: Policy,
    rule: Rule,
    assets: Iterable[str],
) -> Trader:
    """A Trader for a plan that trades `assets`: each needs a market with sane rules."""
    problems = {}
    fee_rates = {}
    for asset in assets:
        market = markets.get(asset)
        if market is None:
            problems[asset] = f"{asset} (no {asset}/{book.quote} market)"
        elif not _rules_ok(market):
            problems[asset] = f"{asset} (market {market.symbol} has unusable step or minimums)"
        else:
            rate = market.fee_rate
            fee_rates[asset] = rate if _fee_ok(rate) else policy.fee_rate
    if problems:
        raise Refusal("no usable market: " + "; ".join(problems[a] for a in sorted(problems)))
    return Trader(book, markets, fee_rates, policy, rule)


def _rules_ok(market: Market) -> bool:
    """Step and minimums are finite numbers at least 0 (`non_negative`, written out: this
    runs for every market a plan trades on)."""
    try:
        return (
            0.0 <= market.amount_step < math.inf
            and 0.0 <= market.min_amount < math.inf
            and 0.0 <= market.min_notional < math.inf
            and market.max_amount > 0.0  # inf: none; NaN compares False
        )
    except TypeError:
        return False


def _fee_ok(rate: object) -> bool:
    """A fee rate from 0 (included) to 100 % (excluded)."""
    try:
        return 0.0 <= rate < 1.0  # type: ignore[operator]
    except TypeError:
        return False
