"""The jobs by name, and period keys: the name of the calendar period a run belongs to.

A period runs at most once, across restarts (the store's runs.period is unique). Pure.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, get_args

# Every job a run can be of: the scheduled ones, and the windfall a person announces.
Job = Literal["dca", "rebalance", "drift", "profit", "withdraw", "reassess", "windfall"]
JOBS: tuple[Job, ...] = get_args(Job)
SCHEDULED_JOBS: tuple[Job, ...] = tuple(j for j in JOBS if j != "windfall")
Cadence = Literal["hourly", "daily", "weekly", "monthly", "quarterly", "half", "annual"]


def period_of(cadence: Cadence, local: datetime) -> str:
    """The period of `local` (the investor's local time) at `cadence`, e.g. 2027-Q1."""
    if cadence == "hourly":
        return local.strftime("%Y-%m-%dT%H")
    if cadence == "daily":
        return local.strftime("%Y-%m-%d")
    if cadence == "weekly":
        year, week, _ = local.isocalendar()
        return f"{year}-W{week:02d}"
    if cadence == "monthly":
        return local.strftime("%Y-%m")
    if cadence == "quarterly":
        return f"{local.year}-Q{(local.month - 1) // 3 + 1}"
    if cadence == "half":
        return f"{local.year}-H{(local.month - 1) // 6 + 1}"
    if cadence == "annual":
        return f"{local.year}"
    raise ValueError(f"unknown cadence {cadence!r}")


def period_key(job: Job, cadence: Cadence, local: datetime, scope: str | None = None) -> str:
    """`job[:scope]:period`, e.g. `dca:2027-01`, `rebalance:value_investor:2027`."""
    head = f"{job}:{scope}" if scope else job
    return f"{head}:{period_of(cadence, local)}"
