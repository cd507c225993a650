"""`simulate` against pmorissette/bt on the same job: quarterly-rebalanced baskets.

    python bench/bench_vs_bt.py [--repeat N] [--years N]

Two cases, each side timed in the same run on the same generated prices:

- the scenario of tests/test_bt_crosscheck.py (both import it from tests/support.py, so the
  two cannot drift apart): X 50 / Y 30 / Z 20, --years (3) of daily closes;
- 50 assets in equal weights (2 % each), ten years of daily closes (3,652 days).

Both rebalance to target once a quarter at the same close, with no fees, no slippage,
100,000 USDT to start, closes from the cross-check's seeded random walk (from the day before
our first: point in time, our job of each quarter's first morning fills at the close bt
trades at, the quarter's last). Our side runs the daemon's own jobs with everything but the
quarterly rebalance inert; bt runs RunQuarterly (at the end of each period), SelectAll,
WeighSpecified, Rebalance with fractional positions.

Each side is timed from its ready inputs (config loaded / DataFrame built) to its final
value, best of --repeat runs (3) after one untimed run; imports are not timed. Prints both
times, the ratio and how far apart the final values are. Goals, in both cases: ours at
least 5x faster than bt, final values within 0.01 %. Needs bt (`pip install bt`, in the
test extra).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from support import (  # noqa: E402
    CAPITAL,
    FIRST,
    FIRST_PRICES,
    QUARTERLY_ONLY,
    START,
    TOLERANCE,
    WEIGHTS,
    deep_merge,
    generated_closes,
    plan_stage,
    run_bt,
    write_config_file,
    write_plan_files,
)

from stagewise import logs  # noqa: E402
from stagewise.history import PriceHistory  # noqa: E402
from stagewise.settings import load_config  # noqa: E402
from stagewise.simulate import simulate  # noqa: E402

GOAL_RATIO = 5.0
WIDE = [f"C{i:02d}" for i in range(50)]


@dataclass(frozen=True)
class Case:
    """A basket rebalanced quarterly: its weights (percent), first prices and years."""

    name: str
    weights: dict[str, float]
    first_prices: dict[str, float]
    years: int


def cases(years: int) -> list[Case]:
    return [
        Case(f"{len(WEIGHTS)} assets 50/30/20", WEIGHTS, FIRST_PRICES, years),
        Case(
            "50 assets in equal weights",
            dict.fromkeys(WIDE, 100 / len(WIDE)),
            # First prices spread from 0.5 to about 30,000, as coins' are.
            {a: round(0.5 * 10 ** (4.8 * i / (len(WIDE) - 1)), 6) for i, a in enumerate(WIDE)},
            10,
        ),
    ]


def best_of(repeat: int, run: Callable[[], float]) -> tuple[float, float]:
    """The shortest wall time of `repeat` calls of `run`, and its last result."""
    best, result = float("inf"), 0.0
    for _ in range(repeat):
        began = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - began)
    return best, result


def compare(case: Case, repeat: int, folder: Path) -> bool:
    """Time both sides on one case and print the figures; True when both goals are met."""
    end = date(START.year + case.years, 1, 1)
    days = [FIRST + timedelta(days=i) for i in range((end - FIRST).days)]
    closes = generated_closes(days, first=case.first_prices)
    plan = write_plan_files(
        folder / "plan", {"basket": ("quarterly", case.weights)}, [plan_stage("only")]
    )
    config = load_config(write_config_file(folder, deep_merge(QUARTERLY_ONLY, plan)))
    history = PriceHistory(tuple(days), closes, "generated")

    def ours() -> float:
        db = folder / "simulation.db"
        return simulate(config, history, START, end, db, min_notional=0).final_value

    def theirs() -> float:
        test = run_bt(closes, days, case.weights, CAPITAL)
        return float(test.strategy.values.iloc[-1])

    theirs()  # one untimed run each: bt's first call builds lazy pandas machinery
    ours()
    ours_s, ours_value = best_of(repeat, ours)
    bt_s, bt_value = best_of(repeat, theirs)
    ratio = bt_s / ours_s
    apart = abs(ours_value / bt_value - 1)
    print(
        f"quarterly rebalance, {case.name}, {case.years} years of daily closes "
        f"({len(days)} days), no fees, best of {repeat}"
    )
    print(f"  stagewise simulate  {ours_s:8.3f} s   final value {ours_value:,.2f}")
    print(f"  bt                  {bt_s:8.3f} s   final value {bt_value:,.2f}")
    agree = apart < TOLERANCE
    print(
        f"  values apart        {apart:.1e} ({apart * 100:.6f} %)  goal < {TOLERANCE * 100:g} %: "
        f"{'goal met' if agree else 'MISSED'}"
    )
    fast = ratio >= GOAL_RATIO
    print(
        f"  ratio bt / ours     {ratio:8.2f}x  goal >= {GOAL_RATIO:g}x: "
        f"{'goal met' if fast else 'MISSED'}"
    )
    return fast and agree


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per side, best kept (3)")
    parser.add_argument(
        "--years", type=int, default=3, help="years of daily prices of the 3-asset case (3)"
    )
    args = parser.parse_args(argv)
    logs.configure("warning", "console")
    # ffn (under bt) on pandas 3 warns about infer_freq on every run: not ours to fix.
    warnings.filterwarnings("ignore", message="A future version of pandas will return")
    met = []
    for n, case in enumerate(cases(args.years)):
        if n:
            print()
        with tempfile.TemporaryDirectory(prefix="bench-vs-bt-") as tmp:
            met.append(compare(case, args.repeat, Path(tmp)))
    return 0 if all(met) else 1


if __name__ == "__main__":
    sys.exit(main())
