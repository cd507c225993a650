"""`simulate` against pmorissette/bt: quarterly-rebalanced baskets, and a weekly rule index.

    python bench/bench_vs_bt.py [--repeat N] [--years N]

Three cases, each side timed in the same run on the same generated prices:

- the scenario of tests/test_bt_crosscheck.py (both import it from tests/support.py, so the
  two cannot drift apart): X 50 / Y 30 / Z 20, --years (3) of daily closes;
- 50 assets in equal weights (2 % each), ten years of daily closes (3,652 days);
- the same 50 assets and closes, ours holding a RULE index of them instead (the top 5 by
  30-day return in equal parts, as the shipped momentum_trader, reconstituted and rebalanced
  weekly) against bt's quarterly run of the second case (issue 12).

Both rebalance to target once a quarter at the same close, with no fees, no slippage,
100,000 USDT to start, closes from the cross-check's seeded random walk (from the day before
our first: point in time, our job of each quarter's first morning fills at the close bt
trades at, the quarter's last). Our side runs the daemon's own jobs with everything but the
quarterly rebalance inert; bt runs RunQuarterly (at the end of each period), SelectAll,
WeighSpecified, Rebalance with fractional positions.

Each side is timed from its ready inputs (config loaded / DataFrame built) to its final
value, best of --repeat runs (3) after one untimed run; imports are not timed. Prints both
times, the ratio and how far apart the final values are. Goals, in both cases: ours at
least 5x faster than bt, final values within 0.01 %.

The rule index case does another job than bt's, so its final values are not compared: ours
starts on the first day the rule has its 31 closes (`default_start`), bt on the same span;
ours at most 1.5x bt's time, with a reconstitution for every week of the span (the timed
run did the weekly work). Needs bt (`pip install bt`, in the test extra).
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
from typing import Any, TypeVar

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
from stagewise.simulate import SimulationResult, default_start, simulate  # noqa: E402

GOAL_RATIO = 5.0
GOAL_RULE_RATIO = 1.5  # ours (weekly rule index) over bt (quarterly basket), at most
WIDE = [f"C{i:02d}" for i in range(50)]
MOMENTUM = {
    "cadence": "weekly",
    "universe": WIDE,
    "select": {"top": 5, "by": "momentum", "lookback_days": 30},
    "weigh": "equal",
}
T = TypeVar("T")


@dataclass(frozen=True)
class Case:
    """A basket bt rebalances quarterly: its weights (percent), first prices and years; ours
    rebalances the same basket, or holds the rule index `rule` (its indices.toml table)."""

    name: str
    weights: dict[str, float]
    first_prices: dict[str, float]
    years: int
    rule: dict[str, Any] | None = None

    @property
    def end(self) -> date:
        return date(START.year + self.years, 1, 1)

    def prices(self) -> tuple[list[date], dict[str, tuple[float, ...]]]:
        """The days from FIRST to the end, and the generated closes of each asset."""
        days = [FIRST + timedelta(days=i) for i in range((self.end - FIRST).days)]
        return days, generated_closes(days, first=self.first_prices)


def cases(years: int) -> list[Case]:
    wide = dict.fromkeys(WIDE, 100 / len(WIDE))
    # First prices spread from 0.5 to about 30,000, as coins' are.
    spread = {a: round(0.5 * 10 ** (4.8 * i / (len(WIDE) - 1)), 6) for i, a in enumerate(WIDE)}
    return [
        Case(f"{len(WEIGHTS)} assets 50/30/20", WEIGHTS, FIRST_PRICES, years),
        Case("50 assets in equal weights", wide, spread, 10),
        Case("50 assets in equal weights", wide, spread, 10, rule=MOMENTUM),
    ]


def best_of(repeat: int, run: Callable[[], T]) -> tuple[float, T]:
    """The shortest wall time of `repeat` (at least 1) calls of `run`, and its last result."""
    best = float("inf")
    for _ in range(repeat):
        began = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - began)
    return best, result


def compare(case: Case, repeat: int, folder: Path) -> bool:
    """Time both sides on one case and print the figures; True when both goals are met."""
    if case.rule is not None:
        return compare_rule(case, case.rule, repeat, folder)
    end = case.end
    days, closes = case.prices()
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


def compare_rule(case: Case, rule: dict[str, Any], repeat: int, folder: Path) -> bool:
    """Time ours holding the weekly rule index against bt's quarterly run of the basket on the
    same span and print the figures; True when ours took at most GOAL_RULE_RATIO of bt's time
    and reconstituted the index every week."""
    days, closes = case.prices()
    # Only the index changes: the stage's whole-portfolio rebalance stays quarterly.
    plan = write_plan_files(
        folder / "plan", {"rule": rule}, [plan_stage("only", sleeves={"rule": 100})]
    )
    config = load_config(write_config_file(folder, deep_merge(QUARTERLY_ONLY, plan)))
    history = PriceHistory(tuple(days), closes, "generated")
    start, end = default_start(config, history), case.end
    # bt from the day before our start: the closes our first job sees.
    skip = days.index(start - timedelta(days=1))
    span_closes = {a: c[skip:] for a, c in closes.items()}

    def ours() -> SimulationResult:
        return simulate(config, history, start, end, folder / "simulation.db", min_notional=0)

    def theirs() -> float:
        test = run_bt(span_closes, days[skip:], case.weights, CAPITAL)
        return float(test.strategy.values.iloc[-1])

    theirs()  # one untimed run each, as in `compare`
    ours()
    ours_s, result = best_of(repeat, ours)
    bt_s, _ = best_of(repeat, theirs)
    ratio = ours_s / bt_s
    select = rule["select"]
    made = result.rule_indices.get("rule", {}).get("reconstitutions", 0)
    weeks = -(-(end - start).days // 7)  # the weeks begun in [start, end)
    years = (end - start).days / 365.25
    print(
        f"{rule['cadence']} rule index, top {select['top']} of {len(rule['universe'])} by "
        f"{select['lookback_days']}-day {select['by']}, {len(days) - skip - 1} days from {start} "
        f"(its closes from {days[skip]}), no fees, best of {repeat}; "
        f"bt: quarterly rebalance, {case.name}, the same days"
    )
    print(
        f"  stagewise simulate  {ours_s:8.3f} s   {made} reconstitutions "
        f"({made / years:.1f} a year), {result.runs_by_job.get('rebalance', 0)} rebalance runs, "
        f"{sum(result.proposals_by_job.values())} proposals"
    )
    print(f"  bt                  {bt_s:8.3f} s")
    weekly = abs(made - weeks) <= 1
    print(
        f"  reconstitutions     {made} for {weeks} weeks begun: "
        f"{'the weekly work was done' if weekly else 'MISSED'}"
    )
    fast = ratio <= GOAL_RULE_RATIO
    print(
        f"  ratio ours / bt     {ratio:8.2f}x  goal <= {GOAL_RULE_RATIO:g}x: "
        f"{'goal met' if fast else 'MISSED'}"
    )
    return fast and weekly


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per side, best kept (3)")
    parser.add_argument(
        "--years", type=int, default=3, help="years of daily prices of the 3-asset case (3)"
    )
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat: at least 1")
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
