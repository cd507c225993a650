"""Price history for `simulate`: daily (or coarser) closes per asset, from a CSV file or an
exchange's OHLCV, served to a paper account as a MarketSource.

CSV format (wide, one row per day, one column per asset, prices in the quote currency):

    date,BTC,ETH,SOL
    2020-01-01,7200.17,130.80,0.95
    2020-01-02,6985.47,127.41,0.93

Dates are ISO (YYYY-MM-DD), strictly increasing, rows at most `max_gap_days` apart. Every cell
is a positive number (within `PRICE_RANGE`), a point as decimal mark; an empty cell means "not
listed yet" only before an asset's first price (a later gap is an error naming the row and the
asset). Lines starting with # are comments. A byte order mark (Excel's "CSV UTF-8") is skipped.

Volumes (optional, for rule indices that choose or weigh by traded volume): a second CSV of
the same shape, one row per day and one column per asset, each cell the day's traded volume
in the quote currency (0 or more; an empty cell: not known). Its dates must be dates of the
price file and its columns assets of it; a day it does not give has no volume known.

Point in time: a row holds the close at the END of its day, so it is known only from the
midnight that ends the day: in the investor's time zone for a CSV file (its dates are read as
the investor's days), in UTC for an exchange's daily candles (they close at 00:00 UTC). A job
sees the last close known at its moment: during the day, the close of the day before.
"""

from __future__ import annotations

import bisect
import csv
import dataclasses
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from pathlib import Path
from types import MappingProxyType
from typing import NamedTuple

from stagewise.errors import InputMissing, PriceHistoryError
from stagewise.money import PRICE_RANGE
from stagewise.snapshot import Market

MAX_GAP_DAYS = 31
DAY_MS = 86_400_000
EPOCH = date(1970, 1, 1)


# How a simulation reads the history, for its report's header.
POINT_IN_TIME = (
    "a job sees only the closes known at its moment: a day's close from the midnight ending it"
)


@dataclass(frozen=True)
class PriceHistory:
    """Closes by day: `days` ascending, `closes[asset]` aligned with `days` (None = unlisted).

    `zone`: the time zone whose midnight ends a row's day (UTC for exchange candles); None,
    the investor's (a CSV file's dates are the investor's days)."""

    days: tuple[date, ...]
    closes: Mapping[str, tuple[float | None, ...]]
    source: str = ""
    zone: tzinfo | None = None
    # Quote volume per asset, aligned with `days` (None: not known); empty: no volumes at all.
    volumes: Mapping[str, tuple[float | None, ...]] = field(default_factory=dict)

    @property
    def assets(self) -> list[str]:
        return sorted(self.closes)

    def index_on(self, day: date) -> int | None:
        """Index of the last day at or before `day` (None before the history starts)."""
        i = bisect.bisect_right(self.days, day) - 1
        return i if i >= 0 else None

    def known_at(self, i: int, tz: tzinfo) -> datetime:
        """When the close of row `i` is known: the midnight ending its day, in the history's
        zone (or `tz`, the investor's)."""
        return datetime.combine(self.days[i] + timedelta(days=1), time(0), self.zone or tz)

    def known_index(self, moment: datetime, tz: tzinfo) -> int | None:
        """Index of the last close known at `moment` (None: none yet); `tz` the investor's."""
        return self.index_on(moment.astimezone(self.zone or tz).date() - timedelta(days=1))

    def first_start(self, tz: tzinfo, rows: int = 1) -> date:
        """The first day (in `tz`) a simulation can start: its midnight knows the first close
        (the first `rows` closes: what a rule index reads before its first reconstitution;
        a history shorter than that gives its first day, and the rule says what it lacks)."""
        known = self.known_at(min(max(rows, 1), len(self.days)) - 1, tz).astimezone(tz)
        return known.date() if known.time() == time(0) else known.date() + timedelta(days=1)

    def first_priced(self, asset: str) -> int | None:
        """Index of `asset`'s first price (None: never priced)."""
        return next((i for i, c in enumerate(self.closes[asset]) if c is not None), None)

    def require(
        self,
        assets: Collection[str],
        start: date,
        end: date,
        tz: tzinfo = UTC,
        *,
        strict: bool = False,
    ) -> None:
        """Fail, naming them, if `assets` are absent from the history, or never priced before
        the last day of [start, end) (`strict`: not priced when it starts), or if no close is
        known when it starts (midnight of `start` in `tz`)."""
        if not self.days or start < self.first_start(tz):
            raise PriceHistoryError(self._starts_too_late(start, tz))
        if end - timedelta(days=1) > self.days[-1] + timedelta(days=MAX_GAP_DAYS):
            raise PriceHistoryError(f"{self.source}: history ends at {self.days[-1]}, before {end}")
        missing = sorted(set(assets) - set(self.closes))
        if missing:
            raise PriceHistoryError(
                f"{self.source}: no prices for {', '.join(missing)} (the plan holds them; add "
                "a column per asset)"
            )
        known = self.known_index(_midnight(start, tz), tz)  # when the simulation starts
        last = self.known_index(_midnight(end, tz) - timedelta(microseconds=1), tz)  # ends
        for asset in sorted(assets):
            first = self.first_priced(asset)
            if strict and (first is None or known is None or first > known):
                raise PriceHistoryError(
                    f"{self.source}: {asset} has no price known when the simulation starts "
                    f"on {start} (listed later; --strict-history refuses it)"
                )
            if first is None or last is None or first > last:
                raise PriceHistoryError(
                    f"{self.source}: {asset} has no price before {end - timedelta(days=1)} "
                    "(the plan holds it, and the history never lists it in the period)"
                )

    def _starts_too_late(self, start: date, tz: tzinfo) -> str:
        if not self.days:
            return f"{self.source}: history starts at nothing, after {start}"
        return (
            f"{self.source}: history starts at {self.days[0]}, after {start - timedelta(days=1)}: "
            f"a job on {start} sees only closes of days that have ended; start on "
            f"{self.first_start(tz)} or later"
        )


