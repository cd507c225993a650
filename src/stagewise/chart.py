"""A picture of a simulation: value against money put in, and the allocation over time; and
of a sweep: each window's final value against the money put in, and the spread of the paths.

Needs matplotlib (`pip install 'stagewise[plot]'`); imported only when a chart is asked for.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from stagewise.errors import OutputRefused, StagewiseError, UsageError
from stagewise.simulate import SimulationResult
from stagewise.spread import percentile

if TYPE_CHECKING:
    from stagewise.spread import Summary

DEFAULT_FORMAT = "png"


def chart_file(out: Path) -> Path:
    """The file a chart asked for as `out` will be: checked before a simulation runs (the
    plotting extra installed, a format it writes, a folder to write in). Without a suffix,
    `out` + ".png", as matplotlib writes it."""
    pyplot()
    from matplotlib.backend_bases import FigureCanvasBase

    formats = FigureCanvasBase.get_supported_filetypes()
    if out.is_dir():
        raise UsageError(f"--chart {out}: is a folder; name the image file")
    if not out.suffix:
        out = out.with_name(f"{out.name}.{DEFAULT_FORMAT}")
    if out.suffix[1:].lower() not in formats:
        raise UsageError(
            f"--chart {out}: '{out.suffix}' is not an image format matplotlib writes "
            f"({', '.join(sorted(formats))})"
        )
    if not out.parent.is_dir():
        raise UsageError(f"--chart {out}: no folder {out.parent}")
    try:  # what a write will meet (permissions, a read-only or special file system)
        with tempfile.TemporaryFile(dir=out.parent):
            pass
    except OSError as e:
        raise UsageError(f"--chart {out}: cannot write in {out.parent}: {e.strerror}") from None
    return out


def refuse_replacing(out: Path, kept: Mapping[str, Path]) -> None:
    """Refuse (OutputRefused) a chart at a file stagewise keeps, read only: one of `kept`
    (what each is, by its path: the state file, the run's database) by its path or through a
    link, or any SQLite database (another's, a copy of a state). Before anything runs."""
    from stagewise.store import is_database, same_file

    for what, path in kept.items():
        if same_file(out, path):
            raise OutputRefused(f"--chart {out}: is {what}: left as it is; choose another")
    if is_database(out):
        raise OutputRefused(
            f"--chart {out}: is an SQLite database, not a chart: left as it is; choose another"
        )


def pyplot() -> ModuleType:
    """matplotlib's pyplot, drawing to files only."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: no display on a server
        import matplotlib.pyplot as plt
    except ImportError:
        raise StagewiseError("--chart needs matplotlib: pip install 'stagewise[plot]'") from None
    return plt


def draw(result: SimulationResult, out: Path, quote: str) -> None:
    """Write an image (format by `out`'s suffix, see `chart_file`) with two panels: value vs
    money put in, from the value series of the simulation's database (simulation_days), and
    holdings by value share."""
    plt = pyplot()
    fig = figure(plt, value_series(result), result.allocation, quote)
    save(plt, fig, out)


def save(plt: Any, fig: Any, out: Path) -> None:
    """Write `fig` to `out` (the format by its suffix) and close it, written or not."""
    try:
        fig.savefig(out, dpi=100, format=out.suffix[1:].lower() or DEFAULT_FORMAT)
    except OSError as e:
        raise StagewiseError(f"cannot write the chart {out}: {e.strerror}") from None
    finally:
        plt.close(fig)


def value_series(result: SimulationResult) -> list[dict[str, Any]]:
    """The simulation_days rows of the simulation's database."""
    from stagewise.store import Store

    if result.db_path is None:
        raise StagewiseError("no simulation database to chart")
    store = Store.read(result.db_path)
    try:
        return store.days()
    finally:
        store.close()


def figure(
    plt: ModuleType,
    days: Sequence[Mapping[str, Any]],
    allocation: Sequence[tuple[date, Mapping[str, float]]],
    quote: str,
) -> Any:
    """The chart's figure: the value series `days` (simulation_days rows) and the monthly
    `allocation`."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 8), sharex=True)
    x = [d["day"] for d in days]
    top.plot(x, [d["value"] for d in days], label="account value")
    top.plot(x, [d["invested"] for d in days], label="money put in", linestyle="--")
    top.set_ylabel(quote)
    top.set_title("stagewise simulation (paper account)")
    top.legend(loc="upper left")
    assets = sorted({a for _, values in allocation for a in values})
    months = [d for d, _ in allocation]
    shares = []
    for asset in assets:
        row = []
        for _, values in allocation:
            total = sum(v for v in values.values() if v > 0) or 1.0
            row.append(max(values.get(asset, 0.0), 0.0) / total * 100)
        shares.append(row)
    if months:
        bottom.stackplot(months, shares, labels=assets)
        bottom.legend(loc="upper left", ncol=6, fontsize="small")
    if any(d["outside_value"] > 0 for d in days):
        share = [math.nan if d["crypto_share"] is None else d["crypto_share"] * 100 for d in days]
        bottom.plot(x, share, color="black", label="crypto, % of the whole portfolio")
        bottom.legend(loc="upper left", ncol=6, fontsize="small")
    bottom.set_ylabel("% of account")
    bottom.set_ylim(0, 100)
    fig.tight_layout()
    return fig


def draw_sweep(summaries: Sequence[Summary], out: Path, quote: str, goal: float | None) -> None:
    """Write an image of a sweep (format by `out`'s suffix, see `chart_file`) with two panels:
    each window's final value by its start date against the money put in (and the goal), and
    the spread of the value paths (median, p10-p90) by month since the window's start."""
    plt = pyplot()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 8))
    for s in summaries:
        starts = [w.start for w in s.windows]
        top.plot(starts, [w.final_value for w in s.windows], marker=".", label=s.variant.label)
        paths = [w.path for w in s.windows]
        months = range(1, min(len(p) for p in paths) + 1)
        at = [[p[m - 1] for p in paths] for m in months]
        line = bottom.plot(months, [percentile(v, 0.5) for v in at], label=s.variant.label)
        bottom.fill_between(
            months,
            [percentile(v, 0.1) for v in at],
            [percentile(v, 0.9) for v in at],
            color=line[0].get_color(),
            alpha=0.2,
        )
    first = summaries[0].windows
    top.plot(
        [w.start for w in first],
        [w.put_in for w in first],
        linestyle="--",
        color="gray",
        label="money put in",
    )
    if goal is not None:
        top.axhline(goal, color="red", linestyle=":", label=f"goal {goal:,.0f}")
    top.set_ylabel(f"final value ({quote})")
    top.set_xlabel("window start")
    top.set_title(f"stagewise sweep: {len(first)} windows (paper accounts)")
    top.legend(loc="upper left", fontsize="small")
    bottom.set_ylabel(f"value ({quote})")
    bottom.set_xlabel("months since the window's start (median, p10-p90 shaded)")
    bottom.legend(loc="upper left", fontsize="small")
    fig.tight_layout()
    save(plt, fig, out)
