"""`stagewise simulate --windows 48m`: the plan over every window of the history, for each
variant of the config, in parallel (the sweep itself is `stagewise.sweep`)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from stagewise import logs
from stagewise.cli.arguments import load, positive_amount, positive_int
from stagewise.cli.output import EX_FAILURE, EX_OK, emit_json
from stagewise.errors import UsageError

if TYPE_CHECKING:
    from stagewise.settings import Config
    from stagewise.sweep import Progress, Span, Sweep, WindowResult

HELP = """\
A sweep: --windows LENGTH runs the simulation once for every window of LENGTH in the
history, each from the config's initial balances with the investor at the age its start
gives; the first from --start (or the history's first day), the next --step later, the last
ending by --end (or the history's end). It reports the spread of the final values (median,
p10, p90, worst and best with their start dates), the share of windows at or above --goal,
drawdowns, fees and contributions; --json gives every window, --db FILE keeps them in an
SQLite table. --vary KEY=V1,V2 runs every window for each value of a setting."""


def add_sweep_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("windows and variants", HELP)
    g.add_argument(
        "--windows",
        type=window_length,
        metavar="LENGTH",
        help="simulate every window of LENGTH in the history: 48m (months), 4y, 90d",
    )
    g.add_argument(
        "--step",
        type=window_step,
        metavar="LENGTH",
        help="from one window's start to the next (default 1m)",
    )
    g.add_argument(
        "--goal",
        type=positive_amount,
        metavar="AMOUNT",
        help="count the windows whose final value reaches AMOUNT (quote currency)",
    )
    g.add_argument(
        "--vary",
        type=vary_values,
        action="append",
        default=[],
        metavar="KEY=V1,V2,...",
        help="a dotted setting and its values, e.g. investor.crypto_share_point=0,0.5,1: every "
        "window for each (repeatable: every combination)",
    )
    g.add_argument(
        "-j",
        "--jobs",
        type=positive_int,
        metavar="N",
        help="worker processes (default: one per core)",
    )
    g.add_argument(
        "--cluster",
        metavar="tcp://HOST:PORT",
        help="run the windows on this Dask scheduler's workers (needs stagewise[cluster] "
        "here and on the workers)",
    )


def window_length(text: str) -> Span:
    from stagewise.sweep import parse_span

    try:
        return parse_span(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def window_step(text: str) -> Span:
    from stagewise.sweep import NoSpan, parse_span

    try:
        return parse_span(text)
    except NoSpan as e:
        raise argparse.ArgumentTypeError(f"{e} (a step of nothing yields no next window)") from None
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def vary_values(text: str) -> tuple[str, list[str]]:
    key, sep, values = text.partition("=")
    listed = [v.strip() for v in values.split(",")]
    if not sep or not key.strip() or not all(listed):
        raise argparse.ArgumentTypeError(
            f"'{text}' is not KEY=V1,V2,... (e.g. investor.crypto_share_point=0,0.5,1)"
        )
    return key.strip(), listed


SWEEP_ONLY = ("step", "goal", "vary", "jobs", "cluster")


def refuse_sweep_arguments(args: argparse.Namespace) -> None:
    """A sweep's arguments without --windows: a bad argument, not silently ignored."""
    given = [name for name in SWEEP_ONLY if getattr(args, name) not in (None, [])]
    if given:
        raise UsageError(f"--{given[0]} is for a sweep: give --windows LENGTH with it")


def cmd_sweep(args: argparse.Namespace) -> int:
    from stagewise import sweep as sweeps
    from stagewise.cli.arguments import load_history
    from stagewise.store.sweeps import check_sweep_output

    _refuse_what_a_sweep_cannot_do(args)
    chart = None
    if args.chart:  # a chart it cannot draw must not cost the sweep
        from stagewise.chart import chart_file

        chart = chart_file(args.chart)
    config = load(args)
    # Every window warns alike (a contribution outside the guide's range): errors only.
    level = "info" if args.verbose else "error"
    logs.configure(level, config.settings.log.format)
    if args.db:  # before a download or a window runs
        check_sweep_output(args.db, config.state_path)
    if chart:
        from stagewise.chart import refuse_replacing

        kept = {"the daemon's state file (state.path)": config.state_path}
        refuse_replacing(chart, kept | ({"the sweep's --db": args.db} if args.db else {}))
    variants = sweeps.variants(config, args.vary)
    history = load_history(args, config)
    step = args.step or sweeps.Span(1, "m")
    found = sweeps.windows(history, config, args.windows, step, args.start, args.end)
    sweep = sweeps.Sweep(
        tuple(variants), tuple(found), history, args.min_notional, args.strict_history, level
    )
    show = _progress_bar() if sys.stderr.isatty() and not args.json else None
    results = _run(sweep, args, show)
    if show:
        print(file=sys.stderr)
    return _keep_and_tell(args, sweep, results, config, step, chart)


def _keep_and_tell(
    args: argparse.Namespace,
    sweep: Sweep,
    results: list[WindowResult],
    config: Config,
    step: Span,
    chart: Path | None,
) -> int:
    """What a whole sweep leaves: its database, its chart, its report; the exit code."""
    from stagewise.cli import sweep_report as report
    from stagewise.spread import summaries as spread
    from stagewise.store.sweeps import check_sweep_output

    summaries = spread(sweep, results, args.goal)
    if args.db:
        # Again: a file may have appeared there meanwhile.
        check_sweep_output(args.db, config.state_path)
        report.save(args.db, sweep, results, config, args.windows, step, args.goal)
    if chart:
        from stagewise.chart import draw_sweep

        draw_sweep(summaries, chart, config.quote, args.goal)
    if args.json:
        emit_json(report.sweep_json(sweep, summaries, results, config, args.windows, step))
    else:
        print(report.render(sweep, summaries, config, args.windows, step, args.db, chart))
    failures = sum(s.failed_runs for s in summaries)
    if failures:
        print(
            f"stagewise: {failures} runs failed in the windows (each window's failed_runs in "
            "--json; run a window alone with --start, --end and --verbose to see why)",
            file=sys.stderr,
        )
        return EX_FAILURE
    return EX_OK


def _refuse_what_a_sweep_cannot_do(args: argparse.Namespace) -> None:
    if args.windfall or args.pause or args.events:
        raise UsageError(
            "--windfall, --pause and --events are dated: they belong to one simulation "
            "(--start, --end), not to every window of a sweep"
        )
    if args.from_exchange and not (args.start and args.end):
        raise UsageError("--from-exchange needs --start and --end")
    if args.start and args.end and args.end <= args.start:
        raise UsageError(f"--end {args.end} must be after --start {args.start}")
    if args.cluster and args.jobs:
        raise UsageError("-j is the number of local processes: with --cluster, give neither")


def _run(sweep: Sweep, args: argparse.Namespace, show: Progress | None) -> list[WindowResult]:
    from stagewise import sweep as sweeps

    if show:
        show(0, len(sweep.tasks))
    if args.cluster:
        from stagewise.cluster import cluster_executor

        with cluster_executor(args.cluster, sweep) as executor:
            return sweeps.run(sweep, executor, show)
    jobs = args.jobs or sweeps.default_jobs()
    if jobs == 1 or len(sweep.tasks) == 1:
        return sweeps.run(sweep, None, show)
    pool = sweeps.local_pool(sweep, jobs)
    try:
        return sweeps.run(sweep, pool, show)
    finally:
        # Interrupted or failed: the windows not started are cancelled, those running end.
        pool.shutdown(wait=True, cancel_futures=True)


def _progress_bar() -> Progress:
    started = time.monotonic()

    def show(done: int, total: int) -> None:
        filled = int(done / total * 30)
        left = ""
        if done:
            seconds = (time.monotonic() - started) / done * (total - done)
            left = f", about {_duration(seconds)} left" if done < total else ", done"
        print(
            f"\rsweeping [{'#' * filled}{' ' * (30 - filled)}] {done}/{total} windows{left}   ",
            end="",
            file=sys.stderr,
            flush=True,
        )

    return show


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, s = divmod(round(seconds), 60)
    return f"{minutes} min {s:02d} s"
