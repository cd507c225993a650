"""What a person judges churn by: how often the plan proposes, how early and how small its
orders are, and what they cost against the money put in. Pure: figures of given proposals."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from itertools import pairwise

from stagewise.periods import Job

SMALL_ORDER = 20.0  # quote units: an order under it costs attention out of proportion to it
EARLY_JOB: Job = "drift"  # the drift watch: a rebalance before the scheduled one


@dataclass(frozen=True)
class ProposedOrder:
    """One proposed order as churn sees it: its run, the run's job and time, its notional."""

    run: int
    job: Job
    at: datetime
    notional: float


@dataclass(frozen=True)
class Churn:
    """Churn over a span; a figure with nothing to measure (no gap, no order, nothing
    contributed) is None, not 0."""

    proposals: int
    proposals_per_year: float
    early_rebalances: int  # drift-watch runs that proposed
    median_days_between_early_rebalances: float | None
    median_order_notional: float | None
    orders_under_20: int  # notional under SMALL_ORDER quote units
    fees_share_of_contributions: float | None


def churn(
    orders: Sequence[ProposedOrder],
    *,
    start: date,
    end: date,
    fees: float,
    contributions: float,
) -> Churn:
    """The churn figures of `orders` proposed in [start, end), with the fees they cost and
    the contributions made over the same span."""
    if end <= start:
        raise ValueError(f"a span must end after it starts ({start} .. {end})")
    years = (end - start).days / 365.25
    early = sorted({o.run: o.at for o in orders if o.job == EARLY_JOB}.values())
    gaps = [(b - a).total_seconds() / 86_400 for a, b in pairwise(early)]
    notionals = [o.notional for o in orders]
    return Churn(
        proposals=len(orders),
        proposals_per_year=len(orders) / years,
        early_rebalances=len(early),
        median_days_between_early_rebalances=statistics.median(gaps) if gaps else None,
        median_order_notional=statistics.median(notionals) if notionals else None,
        orders_under_20=sum(1 for n in notionals if n < SMALL_ORDER),
        fees_share_of_contributions=fees / contributions if contributions > 0 else None,
    )
