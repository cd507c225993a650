"""The spread of a sweep's outcomes, per variant: what a person reads of its windows (the
median final value and its deciles, the worst and best windows with their start dates, the
share reaching a goal, drawdowns, fees, contributions). Pure: figures of figures."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from stagewise.sweep import Sweep, Variant, WindowResult


def percentile(values: Sequence[float], p: float) -> float:
    """The `p` (0..1) percentile of `values`, interpolated between the two nearest ranks (as
    spreadsheets' PERCENTILE and numpy's default do): p10 of 73 windows lies between the
    8th and the 9th lowest."""
    ordered = sorted(values)
    at = (len(ordered) - 1) * p
    low = int(at)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (at - low)


@dataclass(frozen=True)
class Summary:
    """One variant's windows in a few figures."""

    variant: Variant
    windows: list[WindowResult]
    goal: float | None

    @property
    def finals(self) -> list[float]:
        return [w.final_value for w in self.windows]

    @property
    def median(self) -> float:
        return statistics.median(self.finals)

    @property
    def p10(self) -> float:
        return percentile(self.finals, 0.10)

    @property
    def p90(self) -> float:
        return percentile(self.finals, 0.90)

    @property
    def worst(self) -> WindowResult:
        """The window of the lowest final value (the earliest of equals)."""
        return min(self.windows, key=lambda w: (w.final_value, w.start))

    @property
    def best(self) -> WindowResult:
        return max(self.windows, key=lambda w: (w.final_value, -w.start.toordinal()))

    @property
    def reaching_goal(self) -> float | None:
        """The share of windows ending at or above the goal (None without one)."""
        if self.goal is None:
            return None
        return sum(w.final_value >= self.goal for w in self.windows) / len(self.windows)

    @property
    def median_drawdown(self) -> float:
        return statistics.median(w.max_drawdown for w in self.windows)

    @property
    def worst_drawdown(self) -> WindowResult:
        return max(self.windows, key=lambda w: (w.max_drawdown, -w.start.toordinal()))

    @property
    def median_fees(self) -> float:
        return statistics.median(w.fees for w in self.windows)

    @property
    def contributions(self) -> tuple[float, float, float]:
        """Least, median and most contributed in a window."""
        paid = [w.contributions for w in self.windows]
        return min(paid), statistics.median(paid), max(paid)

    @property
    def failed_runs(self) -> int:
        return sum(w.failed_runs for w in self.windows)


def summaries(sweep: Sweep, results: Sequence[WindowResult], goal: float | None) -> list[Summary]:
    """One Summary per variant, in the sweep's order."""
    return [
        Summary(variant, [r for r in results if r.variant == i], goal)
        for i, variant in enumerate(sweep.variants)
    ]
