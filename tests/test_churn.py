"""The figures a person judges churn by, on a tiny hand-made set of proposals.

Seven orders in five runs over exactly four years (1,461 days = 4 x 365.25): a DCA, three
drift-watch (early) rebalances 4 and 10 days apart, and a scheduled rebalance. Every
expected figure is worked out by hand in the test.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from stagewise.churn import ProposedOrder, churn

START, END = date(2020, 1, 1), date(2024, 1, 1)


def at(day: int, hour: int = 10) -> datetime:
    return datetime(2021, 1, day, hour, tzinfo=UTC)


ORDERS = [
    ProposedOrder(run=1, job="dca", at=at(1, 9), notional=100.0),
    ProposedOrder(run=1, job="dca", at=at(1, 9), notional=15.0),
    ProposedOrder(run=2, job="drift", at=at(3), notional=30.0),
    ProposedOrder(run=2, job="drift", at=at(3), notional=5.0),
    ProposedOrder(run=3, job="drift", at=at(7), notional=20.0),  # exactly 20: not under it
    ProposedOrder(run=4, job="rebalance", at=at(10), notional=50.0),
    ProposedOrder(run=5, job="drift", at=at(17), notional=40.0),
]


def test_churn_figures_of_a_hand_made_set_of_proposals():
    figures = churn(ORDERS, start=START, end=END, fees=12.0, contributions=4_800.0)
    assert figures.proposals == 7
    assert figures.proposals_per_year == 7 / 4
    # Runs 2, 3 and 5 are the drift watch's: on 3, 7 and 17 January, 4 and 10 days apart;
    # the median of two gaps is their mean.
    assert figures.early_rebalances == 3
    assert figures.median_days_between_early_rebalances == 7.0
    # Notionals sorted: 5, 15, 20, 30, 40, 50, 100; the fourth is the median.
    assert figures.median_order_notional == 30.0
    assert figures.orders_under_20 == 2  # 5 and 15
    assert figures.fees_share_of_contributions == 12.0 / 4_800.0 == 0.0025


def test_the_median_of_an_odd_number_of_gaps_is_the_middle_one():
    drift = [o for o in ORDERS if o.job == "drift"]
    later = ProposedOrder(run=6, job="drift", at=at(31, 22), notional=25.0)
    figures = churn([*drift, later], start=START, end=END, fees=0.0, contributions=1.0)
    # Gaps: 4, 10 and 14.5 days (17th 10:00 to 31st 22:00): the median is 10.
    assert figures.early_rebalances == 4
    assert figures.median_days_between_early_rebalances == 10.0
    # Notionals 5, 20, 25, 30, 40: the median is 25.
    assert figures.median_order_notional == 25.0


def test_figures_with_nothing_to_measure_are_none_not_zero():
    one_early = [o for o in ORDERS if o.run == 2]
    figures = churn(one_early, start=START, end=END, fees=0.5, contributions=0.0)
    assert figures.early_rebalances == 1
    assert figures.median_days_between_early_rebalances is None  # one rebalance: no gap
    assert figures.fees_share_of_contributions is None  # nothing was contributed

    nothing = churn([], start=START, end=END, fees=0.0, contributions=0.0)
    assert (nothing.proposals, nothing.proposals_per_year, nothing.early_rebalances) == (0, 0, 0)
    assert nothing.median_order_notional is None
    assert nothing.orders_under_20 == 0


def test_orders_are_counted_in_any_order_given():
    figures = churn(list(reversed(ORDERS)), start=START, end=END, fees=0.0, contributions=1.0)
    assert figures.median_days_between_early_rebalances == 7.0


def test_a_simulation_that_does_not_run_forward_is_refused():
    with pytest.raises(ValueError, match="end after"):
        churn(ORDERS, start=END, end=START, fees=0.0, contributions=0.0)
