"""`stagewise simulate`: paper-trade the plan over price history and print a report."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import date, timedelta, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING

from stagewise import logs
from stagewise.cli.arguments import in_range, load, load_history, parse_date
from stagewise.cli.output import EX_FAILURE, EX_OK, emit_json
from stagewise.errors import PriceHistoryError, UsageError
from stagewise.money import MAX_MONEY

if TYPE_CHECKING:
    from stagewise.plan_events import Pause, Windfall


HELP = """\
Runs the daemon's own jobs (DCA, rebalances, drift watch, profit-taking, withdrawals,
re-assessment) on a simulated clock from --start to --end, with a paper account in a
separate database, and prints a report. Prices come from a CSV file (--prices; format:
header `date,BTC,ETH,...`, one row per day, closes in the quote currency) or from the
config's exchange (--from-exchange; downloaded once, then cached). Without either, the
shipped GENERATED sample history (sample-prices.csv) is used: a demo, not a market.
Rule indices that choose or weigh by traded volume (select by "volume", weigh "volume",
a liquidity floor) need volumes: --volumes CSV (the price file's shape, each cell the
day's volume in the quote currency) or --from-exchange (the candles' volumes).

Point in time: a row's close is known from the midnight that ends its day (a CSV's days
are yours, the exchange's are UTC days): a job sees the close of the day before, never its
own day's. A coin without a price yet is left out of the targets until its first close is
known (its weight goes to the listed coins of its index; --strict-history refuses instead).

Plan events (--events FILE, .csv or .toml; --windfall and --pause add to them): one event a
row, in date order, each applied at the midnight of its day as it happens live:
  date,kind,amount,reason
  2026-01-10,windfall,10000,          a bonus, as `stagewise windfall 10000`
  2026-02-01,pause,,lost my job       the emergency pause (`stagewise pause --reason`)
  2026-04-01,resume,,                 its end (`stagewise resume`)
  2026-06-01,outside_value,250000,    the value held outside crypto from then on
                                      (investor.outside_investments, edited and reloaded)
TOML: one [[event]] table per event with the same keys (date = 2026-01-10, kind = "pause",
reason = "lost my job"). A bad file is refused naming its line and field (exit 65).

