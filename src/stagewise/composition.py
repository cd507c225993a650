"""Indices by rule: which assets a rule index holds, and in what weights, at a moment.

Pure functions of a price history and a rule (an `Index` with a universe): a reconstitution
at `moment` reads only the closes of days that ended by then (with daily data, the previous
day's close), so no later price can change what it chose. No I/O, no clock.

The steps, in order: the universe (its list, or the exchange's assets less the exclusions:
`stagewise.universe`); the assets with a close on the last usable day; the liquidity floor
(median daily quote volume over its days); the ranking figure (momentum: the return over
`lookback_days` ending `skip_days` before the last close, highest first; volume: the median
daily quote volume over the same window, highest first; volatility: the standard deviation of
daily log returns, lowest first; ties in name order) and the top N; the weights (equal, rank
N:N-1:..:1, proportional to the median quote volume over `volume_days`, or to the inverse of
the volatility over `volatility_days`); the caps.

Caps (`max_weight_pct`, `min_weight_pct`) are met by iterative redistribution: an asset
past a bound is pinned at it, and the rest of 100 % is shared among the others in
proportion to their uncapped weights; repeated until no free asset is past a bound.

An asset that cannot be ranked or weighed (no close yet, too short a history, no volume) is
left out with a note; fewer than N qualifying: the index holds those, with a note; none:
PriceHistoryError, for that index only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from stagewise.errors import ConfigError, PriceHistoryError
from stagewise.history import PriceHistory
from stagewise.holdings_files import Holdings
from stagewise.stages import Index
from stagewise.universe import Universe, resolve

FIGURE_NAMES = {
    "momentum": "return",
    "volatility": "daily volatility",
    "volume": "median daily quote volume",
}
NO_VOLUMES = (
    "the price history has no volumes (simulate: --volumes FILE, or --from-exchange; "
    "live: the exchange's candles)"
)

Column = Sequence[float | None]


@dataclass(frozen=True)
class Composition:
    """What a rule index holds from one reconstitution on.

    weights: percent per constituent (summing to 100), in rank order.
    figures: the ranking figure of every eligible asset (a return or a daily volatility as a
        fraction; a median quote volume in the quote currency); ranks: each eligible asset's
        rank (1 = best). excluded: the assets left out, each with why (for a leaver's reason).
    """

    index: str
    moment: datetime
    close_day: date  # the last day whose close was used
    weights: Mapping[str, float]
    figures: Mapping[str, float] = field(default_factory=dict)
    ranks: Mapping[str, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    excluded: Mapping[str, str] = field(default_factory=dict)

    def fractions(self) -> dict[str, float]:
        return {a: w / 100 for a, w in self.weights.items()}


def usable_days(history: PriceHistory, moment: datetime) -> int:
    """How many of `history`'s days have a close known at `moment`: a day's close is known
    from the midnight that ends it, in the history's zone (UTC when it has none: give a
    CSV's history the investor's zone, as `HistoryData` does)."""
    i = history.known_index(moment, UTC)
    return 0 if i is None else i + 1


def history_days(index: Index) -> int:
    """How many days of closes (up to the last known) a reconstitution of `index` reads."""
    days = [1]
    select = index.select
    if select != "all":
        days.append(select.lookback_days + select.skip_days + 1)
    if index.weigh == "inverse_volatility":
        days.append(index.volatility_days + 1)
    if index.weigh == "volume":
        days.append(index.volume_days)
    if index.liquidity is not None:
        days.append(index.liquidity.days)
    return max(days)


def require_volumes(indices: Mapping[str, Index], history: PriceHistory) -> None:
    """Fail, naming the first, if a rule index reads volumes and `history` has none."""
    if history.volumes:
        return
    for name, index in sorted(indices.items()):
        if index.is_rule and index.needs_volumes:
            raise PriceHistoryError(
                f"index {index.name} ({name}) reads traded volumes, but {NO_VOLUMES}"
            )


@dataclass
class _Window:
    """The closes and volumes of a universe up to a moment, and what was left out on the way."""

    closes: dict[str, Column]
    volumes: dict[str, Column]
    excluded: dict[str, str]

    def exclude(self, asset: str, why: str) -> None:
        self.excluded.setdefault(asset, why)


def compose(
    index_id: str,
    index: Index,
    history: PriceHistory,
    moment: datetime,
    universe: Universe | None = None,
) -> Composition:
    """Reconstitute the rule index `index_id` at `moment` from `universe` (default: resolved
    among the history's assets). Raises PriceHistoryError when no asset qualifies (that
    index cannot be composed; the others can) or it needs volumes the history lacks."""
    if index.needs_volumes and not history.volumes:
        raise PriceHistoryError(f"index {index.name} reads traded volumes, but {NO_VOLUMES}")
    if universe is None:
        universe = resolve(index, history.assets, "", "no prices in the history")
    window, close_day = _window(history, moment, universe)
    eligible = _priced(window, close_day)
    if index.liquidity is not None:
        eligible = _liquid(index, window, eligible)
    figures, ranked = _ranked(index, window, eligible)
    notes = [*universe.notes(), *(f"{a} excluded: {w}" for a, w in window.excluded.items())]
    if not ranked:
        raise _none_qualifies(index, "of its universe qualifies", close_day, notes)
    select = index.select
    chosen = ranked if select == "all" else ranked[: select.top]
    if select != "all" and len(chosen) < select.top:
        notes.append(f"only {len(chosen)} of the top {select.top} qualify: it holds those")
    before = len(window.excluded)
    raw = _raw_weights(index, chosen, window)
    notes += [f"{a} excluded: {w}" for a, w in list(window.excluded.items())[before:]]
    if not raw:
        raise _none_qualifies(index, "qualifies to be weighed", close_day, notes)
    fractions = capped(raw, index.max_weight_pct, index.min_weight_pct, notes)
    return Composition(
        index=index_id,
        moment=moment,
        close_day=close_day,
        weights={a: fractions[a] * 100 for a in raw},
        figures=figures,
        ranks={} if select == "all" else {a: r for r, a in enumerate(ranked, 1)},
        notes=tuple(notes),
        excluded={**universe.listed_out, **universe.excluded, **window.excluded},
    )


def _window(history: PriceHistory, moment: datetime, universe: Universe) -> tuple[_Window, date]:
    """The universe's closes and volumes known at `moment`, and the day of the last close."""
    n = usable_days(history, moment)
    close_day = history.days[n - 1] if n else moment.astimezone(UTC).date() - timedelta(days=1)
    empty: tuple[None, ...] = ()
    window = _Window(
        {a: history.closes.get(a, empty)[:n] for a in universe.assets},
        {a: history.volumes.get(a, empty)[:n] for a in universe.assets},
        {},
    )
    return window, close_day