def _midnight(day: date, tz: tzinfo) -> datetime:
    return datetime.combine(day, time(0), tz)


def _read_table(path: Path, what: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The asset columns of a wide CSV's header and its other rows, each with its line
    number in the file (blank and comment lines are skipped but still counted, so an error
    names the line a user sees in an editor)."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            numbered = [
                (reader.line_num, row)
                for row in reader
                if row and "".join(row).strip() and not row[0].lstrip().startswith("#")
            ]
    except FileNotFoundError:
        raise InputMissing(f"no {what} file at {path}") from None
    except IsADirectoryError:
        raise PriceHistoryError(f"{path} is a folder, not a {what} file") from None
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise PriceHistoryError(f"cannot read {what} {path}: {e}") from None
    rows = [row for _, row in numbered]
    if not rows or [h.strip().lower() for h in rows[0][:1]] != ["date"] or len(rows[0]) < 2:
        raise PriceHistoryError(
            f"{path}: the first line must be a header: date,ASSET,ASSET,...{_separator_hint(rows)}"
        )
    header = [h.strip() for h in rows[0][1:]]
    if len(set(header)) != len(header) or not all(h.isalnum() and h.isupper() for h in header):
        raise PriceHistoryError(f"{path}: asset columns must be distinct codes like BTC: {header}")
    return header, numbered[1:]


def load_csv(path: Path, max_gap_days: int = MAX_GAP_DAYS) -> PriceHistory:
    """Read and check a wide price CSV (see the module's docstring)."""
    header, numbered = _read_table(path, "price history")
    days: list[date] = []
    columns: dict[str, list[float | None]] = {a: [] for a in header}
    for n, row in numbered:
        day = _row_day(path, n, row, len(header))
        if days and day <= days[-1]:
            raise PriceHistoryError(f"{path}: row {n}: {day} is not after {days[-1]}")
        if days and (day - days[-1]).days > max_gap_days:
            raise PriceHistoryError(
                f"{path}: row {n}: gap of {(day - days[-1]).days} days after {days[-1]} "
                f"(at most {max_gap_days})"
            )
        days.append(day)
        for asset, cell in zip(header, row[1:], strict=True):
            columns[asset].append(_cell(path, n, asset, cell, columns[asset]))
    if not days:
        raise PriceHistoryError(f"{path}: no price rows")
    return PriceHistory(tuple(days), {a: tuple(v) for a, v in columns.items()}, str(path))


