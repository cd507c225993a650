"""Indices by rule: which assets a rule index holds, and in what weights, at a moment.

Pure functions of a price history and a rule (an `Index` with a universe): a reconstitution
at `moment` reads only the closes of days that ended by then (with daily data, the previous
day's close), so no later price can change what it chose. No I/O, no clock.

Caps (`max_weight_pct`, `min_weight_pct`) are met by iterative redistribution: an asset
past a bound is pinned at it, and the rest of 100 % is shared among the others in
proportion to their uncapped weights; repeated until no free asset is past a bound.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from stagewise.errors import PriceHistoryError
from stagewise.history import PriceHistory
from stagewise.stages import Index

FIGURE_NAMES = {"momentum": "return", "volatility": "daily volatility"}


@dataclass(frozen=True)
class Composition:
    """What a rule index holds from one reconstitution on.

    weights: percent per constituent (summing to 100), in rank order.
    figures: the ranking figure of every eligible asset (a fraction: a return or a daily
        volatility); ranks: each eligible asset's rank (1 = best).
    """

    index: str
    moment: datetime
    close_day: date  # the last day whose close was used
    weights: Mapping[str, float]
    figures: Mapping[str, float] = field(default_factory=dict)
    ranks: Mapping[str, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def fractions(self) -> dict[str, float]:
        return {a: w / 100 for a, w in self.weights.items()}


def usable_days(history: PriceHistory, moment: datetime) -> int:
    """How many of `history`'s days have a close known at `moment`: a day's close is known
    from the next midnight UTC on."""
    last = moment.astimezone(UTC).date() - timedelta(days=1)
    i = history.index_on(last)
    return 0 if i is None else i + 1


def compose(index_id: str, index: Index, history: PriceHistory, moment: datetime) -> Composition:
    """Reconstitute the rule index `index_id` at `moment`. Raises PriceHistoryError when no
    asset of its universe qualifies (that index cannot be composed; the others can)."""
    n = usable_days(history, moment)
    closes = {a: history.closes.get(a, ())[:n] for a in index.universe or []}
    close_day = history.days[n - 1] if n else moment.astimezone(UTC).date()
    notes: list[str] = []
    eligible = _priced(closes, notes)
    figures: dict[str, float] = {}
    select = index.select
    if select != "all":
        figures = _figures(
            closes, eligible, select.by, select.lookback_days, select.skip_days, notes
        )
        eligible = sorted(figures, key=lambda a: (_sort_key(select.by, figures[a]), a))
    if not eligible:
        raise PriceHistoryError(
            f"index {index.name}: no asset of its universe qualifies on {close_day} "
            f"({'; '.join(notes) or 'no prices'}): it cannot be composed"
        )
    ranks = {a: r for r, a in enumerate(eligible, 1)}
    chosen = eligible if select == "all" else eligible[: select.top]
    if select != "all" and len(chosen) < select.top:
        notes.append(f"only {len(chosen)} of the top {select.top} qualify: it holds those")
    raw = _raw_weights(index, chosen, closes, notes)
    if not raw:
        raise PriceHistoryError(
            f"index {index.name}: no asset qualifies to be weighed on {close_day} "
            f"({'; '.join(notes)}): it cannot be composed"
        )
    fractions = capped(raw, index.max_weight_pct, index.min_weight_pct, notes)
    return Composition(
        index=index_id,
        moment=moment,
        close_day=close_day,
        weights={a: fractions[a] * 100 for a in raw},
        figures=figures,
        ranks=ranks if select != "all" else {},
        notes=tuple(notes),
    )


def _priced(closes: Mapping[str, Sequence[float | None]], notes: list[str]) -> list[str]:
    """The assets with a close on the last usable day, by name."""
    out = []
    for asset in sorted(closes):
        column = closes[asset]
        if column and column[-1] is not None:
            out.append(asset)
        else:
            notes.append(f"{asset} excluded: no close yet")
    return out


def _sort_key(by: str, figure: float) -> float:
    return -figure if by == "momentum" else figure  # momentum: highest first; volatility: lowest


def _figures(
    closes: Mapping[str, Sequence[float | None]],
    assets: Sequence[str],
    by: str,
    lookback: int,
    skip: int,
    notes: list[str],
) -> dict[str, float]:
    """The ranking figure of each asset that has one; the others are noted as excluded."""
    figure = momentum if by == "momentum" else volatility
    out = {}
    for asset in assets:
        value = figure(closes[asset], lookback, skip)
        if value is None:
            notes.append(f"{asset} excluded: less than {lookback + skip} days of closes")
        else:
            out[asset] = value
    return out


def momentum(column: Sequence[float | None], lookback: int, skip: int) -> float | None:
    """The return over `lookback` days ending `skip` days before the last close (None: the
    history is too short or has a gap at either end)."""
    end = len(column) - 1 - skip
    start = end - lookback
    if start < 0 or column[start] is None or column[end] is None:
        return None
    return column[end] / column[start] - 1  # type: ignore[operator]


def volatility(column: Sequence[float | None], lookback: int, skip: int = 0) -> float | None:
    """The standard deviation of the daily log returns of the `lookback` days ending `skip`
    days before the last close (None: too short, or unpriced in the window)."""
    end = len(column) - skip
    window = column[end - lookback - 1 : end] if end - lookback - 1 >= 0 else None
    if window is None or any(p is None for p in window):
        return None
    returns = [math.log(b / a) for a, b in zip(window, window[1:], strict=False)]  # type: ignore[operator]
    mean = sum(returns) / len(returns)
    return math.sqrt(sum((r - mean) ** 2 for r in returns) / len(returns))


def _raw_weights(
    index: Index,
    chosen: Sequence[str],
    closes: Mapping[str, Sequence[float | None]],
    notes: list[str],
) -> dict[str, float]:
    """Uncapped weights (fractions summing to 1) of the chosen assets, in their order."""
    if index.weigh == "equal":
        return {a: 1 / len(chosen) for a in chosen}
    if index.weigh == "rank":  # the best of n gets n parts, the last 1
        parts: dict[str, float] = {a: len(chosen) - i for i, a in enumerate(chosen)}
    else:
        parts = {}
        for a in chosen:
            vol = volatility(closes[a], index.volatility_days)
            if vol is None or vol <= 0:
                why = "too short a history" if vol is None else "no price movement"
                notes.append(
                    f"{a} excluded: {why} to weigh by {index.volatility_days}-day volatility"
                )
                continue
            parts[a] = 1 / vol
    total = sum(parts.values())
    return {a: p / total for a, p in parts.items()}


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
    select = index.select
    rank = composition.ranks.get(asset)
    if select != "all" and rank is not None:
        return (
            f"{asset} left {index.name}: rank {rank} by {select.lookback_days}-day "
            f"{FIGURE_NAMES[select.by]}, top {select.top} kept"
        )
    why = next((n for n in composition.notes if n.startswith(f"{asset} excluded")), None)
    if why is not None:
        return f"{asset} left {index.name}: {why.removeprefix(f'{asset} ')}"
    return f"{asset} left {index.name}: not in its universe"