def _ranked(
    index: Index, window: _Window, eligible: list[str]
) -> tuple[dict[str, float], list[str]]:
    """The ranking figures and the assets in rank order (by name when `select` is "all")."""
    select = index.select
    if select == "all":
        return {}, eligible
    figures = _figures(window, eligible, select.by, select.lookback_days, select.skip_days)
    return figures, sorted(figures, key=lambda a: (_sort_key(select.by, figures[a]), a))


def _none_qualifies(
    index: Index, what: str, close_day: date, notes: Sequence[str]
) -> PriceHistoryError:
    return PriceHistoryError(
        f"index {index.name}: no asset {what} on {close_day} "
        f"({'; '.join(notes) or 'no prices'}): it cannot be composed"
    )


def from_holdings(
    index_id: str,
    holdings: Holdings,
    history: PriceHistory,
    moment: datetime,
    unpriced: Mapping[str, str] | None = None,
) -> Composition:
    """The composition a holdings file gives at `moment`: its weights, each asset priced by a
    close known then (else ConfigError naming the file and the asset's line; `unpriced`: why
    an asset has no prices at all, e.g. no market)."""
    n = usable_days(history, moment)
    close_day = history.days[n - 1] if n else moment.astimezone(UTC).date() - timedelta(days=1)
    for asset in holdings.weights:
        column = history.closes.get(asset, ())[:n]
        if not column or not _usable(column[-1]):
            why = (unpriced or {}).get(asset) or "no close known"
            raise ConfigError(
                f"{holdings.where(asset)}: {asset} has no price on {close_day} ({why}): "
                "every asset of a holdings file must be priced"
            )
    return Composition(
        index=index_id, moment=moment, close_day=close_day, weights=dict(holdings.weights)
    )


