"""A simulation's figures from its paper ledger and the prices: the value on every day with a
close or a payment, money in and out, trading costs, returns, drawdowns and turnover.

Pure: functions of ledger entries and a PriceHistory (no store, no clock).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from itertools import repeat
from operator import add, mul

from stagewise.history import PriceHistory
from stagewise.ledger import LedgerEntry
from stagewise.paper import PROFIT_TAKEN
from stagewise.returns import annualised, max_drawdown, time_weighted, xirr

# The rules whose trades are the plan's own trading (not money in or out): turnover counts them.
TRADING = frozenset({"rebalance", "profit"})
DAYS_A_YEAR = 365.25  # turnover per year, as the churn figures count years


@dataclass(frozen=True)
class Day:
    """The account at the end of a day: its value at the day's close (the last close known
    by the day's end), the money put in so far (seed and contributions), the money moved in
    that day (seed, contributions, windfalls; withdrawals and profit moved out negative), its
    cash, the value held outside crypto that day, and the money in and out to date."""

    day: date
    value: float
    invested: float
    moved_in: float
    cash: float = 0.0
    outside_value: float = 0.0
    contributions: float = 0.0  # every deposit to date, DCA and windfalls
    withdrawals: float = 0.0  # paid out to date (profit moved out apart)
    profit_moved_out: float = 0.0  # profit taken to date, moved to traditional investments

    @property
    def crypto_share(self) -> float | None:
        """The crypto held over the whole portfolio (the account and the outside value);
        None with nothing in either."""
        whole = self.value + self.outside_value
        return (self.value - self.cash) / whole if whole > 0 else None


@dataclass(frozen=True)
class Figures:
    """Money, costs, returns and risk of a simulation (see the README's simulate section)."""

    seed_value: float
    contributions: float  # every deposit: DCA and windfalls
    windfalls: float  # the part of `contributions` that windfalls deposited
    withdrawals: float  # paid out (the withdrawal stage's payouts)
    profit_moved_out: float  # profit taken, moved to traditional investments (not withdrawals)
    fees: float
    slippage: float  # paid above / received below the close a fill was planned at
    final_value: float
    money_weighted: float | None  # XIRR, a yearly rate
    time_weighted: float | None  # annualised
    max_drawdown: float  # of the value (contributions count as a rise)
    max_drawdown_time_weighted: float  # of the time-weighted curve: the portfolio's own
    turnover: float  # the lesser of bought and sold by rebalancing and profit-taking, a
    # year, over the average value
    days: list[Day]
    unit_curve: list[float]  # the time-weighted growth of one unit, aligned with `days`
    allocation: list[tuple[date, dict[str, float]]]  # holdings' values, first day of a month

    @property
    def trading_cost(self) -> float:
        return self.fees + self.slippage


def figures(
    entries: Sequence[LedgerEntry],
    history: PriceHistory,
    quote: str,
    span: tuple[datetime, datetime],
    tz: tzinfo,
    outside: Sequence[tuple[date, float]] = (),
) -> Figures:
    """The figures of `entries` over `span` ([start, end) moments), valued with `history`'s
    closes; days are the investor's (`tz`). `outside`: the value held outside crypto from
    each day it changes (ascending; none: 0), for each day's crypto share."""
    start_at, end_at = span
    moved_in = _MovedIn(history, quote, tz)
    days, allocation = _days(entries, history, quote, span, tz, moved_in, outside)
    values = [d.value for d in days]
    seed = _sum(moved_in(e) for e in entries if e.kind == "seed")
    final = values[-1] if values else seed
    curve = time_weighted([(d.value, d.moved_in) for d in days])
    length = (end_at - start_at).total_seconds() / 86_400
    average = sum(values) / len(values) if values else 0.0
    trades = [e for e in entries if e.kind == "fill" and e.asset == quote and _rule(e) in TRADING]
    # The lesser of bought and sold (as funds report turnover): money newly invested by a
    # rebalance (a seed put to work) is no trading.
    traded = min(
        _sum(-e.amount for e in trades if e.amount < 0),
        _sum(e.amount for e in trades if e.amount > 0),
    )
    years = length / DAYS_A_YEAR
    return Figures(
        seed_value=seed,
        contributions=_sum(e.amount for e in entries if e.kind == "deposit"),
        windfalls=_sum(
            e.amount for e in entries if e.kind == "deposit" and e.note.startswith("windfall:")
        ),
        withdrawals=0.0
        - _sum(e.amount for e in entries if e.kind == "withdrawal" and not _profit(e)),
        profit_moved_out=0.0 - _sum(e.amount for e in entries if _profit(e)),
        fees=0.0 - _sum(e.amount for e in entries if e.kind == "fee"),
        slippage=_slippage(entries, history, quote, tz),
        final_value=final,
        money_weighted=xirr(
            [(e.at, -moved_in(e)) for e in entries if e.kind in _MONEY] + [(end_at, final)]
        ),
        time_weighted=annualised(curve[-1], length) if curve else None,
        max_drawdown=max_drawdown(values),
        max_drawdown_time_weighted=max_drawdown(curve),
        turnover=traded / average / years if average > 0 and years > 0 else 0.0,
        days=days,
        unit_curve=curve,
        allocation=allocation,
    )


def _sum(amounts: Iterable[float]) -> float:
    return sum(amounts, 0.0) + 0.0  # + 0.0: never a negative zero


def _profit(e: LedgerEntry) -> bool:
    """Profit taken and moved out of the account (paper mode's ledger withdrawal of it)."""
    return e.kind == "withdrawal" and e.note == PROFIT_TAKEN


def _rule(e: LedgerEntry) -> str:
    """The rule of a fill: its note starts with it (see paper.fill_entries)."""
    return e.note.split(" ", 1)[0]


# The entries that move money in or out of the account (the rest move it inside).
_MONEY = frozenset({"seed", "deposit", "withdrawal"})


class _MovedIn:
    """The money an entry moves into the account (withdrawals negative; 0: none): a seed of
    a coin at its cost, else at the close known when it was made."""

    def __init__(self, history: PriceHistory, quote: str, tz: tzinfo) -> None:
        self.history, self.quote, self.tz = history, quote, tz

    def __call__(self, e: LedgerEntry) -> float:
        if e.kind not in _MONEY:
            return 0.0
        if e.asset == self.quote:
            return e.amount
        if e.price is not None:
            return e.amount * e.price
        n = self.history.known_index(e.at, self.tz)
        close = self.history.closes[e.asset][n] if n is not None else None
        return e.amount * (close or 0.0)


def _days(
    entries: Sequence[LedgerEntry],
    history: PriceHistory,
    quote: str,
    span: tuple[datetime, datetime],
    tz: tzinfo,
    moved_in: _MovedIn,
    outside: Sequence[tuple[date, float]],
) -> tuple[list[Day], list[tuple[date, dict[str, float]]]]:
    """The account at the end of every day of the span that has a close or a ledger entry
    (so a payment after the last close of coarse data still counts), and the value of each
    holding on the first such day of each month."""
    local_day = {at: at.astimezone(tz).date() for at in {e.at for e in entries}}  # per run
    dated = sorted(((local_day[e.at], e.at, e) for e in entries), key=lambda x: x[1])
    first, last = span[0].astimezone(tz).date(), span[1].astimezone(tz).date()
    rows = history.days
    priced = rows[bisect.bisect_left(rows, first) : bisect.bisect_left(rows, last)]
    closes = history.closes
    valued: dict[str, Sequence[float]] = {}  # an asset's closes, a gap valued at 0
    balances: dict[str, float] = {}
    # The account's value at each row from `since` while the balances stay as they are: each
    # asset's amount times its closes over the stretch, added asset by asset (as a loop over
    # the assets of each day adds them, in the same order).
    stretch: list[float] = []
    since = 0
    invested = contributions = withdrawals = profit = outside_value = 0.0
    steps = iter(outside)
    step = next(steps, None)
    i = 0
    out: list[Day] = []
    allocation: list[tuple[date, dict[str, float]]] = []
    month = 0
    for day in sorted(set(priced).union(local_day.values())):
        n = history.index_on(day)
        if n is None:
            continue  # before the first close (a simulation starts after one is known)
        moved = 0.0
        if i < len(dated) and dated[i][0] <= day:
            while i < len(dated) and dated[i][0] <= day:
                e = dated[i][2]
                balances[e.asset] = balances.get(e.asset, 0.0) + e.amount
                if e.kind in _MONEY:
                    flow = moved_in(e)
                    moved += flow
                    invested += flow if flow > 0 else 0.0
                    if e.kind == "deposit":
                        contributions += flow
                    elif _profit(e):
                        profit -= flow
                    elif e.kind == "withdrawal":
                        withdrawals -= flow
                i += 1
            # Until the next entry's day (its row: that day's close, or the last before it).
            following = history.index_on(dated[i][0]) if i < len(dated) else None
            rows_held = (len(rows) - 1 if following is None else following) - n + 1
            stretch, since = [balances.get(quote, 0.0)] * rows_held, n
            for a, amount in balances.items():
                if a != quote:
                    column = valued.get(a)
                    if column is None:
                        column = valued[a] = _gaps_as_zero(closes[a])
                    held = map(mul, repeat(amount), column[n : n + rows_held])
                    stretch = list(map(add, stretch, held))
        while step is not None and step[0] <= day:
            outside_value = step[1]
            step = next(steps, None)
        cash = balances.get(quote, 0.0)
        value = stretch[n - since] if stretch else cash
        out.append(
            Day(
                day,
                value,
                invested,
                moved,
                cash,
                outside_value,
                contributions + 0.0,
                withdrawals + 0.0,
                profit + 0.0,
            )
        )
        if day.year * 12 + day.month != month:  # the first day of a month
            month = day.year * 12 + day.month
            allocation.append(
                (
                    day,
                    {
                        a: amount * (1.0 if a == quote else (closes[a][n] or 0.0))
                        for a, amount in balances.items()
                    },
                )
            )
    return out, allocation


def _gaps_as_zero(column: Sequence[float | None]) -> Sequence[float]:
    """A column of closes with each gap (None) as 0.0: a holding without a close is worth 0."""
    return [c or 0.0 for c in column] if None in column else column  # type: ignore[return-value]


def _slippage(
    entries: Sequence[LedgerEntry], history: PriceHistory, quote: str, tz: tzinfo
) -> float:
    """What fills cost beyond the close they were planned at: paid above it on buys,
    received below it on sells."""
    cost = 0.0
    known: dict[datetime, int | None] = {}  # a run's fills share one time
    for e in entries:
        if e.kind == "fill" and e.asset != quote and e.price is not None:
            n = known.get(e.at, -1)
            if n == -1:
                n = known[e.at] = history.known_index(e.at, tz)
            market = history.closes[e.asset][n] if n is not None else None
            if market is not None:
                cost += e.amount * (e.price - market)
    return cost + 0.0
