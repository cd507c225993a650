"""A picture of a simulation: value against money put in, and the allocation over time.

Needs matplotlib (`pip install 'stagewise[plot]'`); imported only when a chart is asked for.
"""

from __future__ import annotations

from pathlib import Path

from stagewise.errors import StagewiseError
from stagewise.simulate import SimulationResult


def draw(result: SimulationResult, out: Path, quote: str) -> None:
    """Write a PNG with two panels: value vs contributions, and holdings by value share."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: no display on a server
        import matplotlib.pyplot as plt
    except ImportError:
        raise StagewiseError("--chart needs matplotlib: pip install 'stagewise[plot]'") from None
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 8), sharex=True)
    days = [d for d, _, _ in result.series]
    top.plot(days, [v for _, v, _ in result.series], label="account value")
    top.plot(days, [i for _, _, i in result.series], label="money put in", linestyle="--")
    top.set_ylabel(quote)
    top.set_title("stagewise simulation (paper account)")
    top.legend(loc="upper left")
    assets = sorted({a for _, values in result.allocation for a in values})
    months = [d for d, _ in result.allocation]
    shares = []
    for asset in assets:
        row = []
        for _, values in result.allocation:
            total = sum(v for v in values.values() if v > 0) or 1.0
            row.append(max(values.get(asset, 0.0), 0.0) / total * 100)
        shares.append(row)
    if months:
        bottom.stackplot(months, shares, labels=assets)
        bottom.legend(loc="upper left", ncol=6, fontsize="small")
    bottom.set_ylabel("% of account")
    bottom.set_ylim(0, 100)
    fig.tight_layout()
    try:
        fig.savefig(out, dpi=100)
    except OSError as e:
        raise StagewiseError(f"cannot write the chart {out}: {e.strerror}") from None
    finally:
        plt.close(fig)