def _priced(window: _Window, close_day: date) -> list[str]:
    """The assets with a close on the last usable day, by name."""
    out = []
    for asset in sorted(window.closes):
        column = window.closes[asset]
        if column and _usable(column[-1]):
            out.append(asset)
        else:
            window.exclude(asset, f"no close of {close_day}")
    return out


def _liquid(index: Index, window: _Window, assets: Sequence[str]) -> list[str]:
    """The assets at or above the index's liquidity floor."""
    floor = index.liquidity
    assert floor is not None
    out = []
    for asset in assets:
        value = median_volume(window.volumes[asset], floor.days, 0)
        if value is None:
            window.exclude(asset, f"no quote volume for each of the last {floor.days} days")
        elif value < floor.min_quote_volume:
            window.exclude(
                asset,
                f"median daily quote volume {value:,.0f} over {floor.days} days, under the "
                f"floor of {floor.min_quote_volume:,.0f}",
            )
        else:
            out.append(asset)
    return out


def _sort_key(by: str, figure: float) -> float:
    return figure if by == "volatility" else -figure  # volatility: lowest first; else highest


def _figures(
    window: _Window, assets: Sequence[str], by: str, lookback: int, skip: int
) -> dict[str, float]:
    """The ranking figure of each asset that has one; the others are noted as excluded."""
    out = {}
    for asset in assets:
        if by == "volume":
            value = median_volume(window.volumes[asset], lookback, skip)
            why = f"no quote volume for each of {lookback} days"
        else:
            figure = momentum if by == "momentum" else volatility
            value = figure(window.closes[asset], lookback, skip)
            why = f"less than {lookback + skip} days of closes"
        if value is None:
            window.exclude(asset, why)
        else:
            out[asset] = value
    return out


def median_volume(column: Column, days: int, skip: int = 0) -> float | None:
    """The median of the `days` daily quote volumes ending `skip` days before the last
    (None: the history is shorter, or a volume in the window is not known)."""
    end = len(column) - skip
    window = column[end - days : end] if end - days >= 0 else None
    if not window or any(v is None for v in window):
        return None
    ordered = sorted(window)  # type: ignore[type-var]
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2  # type: ignore[operator]


def momentum(column: Sequence[float | None], lookback: int, skip: int) -> float | None:
    """The return over `lookback` days ending `skip` days before the last close (None: the
    history is too short or has a gap at either end)."""
    end = len(column) - 1 - skip
    start = end - lookback
    if start < 0 or not _usable(column[start]) or not _usable(column[end]):
        return None
    return column[end] / column[start] - 1  # type: ignore[operator]


def _usable(close: float | None) -> bool:
    """A close a ranking can use: a positive number (a 0 or a gap is no price)."""
    return close is not None and close > 0


def volatility(column: Sequence[float | None], lookback: int, skip: int = 0) -> float | None:
    """The standard deviation of the daily log returns of the `lookback` days ending `skip`
    days before the last close (None: too short, or unpriced in the window)."""
    end = len(column) - skip
    window = column[end - lookback - 1 : end] if end - lookback - 1 >= 0 else None
    if window is None or not all(map(_usable, window)):
        return None
    returns = [math.log(b / a) for a, b in zip(window, window[1:], strict=False)]  # type: ignore[operator]
    mean = sum(returns) / len(returns)
    return math.sqrt(sum((r - mean) ** 2 for r in returns) / len(returns))