def load_volumes(path: Path, prices: PriceHistory) -> PriceHistory:
    """`prices` with the quote volumes of the CSV at `path` (see the module's docstring)."""
    header, numbered = _read_table(path, "volumes")
    unknown = [a for a in header if a not in prices.closes]
    if unknown:
        raise PriceHistoryError(
            f"{path}: column {', '.join(unknown)} has no prices in {prices.source}: volumes "
            "are read for the assets of the price file"
        )
    where = {day: i for i, day in enumerate(prices.days)}
    columns: dict[str, list[float | None]] = {a: [None] * len(prices.days) for a in header}
    last: date | None = None
    for n, row in numbered:
        day = _row_day(path, n, row, len(header))
        if last is not None and day <= last:
            raise PriceHistoryError(f"{path}: row {n}: {day} is not after {last}")
        last = day
        i = where.get(day)
        if i is None:
            raise PriceHistoryError(f"{path}: row {n}: {day} is not a date of {prices.source}")
        for asset, cell in zip(header, row[1:], strict=True):
            columns[asset][i] = _volume(path, n, asset, cell)
    volumes = {a: tuple(v) for a, v in columns.items()}
    return dataclasses.replace(prices, volumes=volumes, source=f"{prices.source} + {path}")


def _volume(path: Path, n: int, asset: str, cell: str) -> float | None:
    text = cell.strip()
    if not text:
        return None
    value = _number(path, n, f"{asset} volume", text)
    if not math.isfinite(value):
        raise PriceHistoryError(f"{path}: row {n}: {asset} volume {text} is not a finite number")
    if value < 0:
        raise PriceHistoryError(f"{path}: row {n}: {asset} volume {text} must be 0 or more")
    return value


def _separator_hint(rows: Sequence[Sequence[str]]) -> str:
    """Why a header did not read as one, when the file is of a known other kind."""
    header = rows[0] if rows else []
    for separator, name in ((";", "semicolon"), ("\t", "tab")):
        if len(header) == 1 and separator in header[0]:
            return (
                f" (this file is {name}-separated, as spreadsheets save CSV where the decimal "
                "mark is a comma: save it with commas between cells and points in numbers)"
            )
    return ""


def _row_day(path: Path, n: int, row: Sequence[str], width: int) -> date:
    if len(row) != width + 1:
        extra = len(row) > width + 1
        hint = " (prices with a decimal comma? write 7200.17, not 7200,17)" if extra else ""
        raise PriceHistoryError(f"{path}: row {n}: {len(row)} cells, expected {width + 1}{hint}")
    try:
        return date.fromisoformat(row[0].strip())
    except ValueError:
        raise PriceHistoryError(f"{path}: row {n}: '{row[0]}' is not a date (YYYY-MM-DD)") from None


def _cell(path: Path, n: int, asset: str, cell: str, before: list[float | None]) -> float | None:
    text = cell.strip()
    if not text:
        if any(v is not None for v in before):
            raise PriceHistoryError(f"{path}: row {n}: {asset} has a gap (empty after prices)")
        return None
    value = _number(path, n, f"{asset} price", text)
    if not math.isfinite(value):
        raise PriceHistoryError(f"{path}: row {n}: {asset} price {text} is not a finite number")
    if value <= 0:
        raise PriceHistoryError(f"{path}: row {n}: {asset} price {text} must be positive")
    low, high = PRICE_RANGE
    if not low <= value <= high:
        raise PriceHistoryError(
            f"{path}: row {n}: {asset} price {text} is outside any market's prices "
            f"({low:g} .. {high:g})"
        )
    return value


def _number(path: Path, n: int, what: str, text: str) -> float:
    """The number a cell holds ('BTC price', 'BTC volume'), else a PriceHistoryError naming
    the file, the row and the cell."""
    try:
        return float(text)
    except ValueError:
        comma = ""
        if "," in text:  # 7200,17 (a decimal comma) or 29,374.15 (thousands separated)
            comma = (
                " (a thousands separator: write 29374.15)"
                if "." in text
                else " (a decimal comma: write it with a point)"
            )
        why = f"{path}: row {n}: {what} '{text}' is not a number{comma}"
        raise PriceHistoryError(why) from None


class Candle(NamedTuple):
    """One daily (or coarser) candle as the exchange gave it: its open time (ms, UTC), its
    close, and its traded volume in the quote currency (None: the exchange did not say).
    A tuple: a cached row of (ts, close, volume) is one as it is read."""

    ts: int
    close: float
    quote_volume: float | None = None


