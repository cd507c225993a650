"""The report of a sweep (`stagewise simulate --windows`): a summary to read, one row per
variant side by side; JSON with every window; the SQLite table of every window. Money to the
cent and fractions as `simulate`'s report gives them (`simulate_report.money`, `ratio`)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stagewise.cli.output import pct
from stagewise.cli.simulate_report import amount, money, ratio
from stagewise.history import POINT_IN_TIME
from stagewise.settings import Config

if TYPE_CHECKING:
    from stagewise.spread import Summary
    from stagewise.sweep import Span, Sweep, WindowResult


def window_row(sweep: Sweep, r: WindowResult, goal: float | None) -> dict[str, Any]:
    """A window's figures under the keys of `simulate --json` (the README lists them)."""
    variant = sweep.variants[r.variant]
    return {
        "variant": variant.label,
        "settings": dict(variant.settings),
        "start": r.start.isoformat(),
        "end": r.end.isoformat(),
        "seed_value": money(r.seed_value),
        "contributions": money(r.contributions),
        "withdrawals": money(r.withdrawals),
        "profit_moved_out": money(r.profit_moved_out),
        "final_value": money(r.final_value),
        "gain": money(r.gain),
        "fees": money(r.fees),
        "slippage": money(r.slippage),
        "trading_costs": money(r.fees + r.slippage),
        "money_weighted_return": ratio(r.money_weighted),
        "time_weighted_return": ratio(r.time_weighted),
        "max_drawdown": ratio(r.max_drawdown),
        "reached_goal": None if goal is None else r.final_value >= goal,
        "runs": r.runs,
        "failed_runs": r.failed_runs,
    }


def summary_json(s: Summary) -> dict[str, Any]:
    low, median, high = s.contributions
    return {
        "variant": s.variant.label,
        "settings": dict(s.variant.settings),
        "windows": len(s.windows),
        "final_value": {
            "median": money(s.median),
            "p10": money(s.p10),
            "p90": money(s.p90),
            "min": money(s.worst.final_value),
            "max": money(s.best.final_value),
        },
        "worst_start": s.worst.start.isoformat(),
        "best_start": s.best.start.isoformat(),
        "reaching_goal": ratio(s.reaching_goal),
        "max_drawdown": {
            "median": ratio(s.median_drawdown),
            "worst": ratio(s.worst_drawdown.max_drawdown),
            "worst_start": s.worst_drawdown.start.isoformat(),
        },
        "median_fees": money(s.median_fees),
        "contributions": {"min": money(low), "median": money(median), "max": money(high)},
        "failed_runs": s.failed_runs,
    }


def sweep_json(
    sweep: Sweep,
    summaries: list[Summary],
    results: list[WindowResult],
    config: Config,
    length: Span,
    step: Span,
) -> dict[str, Any]:
    goal = summaries[0].goal
    return {
        **details(sweep, config, length, step, goal),
        "variants": [summary_json(s) for s in summaries],
        "windows": [window_row(sweep, r, goal) for r in results],
    }


def details(
    sweep: Sweep, config: Config, length: Span, step: Span, goal: float | None
) -> dict[str, Any]:
    """What was swept: the windows, the goal, the prices, the config."""
    return {
        "length": str(length),
        "step": str(step),
        "count": len(sweep.windows),
        "first_start": sweep.windows[0].start.isoformat(),
        "last_start": sweep.windows[-1].start.isoformat(),
        "goal": goal,
        "prices": prices(sweep, config),
        "point_in_time": POINT_IN_TIME,
        "config": str(config.path),
    }


def prices(sweep: Sweep, config: Config) -> str:
    from stagewise import shipped

    history = sweep.history
    read = f"{history.source} (its dates are days in {history.zone or config.tz})"
    if history.source == str(shipped.path(shipped.SAMPLE_PRICES)):
        read += "; the shipped sample: GENERATED prices, not a market"
    return read


# The window table of --db: the keys of `window_row`, each varied setting as a column of its own.
COLUMNS = [
    ("variant", "TEXT"),
    ("settings", "TEXT"),  # JSON
    ("start", "TEXT"),
    ("end", "TEXT"),
    ("seed_value", "REAL"),
    ("contributions", "REAL"),
    ("withdrawals", "REAL"),
    ("profit_moved_out", "REAL"),
    ("final_value", "REAL"),
    ("gain", "REAL"),
    ("fees", "REAL"),
    ("slippage", "REAL"),
    ("trading_costs", "REAL"),
    ("money_weighted_return", "REAL"),
    ("time_weighted_return", "REAL"),
    ("max_drawdown", "REAL"),
    ("reached_goal", "INTEGER"),
    ("runs", "INTEGER"),
    ("failed_runs", "INTEGER"),
]


