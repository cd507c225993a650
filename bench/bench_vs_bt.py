"""`simulate` against pmorissette/bt on the same job: a quarterly-rebalanced basket.

    python bench/bench_vs_bt.py [--repeat N] [--years N]

The scenario of tests/test_bt_crosscheck.py (imported from it, so the two cannot drift
apart): X 50 / Y 30 / Z 20 rebalanced to target on the first day of each quarter, no fees,
no slippage, 100,000 USDT to start, generated daily closes. Our side runs the daemon's own jobs
with everything but the quarterly rebalance inert; bt runs RunQuarterly, SelectAll,
WeighSpecified, Rebalance with fractional positions.

Each side is timed from its ready inputs (config loaded / DataFrame built) to its final
value, best of --repeat runs (3); imports are not timed. Prints both times, the ratio and
whether the final values agree within 0.01 %. Goal: ours at least 5x faster than bt.
Needs bt (`pip install bt`, a test-only dependency).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from conftest import deep_merge, plan_stage, write_config_file, write_plan_files  # noqa: E402
from test_bt_crosscheck import (  # noqa: E402
    QUARTERLY_ONLY,
    START,
    TOLERANCE,
    WEIGHTS,
    generated_closes,
    run_bt,
)

from stagewise import logs  # noqa: E402
from stagewise.history import PriceHistory  # noqa: E402
from stagewise.settings import load_config  # noqa: E402
from stagewise.simulate import simulate  # noqa: E402

GOAL_RATIO = 5.0


def best_of(repeat: int, run) -> tuple[float, float]:
    """The shortest wall time of `repeat` calls of `run`, and its last result."""
    best, result = float("inf"), 0.0
    for _ in range(repeat):
        began = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - began)
    return best, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per side, best kept (3)")
    parser.add_argument("--years", type=int, default=3, help="years of daily prices (3)")
    args = parser.parse_args(argv)
    logs.configure("warning", "console")
    # ffn (under bt) on pandas 3 warns about infer_freq on every run: not ours to fix.
    warnings.filterwarnings("ignore", message="A future version of pandas will return")
    end = date(START.year + args.years, 1, 1)
    days = [START + timedelta(days=i) for i in range((end - START).days)]
    closes = generated_closes(days)
    with tempfile.TemporaryDirectory(prefix="bench-vs-bt-") as tmp:
        folder = Path(tmp)
        plan = write_plan_files(
            folder / "plan", {"basket": ("quarterly", WEIGHTS)}, [plan_stage("only")]
        )
        config = load_config(write_config_file(folder, deep_merge(QUARTERLY_ONLY, plan)))
        history = PriceHistory(tuple(days), closes, "generated")

        def ours() -> float:
            db = folder / "simulation.db"
            return simulate(config, history, START, end, db, min_notional=0).final_value

        def theirs() -> float:
            return float(run_bt(closes, days).strategy.values.iloc[-1])

        theirs()  # one untimed run each: bt's first call builds lazy pandas machinery
        ours()
        ours_s, ours_value = best_of(args.repeat, ours)
        bt_s, bt_value = best_of(args.repeat, theirs)
    ratio = bt_s / ours_s
    agree = abs(ours_value / bt_value - 1)
    print(
        f"quarterly rebalance of {len(WEIGHTS)} assets, {args.years} years of daily closes "
        f"({len(days)} days), best of {args.repeat}"
    )
    print(f"  stagewise simulate  {ours_s:8.3f} s   final value {ours_value:,.2f}")
    print(f"  bt                  {bt_s:8.3f} s   final value {bt_value:,.2f}")
    print(f"  values agree within {agree:.2e} ({'ok' if agree < TOLERANCE else 'DIFFER'})")
    verdict = "goal met" if ratio >= GOAL_RATIO else "MISSED"
    print(f"  ratio bt / ours     {ratio:8.2f}x  goal >= {GOAL_RATIO:g}x: {verdict}")
    return 0 if ratio >= GOAL_RATIO and agree < TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main())