def from_candles(
    candles: Mapping[str, Sequence[Candle]], source: str, hold_days: int | None = None
) -> PriceHistory:
    """A history (closes and quote volumes) from per-asset candles, aligned on the union of
    their UTC days; a day an asset's exchange skipped holds its last close (no volume), for
    at most `hold_days` after its newest candle (None: for good; a delisted coin keeps its
    last price)."""
    low, high = PRICE_RANGE
    for asset, rows in candles.items():
        if not all(low <= c.close <= high for c in rows):  # also NaN
            bad = next(c for c in rows if not low <= c.close <= high)
            raise PriceHistoryError(
                f"{source}: {asset} close {bad.close} on {_utc_day(bad.ts)} is outside any "
                f"market's prices ({low:g} .. {high:g})"
            )
    # UTC days as numbers since 1970 (a candle opens at 00:00 UTC of its day).
    numbers = sorted({c.ts // DAY_MS for rows in candles.values() for c in rows})
    at = {n: i for i, n in enumerate(numbers)}
    days = [EPOCH + timedelta(days=n) for n in numbers]
    closes: dict[str, list[float | None]] = {}
    volumes: dict[str, list[float | None]] = {}
    for asset, rows in candles.items():
        column: list[float | None] = [None] * len(numbers)
        traded: list[float | None] = [None] * len(numbers)
        for c in rows:
            i = at[c.ts // DAY_MS]
            column[i], traded[i] = c.close, c.quote_volume
        if 0 < len(rows) < len(numbers):  # days it has no candle of
            _hold(column, days, at[max(c.ts for c in rows) // DAY_MS], hold_days)
        closes[asset], volumes[asset] = column, traded
    has_volumes = any(v is not None for column in volumes.values() for v in column)
    return PriceHistory(
        tuple(days),
        {a: tuple(v) for a, v in closes.items()},
        source,
        UTC,
        {a: tuple(v) for a, v in volumes.items()} if has_volumes else {},
    )


def _hold(
    column: list[float | None], days: Sequence[date], newest: int, hold_days: int | None
) -> None:
    """Fill the `days` an exchange skipped with the last close; after the newest candle (at
    `newest`), for at most `hold_days` (None: for good)."""
    last = None
    for i, close in enumerate(column):
        if close is not None:
            last = close
        elif last is not None and (
            hold_days is None or i < newest or (days[i] - days[newest]).days <= hold_days
        ):
            column[i] = last


def _utc_day(ms: int) -> date:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).date()


@dataclass
class HistoryMarkets:
    """A MarketSource over a PriceHistory: the last close known at `now` (point in time: a
    day's close is known from the midnight that ends it, see `PriceHistory.known_at`).

    Market rules are the same for every asset (a simulated exchange): an amount step, a
    minimum order value, and a fee (the paper account applies its own). Like an exchange's
    list of markets, every asset of the history has one from the start; a market without a
    price yet trades nothing (no plan buys what it cannot price)."""

    history: PriceHistory
    quote: str
    tz: tzinfo = UTC  # the investor's
    amount_step: float = 1e-8
    min_notional: float = 5.0
    markets: Mapping[str, Market] = field(init=False)  # read only: every caller's the same

    def __post_init__(self) -> None:
        self.markets = MappingProxyType(
            {
                asset: Market(
                    symbol=f"{asset}/{self.quote}",
                    base=asset,
                    quote=self.quote,
                    amount_step=self.amount_step,
                    min_notional=self.min_notional,
                    fee_rate=0.0,
                )
                for asset in self.history.closes
            }
        )

    def quotes(
        self, assets: Collection[str], now: datetime
    ) -> tuple[dict[str, float], Mapping[str, Market]]:
        """The closes of `assets` known at `now` (an asset without one is left out), and the
        markets."""
        i = self.history.known_index(now, self.tz)
        prices: dict[str, float] = {}
        if i is None:
            return prices, _NO_MARKETS  # before the history: nothing trades yet
        closes = self.history.closes
        for asset in assets:
            column = closes.get(asset)
            price = column[i] if column is not None else None
            if price is not None:
                prices[asset] = price
        return prices, self.markets


_NO_MARKETS: Mapping[str, Market] = MappingProxyType({})
