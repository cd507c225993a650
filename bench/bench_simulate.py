"""How long `simulate` takes for ten years of daily prices and a plan of 50 assets.

    python bench/bench_simulate.py [--profile] [--years N] [--keep DIR] [--drift-watch W]

A plan written for the benchmark (in a temporary folder): three indices of 50 assets in all
(Momentum 10 assets, rebalanced weekly; Balanced 20, quarterly; Value 20, annual) and two
stages: a builder (to 59: DCA, profit milestones 50/100 %, quarterly whole-portfolio rebalance)
and a retiree (60+: withdrawals, annual rebalance). The investor turns 60 half way, after a
24-month glide. Every job of the config is active: DCA, weekly/quarterly/annual rebalances,
the drift watch, profit-taking, withdrawals and the yearly re-assessment, with the example's
5/25 bands, 0.1 % fee and 0.05 % slippage, the crypto share checked against outside
investments. Prices: a seeded random walk per asset (a shared market factor plus its own
noise), every day of the ten years.

The drift watch compares each index's share with its band (`policy.drift_watch = "sleeve"`,
the default); `--drift-watch asset` watches every coin's band instead, which rebalances early
on most days of this plan.

Prints the wall time of `simulate()` alone (the config and prices are made before the clock
starts), the runs and proposals. Goal: at most 1 s. `--profile` adds cProfile's top 15
entries by cumulative time.
"""

from __future__ import annotations

import argparse
import cProfile
import math
import pstats
import random
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from conftest import deep_merge, plan_stage, write_config_file, write_plan_files  # noqa: E402

from stagewise import logs  # noqa: E402
from stagewise.history import PriceHistory  # noqa: E402
from stagewise.settings import Config, load_config  # noqa: E402
from stagewise.simulate import SimulationResult, simulate  # noqa: E402

GOAL_SECONDS = 1.0
START = date(2015, 1, 1)
ASSETS = [f"C{i:02d}" for i in range(50)]
INDICES = {
    "momentum": ("weekly", {a: 10.0 for a in ASSETS[:10]}),
    "balanced": ("quarterly", {a: 5.0 for a in ASSETS[10:30]}),
    "value": ("annual", {a: 5.0 for a in ASSETS[30:]}),
}
STAGES = [
    plan_stage(
        "builder",
        number=1,
        max_age=59,
        sleeves={"momentum": 40, "balanced": 40, "value": 20},
        crypto_share_pct=(20, 40),
        portfolio_rebalance="quarterly",
        profit_milestones_pct=(50, 100),
        yearly_increase_pct=5,
    ),
    plan_stage(
        "retiree",
        number=2,
        min_age=60,
        sleeves={"balanced": 30, "value": 70},
        crypto_share_pct=(5, 15),
        portfolio_rebalance="annual",
        withdrawal_pct=(2, 4),
    ),
]
SETTINGS = {
    "investor": {
        "birth_date": "1960-07-01",  # 60 on 2020-07-01, half way through the ten years
        "timezone": "Europe/Berlin",
        "outside_investments": 400_000,
        "monthly_contribution": 2_000,
        "contribution_start": START.isoformat(),
    },
    "paper": {"initial_balances": {"USDT": 10_000}, "fee_rate": 0.001, "slippage": 0.0005},
    "schedule": {"drift_enabled": True, "withdraw_periods": 12},
    "plan": {"transition_months": 24, "transition_anchor": "end"},
}


def random_walk(assets: list[str], days: int, seed: int = 50) -> dict[str, tuple[float, ...]]:
    """Daily closes: a shared market factor (45 % a year) plus each asset's own noise."""
    rng = random.Random(seed)
    dt = 1 / 365
    own = {a: (rng.uniform(-0.1, 0.6), rng.uniform(0.3, 1.0)) for a in assets}  # drift, vol
    price = {a: 10 ** rng.uniform(-2, 4.5) for a in assets}
    columns: dict[str, list[float]] = {a: [] for a in assets}
    for _ in range(days):
        market = rng.gauss(0, 1) * 0.45 * math.sqrt(dt)
        for a in assets:
            drift, vol = own[a]
            columns[a].append(round(price[a], 8))
            step = (drift - 0.5 * (0.45**2 + vol**2)) * dt + market
            price[a] *= math.exp(step + rng.gauss(0, 1) * vol * math.sqrt(dt))
    return {a: tuple(c) for a, c in columns.items()}


def setup(
    folder: Path, years: int, drift_watch: str = "sleeve"
) -> tuple[Config, PriceHistory, date, date]:
    end = date(START.year + years, 1, 1)
    plan = write_plan_files(folder / "plan", INDICES, STAGES)
    settings = deep_merge(SETTINGS, {"policy": {"drift_watch": drift_watch}})
    config = load_config(write_config_file(folder, deep_merge(settings, plan)))
    days = tuple(START + timedelta(days=i) for i in range((end - START).days))
    history = PriceHistory(days, random_walk(ASSETS, len(days)), "generated")
    return config, history, START, end


def report(result: SimulationResult, seconds: float, history: PriceHistory, config: Config) -> None:
    years = (result.end - result.start).days / 365.25
    print(
        f"simulate: {years:.0f} years of daily prices ({len(history.days)} days), "
        f"{len(history.closes)} assets, every job active, drift watch by "
        f"{config.settings.policy.drift_watch}"
    )
    print(f"  wall time      {seconds:.3f} s   goal <= {GOAL_SECONDS:g} s: ", end="")
    print("goal met" if seconds <= GOAL_SECONDS else "MISSED")
    runs = sum(result.runs_by_status.values())
    print(f"  runs           {runs}  ({_counts(result.runs_by_status)})")
    print(f"  runs by job    {_counts(result.runs_by_job)}")
    proposals = sum(result.proposals_by_job.values())
    print(f"  proposals      {proposals}  ({_counts(result.proposals_by_job)})")
    print(
        f"  stages         {', '.join(f'{s.starts} {s.glide or s.stage}' for s in result.stages)}"
    )
    print(
        f"  money          seed {result.seed_value:,.0f}, in {result.contributions:,.0f}, "
        f"out {result.withdrawals:,.0f}, final {result.final_value:,.0f}, "
        f"fees {result.fees:,.0f}"
    )


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", action="store_true", help="print cProfile's top 15")
    parser.add_argument("--years", type=int, default=10, help="years of daily prices (10)")
    parser.add_argument("--keep", type=Path, help="write the plan, config and DB here")
    parser.add_argument(
        "--drift-watch",
        choices=["sleeve", "asset"],
        default="sleeve",
        help="what the drift watch compares with the bands (policy.drift_watch; sleeve)",
    )
    args = parser.parse_args(argv)
    logs.configure("warning", "console")  # as `stagewise simulate` does without --verbose
    with tempfile.TemporaryDirectory(prefix="bench-simulate-") as tmp:
        folder = args.keep or Path(tmp)
        config, history, start, end = setup(folder, args.years, args.drift_watch)
        profiler = cProfile.Profile() if args.profile else None
        began = time.perf_counter()
        if profiler:
            profiler.enable()
        result = simulate(config, history, start, end, folder / "simulation.db")
        if profiler:
            profiler.disable()
        seconds = time.perf_counter() - began
        report(result, seconds, history, config)
        if profiler:
            print("\ncProfile, top 15 by cumulative time (the profiler slows the run):")
            pstats.Stats(profiler, stream=sys.stdout).sort_stats("cumulative").print_stats(15)
    return 0 if seconds <= GOAL_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
