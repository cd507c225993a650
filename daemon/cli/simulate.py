"""`stagewise simulate`: paper-trade the plan over price history and print a report."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stagewise import logs
from stagewise.churn import SMALL_ORDER
from stagewise.cli import EX_FAILURE, EX_OK, emit_json, load, parse_date, pct
from stagewise.errors import UsageError
from stagewise.settings import Config

if TYPE_CHECKING:
    from stagewise.churn import Churn
    from stagewise.history import PriceHistory
    from stagewise.simulate import SimulationResult


HELP = """\
Runs the daemon's own jobs (DCA, rebalances, drift watch, profit-taking, withdrawals,
re-assessment) on a simulated clock from --start to --end, with a paper account in a
separate database, and prints a report. Prices come from a CSV file (--prices; format:
header `date,BTC,ETH,...`, one row per day, closes in the quote currency) or from the
config's exchange (--from-exchange; downloaded once, then cached). Without either, the
shipped GENERATED sample history (sample-prices.csv) is used: a demo, not a market."""


def add_simulate_command(command: Callable[..., argparse.ArgumentParser]) -> None:
    p = command("simulate", cmd_simulate, "paper-trade the plan over price history")
    p.description = HELP
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    source = p.add_mutually_exclusive_group()
    source.add_argument("--prices", type=Path, metavar="CSV", help="price history file")
    source.add_argument(
        "--from-exchange",
        action="store_true",
        help="download daily closes from the config's exchange (cached for later runs)",
    )
    p.add_argument("--start", type=parse_date, metavar="YYYY-MM-DD", help="first day")
    p.add_argument("--end", type=parse_date, metavar="YYYY-MM-DD", help="day after the last")
    p.add_argument(
        "--db",
        type=Path,
        metavar="PATH",
        help="simulation database, written when the run ends and replacing the last one; "
        "never any other file (default: simulation.db beside the state file)",
    )
    p.add_argument(
        "--min-notional",
        type=non_negative_amount,
        default=5.0,
        metavar="AMOUNT",
        help="smallest order of the simulated exchange, quote currency (5)",
    )
    p.add_argument(
        "--proposals",
        type=non_negative_int,
        default=15,
        metavar="N",
        help="print the last N proposals (15; 0 for none)",
    )
    p.add_argument(
        "--chart",
        type=Path,
        metavar="PNG",
        help="draw value vs contributions and allocation: .png, .svg, .pdf ... "
        "(needs stagewise[plot])",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument(
        "--verbose",
        action="store_true",
        help="log every run and proposal (default: warnings and errors only)",
    )


def non_negative_amount(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not 0 <= value < float("inf"):  # NaN too
        raise argparse.ArgumentTypeError(f"'{text}' must be an amount of 0 or more")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"'{text}' must be 0 or more")
    return value


def cmd_simulate(args: argparse.Namespace) -> int:
    from stagewise.simulate import check_output, default_db_path, simulate

    # Arguments that make no simulation, refused before any download (`simulate` checks the
    # period too, when it comes from the history).
    if args.start and args.end and args.end <= args.start:
        raise UsageError(f"--end {args.end} must be after --start {args.start}")
    if args.from_exchange and not (args.start and args.end):
        raise UsageError("--from-exchange needs --start and --end")
    # Before the simulation runs: a chart it cannot draw must not cost the run.
    chart = None
    if args.chart:
        from stagewise.chart import chart_file

        chart = chart_file(args.chart)
    config = load(args)
    logs.configure("info" if args.verbose else "warning", config.settings.log.format)
    db_path = args.db or default_db_path(config)
    check_output(config, db_path)  # before a download, not only before the simulation runs
    history = load_history(args, config)
    start = args.start or history.days[0]
    end = args.end or history.days[-1] + timedelta(days=1)
    show = _progress_bar(start, end) if sys.stderr.isatty() and not args.json else None
    result = simulate(
        config, history, start, end, db_path, min_notional=args.min_notional, progress=show
    )
    if show:
        print(file=sys.stderr)
    if args.json:
        emit_json(result_json(result))
    else:
        print(render_report(result, config))
        if args.proposals > 0:
            print(render_last_proposals(db_path, args.proposals, config.tz))
    if chart:
        from stagewise.chart import draw

        draw(result, chart, config.quote)
        print(f"chart written to {chart}", file=sys.stderr)
    failures = result.runs_by_status.get("failed", 0)
    if failures:
        print(
            f"stagewise: {failures} of {sum(result.runs_by_status.values())} runs failed "
            f"(each with its error in the runs table of {db_path}; --verbose logs them)",
            file=sys.stderr,
        )
        return EX_FAILURE
    return EX_OK


def load_history(args: argparse.Namespace, config: Config) -> PriceHistory:
    from stagewise.history import load_csv

    if args.from_exchange:
        return download_history(config, args.start, args.end)
    from stagewise import shipped

    return load_csv(args.prices or shipped.path(shipped.SAMPLE_PRICES))


def download_history(config: Config, start: date, end: date) -> PriceHistory:
    """Daily closes of every plan asset from the exchange, through a cache beside the state."""
    from stagewise.exchange import Exchange
    from stagewise.history import from_closes
    from stagewise.simulate import plan_assets
    from stagewise.store import Store

    public = config.settings.exchange.model_copy(
        update={"api_key": None, "secret": None, "password": None}
    )
    since = int(
        datetime.combine(start - timedelta(days=1), datetime.min.time(), UTC).timestamp() * 1000
    )
    until = int(datetime.combine(end, datetime.min.time(), UTC).timestamp() * 1000)
    cache = Store.open(config.settings.state.path.with_name("price-cache.db"))
    exchange = Exchange(public)
    closes: dict[str, list[tuple[int, float]]] = {}
    try:
        for asset in sorted(plan_assets(config, start, end)):
            symbol = f"{asset}/{config.quote}"
            rows = cache.cached_closes(exchange.id, symbol, "1d", since, until)
            expected_days = (until - since) // 86_400_000
            if len(rows) < expected_days:
                print(f"downloading {symbol} daily closes ...", file=sys.stderr)
                rows = exchange.ohlcv_closes(asset, since, until)
                cache.cache_closes(exchange.id, symbol, "1d", rows)
            closes[asset] = rows
    finally:
        exchange.close()
        cache.close()
    return from_closes(closes, f"{config.settings.exchange.id} daily closes")


def _progress_bar(start: date, end: date) -> Callable[[float], None]:
    def show(fraction: float) -> None:
        day = start + (end - start) * min(fraction, 1.0)
        filled = int(fraction * 30)
        print(
            f"\rsimulating {day:%Y-%m} [{'#' * filled}{' ' * (30 - filled)}] "
            f"{fraction * 100:3.0f}%",
            end="",
            file=sys.stderr,
            flush=True,
        )

    return show


def result_json(r: SimulationResult) -> dict[str, Any]:
    return {
        "start": r.start.isoformat(),
        "end": r.end.isoformat(),
        "seed_value": round(r.seed_value, 2),
        "contributions": round(r.contributions, 2),
        "withdrawals": round(r.withdrawals, 2),
        "final_value": round(r.final_value, 2),
        "gain": round(r.gain, 2),
        "fees": round(r.fees, 2),
        "turnover": round(r.turnover, 4),
        "max_drawdown": round(r.max_drawdown, 4),
        **_churn_json(r.churn),
        "proposals_by_job": r.proposals_by_job,
        "runs_by_status": r.runs_by_status,
        "runs_by_job": r.runs_by_job,
        "stages": [
            {"from": s.starts.isoformat(), "stage": s.stage, "glide": s.glide} for s in r.stages
        ],
        "database": str(r.db_path),
    }


def _churn_json(c: Churn) -> dict[str, Any]:
    """The churn figures under stable keys (the README's simulate section lists them)."""

    def rounded(x: float | None, digits: int) -> float | None:
        return None if x is None else round(x, digits)

    return {
        "proposals_per_year": round(c.proposals_per_year, 2),
        "early_rebalances": c.early_rebalances,
        "median_days_between_early_rebalances": rounded(c.median_days_between_early_rebalances, 2),
        "median_order_notional": rounded(c.median_order_notional, 2),
        "orders_under_20": c.orders_under_20,
        "fees_share_of_contributions": rounded(c.fees_share_of_contributions, 6),
    }


def _churn_rows(c: Churn, fees: float, q: str) -> list[list[str]]:
    """The report's rows of what a person judges churn by (the fees row carries its share)."""
    early = f"{c.early_rebalances:,} by the drift watch"
    if c.median_days_between_early_rebalances is not None:
        early += f", a median {c.median_days_between_early_rebalances:.1f} days apart"
    median = c.median_order_notional
    small = f"{c.orders_under_20:,} under {SMALL_ORDER:g} {q}"
    if c.proposals:
        small += f" ({pct(c.orders_under_20 / c.proposals)} of the orders)"
    share = c.fees_share_of_contributions
    return [
        ["proposals a year", f"{c.proposals_per_year:,.1f} ({c.proposals:,} in all)"],
        ["early rebalances", early],
        ["median order", "none" if median is None else f"{median:,.2f} {q}"],
        ["small orders", small],
        [
            "fees",
            f"{fees:,.2f} {q}" + ("" if share is None else f" ({pct(share)} of contributions)"),
        ],
    ]


def render_report(r: SimulationResult, config: Config) -> str:
    from tabulate import tabulate  # only the commands that print tables load it (not `run`)

    q = config.quote
    rows = [
        ["period", f"{r.start} .. {r.end - timedelta(days=1)}"],
        ["starting balance", f"{r.seed_value:,.2f} {q}"],
        ["contributions", f"{r.contributions:,.2f} {q}"],
        ["withdrawals", f"{r.withdrawals:,.2f} {q}"],
        ["final value", f"{r.final_value:,.2f} {q}"],
        ["gain", f"{r.gain:,.2f} {q}"],
        ["max drawdown", pct(r.max_drawdown)],
        ["turnover", f"{r.turnover:.2f}x average value"],
        *_churn_rows(r.churn, r.fees, q),
        ["proposals", ", ".join(f"{k} {v}" for k, v in r.proposals_by_job.items()) or "none"],
        ["runs", ", ".join(f"{k} {v}" for k, v in r.runs_by_status.items())],
        ["runs by job", ", ".join(f"{k} {v}" for k, v in r.runs_by_job.items())],
    ]
    stages = [[s.starts, s.stage, s.glide or ""] for s in r.stages]
    return "\n".join(
        [
            "simulation (paper account; never an order)",
            tabulate(rows, tablefmt="plain", disable_numparse=True),
            "",
            tabulate(stages, headers=["from", "stage", "glide path"]),
            "",
            f"every run and proposal: {r.db_path} (sqlite-utils / Datasette, or "
            f"`stagewise proposals --db {r.db_path}`)",
        ]
    )


def render_last_proposals(db_path: Path, n: int, tz: tzinfo) -> str:
    from stagewise.cli.commands import open_store, render_proposals

    store = open_store(db_path)
    try:
        rows = store.proposals()[:n]
    finally:
        store.close()
    if not rows:
        return "\nno proposals"
    return f"\nthe last {len(rows)} proposals:\n" + render_proposals(rows, tz)