def save(
    path: Path,
    sweep: Sweep,
    results: list[WindowResult],
    config: Config,
    length: Span,
    step: Span,
    goal: float | None,
) -> None:
    """Every window of `sweep` as a row of the table `windows` in the SQLite file `path`."""
    import json

    from stagewise.store.sweeps import save_sweep

    keys = [key for key, _ in sweep.variants[0].settings]
    rows = []
    for r in results:
        row = window_row(sweep, r, goal)
        row["settings"] = json.dumps(row["settings"])
        values = [row[name] for name, _ in COLUMNS]
        rows.append(values + [value for _, value in sweep.variants[r.variant].settings])
    columns = COLUMNS + [(key, "TEXT") for key in keys]
    save_sweep(path, details(sweep, config, length, step, goal), columns, rows)


def render(
    sweep: Sweep,
    summaries: list[Summary],
    config: Config,
    length: Span,
    step: Span,
    db: Path | None,
    chart: Path | None,
) -> str:
    q = config.quote
    first, last = sweep.windows[0], sweep.windows[-1]
    seed = config.settings.paper.initial_balances
    ends = last.end - timedelta(days=1)
    if len(sweep.windows) == 1:
        which = f"1 window of {length}, {first.start} .. {ends}"
    else:
        which = (
            f"{len(sweep.windows)} windows of {length}, one starting every {step} from "
            f"{first.start} to {last.start} (the last ends {ends})"
        )
    lines = [
        f"sweep: {which}; paper accounts, never an order",
        f"prices: {prices(sweep, config)}",
        f"point in time: {POINT_IN_TIME}",
        "each window: a simulation from the initial balances ("
        + (", ".join(f"{v:,.2f} {a}" for a, v in seed.items()) or "none")
        + "), the investor at the age its start gives",
        "",
    ]
    if len(summaries) == 1:
        lines.append(_one(summaries[0], q))
    else:
        lines.append(_side_by_side(summaries, q))
    lines.append("")
    if db:
        lines.append(f"every window: {db} (table windows; sqlite3 {db} 'select * from windows')")
    else:
        lines.append("every window: --json, or --db FILE (an SQLite table)")
    if chart:
        lines.append(f"chart: {chart}")
    return "\n".join(lines)


def _one(s: Summary, q: str) -> str:
    from tabulate import tabulate

    rows = [
        [
            "final value",
            f"median {amount(s.median)} {q} (p10 {amount(s.p10)}, p90 {amount(s.p90)})",
        ],
        ["worst", f"{amount(s.worst.final_value)} {q}, the window from {s.worst.start}"],
        ["best", f"{amount(s.best.final_value)} {q}, the window from {s.best.start}"],
    ]
    if s.goal is not None and s.reaching_goal is not None:
        reached = round(s.reaching_goal * len(s.windows))
        rows.append(
            [
                "goal",
                f"{reached} of {_windows(len(s.windows))} ({pct(s.reaching_goal)}) end at or "
                f"above {amount(s.goal)} {q}",
            ]
        )
    worst = s.worst_drawdown
    rows += [
        [
            "max drawdown",
            f"median {pct(s.median_drawdown)}, worst {pct(worst.max_drawdown)} "
            f"(the window from {worst.start})",
        ],
        ["fees", f"median {amount(s.median_fees)} {q} a window"],
        ["contributions", _contributions(s, q)],
    ]
    return tabulate(rows, tablefmt="plain", disable_numparse=True)


def _contributions(s: Summary, q: str) -> str:
    low, median, high = s.contributions
    if money(low) == money(high):
        return f"{amount(median)} {q} in every window"
    return f"median {amount(median)} {q} a window ({amount(low)} .. {amount(high)})"


def _side_by_side(summaries: list[Summary], q: str) -> str:
    from tabulate import tabulate

    keys = [key for key, _ in summaries[0].variant.settings]
    goal = summaries[0].goal
    headers = [
        *keys,
        f"median ({q})",
        "p10",
        "p90",
        "worst",
        *(["reaching goal"] if goal is not None else []),
        "max drawdown (median / worst)",
        "median fees",
        "contributions",
    ]
    rows = []
    for s in summaries:
        rows.append(
            [
                *(value for _, value in s.variant.settings),
                amount(s.median),
                amount(s.p10),
                amount(s.p90),
                f"{amount(s.worst.final_value)} ({s.worst.start})",
                *([pct(s.reaching_goal or 0.0)] if goal is not None else []),
                f"{pct(s.median_drawdown)} / {pct(s.worst_drawdown.max_drawdown)}",
                amount(s.median_fees),
                amount(s.contributions[1]),
            ]
        )
    table = tabulate(rows, headers=headers, disable_numparse=True)
    note = f"goal: {amount(goal)} {q}; " if goal is not None else ""
    return f"{table}\n\n{note}{_windows(len(summaries[0].windows))} a variant"


def _windows(n: int) -> str:
    return f"{n} window" if n == 1 else f"{n} windows"
