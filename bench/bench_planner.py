"""How long the planner takes to plan a whole-portfolio rebalance, by number of assets.

    python bench/bench_planner.py [repetitions]

Synthetic accounts of 20, 100 and 500 assets, drifted (each weight off its target by up to
±60 % of it, seeded) so that many assets are outside their bands and trade. Prints the median
and 95th-percentile time per plan. Goal: 500 assets under 5 ms median.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from stagewise.planner import PlanState, Policy, plan_rebalance
from stagewise.settings import load_config
from stagewise.snapshot import Market, Snapshot
from stagewise.targets import Targets

ROOT = Path(__file__).resolve().parent.parent

SIZES = (20, 100, 500)
GOAL_MS = {500: 5.0}


def account(n: int, seed: int = 7) -> tuple[Snapshot, Targets]:
    """`n` assets with random targets (5 % cash), held drifted from them."""
    rng = random.Random(seed)
    names = [f"A{i:03d}" for i in range(n)]
    raw = [rng.uniform(1, 10) for _ in names]
    weights = {a: r / sum(raw) * 0.95 for a, r in zip(names, raw, strict=True)}
    prices = {a: 10 ** rng.uniform(-3, 4) for a in names}
    value = 1_000_000.0
    balances = {a: w * rng.uniform(0.4, 1.6) * value / prices[a] for a, w in weights.items()}
    balances["USDT"] = 0.05 * value
    markets = {
        a: Market(f"{a}/USDT", a, "USDT", 10 ** -rng.randint(0, 8), 0.0, 5.0, 0.001) for a in names
    }
    snap = Snapshot(datetime(2026, 6, 1, tzinfo=UTC), "USDT", balances, prices, markets)
    stage = load_config(ROOT / "config" / "example.toml").plan.stages[1]
    targets = Targets(
        age=35, stage=stage, glide=None, crypto_share=0.2,
        crypto_band=(0.15, 0.25), sleeves={}, weights=weights, cash=0.05,
    )  # fmt: skip
    return snap, targets


def timings(n: int, repetitions: int) -> tuple[list[float], int]:
    """Seconds per plan over `repetitions` runs, and the number of orders of the plan."""
    snap, targets = account(n)
    policy = Policy(outside_value=4 * 1_000_000.0)  # crypto 19 % of the whole: in band
    state = PlanState()
    plan = plan_rebalance(snap, targets, policy, state)
    assert plan.refused is None, plan.refused
    times = []
    for _ in range(repetitions):
        start = time.perf_counter()
        plan_rebalance(snap, targets, policy, state)
        times.append(time.perf_counter() - start)
    return times, len(plan.orders)


def main(argv: list[str]) -> int:
    repetitions = int(argv[1]) if len(argv) > 1 else 200
    print(f"plan_rebalance, {repetitions} repetitions each")
    print(f"{'assets':>6}  {'orders':>6}  {'median ms':>9}  {'p95 ms':>7}  goal")
    slow = False
    for n in SIZES:
        times, orders = timings(n, repetitions)
        median = statistics.median(times) * 1000
        p95 = statistics.quantiles(times, n=20)[-1] * 1000
        goal = GOAL_MS.get(n)
        verdict = "" if goal is None else f"< {goal:g} ms: {'ok' if median < goal else 'MISSED'}"
        slow |= goal is not None and median >= goal
        print(f"{n:>6}  {orders:>6}  {median:>9.3f}  {p95:>7.3f}  {verdict}")
    return 1 if slow else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
