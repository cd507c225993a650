"""How long a sweep takes: every 48-month window of ten years of daily prices, serial and
in parallel, and what a window costs beside a single simulation of the same span.

    python bench/bench_sweep.py [--years N] [--length 48m] [--step 1m] [--jobs 2] [--sample K]
                                [--repeat R]

A plan written for the benchmark (in a temporary folder): 20 assets in three indices
(Momentum 5, weekly; Balanced 8, quarterly; Value 7, annual) and two stages, a builder (to 59:
DCA, profit milestones 50/100 %, quarterly whole-portfolio rebalance) and a retiree (60+:
withdrawals, annual rebalance), the investor turning 60 half way through the ten years after a
24-month glide: the early windows are a builder's, the late ones a retiree's, those between
glide. Every job of the config is active (DCA, weekly/quarterly/annual rebalances, the drift
watch, profit-taking, withdrawals, the yearly re-assessment), with the example's 5/25 bands,
0.1 % fee and 0.05 % slippage. Prices: bench_simulate.py's seeded random walk.

Prints:
- serial: the sweep in this process, one window after the other (`run(sweep)`);
- parallel: the same sweep on `--jobs` local worker processes (`local_pool`), their start and
  the loading of the inputs included; the speed-up, serial over parallel (goal >= 1.8x on 2
  cores), and whether both gave the same windows;
- per window: for `--sample` windows spread over the sweep, each as a sweep of that window
  alone (the task, its figures, the bookkeeping) against a plain `simulate()` of the same
  span, in memory as a window runs, and as `stagewise simulate --start --end` runs it (its
  database written), the three in turn, the best of `--repeat` each in CPU seconds (which
  other load on the cores moves far less than wall time); the overhead over the in-memory
  simulation (goal < 10 %);
- beside the wall times, the CPU seconds of the serial sweep and of the parallel one's
  workers: their ratio is the speed-up the sweep reaches on free cores.
Exit 1 when a goal is missed. Seconds move with the machine's load (bench/README.md): the
speed-up and the overhead are ratios of runs made close together.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import date, timedelta
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "bench")]

from bench_simulate import SETTINGS as SIMULATE_SETTINGS  # noqa: E402
from bench_simulate import STAGES, START, random_walk  # noqa: E402
from support import deep_merge, write_config_file, write_plan_files  # noqa: E402

from stagewise import logs  # noqa: E402
from stagewise.history import PriceHistory  # noqa: E402
from stagewise.settings import Config, load_config  # noqa: E402
from stagewise.simulate import simulate  # noqa: E402
from stagewise.sweep import (  # noqa: E402
    Sweep,
    Variant,
    Window,
    WindowResult,
    local_pool,
    parse_span,
    run,
    windows,
)

GOAL_SPEEDUP = 1.8  # on 2 cores
GOAL_OVERHEAD = 0.10
ASSETS = [f"C{i:02d}" for i in range(20)]
INDICES = {
    "momentum": ("weekly", {a: 20.0 for a in ASSETS[:5]}),
    "balanced": ("quarterly", {a: 12.5 for a in ASSETS[5:13]}),
    "value": ("annual", {a: 100 / 7 for a in ASSETS[13:]}),
}
# bench_simulate's two stages and settings, the investor born half a year earlier.
SETTINGS = deep_merge(SIMULATE_SETTINGS, {"investor": {"birth_date": "1960-01-01"}})


def setup(folder: Path, years: int) -> tuple[Config, PriceHistory]:
    end = date(START.year + years, 1, 1)
    plan = write_plan_files(folder / "plan", INDICES, STAGES)
    config = load_config(write_config_file(folder, deep_merge(SETTINGS, plan)))
    first = START - timedelta(days=1)  # the closes the jobs of START see
    days = tuple(first + timedelta(days=i) for i in range((end - first).days))
    return config, PriceHistory(days, random_walk(ASSETS, len(days)), "generated")


def timed_serial(sweep: Sweep) -> tuple[float, float, list[WindowResult]]:
    """Wall and CPU seconds of the sweep in this process, and its windows."""
    started, cpu = time.perf_counter(), _cpu(resource.RUSAGE_SELF)
    results = run(sweep)
    return time.perf_counter() - started, _cpu(resource.RUSAGE_SELF) - cpu, results


def timed_parallel(sweep: Sweep, jobs: int) -> tuple[float, float, list[WindowResult]]:
    """Wall seconds of the sweep on `jobs` worker processes, the CPU seconds of the workers
    (reaped when the pool shuts down) and of this process, and its windows."""
    started = time.perf_counter()
    cpu = _cpu(resource.RUSAGE_CHILDREN) + _cpu(resource.RUSAGE_SELF)
    with local_pool(sweep, jobs) as pool:
        results = run(sweep, pool)
    used = _cpu(resource.RUSAGE_CHILDREN) + _cpu(resource.RUSAGE_SELF) - cpu
    return time.perf_counter() - started, used, results


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _busy(n: int) -> int:
    total = 0
    for i in range(n):
        total += i
    return total


def capacity(jobs: int, n: int = 5_000_000) -> float:
    """What `jobs` processes gain on plain CPU work on this machine now (serial seconds over
    parallel): with other load on its cores, less than `jobs`, and the sweep's speed-up with it."""
    started = time.perf_counter()
    for _ in range(jobs):
        _busy(n)
    serial = time.perf_counter() - started
    started = time.perf_counter()
    with ProcessPoolExecutor(jobs) as pool:
        list(pool.map(_busy, [n] * jobs))
    return serial / (time.perf_counter() - started)