The report's figures:
  contributions     every deposit (DCA and windfalls); withdrawals: money paid out
  profit moved out  profit taken, moved to traditional investments (not a withdrawal)
  fees, slippage    fees paid; fills worse than the close they were planned at
  trading costs     fees + slippage
  money-weighted    XIRR: the yearly rate at which every payment in and out, and the
                    final value, discount to zero (your money's return; days / 365)
  time-weighted     the yearly growth of one unit held throughout, payments removed
                    (the plan's return, whenever money came in)
  max drawdown      the largest fall from a peak of the value (contributions count as a
                    rise), and of the time-weighted curve (the portfolio's own fall)
  turnover          the lesser of bought and sold by rebalancing and profit-taking, a
                    year, over the average daily value; DCA, windfall and withdrawal
                    trades apart (1.00x: the whole account traded once a year)
The value of every day, its cash, crypto's share of the whole portfolio and the money to
date: the table simulation_days of --db (what --chart draws)."""


def add_simulate_command(command: Callable[..., argparse.ArgumentParser]) -> None:
    p = command("simulate", cmd_simulate, "paper-trade the plan over price history")
    p.description = HELP
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    source = p.add_mutually_exclusive_group()
    source.add_argument("--prices", type=Path, metavar="CSV", help="price history file")
    source.add_argument(
        "--from-exchange",
        action="store_true",
        help="download daily candles from the config's exchange (cached for later runs)",
    )
    p.add_argument(
        "--volumes",
        type=Path,
        metavar="CSV",
        help="daily quote volumes for rule indices that choose or weigh by volume: a CSV of "
        "the price file's shape (date,ASSET,...; each cell the day's traded volume in the "
        "quote currency)",
    )
    p.add_argument(
        "--start",
        type=parse_date,
        metavar="YYYY-MM-DD",
        help="first day (default: the first a close is known, the day after the history's "
        "first; with rule indices, the first they have the days of closes they read)",
    )
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
    p.add_argument(
        "--windfall",
        type=windfall_event,
        action="append",
        default=[],
        metavar="DATE:AMOUNT",
        help="a bonus announced on DATE, as `stagewise windfall AMOUNT` (repeatable)",
    )
    p.add_argument(
        "--pause",
        type=pause_event,
        action="append",
        default=[],
        metavar="FROM:TO[:REASON]",
        help="the emergency pause from FROM, resumed on TO (repeatable)",
    )
    p.add_argument(
        "--events",
        type=Path,
        metavar="FILE",
        help="plan events (windfall, pause, resume, outside_value) from a .csv or .toml file; "
        "the format is above",
    )
    p.add_argument(
        "--strict-history",
        action="store_true",
        help="refuse a plan asset without a price on the first day (default: it joins the "
        "targets from its first price)",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument(
        "--verbose",
        action="store_true",
        help="log every run and proposal (default: warnings and errors only)",
    )
    from stagewise.cli.sweep import add_sweep_arguments

    add_sweep_arguments(p)


def non_negative_amount(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not 0 <= value < float("inf"):  # NaN too
        raise argparse.ArgumentTypeError(f"'{text}' must be an amount of 0 or more")
    return value


def windfall_event(text: str) -> Windfall:
    from stagewise.plan_events import Windfall

    day, _, amount = text.partition(":")
    try:
        value = float(amount)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not DATE:AMOUNT") from None
    if not 0 < value <= MAX_MONEY:  # NaN too
        raise argparse.ArgumentTypeError(
            f"'{text}': the amount must be positive, at most {MAX_MONEY:,.0f}"
        )
    return Windfall(_event_date(text, day), value)


def pause_event(text: str) -> Pause:
    from stagewise.plan_events import Pause

    parts = text.split(":", 2)
    if len(parts) < 2:
        raise argparse.ArgumentTypeError(f"'{text}' is not FROM:TO[:REASON]")
    start, end = _event_date(text, parts[0]), _event_date(text, parts[1])
    if end <= start:
        raise argparse.ArgumentTypeError(f"'{text}': the pause must end after it starts")
    reason = parts[2].strip() if len(parts) == 3 and parts[2].strip() else "simulated pause"
    return Pause(start, end, reason)


def _event_date(text: str, day: str) -> date:
    try:
        return in_range(text, date.fromisoformat(day.strip()))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"'{text}': '{day}' is not a date like 2027-01-31"
        ) from None


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"'{text}' must be 0 or more")
    return value


def cmd_simulate(args: argparse.Namespace) -> int:
    from stagewise.cli.sweep import cmd_sweep, refuse_sweep_arguments
    from stagewise.simulate import check_output, default_db_path, default_start, simulate

    if args.windows:
        return cmd_sweep(args)
    refuse_sweep_arguments(args)

    # Arguments that make no simulation, refused before any download (`simulate` checks the
    # period too, when it comes from the history).
    if args.start and args.end and args.end <= args.start:
        raise UsageError(f"--end {args.end} must be after --start {args.start}")
    if args.from_exchange and not (args.start and args.end):
        raise UsageError("--from-exchange needs --start and --end")
    if args.from_exchange and args.volumes:
        raise UsageError("--volumes is for a price file: --from-exchange has the volumes")
    # Before the simulation runs: a chart it cannot draw must not cost the run.
    chart = None
    if args.chart:
        from stagewise.chart import chart_file

        chart = chart_file(args.chart)
    events = [*args.windfall, *args.pause]
    if args.events:
        from stagewise.event_files import load_events

        events += load_events(args.events)
    if args.start and args.end:  # before a download (`simulate` checks them again)
        from stagewise.plan_events import check_events

        check_events(events, args.start, args.end)
    config = load(args)
    logs.configure("info" if args.verbose else "warning", config.settings.log.format)
    db_path = args.db or default_db_path(config)
    check_output(config, db_path)  # before a download, not only before the simulation runs
    if chart:
        from stagewise.chart import refuse_replacing

        state = "the daemon's state file (state.path)"
        refuse_replacing(chart, {state: config.state_path, "the simulation's --db": db_path})
    history = load_history(args, config)
    start = args.start or default_start(config, history)  # the first a rule can be composed
    end = args.end or history.days[-1] + timedelta(days=1)
    if args.start is None and args.end is None and end <= start:
        raise PriceHistoryError(
            f"{history.source}: its closes end on {history.days[-1]}, and a simulation over "
            f"them could start on {start} at the earliest (a day's close is known from the "
            "midnight that ends it; a rule index needs its days of closes): give a longer history"
        )
    show = _progress_bar(start, end) if sys.stderr.isatty() and not args.json else None
    result = simulate(
        config,
        history,
        start,
        end,
        db_path,
        min_notional=args.min_notional,
        events=events,
        strict_history=args.strict_history,
        progress=show,
    )
    if show:
        print(file=sys.stderr)
    from stagewise.cli.simulate_report import render_report, result_json

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


def render_last_proposals(db_path: Path, n: int, tz: tzinfo) -> str:
    from stagewise.cli.commands import render_proposals
    from stagewise.store import Store

    store = Store.read(db_path)  # the simulation's database, only read
    try:
        rows = store.proposals()[:n]
    finally:
        store.close()
    if not rows:
        return "\nno proposals"
    return f"\nthe last {len(rows)} proposals:\n" + render_proposals(rows, tz)