def _raw_weights(index: Index, chosen: Sequence[str], window: _Window) -> dict[str, float]:
    """Uncapped weights (fractions summing to 1) of the chosen assets, in their order."""
    if index.weigh == "equal":
        return {a: 1 / len(chosen) for a in chosen}
    if index.weigh == "rank":  # the best of n gets n parts, the last 1
        parts = {a: float(len(chosen) - i) for i, a in enumerate(chosen)}
    else:
        parts = {}
        for a in chosen:
            part, why = _part(index, a, window)
            if part is None:
                window.exclude(a, why)
            else:
                parts[a] = part
    total = sum(parts.values())
    return {a: p / total for a, p in parts.items()}


def _part(index: Index, asset: str, window: _Window) -> tuple[float | None, str]:
    """An asset's part by volume or inverse volatility, or None and why it has none."""
    if index.weigh == "volume":
        days = index.volume_days
        value = median_volume(window.volumes[asset], days)
        if value is None or value <= 0:
            why = "no quote volume for each" if value is None else "no trading in the median of"
            return None, f"{why} of the last {days} days to weigh by volume"
        return value, ""
    days = index.volatility_days
    vol = volatility(window.closes[asset], days)
    if vol is None or vol <= 0:
        why = "too short a history" if vol is None else "no price movement"
        return None, f"{why} to weigh by {days}-day volatility"
    return 1 / vol, ""


def capped(
    weights: Mapping[str, float],
    max_pct: float | None,
    min_pct: float | None,
    notes: list[str] | None = None,
) -> dict[str, float]:
    """`weights` (fractions summing to 1) within [min_pct, max_pct] percent each, the excess
    (or shortfall) shared by the free assets in proportion to their weights (see the module's
    docstring). Bounds that n assets cannot meet (n * max < 100) give equal weights."""
    n = len(weights)
    high = 1.0 if max_pct is None else max_pct / 100
    low = 0.0 if min_pct is None else min_pct / 100
    if n * high < 1 - 1e-12 or n * low > 1 + 1e-12:
        if notes is not None:
            notes.append(f"the weight caps cannot hold with {n} assets: equal weights")
        return {a: 1 / n for a in weights}
    pinned: dict[str, float] = {}
    while True:
        free = {a: w for a, w in weights.items() if a not in pinned}
        room = 1 - sum(pinned.values())
        total = sum(free.values())
        scaled = {a: w / total * room for a, w in free.items()} if total > 0 else {}
        over = {a: high for a, w in scaled.items() if w > high + 1e-12}
        under = {a: low for a, w in scaled.items() if w < low - 1e-12}
        if not (over or under):
            return {a: pinned.get(a, scaled.get(a, 0.0)) for a in weights}
        pinned |= over or under  # the upper bound first: pinning it can push others over


def changes(
    before: Mapping[str, float] | None, after: Mapping[str, float]
) -> tuple[list[str], list[str]]:
    """The assets that entered and that left between two compositions, by name."""
    held = set(before or {})
    return sorted(set(after) - held), sorted(held - set(after))


def left_reason(index: Index, composition: Composition, asset: str) -> str:
    """Why `asset` left the index at `composition`, naming the rule (for its sell order)."""
    if index.source is not None:
        return f"{asset} left {index.name}: no longer in {index.source.name}"
    select = index.select
    rank = composition.ranks.get(asset)
    if select != "all" and rank is not None:
        return (
            f"{asset} left {index.name}: rank {rank} by {select.lookback_days}-day "
            f"{FIGURE_NAMES[select.by]}, top {select.top} kept"
        )
    why = composition.excluded.get(asset)
    if why is not None:
        return f"{asset} left {index.name}: excluded: {why}"
    return f"{asset} left {index.name}: not in its universe"