def per_window(
    config: Config, history: PriceHistory, picked: list[Window], folder: Path, repeat: int
) -> tuple[list[float], list[float], list[float]]:
    """For each window: the best of `repeat` CPU seconds as a sweep of that window alone (the
    task, its figures, the bookkeeping), as a plain simulate() in memory, and with its
    database, the three taken in turn so that the machine's load weighs on each alike."""
    swept, in_memory, with_db = [], [], []
    for w in picked:
        one = Sweep((Variant(config),), (w,), history)
        works = (
            partial(run, one),
            partial(simulate, config, history, w.start, w.end, None),
            partial(simulate, config, history, w.start, w.end, folder / "sim.db"),
        )
        times: list[list[float]] = [[], [], []]
        for _ in range(repeat):
            for kind, work in enumerate(works):
                started = time.process_time()  # CPU: what other load on the cores leaves alone
                work()
                times[kind].append(time.process_time() - started)
        swept.append(min(times[0]))
        in_memory.append(min(times[1]))
        with_db.append(min(times[2]))
    return swept, in_memory, with_db


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--length", default="48m")
    parser.add_argument("--step", default="1m")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--sample", type=int, default=12, help="windows timed one by one")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each, the best kept")
    args = parser.parse_args()
    logs.configure("error", "console")  # as `simulate --windows` runs its windows
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        folder = Path(tmp)
        config, history = setup(folder, args.years)
        spans = windows(history, config, parse_span(args.length), parse_span(args.step))
        sweep = Sweep((Variant(config),), tuple(spans), history)
        print(
            f"sweep: {len(spans)} windows of {args.length} every {args.step} over "
            f"{args.years} years of daily prices ({len(history.days)} days), "
            f"{len(history.closes)} assets, every job active"
        )
        before = capacity(args.jobs)
        serial, serial_cpu, serial_results = timed_serial(sweep)
        parallel, parallel_cpu, parallel_results = timed_parallel(sweep, args.jobs)
        after = capacity(args.jobs)
        speedup = serial / parallel
        same = parallel_results == serial_results
        print(
            f"  serial         {serial:8.2f} s   ({serial / len(spans):.3f} s a window; "
            f"{serial_cpu:.2f} CPU seconds)"
        )
        print(
            f"  parallel       {parallel:8.2f} s   on {args.jobs} worker processes "
            f"({parallel_cpu:.2f} CPU seconds in all: {parallel_cpu / serial_cpu:.2f}x the "
            f"serial's; on {args.jobs} free cores that is a speed-up of "
            f"{serial_cpu / (parallel_cpu / args.jobs):.2f}x)"
        )
        print(
            f"  speed-up       {speedup:8.2f}x   goal >= {GOAL_SPEEDUP:g}x on 2 cores: "
            f"{_verdict(speedup >= GOAL_SPEEDUP)}; same windows: {same}"
        )
        print(
            f"  the machine    {before:.2f}x before, {after:.2f}x after: what {args.jobs} "
            f"processes gained on plain CPU work ({os.cpu_count()} cores; other load shares them)"
        )
        every = max(1, len(spans) // args.sample)
        picked = [spans[i] for i in range(0, len(spans), every)][: args.sample]
        swept, in_memory, with_db = per_window(config, history, picked, folder, args.repeat)
        overhead = sum(swept) / sum(in_memory) - 1
        print(
            f"  per window     {statistics.median(swept):.3f} CPU s median as a sweep's window, "
            f"{statistics.median(in_memory):.3f} a plain simulate() of the same span in "
            f"memory, {statistics.median(with_db):.3f} s with its database ({len(picked)} "
            f"windows, best of {args.repeat} each, taken in turn)"
        )
        print(
            f"  overhead       {overhead * 100:+.1f} %  over the in-memory simulations; "
            f"{(sum(swept) / sum(with_db) - 1) * 100:+.1f} % over `simulate --start --end`; "
            f"goal < {GOAL_OVERHEAD * 100:g} %: {_verdict(overhead < GOAL_OVERHEAD)}"
        )
        finals = sorted(r.final_value for r in serial_results)
        print(
            f"  final values   {finals[0]:,.0f} .. {finals[-1]:,.0f} USDT, median "
            f"{statistics.median(finals):,.0f}; runs {sum(r.runs for r in serial_results):,}, "
            f"failed {sum(r.failed_runs for r in serial_results)}"
        )
    return 0 if speedup >= GOAL_SPEEDUP and overhead < GOAL_OVERHEAD and same else 1


def _verdict(met: bool) -> str:
    return "goal met" if met else "MISSED"


if __name__ == "__main__":
    sys.exit(main())
