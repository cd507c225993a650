"""The report of `stagewise simulate`: a table to read, or JSON under stable keys (the
README's simulate section lists them). Money to the cent, never a negative zero."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from stagewise.churn import SMALL_ORDER
from stagewise.cli.output import pct
from stagewise.history import POINT_IN_TIME
from stagewise.settings import Config

if TYPE_CHECKING:
    from stagewise.churn import Churn
    from stagewise.performance import Figures
    from stagewise.simulate import SimulationResult


def result_json(r: SimulationResult) -> dict[str, Any]:
    f = r.figures
    return {
        "start": r.start.isoformat(),
        "end": r.end.isoformat(),
        "prices": r.prices,
        "point_in_time": POINT_IN_TIME,
        "seed_value": money(f.seed_value),
        "contributions": money(f.contributions),
        "windfalls": money(f.windfalls),
        "withdrawals": money(f.withdrawals),
        "profit_moved_out": money(f.profit_moved_out),
        "final_value": money(f.final_value),
        "gain": money(r.gain),
        "fees": money(f.fees),
        "slippage": money(f.slippage),
        "trading_costs": money(f.trading_cost),
        "money_weighted_return": ratio(f.money_weighted),
        "time_weighted_return": ratio(f.time_weighted),
        "max_drawdown": ratio(f.max_drawdown),
        "max_drawdown_time_weighted": ratio(f.max_drawdown_time_weighted),
        "turnover": ratio(f.turnover),
        **_churn_json(r.churn),
        "proposals_by_job": r.proposals_by_job,
        "runs_by_status": r.runs_by_status,
        "runs_by_job": r.runs_by_job,
        "stages": [
            {"from": s.starts.isoformat(), "stage": s.stage, "glide": s.glide} for s in r.stages
        ],
        "rule_indices": r.rule_indices,
        "notes": r.notes,
        "database": str(r.db_path),
    }


def money(x: float) -> float:
    """An amount to the cent; never a negative zero (-0.004 is 0.0, not -0.0)."""
    return round(x, 2) + 0.0


def ratio(x: float | None, digits: int = 4) -> float | None:
    """A fraction to `digits` places (None stays null); never a negative zero."""
    return None if x is None else round(x, digits) + 0.0


def _churn_json(c: Churn) -> dict[str, Any]:
    """The churn figures under stable keys (the README's simulate section lists them)."""

    return {
        "proposals_per_year": ratio(c.proposals_per_year, 2),
        "early_rebalances": c.early_rebalances,
        "median_days_between_early_rebalances": ratio(c.median_days_between_early_rebalances, 2),
        "median_order_notional": ratio(c.median_order_notional, 2),
        "orders_under_20": c.orders_under_20,
        "fees_share_of_contributions": ratio(c.fees_share_of_contributions, 6),
    }


def _churn_rows(c: Churn, f: Figures, q: str) -> list[list[str]]:
    """The report's rows of what a person judges churn by, and what it cost (the fees row
    carries its share of the contributions)."""
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
            f"{amount(f.fees)} {q}"
            + ("" if share is None else f" ({pct(share)} of contributions)"),
        ],
        ["slippage", f"{amount(f.slippage)} {q}"],
        ["trading costs", f"{amount(f.trading_cost)} {q} (fees + slippage)"],
    ]


def render_report(r: SimulationResult, config: Config) -> str:
    from tabulate import tabulate  # only the commands that print tables load it (not `run`)

    q = config.quote
    f = r.figures
    rows = [
        ["period", f"{r.start} .. {r.end - timedelta(days=1)}"],
        ["starting balance", f"{amount(f.seed_value)} {q}"],
        ["contributions", f"{amount(f.contributions)} {q}" + _windfalls(f.windfalls, q)],
        ["withdrawals", f"{amount(f.withdrawals)} {q}"],
        ["profit moved out", f"{amount(f.profit_moved_out)} {q} (to traditional investments)"],
        ["final value", f"{amount(f.final_value)} {q}"],
        ["gain", f"{amount(r.gain)} {q}"],
        ["money-weighted", _yearly(f.money_weighted) + " (XIRR)"],
        ["time-weighted", _yearly(f.time_weighted)],
        [
            "max drawdown",
            f"{pct(f.max_drawdown)} of the value, {pct(f.max_drawdown_time_weighted)} "
            "time-weighted (the portfolio's own)",
        ],
        ["turnover", f"{f.turnover:.2f}x average value a year (rebalancing, profit-taking)"],
        *_churn_rows(r.churn, f, q),
        ["proposals", ", ".join(f"{k} {v}" for k, v in r.proposals_by_job.items()) or "none"],
        ["runs", ", ".join(f"{k} {v}" for k, v in r.runs_by_status.items())],
        ["runs by job", ", ".join(f"{k} {v}" for k, v in r.runs_by_job.items())],
    ]
    stages = [[s.starts, s.stage, s.glide or ""] for s in r.stages]
    notes = [f"note: {n}" for n in r.notes]
    return "\n".join(
        [
            "simulation (paper account; never an order)",
            f"prices: {r.prices}",
            f"point in time: {POINT_IN_TIME}",
            "",
            tabulate(rows, tablefmt="plain", disable_numparse=True),
            "",
            tabulate(stages, headers=["from", "stage", "glide path"]),
            *_rule_indices(r.rule_indices),
            *(["", *notes] if notes else []),
            "",
            f"every run and proposal: {r.db_path} (sqlite-utils / Datasette, or "
            f"`stagewise proposals --db {r.db_path}`)",
        ]
    )


def _rule_indices(shown: dict[str, dict[str, Any]]) -> list[str]:
    """The table of the rule indices' reconstitutions (none: no lines)."""
    from tabulate import tabulate

    if not shown:
        return []
    rows = [
        [
            r["name"],
            r["reconstitutions"],
            r["entered"],
            r["left"],
            r["last"],
            ", ".join(f"{a} {w:.1f} %" for a, w in r["weights"].items()),
        ]
        for r in shown.values()
    ]
    headers = ["rule index", "reconstituted", "entered", "left", "last chosen", "holds"]
    return ["", tabulate(rows, headers=headers, disable_numparse=True)]


def amount(x: float) -> str:
    """Money as the report prints it, to the cent (never "-0.00")."""
    return f"{money(x):,.2f}"


def _yearly(rate: float | None) -> str:
    return "n/a" if rate is None else f"{pct(ratio(rate) or 0.0)} a year"


def _windfalls(windfalls: float, q: str) -> str:
    return f" (windfalls {amount(windfalls)} {q})" if windfalls > 0 else ""
