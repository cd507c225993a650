"""`simulate`: the daemon's own jobs paper-trading a plan over price history.

Small plans of the test's own (one index, wide bands, no drift watch) over hand-made price
histories, checked to the cent against arithmetic written out here. Point in time: a job on
day D sees the close of the day before, so each history starts the day before the simulation
and its rows are the closes a job of the next day plans with; the report against the
ledger it was drawn from; the simulation database replaced each run and never the daemon's
own; an investor aging through a stage boundary on the glide path; and the offline demo
command run for real, with the network cut off.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import sys
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest
from support import DCA_ONLY, deep_merge, plan_stage

from stagewise.errors import OutputRefused, PriceHistoryError, UsageError
from stagewise.history import PriceHistory, load_csv
from stagewise.plan_events import Pause, Windfall
from stagewise.settings import load_config
from stagewise.simulate import StageSpan, simulate
from stagewise.store import Store

CENT = 0.005  # "equal to the cent": closer than half a cent


@pytest.fixture
def quiet_config(write_plan, write_config):
    """A loaded config: one index 'basket' of `constituents`, only DCA trading."""

    def make(constituents: dict[str, float], **overrides):
        plan = write_plan({"basket": ("quarterly", constituents)})
        return load_config(write_config(deep_merge(deep_merge(DCA_ONLY, plan), overrides)))

    return make


def history(rows: dict[date, dict[str, float]]) -> PriceHistory:
    days = tuple(sorted(rows))
    assets = sorted(rows[days[0]])
    return PriceHistory(days, {a: tuple(rows[d][a] for d in days) for a in assets}, "hand")


def orders(db: Path) -> list[tuple[str, str, str, float, float, float]]:
    """(period, side, asset, amount, notional, fee) of every proposal, by period and asset."""
    store = Store.open(db)
    try:
        rows = store.proposals()
    finally:
        store.close()
    return sorted(
        (p["period"], p["side"], p["symbol"].split("/")[0], p["amount"], p["notional"], p["fee"])
        for p in rows
    )


# --- hand-computed cases ------------------------------------------------------------------------


def test_monthly_dca_buys_underweight_first_to_the_cent(quiet_config, tmp_path):
    """Index A 60 / B 40, 1,000 a month on the 1st, fee 0.1 %, no slippage, step 1e-8.
    Month-end closes: each DCA on the 1st buys at the close of the day before."""
    config = quiet_config({"A": 60, "B": 40})
    prices = history(
        {
            date(2029, 12, 31): {"A": 100.0, "B": 50.0},
            date(2030, 1, 31): {"A": 400.0, "B": 50.0},
            date(2030, 2, 28): {"A": 200.0, "B": 100.0},
            date(2030, 3, 31): {"A": 250.0, "B": 80.0},
        }
    )
    db = tmp_path / "sim.db"
    result = simulate(config, prices, date(2030, 1, 1), date(2030, 4, 1), db, min_notional=0)

    # 1 Jan, at 31 Dec's close A 100, B 50. Deposit 1,000; empty account: gaps A 600, B 400.
    #   A: 600 / 1.001 / 100 = 5.994005994.. -> 5.99400599 units (the 1e-8 step, rounded down);
    #      notional 599.400599, fee 0.599400599
    #   B: 400 / 1.001 / 50 = 7.992007992.. -> 7.99200799 units;
    #      notional 399.6003995, fee 0.3996003995
    #   cash left 1000 - 599.999999599 - 399.9999998995 = 0.0000005015 (carried)
    a1, b1 = 5.99400599, 7.99200799
    # 1 Feb, at 31 Jan's A 400, B 50. Deposit 1,000: value
    #   2397.602396 + 399.6003995 + 1000.0000005015
    #   = 3797.2027960015. Gaps: A 0.6 * 3797.20 - 2397.60 = -119.28 (overweight: none),
    #   B 0.4 * 3797.20 - 399.60 = 1119.28, more than the budget: all of it into B.
    #   B: 1000.0000005015 / 1.001 / 50 = 19.98001999.. -> 19.98001999; notional 999.0009995,
    #   fee 0.9990009995; cash left 0.000000002
    b2 = 19.98001999
    # 1 Mar, at 28 Feb's A 200, B 100. Deposit 1,000: value
    #   1198.801198 + 2797.202798 + 1000.000000002
    #   = 4996.003996002. Gaps: A 0.6 * 4996.00 - 1198.80 = 1798.80 (more than the budget),
    #   B 0.4 * 4996.00 - 2797.20 = -798.80: all into A.
    #   A: 1000.000000002 / 1.001 / 200 = 4.99500499.. -> 4.99500499; notional 999.000998,
    #   fee 0.999000998; cash left 0.000001004
    a3 = 4.99500499
    cash = 0.000001004
    assert orders(db) == [
        ("dca:2030-01", "buy", "A", a1, pytest.approx(599.400599), pytest.approx(0.599400599)),
        ("dca:2030-01", "buy", "B", b1, pytest.approx(399.6003995), pytest.approx(0.3996003995)),
        ("dca:2030-02", "buy", "B", b2, pytest.approx(999.0009995), pytest.approx(0.9990009995)),
        ("dca:2030-03", "buy", "A", a3, pytest.approx(999.000998), pytest.approx(0.999000998)),
    ]
    # 31 Mar, A 250, B 80: (5.99400599 + 4.99500499) * 250 = 10.98901098 * 250 = 2747.252745
    #   + (7.99200799 + 19.98001999) * 80 = 27.97202798 * 80 = 2237.7622384, + cash
    #   = 4985.014984404 -> 4,985.01
    final = (a1 + a3) * 250 + (b1 + b2) * 80 + cash
    assert final == pytest.approx(4985.014984404, abs=1e-9)
    assert result.final_value == pytest.approx(4985.01, abs=CENT)
    # Fees: 0.599400599 + 0.3996003995 + 0.9990009995 + 0.999000998 = 2.997002996 -> 3.00
    assert result.fees == pytest.approx(2.997002996, abs=1e-6)
    assert round(result.fees, 2) == 3.00
    assert result.contributions == 3000.0
    assert result.seed_value == 0 and result.withdrawals == 0
    assert result.gain == pytest.approx(1985.01, abs=CENT)
    assert result.proposals_by_job == {"dca": 4}
    # DCA 3 months + the quarterly rebalance of Q1 (the index and the whole portfolio); the
    # withdrawal job runs monthly and is skipped: this stage withdraws nothing.
    # No stage of this plan withdraws: the withdraw trigger is not walked, nothing skipped.
    assert result.runs_by_status == {"ok": 5}
    assert result.runs_by_job == {"dca": 3, "rebalance": 2}
    # The value at the end of each day with a close or a payment (at the last close known
    # by then), and the money put in so far.
    assert [(d, round(v, 2), i) for d, v, i in result.series] == [
        (date(2030, 1, 1), 999.00, 1000.0),  # 1000 less the fees 0.599400599 + 0.3996003995
        (date(2030, 1, 31), 2797.20, 1000.0),  # 5.99400599 * 400 + 7.99200799 * 50
        (date(2030, 2, 1), 3796.20, 2000.0),  # 2397.602396 + 27.97202798 * 50 + 0.000000002
        (date(2030, 2, 28), 3996.00, 2000.0),  # 5.99400599 * 200 + 27.97202798 * 100
        (date(2030, 3, 1), 4995.00, 3000.0),  # 10.98901098 * 200 + 2797.202798 + 0.000001004
        (date(2030, 3, 31), 4985.01, 3000.0),
    ]
    # The worst fall from a peak: 4995.00 on 1 Mar to 4985.01 on 31 Mar.
    assert result.max_drawdown == pytest.approx((4995.004 - 4985.015) / 4995.004, abs=1e-6)


def test_dca_money_below_the_minimum_order_is_carried_to_the_next_month(quiet_config, tmp_path):
    """Index A 90 / B 10, 1,000 a month, minimum order 100: B's first share is too small."""
    config = quiet_config({"A": 90, "B": 10})
    prices = history(
        {
            date(2029, 12, 31): {"A": 100.0, "B": 10.0},
            date(2030, 1, 31): {"A": 100.0, "B": 10.0},
            date(2030, 2, 28): {"A": 110.0, "B": 12.0},
        }
    )
    db = tmp_path / "sim.db"
    result = simulate(config, prices, date(2030, 1, 1), date(2030, 3, 1), db, min_notional=100)

    # 1 Jan: gaps A 900, B 100.
    #   A: 900 / 1.001 / 100 = 8.99100899 units; notional 899.100899, fee 0.899100899
    #   B: 100 / 1.001 = 99.90 of notional, below the minimum of 100: skipped, carried.
    #   Carry 1000 - 899.100899 * 1.001 = 100.000000101
    a1 = 8.99100899
    # 1 Feb: deposit 1,000; value 899.100899 + 100.000000101 + 1000 = 1999.100899101
    #   gaps A 0.9 * 1999.10 - 899.10 = 900.089910191, B 0.1 * 1999.10 = 199.910089910
    #   budget 1000 + the carry = 1100.000000101, enough for both:
    #   A: 900.089910191 / 1.001 / 100 = 8.99190719; notional 899.190719, fee 0.899190719
    #   B: the 199.910090382 left / 1.001 / 10 = 19.97103795; notional 199.7103795, fee
    #   0.1997103795; cash left 0.00000050250
    a2, b2 = 8.99190719, 19.97103795
    assert orders(db) == [
        ("dca:2030-01", "buy", "A", a1, pytest.approx(899.100899), pytest.approx(0.899100899)),
        ("dca:2030-02", "buy", "A", a2, pytest.approx(899.190719), pytest.approx(0.899190719)),
        ("dca:2030-02", "buy", "B", b2, pytest.approx(199.7103795), pytest.approx(0.1997103795)),
    ]
    store = Store.open(db)
    try:
        skipped = store.conn.execute("SELECT COUNT(*) FROM runs WHERE period = 'dca:2030-01'")
        assert skipped.fetchone()[0] == 1
        assert store.plan_state().carry == pytest.approx(0.0000005025, abs=1e-9)
    finally:
        store.close()
    # 28 Feb, A 110, B 12: 17.98291618 * 110 = 1978.1207798 + 19.97103795 * 12 = 239.6524554
    #   + 0.0000005025 = 2217.7732357 -> 2,217.77
    assert result.final_value == pytest.approx(2217.77, abs=CENT)
    # Fees 0.899100899 + 0.899190719 + 0.1997103795 = 1.9980019975 -> 2.00
    assert result.fees == pytest.approx(1.9980019975, abs=1e-6)
    assert result.contributions == 2000.0


# --- point in time --------------------------------------------------------------------------


def daily(first: date, last: date, prices: dict[str, float]) -> dict[date, dict[str, float]]:
    """The same `prices` on every day from `first` to `last` (a dict to change days of)."""
    return {first + timedelta(days=i): dict(prices) for i in range((last - first).days + 1)}


def test_a_job_plans_with_the_close_of_the_day_before_and_never_a_later_one(quiet_config, tmp_path):
    """The DCA of 1 February at 09:00 is planned with 31 January's close. Changing the close
    of 1 February (known only at the midnight that ends it) changes nothing the job did,
    only the value at that day's end; changing 31 January's changes the job."""
    config = quiet_config({"A": 60, "B": 40})
    base = daily(date(2029, 12, 31), date(2030, 3, 31), {"A": 100.0, "B": 50.0})
    later = {**base, date(2030, 2, 1): {"A": 300.0, "B": 50.0}}
    known = {**base, date(2030, 1, 31): {"A": 1000.0, "B": 50.0}}
    span = (date(2030, 1, 1), date(2030, 4, 1))
    runs = {}
    for name, rows in (("base", base), ("later", later), ("known", known)):
        db = tmp_path / f"{name}.db"
        result = simulate(config, history(rows), *span, db, min_notional=0)
        runs[name] = (orders(db), dict((d, v) for d, v, _ in result.series))
    assert runs["later"][0] == runs["base"][0]  # every order, amount, notional and fee
    feb_1 = date(2030, 2, 1)
    assert runs["later"][1][feb_1] > runs["base"][1][feb_1]  # A held at 300 that evening
    # 31 January's close is known on 1 February: the February DCA buys by it (A at 1,000 is
    # overweight: all of the contribution goes to B), January's is as it was.
    january = [o for o in runs["base"][0] if o[0] == "dca:2030-01"]
    assert [o for o in runs["known"][0] if o[0] == "dca:2030-01"] == january
    assert [o[:3] for o in runs["known"][0] if o[0] == "dca:2030-02"] == [
        ("dca:2030-02", "buy", "B")
    ]
    assert [o[:3] for o in runs["base"][0] if o[0] == "dca:2030-02"] == [
        ("dca:2030-02", "buy", "A"),
        ("dca:2030-02", "buy", "B"),
    ]


def test_a_fill_is_priced_at_the_close_known_when_it_is_planned(quiet_config, tmp_path):
    config = quiet_config({"A": 100}, investor={"timezone": "Europe/Berlin"})
    rows = daily(date(2029, 12, 31), date(2030, 2, 28), {"A": 100.0})
    rows = {d: {"A": 100.0 + d.toordinal() % 97} for d in rows}  # a different close each day
    db = tmp_path / "sim.db"
    simulate(config, history(rows), date(2030, 1, 1), date(2030, 3, 1), db, min_notional=0)
    store = Store.open(db)
    try:
        proposals = store.proposals()
    finally:
        store.close()
    assert len(proposals) == 2  # January's and February's DCA, 09:00 in Berlin
    for p in proposals:
        day = p["finished_at"].astimezone(config.tz).date()
        assert p["price"] == rows[day - timedelta(days=1)]["A"]


# --- every payment counts, whatever the data's granularity ----------------------------------


def test_monthly_closes_count_a_dca_made_after_the_last_close(quiet_config, tmp_path):
    """Month-end closes, DCA on the 1st, 2030-02-01 .. 2031-01-01 (the issue's case in
    small): the 12th buy, on 1 January 2031, comes after the last close (31 December) and is
    in the final value, at that close: the gain is not short of a contribution."""
    config = quiet_config({"A": 100})
    ends = [date(2030, m + 1, 1) - timedelta(days=1) for m in range(1, 12)] + [date(2030, 12, 31)]
    rows = {d: {"A": 100.0 * 1.01**k} for k, d in enumerate(ends)}  # 31 Jan .. 31 Dec
    db = tmp_path / "sim.db"
    result = simulate(config, history(rows), date(2030, 2, 1), date(2031, 1, 2), db, min_notional=0)
    assert result.contributions == 12 * 1000.0
    bought = orders(db)
    assert [o[0] for o in bought][-1] == "dca:2031-01" and len(bought) == 12
    last_close = rows[date(2030, 12, 31)]["A"]
    units = sum(o[3] for o in bought)
    cash = 12 * 1000.0 - sum(o[4] + o[5] for o in bought)
    assert result.final_value == pytest.approx(units * last_close + cash, abs=1e-6)
    # The last day is the buy's: worth the close of 31 December plus 1,000 less its fee.
    (day_before, before, _), (last_day, final, invested) = result.series[-2:]
    assert (day_before, last_day) == (date(2030, 12, 31), date(2031, 1, 1))
    assert final - before == pytest.approx(1000.0 - bought[-1][5], abs=1e-6)
    assert invested == 12 * 1000.0
    assert result.gain == pytest.approx(final - 12 * 1000.0)


# --- costs, returns, drawdowns, turnover ------------------------------------------------------


def test_slippage_is_counted_beside_the_fees(quiet_config, tmp_path):
    """A at 100, 1 % slippage, 0.1 % fee: the DCA buys at 101.
    1000 / 1.001 / 101 = 9.891099000.. -> 9.89109900 units; notional 9.891099 * 101 =
    999.000999, fee 0.999000999; slippage 9.891099 * (101 - 100) = 9.891099."""
    config = quiet_config({"A": 100}, paper={"slippage": 0.01})
    rows = daily(date(2029, 12, 31), date(2030, 1, 31), {"A": 100.0})
    result = simulate(config, history(rows), date(2030, 1, 1), date(2030, 2, 1), tmp_path / "s.db")
    f = result.figures
    assert f.fees == pytest.approx(0.999000999, abs=1e-9)
    assert f.slippage == pytest.approx(9.891099, abs=1e-9)
    assert f.trading_cost == pytest.approx(10.890099999, abs=1e-9)
    # 9.891099 units at 100 + 0.000000001 cash = 989.109900001: the costs are what is missing.
    assert f.final_value == pytest.approx(1000.0 - f.trading_cost, abs=1e-6)


def test_a_dca_into_a_falling_market_drawdowns_and_returns_by_hand(quiet_config, tmp_path):
    """1,000 a month into A at month-end closes 100, 80, 60, 60 (no fee, no slippage):
      1 Jan  10 units at 100                  value 1,000   unit 1.0
      31 Jan at 80                                    800        0.8
      1 Feb  12.5 units at 80: 22.5                 1,800        0.8 (1,800 / (800 + 1,000))
      28 Feb at 60                                  1,350        0.6
      1 Mar  16.66666666 units at 60                2,350        0.6
      31 Mar at 60                                  2,350        0.6
    Value: the worst fall 1,800 -> 1,350 (25 %); the portfolio's own: 1.0 -> 0.6 (40 %)."""
    config = quiet_config({"A": 100}, paper={"fee_rate": 0})
    prices = {date(2029, 12, 31): 100.0, date(2030, 1, 31): 80.0, date(2030, 2, 28): 60.0}
    prices[date(2030, 3, 31)] = 60.0
    rows = {d: {"A": p} for d, p in prices.items()}
    start, end = date(2030, 1, 1), date(2030, 4, 1)
    result = simulate(config, history(rows), start, end, tmp_path / "s.db", min_notional=0)
    f = result.figures
    assert [round(d.value, 2) for d in f.days] == [1000, 800, 1800, 1350, 2350, 2350]
    assert f.unit_curve == pytest.approx([1.0, 0.8, 0.8, 0.6, 0.6, 0.6])
    assert f.max_drawdown == pytest.approx(0.25)
    assert f.max_drawdown_time_weighted == pytest.approx(0.40)
    # Time-weighted: 0.6 over the 90 days from 1 January to 1 April, a year of 365 days.
    assert f.time_weighted == pytest.approx(0.6 ** (365 / 90) - 1)
    # Money-weighted: the rate r at which -1,000 on 1 Jan, 1 Feb and 1 Mar (09:00) and
    # +2,350 on 1 April (00:00) discount to 0.
    r = f.money_weighted
    flows = [(datetime(2030, m, 1, 9, tzinfo=UTC), -1000.0) for m in (1, 2, 3)]
    flows.append((datetime(2030, 4, 1, tzinfo=UTC), f.final_value))
    t0 = flows[0][0]
    assert sum(a / (1 + r) ** ((t - t0).total_seconds() / 86_400 / 365) for t, a in flows) == (
        pytest.approx(0, abs=1e-6)
    )
    assert -0.9 < r < -0.4  # 3,000 in, 2,350 out after ~2 months on average
    assert f.turnover == 0.0  # DCA buys are no trading


def test_turnover_is_the_lesser_of_bought_and_sold_by_rebalancing_a_year(
    write_plan, write_config, tmp_path
):
    """1,000 seeded, A 50 / B 50 rebalanced quarterly to target, no fees; daily closes of
    100 each until A triples on 31 March.
      1 Jan: the rebalance buys 5 A and 5 B (the seed put to work: no selling).
      1 Apr, at 31 March's closes: A 1,500, B 500; sells 1.66666667 A (500), buys 5 B (500).
    Bought 1,500, sold 500: 500 traded. The value is 1,000 on the 89 days to 30 March and
    2,000 on 31 March and 1 April: an average of 93,000 / 91. The 91 days are 91 / 365.25
    of a year: turnover = 500 / (93,000 / 91) / (91 / 365.25) = 1.9637..x a year."""
    plan = write_plan({"basket": ("quarterly", {"A": 50, "B": 50})})
    overrides = {
        **DCA_ONLY,
        "investor": {**DCA_ONLY["investor"], "monthly_contribution": 0},
        "paper": {"initial_balances": {"USDT": 1000}, "fee_rate": 0, "slippage": 0},
        "schedule": {**DCA_ONLY["schedule"], "rebalance_day": 1, "rebalance_hour": 10},
        "policy": {"band_abs_pct": 0.0001, "max_order_pct": 100, "rebalance_to": "target"},
    }
    config = load_config(write_config(deep_merge(overrides, plan)))
    rows = daily(date(2029, 12, 31), date(2030, 4, 1), {"A": 100.0, "B": 100.0})
    rows |= {d: {"A": 300.0, "B": 100.0} for d in (date(2030, 3, 31), date(2030, 4, 1))}
    db = tmp_path / "s.db"
    result = simulate(config, history(rows), date(2030, 1, 1), date(2030, 4, 2), db, min_notional=0)
    sold = sum(o[4] for o in orders(db) if o[1] == "sell")
    assert sold == pytest.approx(500.0, abs=1e-5)
    assert result.figures.turnover == pytest.approx(500 / (93_000 / 91) / (91 / 365.25), rel=1e-6)


# --- assets that list later -------------------------------------------------------------------


def test_an_asset_listed_in_the_middle_of_the_window_joins_the_targets_from_then(
    quiet_config, tmp_path
):
    """Index A 50 / B 50; B's first close is on 15 February. Until it is known (16 Feb) B is
    out of the targets and A holds the index: January's and February's DCA buy only A. On
    1 March B is listed and underweight: it gets the whole contribution.
      1 Jan, 1 Feb: 1000 / 1.001 / 100 = 9.99000999 units of A each (target weight 1.0)
      1 Mar: A 1998.001998 of 2998.00; B's gap 1499.00 > the budget: all into B,
             1000.000000004 / 1.001 / 10 = 99.9000999 units"""
    config = quiet_config({"A": 50, "B": 50})
    rows = {
        d: {"A": 100.0, "B": 10.0 if d >= date(2030, 2, 15) else None}
        for d in daily(date(2029, 12, 31), date(2030, 3, 31), {})
    }
    prices = PriceHistory(
        tuple(rows), {a: tuple(r[a] for r in rows.values()) for a in "AB"}, "hand"
    )
    db = tmp_path / "sim.db"
    result = simulate(config, prices, date(2030, 1, 1), date(2030, 4, 1), db, min_notional=0)
    assert [o[:4] for o in orders(db)] == [
        ("dca:2030-01", "buy", "A", 9.99000999),
        ("dca:2030-02", "buy", "A", 9.99000999),
        ("dca:2030-03", "buy", "B", 99.9000999),
    ]
    store = Store.open(db)
    try:
        targets = {p["period"]: p["weight_target"] for p in store.proposals()}
    finally:
        store.close()
    assert targets == {"dca:2030-01": 1.0, "dca:2030-02": 1.0, "dca:2030-03": 0.5}
    assert result.runs_by_status == {"ok": 5}  # no run refused for B's missing price
    assert result.notes == [
        "listed later: B (first close 2030-02-15, in the targets from 2030-02-16); an asset "
        "without a known price yet is left out of the targets until its first close is known;"
        " its weight goes to the listed assets of its index (to cash when none is listed)"
    ]
    with pytest.raises(PriceHistoryError, match="B has no price known when the simulation"):
        simulate(config, prices, date(2030, 1, 1), date(2030, 4, 1), db, strict_history=True)


def test_days_without_a_close_in_the_span_are_said_in_the_report(quiet_config, tmp_path):
    """Rows 2030-02-10 .. 02-19 are missing (a gap of 11 days after 02-09) and 03-05 .. 03-06
    (3 days after 03-04); the history's last row is 03-27, four days before the end: every
    job in them plans with the last close before, and the report says so. A gap before the
    start (12-25 .. 12-29) is not the simulation's."""
    config = quiet_config({"A": 100})
    rows = daily(date(2029, 12, 20), date(2030, 3, 27), {"A": 100.0})
    for day in [date(2029, 12, 25) + timedelta(days=i) for i in range(5)]:
        del rows[day]
    for day in [date(2030, 2, 10) + timedelta(days=i) for i in range(10)]:
        del rows[day]
    del rows[date(2030, 3, 5)], rows[date(2030, 3, 6)]
    result = simulate(config, history(rows), date(2030, 1, 1), date(2030, 4, 1), tmp_path / "s.db")
    assert result.notes == [
        "the price history skips days: 2 gaps of more than a day between rows in the "
        "simulated span (the longest 11 days, 2030-02-09 to 2030-02-20), and its last row "
        "(2030-03-27) is 4 days before the last day simulated (2030-03-31); a job on a day "
        "without a close plans with the last close before it"
    ]
    full = daily(date(2029, 12, 20), date(2030, 3, 31), {"A": 100.0})
    assert simulate(config, history(full), date(2030, 1, 1), date(2030, 4, 1), None).notes == []


def test_an_asset_never_priced_in_the_window_is_refused(quiet_config, tmp_path):
    config = quiet_config({"A": 50, "B": 50})
    days = tuple(daily(date(2029, 12, 31), date(2030, 1, 31), {}))
    prices = PriceHistory(days, {"A": (100.0,) * len(days), "B": (None,) * len(days)}, "h")
    with pytest.raises(PriceHistoryError, match="B has no price before 2030-01-31"):
        simulate(config, prices, date(2030, 1, 1), date(2030, 2, 1), tmp_path / "s.db")
    assert not (tmp_path / "s.db").exists()


# --- plan events: windfalls and the emergency pause -----------------------------------------


def test_a_windfall_and_a_pause_are_simulated_through_the_live_calls(quiet_config, tmp_path):
    """1,000 a month into A at 100 (no fee), half of a bonus invested. A 5,000 windfall on
    15 January is invested by the next job (1 February, before its DCA): 2,500. The pause
    from 1 March to 1 May stops the March and April contributions; May's is made."""
    config = quiet_config({"A": 100}, paper={"fee_rate": 0}, investor={"bonus_share_pct": 50})
    rows = daily(date(2029, 12, 31), date(2030, 5, 31), {"A": 100.0})
    db = tmp_path / "sim.db"
    events = [
        Windfall(date(2030, 1, 15), 5000.0),
        Pause(date(2030, 3, 1), date(2030, 5, 1), "lost my job"),
    ]
    result = simulate(config, history(rows), date(2030, 1, 1), date(2030, 6, 1), db, events=events)
    assert result.contributions == 3 * 1000.0 + 2500.0  # Jan, Feb, May; half the bonus
    assert result.figures.windfalls == 2500.0
    store = Store.open(db)
    try:
        entries = store.ledger_entries()
        deposits = [(e.at.date(), e.amount, e.note) for e in entries if e.kind == "deposit"]
        paused = [(e["kind"], e["data"]) for e in reversed(store.events(limit=100))]
        windfalls = store.windfalls()
    finally:
        store.close()
    assert deposits == [
        (date(2030, 1, 1), 1000.0, "dca:2030-01"),
        (date(2030, 2, 1), 2500.0, "windfall:1"),
        (date(2030, 2, 1), 1000.0, "dca:2030-02"),
        (date(2030, 5, 1), 1000.0, "dca:2030-05"),
    ]
    assert [w.status for w in windfalls] == ["done"]
    assert [p for p in paused if p[0] in ("windfall", "paused", "resumed")] == [
        ("windfall", {"id": 1, "amount": 5000.0}),
        ("paused", {"reason": "lost my job"}),
        ("resumed", {"reason": ""}),
    ]
    assert result.notes == [
        "the windfall of 5,000.00 on 2030-01-15: announced at its midnight, invested by the "
        "next job",
        "the pause 2030-03-01 .. 2030-05-01 (lost my job): paused from 2030-03-01, resumed on "
        "2030-05-01",
    ]


@pytest.mark.parametrize(
    ("events", "message"),
    [
        ([Windfall(date(2031, 1, 1), 10.0)], "the windfall of 10.00 on 2031-01-01 is outside"),
        ([Windfall(date(2030, 1, 5), 0.0)], "the windfall of 0.00 on 2030-01-05: not an amount"),
        ([Pause(date(2029, 12, 1), date(2030, 2, 1))], "the pause 2029-12-01 .. 2030-02-01 is"),
        ([Pause(date(2030, 2, 1), date(2030, 2, 1))], "2030-02-01 .. 2030-02-01 ends before"),
        (
            [
                Pause(date(2030, 1, 5), date(2030, 1, 20)),
                Pause(date(2030, 1, 10), date(2030, 2, 1)),
            ],
            "the pause 2030-01-10 .. 2030-02-01 overlaps the pause 2030-01-05 .. 2030-01-20",
        ),
    ],
    ids=["windfall-outside", "windfall-zero", "pause-outside", "pause-empty", "overlap"],
)
def test_plan_events_that_make_no_sense_are_refused_before_anything_runs(
    quiet_config, tmp_path, events, message
):
    rows = daily(date(2029, 12, 31), date(2030, 3, 31), {"A": 100.0})
    with pytest.raises(UsageError, match=message):
        simulate(
            quiet_config({"A": 100}),
            history(rows),
            date(2030, 1, 1),
            date(2030, 4, 1),
            tmp_path / "s.db",
            events=events,
        )
    assert not (tmp_path / "s.db").exists()


# --- the report and the ledger -------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample() -> PriceHistory:
    from stagewise import shipped

    return load_csv(shipped.path(shipped.SAMPLE_PRICES))


def test_the_report_agrees_with_the_ledger_in_the_simulation_db(write_config, sample, tmp_path):
    """The shipped example plan, every job on, a year of the sample: sells, drift, profit."""
    config = load_config(write_config())
    db = tmp_path / "sim.db"
    start, end = date(2024, 1, 1), date(2025, 1, 1)
    result = simulate(config, sample, start, end, db)
    assert set(result.proposals_by_job) >= {"dca", "drift"}

    store = Store.open(db)
    try:
        entries = store.ledger_entries()
        proposals = store.proposals()
        balances = store.ledger_balances()
    finally:
        store.close()
    by_kind = lambda kind: [e for e in entries if e.kind == kind]  # noqa: E731
    assert result.seed_value == sum(e.amount for e in by_kind("seed")) == 1000.0
    assert result.contributions == pytest.approx(sum(e.amount for e in by_kind("deposit")))
    assert result.contributions == 12 * 2000.0  # the example's contribution, no raise in 2024
    assert result.fees == pytest.approx(-sum(e.amount for e in by_kind("fee")))
    assert result.fees == pytest.approx(sum(p["fee"] for p in proposals))
    # A career builder withdraws nothing: what leaves the account is the profit taken, moved
    # to traditional investments (was: 0, the proceeds stayed and were bought back), a figure
    # of its own (was: counted as withdrawals).
    moved = by_kind("withdrawal")
    assert moved and all(e.note.startswith("profit taken") for e in moved)
    assert result.withdrawals == 0.0
    assert result.profit_moved_out == pytest.approx(-sum(e.amount for e in moved))
    profit = [p for p in proposals if p["job"] == "profit"]
    assert result.profit_moved_out == pytest.approx(sum(p["notional"] - p["fee"] for p in profit))
    assert sum(result.proposals_by_job.values()) == len(proposals)
    # Each proposal filled exactly once: one base fill per order, at the proposal's amount.
    fills = [e for e in by_kind("fill") if e.asset != "USDT"]
    assert len(fills) == len(proposals)
    # The final value is the ledger's balances at the last day's closes.
    last = sample.index_on(end - timedelta(days=1))
    value = sum(
        amount * (1.0 if asset == "USDT" else sample.closes[asset][last])
        for asset, amount in balances.items()
    )
    assert result.final_value == pytest.approx(value, abs=CENT)
    assert result.series[-1][0] == end - timedelta(days=1)
    # The paper account is never overdrawn, at any entry.
    running: dict[str, float] = {}
    for e in entries:
        running[e.asset] = running.get(e.asset, 0.0) + e.amount
        assert running[e.asset] >= -1e-9, e


def test_the_churn_figures_are_those_of_the_proposals_in_the_simulation_db(
    write_config, sample, tmp_path
):
    """The shipped example plan over 2024: the figures recomputed from the DB's proposals."""
    config = load_config(write_config())
    db = tmp_path / "sim.db"
    result = simulate(config, sample, date(2024, 1, 1), date(2025, 1, 1), db)
    store = Store.open(db)
    try:
        proposals = store.proposals()
    finally:
        store.close()
    notionals = sorted(p["notional"] for p in proposals)
    early = sorted({p["finished_at"] for p in proposals if p["job"] == "drift"})
    gaps = sorted((b - a).total_seconds() / 86_400 for a, b in pairwise(early))
    c = result.churn
    assert c.proposals == len(proposals) == sum(result.proposals_by_job.values())
    assert c.proposals_per_year == pytest.approx(len(proposals) / (366 / 365.25))  # a leap year
    assert c.early_rebalances == len(early) == result.runs_by_job["drift"] > 2
    assert c.median_days_between_early_rebalances == statistics.median(gaps)
    assert c.median_order_notional == statistics.median(notionals)
    assert c.orders_under_20 == sum(1 for n in notionals if n < 20)
    assert c.fees_share_of_contributions == pytest.approx(result.fees / result.contributions)


def test_a_second_run_replaces_the_simulation_db(quiet_config, tmp_path):
    prices = history(
        {date(2029, 12, 31): {"A": 100.0, "B": 50.0}, date(2030, 3, 31): {"A": 1.0, "B": 1.0}}
    )
    db = tmp_path / "sim.db"
    first = simulate(
        quiet_config({"A": 60, "B": 40}), prices, date(2030, 1, 1), date(2030, 4, 1), db
    )
    Path(f"{db}-wal").write_bytes(b"a stale write-ahead log of some earlier run")
    half = quiet_config({"A": 60, "B": 40}, investor={"monthly_contribution": 500})
    second = simulate(half, prices, date(2030, 1, 1), date(2030, 4, 1), db)
    assert (first.contributions, second.contributions) == (3000.0, 1500.0)
    store = Store.open(db)
    try:
        deposits = [e.amount for e in store.ledger_entries() if e.kind == "deposit"]
        runs = store.runs(limit=1000)
    finally:
        store.close()
    assert deposits == [500.0, 500.0, 500.0]
    assert len(runs) == sum(second.runs_by_status.values())


def test_a_refused_simulation_leaves_the_previous_db_alone(quiet_config, tmp_path):
    prices = history(
        {date(2029, 12, 31): {"A": 100.0, "B": 50.0}, date(2030, 1, 31): {"A": 1.0, "B": 1.0}}
    )
    db = tmp_path / "sim.db"
    simulate(quiet_config({"A": 60, "B": 40}), prices, date(2030, 1, 1), date(2030, 2, 1), db)
    before = db.read_bytes()
    with pytest.raises(PriceHistoryError, match="no prices for C"):
        simulate(quiet_config({"A": 50, "C": 50}), prices, date(2030, 1, 1), date(2030, 2, 1), db)
    with pytest.raises(UsageError, match="must end after it starts"):
        simulate(quiet_config({"A": 60, "B": 40}), prices, date(2030, 1, 2), date(2030, 1, 2), db)
    assert db.read_bytes() == before


def test_a_simulation_starting_before_the_investors_birth_is_refused(quiet_config, tmp_path):
    config = quiet_config({"A": 100}, investor={"birth_date": "2000-01-15"})
    prices = history({date(2000, 1, 1): {"A": 100.0}, date(2000, 1, 31): {"A": 110.0}})
    with pytest.raises(UsageError, match="starts on 2000-01-01, before .* birth date 2000-01-15"):
        simulate(config, prices, date(2000, 1, 1), date(2000, 2, 1), tmp_path / "sim.db")
    assert not (tmp_path / "sim.db").exists()


def test_failed_runs_are_counted_in_the_result(quiet_config, tmp_path):
    """A market the planner cannot use (a negative minimum order, which the CLI refuses as an
    argument) fails each run: the result counts them (the CLI exits 1 on any)."""
    prices = history({date(2029, 12, 31): {"A": 100.0}, date(2030, 3, 31): {"A": 110.0}})
    result = simulate(
        quiet_config({"A": 100}),
        prices,
        date(2030, 1, 1),
        date(2030, 4, 1),
        tmp_path / "sim.db",
        min_notional=-5,
    )
    assert result.runs_by_status["failed"] == 3  # the three DCA runs


def test_the_simulation_refuses_the_daemons_own_state_file(quiet_config, tmp_path):
    config = quiet_config({"A": 60, "B": 40})
    state = config.settings.state.path
    assert not state.exists()
    prices = history({date(2030, 1, 1): {"A": 100.0, "B": 50.0}})
    for same in (state, state.parent / "sub" / ".." / state.name):
        with pytest.raises(OutputRefused, match="daemon's own state file"):
            simulate(config, prices, date(2030, 1, 1), date(2030, 1, 2), same)
    assert not state.exists()  # not even created


def test_the_simulation_never_writes_the_daemons_state(quiet_config, tmp_path):
    config = quiet_config({"A": 60, "B": 40})
    state = config.settings.state.path
    state.parent.mkdir(parents=True, exist_ok=True)
    live = Store.open(state)
    live.add_event("daemon_started", datetime(2030, 1, 1).astimezone(), {"mode": "paper"})
    live.close()
    before = state.read_bytes()
    prices = history({date(2029, 12, 31): {"A": 100.0, "B": 50.0}})
    simulate(config, prices, date(2030, 1, 1), date(2030, 1, 20), tmp_path / "sim.db")
    assert state.read_bytes() == before


# --- the investor ages through a stage --------------------------------------------------------


def glide_config(write_plan, write_config, *, s_cadence: str):
    """Born 1 Jan 1991 (40 on 1 Jan 2031): 'early' (to 39) holds index g {A}, quarterly;
    'late' (40+) holds index s {B} at `s_cadence`; a 12-month glide ends on the birthday."""
    plan = write_plan(
        {"g": ("quarterly", {"A": 100}), "s": (s_cadence, {"B": 100})},
        [
            plan_stage("early", number=1, max_age=39, sleeves={"g": 100}),
            plan_stage("late", number=2, min_age=40, sleeves={"s": 100}),
        ],
    )
    overrides = {
        "investor": {"birth_date": "1991-01-01"},
        "plan": {"transition_months": 12, "transition_anchor": "end"},
    }
    return load_config(write_config(deep_merge(deep_merge(DCA_ONLY, plan), overrides)))


def test_the_investor_glides_into_the_next_stage_during_a_multi_year_run(
    write_plan, write_config, tmp_path
):
    """Born 1 Jan 1991: 40 on 1 Jan 2031. 'early' (to 39) holds index G {A}, 'late' (40+)
    holds index S {B}; a 12-month glide arriving on the birthday moves the targets from A to
    B in monthly steps through 2030, never in one jump."""
    config = glide_config(write_plan, write_config, s_cadence="quarterly")
    months = [date(2029 + (6 + k) // 12, (6 + k) % 12 + 1, 1) for k in range(25)]
    # Each month's close on the day before its first: what the month's jobs see.
    prices = history(
        {d - timedelta(days=1): {"A": 100.0 * 1.01**k, "B": 50.0} for k, d in enumerate(months)}
    )
    db = tmp_path / "sim.db"
    result = simulate(config, prices, date(2029, 7, 1), date(2031, 7, 1), db)

    assert result.stages == [
        StageSpan(date(2029, 7, 1), "early", None),
        StageSpan(date(2030, 1, 1), "early", "early->late"),
        StageSpan(date(2031, 1, 1), "late", None),
    ]
    # B's target in each month's DCA: step k of 12 in month k+1 of 2030, then the whole.
    store = Store.open(db)
    try:
        b_targets = {
            p["period"]: p["weight_target"]
            for p in store.proposals(job="dca")
            if p["symbol"] == "B/USDT"
        }
        changed = store.events(kind="stage_changed")
    finally:
        store.close()
    expected = {f"dca:2030-{m:02d}": pytest.approx((m - 1) / 12) for m in range(2, 13)}
    expected |= {f"dca:2031-{m:02d}": 1.0 for m in range(1, 7)}
    assert b_targets == expected  # nothing of B before the glide, none bought at step 0
    assert [e["data"] for e in changed] == [{"from": "early", "to": "late"}]
    assert result.contributions == 24 * 1000.0


def test_a_glide_rebalances_the_next_stages_sleeves_on_their_own_cadence(
    write_plan, write_config, tmp_path
):
    """Inside a glide, before the birthday, the targets already hold the next stage's index
    (monthly here, a cadence the current stage has none of): its rebalance runs monthly."""
    config = glide_config(write_plan, write_config, s_cadence="monthly")
    months = [date(2030, m, 1) for m in range(1, 13)]
    prices = history({d: {"A": 100.0, "B": 50.0} for d in months})
    db = tmp_path / "sim.db"
    simulate(config, prices, date(2030, 3, 1), date(2030, 12, 1), db)  # age 39 throughout
    store = Store.open(db)
    try:
        periods = {r["period"] for r in store.runs(job="rebalance", limit=100)}
    finally:
        store.close()
    assert {f"rebalance:s:2030-{m:02d}" for m in range(3, 12)} <= periods


def test_the_stage_timeline_names_the_day_a_glide_starts(write_config, tmp_path, sample):
    config = load_config(write_config())  # born 1987-06-15: 41 on 2028-06-15, 24-month glide
    result = simulate(config, sample, date(2026, 1, 1), date(2026, 9, 1), tmp_path / "s.db")
    assert [s.starts for s in result.stages] == [date(2026, 1, 1), date(2026, 6, 15)]


# --- the offline demo, for real ---------------------------------------------------------------

NO_NETWORK = """\
# Installed as sitecustomize for the demo subprocess: any network use is recorded and refused.
import os, socket

def _refuse(*args, **kwargs):
    with open(os.environ["NETWORK_ATTEMPTS"], "a") as log:
        log.write(repr(args[:2]) + "\\n")
    raise OSError("network use refused: the demo must run offline")

socket.socket.connect = _refuse
socket.socket.connect_ex = _refuse
socket.create_connection = _refuse
socket.getaddrinfo = _refuse
"""


@pytest.fixture
def offline(tmp_path) -> dict[str, str]:
    """Environment for a subprocess that cannot open a network connection."""
    guard = tmp_path / "offline"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(NO_NETWORK)
    attempts = tmp_path / "network-attempts.log"
    path = os.pathsep.join(p for p in [str(guard), os.environ.get("PYTHONPATH", "")] if p)
    return {"PYTHONPATH": path, "NETWORK_ATTEMPTS": str(attempts)}


def test_the_network_guard_works(offline, tmp_path):
    import subprocess

    probe = "import socket; socket.create_connection(('127.0.0.1', 9), timeout=1)"
    done = subprocess.run(
        [sys.executable, "-c", probe], env={**os.environ, **offline}, capture_output=True, text=True
    )
    assert done.returncode != 0 and "network use refused" in done.stderr
    assert Path(offline["NETWORK_ATTEMPTS"]).exists()


@pytest.mark.slow
def test_the_offline_demo_prints_the_report_and_proposals(cli, offline, tmp_path):
    db = tmp_path / "demo.db"
    result = cli("simulate", "--db", str(db), env=offline)  # the default config, the sample
    assert result.returncode == 0, result.stderr
    assert not Path(offline["NETWORK_ATTEMPTS"]).exists()
    assert "Traceback" not in result.stderr
    out = result.stdout
    assert out.startswith("simulation (paper account; never an order)")
    for line in (
        "period            2023-01-01 .. 2026-12-31",
        "starting balance  1,000.00 USDT",
        "contributions     96,000.00 USDT",
        "final value",
        "max drawdown",
        "fees",
    ):
        assert line in out
    assert "career_builder" in out and "career_builder->peak_earner" in out
    assert "the last 15 proposals:" in out
    assert db.exists() and str(db) in out


def test_the_offline_demo_report_as_json(cli, offline, tmp_path):
    db = tmp_path / "demo.db"
    result = cli(
        "simulate",
        "--json",
        "--start",
        "2026-01-01",
        "--end",
        "2026-04-01",
        "--db",
        str(db),
        env=offline,
    )
    assert result.returncode == 0, result.stderr
    assert not Path(offline["NETWORK_ATTEMPTS"]).exists()
    report = json.loads(result.stdout)
    assert (report["start"], report["end"]) == ("2026-01-01", "2026-04-01")
    assert report["seed_value"] == 1000.0
    assert report["contributions"] == 3 * 2000.0
    assert report["gain"] == pytest.approx(
        report["final_value"] - report["seed_value"] - report["contributions"], abs=0.011
    )
    assert report["proposals_by_job"]["dca"] > 0
    assert report["stages"] == [{"from": "2026-01-01", "stage": "career_builder", "glide": None}]
    assert report["database"] == str(db)
    store = Store.open(db)
    try:
        assert len(store.proposals()) == sum(report["proposals_by_job"].values())
    finally:
        store.close()


# --- the CLI's arguments: refused before anything runs (exit 2) ----------------------------------

EX_USAGE = 2
DEMO = ["simulate", "--start", "2026-01-01", "--end", "2026-02-01", "--proposals", "0"]


@pytest.mark.parametrize("amount", ["-5", "nan", "inf", "five"])
def test_a_minimum_order_that_is_no_amount_is_a_bad_argument(cli, offline, tmp_path, amount):
    db = tmp_path / "sim.db"
    result = cli(*DEMO, "--db", str(db), f"--min-notional={amount}", env=offline)
    assert result.returncode == EX_USAGE
    assert f"argument --min-notional: '{amount}'" in result.stderr
    assert not db.exists() and result.stdout == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--start", "2026-03-01", "--end", "2026-02-01"], "--end 2026-02-01 must be after"),
        (["--start", "2026-03-01", "--end", "2026-03-01"], "--end 2026-03-01 must be after"),
        (["--from-exchange"], "--from-exchange needs --start and --end"),
        (["--from-exchange", "--start", "2026-01-01"], "--from-exchange needs --start and --end"),
        (
            ["--start", "1986-01-01", "--end", "1987-01-01"],
            "starts on 1986-01-01, before the investor's birth date 1987-06-15",
        ),
    ],
    ids=["start-after-end", "empty", "from-exchange", "from-exchange-no-end", "before-birth"],
)
def test_dates_that_make_no_simulation_are_a_bad_argument(cli, offline, tmp_path, args, message):
    db = tmp_path / "sim.db"
    result = cli("simulate", "--db", str(db), *args, env=offline)
    assert result.returncode == EX_USAGE, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not db.exists()
    assert not Path(offline["NETWORK_ATTEMPTS"]).exists()


def test_a_history_too_short_to_start_on_is_bad_data(cli, offline, tmp_path):
    """One day of closes: the simulation could start only the day after, when its close is
    known, which is the day after the history ends (was: "must end after it starts", exit 2)."""
    prices, db = tmp_path / "one-day.csv", tmp_path / "sim.db"
    prices.write_text("date,BTC,ETH\n2022-09-25,20000,1300\n")
    result = cli("simulate", "--prices", str(prices), "--db", str(db), env=offline)
    assert result.returncode == 65, result.stderr
    assert (
        f"{prices}: its closes end on 2022-09-25, and a simulation over them could start on "
        "2022-09-26 at the earliest"
    ) in result.stderr
    assert "Traceback" not in result.stderr and not db.exists()


@pytest.mark.parametrize("option", ["--prices", "--volumes"])
def test_a_price_or_volume_file_that_is_not_there_is_no_input(cli, offline, tmp_path, option):
    missing, folder, db = tmp_path / "prices.csv", tmp_path, tmp_path / "sim.db"
    result = cli(*DEMO, "--db", str(db), option, str(missing), env=offline)
    assert result.returncode == 66, result.stderr  # EX_NOINPUT, as for --events
    what = "price history" if option == "--prices" else "volumes"
    assert f"stagewise: no {what} file at {missing}" in result.stderr
    result = cli(*DEMO, "--db", str(db), option, str(folder), env=offline)
    assert result.returncode == 65, result.stderr
    assert f"stagewise: {folder} is a folder, not a {what} file" in result.stderr
    assert "Traceback" not in result.stderr and not db.exists()


@pytest.fixture
def no_matplotlib(tmp_path, offline) -> dict[str, str]:
    """Environment for a subprocess in which matplotlib cannot be imported (as without the
    plot extra), and which cannot use the network."""
    stub = tmp_path / "no-plot" / "matplotlib"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text("raise ImportError('No module named matplotlib')\n")
    path = os.pathsep.join([str(stub.parent), offline["PYTHONPATH"]])
    return {**offline, "PYTHONPATH": path}


@pytest.mark.parametrize(
    ("chart", "message"),
    [
        ("out.xyz", "'.xyz' is not an image format matplotlib writes (avif, eps,"),
        ("missing/out.png", "no folder"),
        (".", "is a folder; name the image file"),
        ("/proc/out.png", "cannot write in /proc"),
    ],
    ids=["unknown-format", "no-folder", "a-folder", "unwritable"],
)
def test_a_chart_that_cannot_be_written_fails_before_the_simulation(
    cli, offline, tmp_path, chart, message
):
    db = tmp_path / "sim.db"
    target = chart if chart.startswith("/") else str(tmp_path / chart)
    result = cli(*DEMO, "--db", str(db), "--chart", target, env=offline)
    assert result.returncode == EX_USAGE, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not db.exists() and result.stdout == ""  # nothing ran


@pytest.mark.parametrize(
    "case", ["a-link-to-the-state", "a-link-to-the-db", "the-db-itself", "another-database"]
)
def test_a_chart_never_replaces_the_state_a_database_or_the_simulation_it_keeps(
    cli, offline, tmp_path, case
):
    """`--chart` at the state file (through a link), at `--db` (the same path or a link) or at
    any SQLite database is refused before anything runs (exit 73): the file is left byte for
    byte (it was replaced by a PNG, exit 0, and the daemon's state was gone)."""
    state = tmp_path / "state.db"
    env = {**offline, "STAGEWISE_STATE__PATH": str(state)}
    assert cli("init", str(tmp_path)).returncode == 0
    env["STAGEWISE_CONFIG"] = str(tmp_path / "config.toml")
    assert cli("pause", "--reason", "keep", env=env).returncode == 0
    db, chart = tmp_path / "sim.db", tmp_path / "chart.png"
    if case == "a-link-to-the-state":
        chart.symlink_to(state)
    elif case == "a-link-to-the-db":
        assert cli(*DEMO, "--db", str(db), env=env).returncode == 0
        chart.symlink_to(db)
    elif case == "the-db-itself":
        db = chart
    else:
        chart.write_bytes(state.read_bytes())  # another program's file, or a copy of the state
    guarded = {p: p.read_bytes() for p in (state, db, chart) if p.exists()}
    result = cli(*DEMO, "--db", str(db), "--chart", str(chart), env=env)
    assert result.returncode == 73, result.stderr
    assert f"--chart {chart}" in result.stderr and "left as it is" in result.stderr
    assert result.stdout == "" and "Traceback" not in result.stderr
    assert {p: p.read_bytes() for p in guarded} == guarded
    if case == "the-db-itself":
        assert not chart.exists()  # nothing ran


@pytest.fixture
def small_disk(tmp_path):
    """A 600 KiB file system of its own (tmpfs; root only), unmounted after the test: room
    for a state file, not for the demo's simulation database (about 1.1 MB)."""
    import subprocess

    where = tmp_path / "small"
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(where)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small file system here: {mounted.stderr!r}")
    yield where
    subprocess.run(["umount", str(where)], check=True)


def fill(folder: Path) -> None:
    """Write a file into `folder` until its file system has no byte left."""
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        for chunk in (b"x" * 4096, b"x"):
            with contextlib.suppress(OSError):
                while os.write(fd, chunk):
                    pass
    finally:
        os.close(fd)


def test_a_full_disk_is_the_disk_full_exit_and_leaves_nothing(cli, offline, small_disk, tmp_path):
    """Saving a simulation (its database is larger than the disk) and a pause or windfall on
    a full disk: exit 75 ("try again once fixed") naming the full disk (they exited 1:
    "database or disk is full", "disk I/O error"); no half file is left."""
    db = small_disk / "sim.db"
    result = cli("simulate", "--db", str(db), "--proposals", "0", env=offline)
    assert result.returncode == 75, result.stderr
    assert "the disk is full" in result.stderr and "Traceback" not in result.stderr
    assert list(small_disk.iterdir()) == []
    assert cli("init", str(tmp_path / "cfg")).returncode == 0
    env = {
        **offline,
        "STAGEWISE_CONFIG": str(tmp_path / "cfg" / "config.toml"),
        "STAGEWISE_STATE__PATH": str(small_disk / "state.db"),
    }
    assert cli("pause", "--reason", "keep", env=env).returncode == 0
    fill(small_disk)
    before = (small_disk / "state.db").read_bytes()
    for args in (["windfall", "100"], ["resume"]):
        result = cli(*args, env=env)
        assert result.returncode == 75, (args, result.stderr)
        assert "the disk is full" in result.stderr, (args, result.stderr)
    assert (small_disk / "state.db").read_bytes() == before


def test_a_chart_without_matplotlib_fails_before_the_simulation(cli, no_matplotlib, tmp_path):
    db = tmp_path / "sim.db"
    result = cli(*DEMO, "--db", str(db), "--chart", str(tmp_path / "c.png"), env=no_matplotlib)
    assert result.returncode == 1
    assert "--chart needs matplotlib: pip install 'stagewise[plot]'" in result.stderr
    assert not db.exists() and result.stdout == ""


@pytest.mark.parametrize(
    ("asked", "written", "magic"),
    [("chart", "chart.png", b"\x89PNG"), ("chart.SVG", "chart.SVG", b"<?xml")],
)
def test_the_chart_written_is_the_file_reported(cli, offline, tmp_path, asked, written, magic):
    result = cli(
        *DEMO, "--db", str(tmp_path / "s.db"), "--chart", str(tmp_path / asked), env=offline
    )
    assert result.returncode == 0, result.stderr
    assert f"chart written to {tmp_path / written}" in result.stderr
    assert (tmp_path / written).read_bytes().startswith(magic)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("chart")) == [written]


def test_the_report_and_json_show_the_churn_figures(cli, offline, tmp_path):
    db = tmp_path / "demo.db"
    span = ("--start", "2026-01-01", "--end", "2027-01-01", "--db", str(db), "--proposals", "0")
    as_json = cli("simulate", "--json", *span, env=offline)
    assert as_json.returncode == 0, as_json.stderr
    report = json.loads(as_json.stdout)
    store = Store.open(db)
    try:
        proposals = store.proposals()
    finally:
        store.close()
    notionals = sorted(p["notional"] for p in proposals)
    early = sorted({p["finished_at"] for p in proposals if p["job"] == "drift"})
    gaps = [(b - a).total_seconds() / 86_400 for a, b in pairwise(early)]
    assert len(notionals) > 0 and len(early) > 2  # something to measure
    under_20 = sum(1 for n in notionals if n < 20)
    fee_share = report["fees"] / report["contributions"]
    assert report["proposals_per_year"] == round(len(proposals) / (365 / 365.25), 2)
    assert report["early_rebalances"] == len(early)
    assert report["median_days_between_early_rebalances"] == round(statistics.median(gaps), 2)
    assert report["median_order_notional"] == round(statistics.median(notionals), 2)
    assert report["orders_under_20"] == under_20
    assert report["fees_share_of_contributions"] == pytest.approx(fee_share, abs=1e-6)

    text = cli("simulate", *span, env=offline)
    assert text.returncode == 0, text.stderr
    c = report
    for line in (
        f"proposals a year  {len(proposals) / (365 / 365.25):,.1f} ({len(proposals):,} in all)",
        f"early rebalances  {len(early):,} by the drift watch, a median "
        f"{c['median_days_between_early_rebalances']:.1f} days apart",
        f"median order      {c['median_order_notional']:,.2f} USDT",
        f"small orders      {under_20:,} under 20 USDT",
        f"fees              {c['fees']:,.2f} USDT ({fee_share * 100:.2f} % of contributions)",
    ):
        assert line in text.stdout


def test_the_report_shows_the_point_in_time_rule_costs_and_returns(cli, offline, tmp_path):
    result = cli(*DEMO, "--db", str(tmp_path / "s.db"), env=offline)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "simulation (paper account; never an order)"
    assert lines[1].startswith("prices: ") and "sample-prices.csv" in lines[1]
    assert "its dates are days in Europe/Berlin" in lines[1]
    assert lines[2] == (
        "point in time: a job sees only the closes known at its moment: a day's close from "
        "the midnight ending it"
    )
    for row in ("slippage", "trading costs", "money-weighted", "time-weighted"):
        assert any(line.startswith(f"{row} ") for line in lines), row
    assert "time-weighted (the portfolio's own)" in result.stdout


def test_the_json_report_has_every_figure_and_no_negative_zero(
    cli, offline, write_config, tmp_path
):
    config = write_config({"paper": {"fee_rate": 0, "slippage": 0}})
    db = tmp_path / "s.db"
    done = cli("--config", str(config), *DEMO[:5], "--json", "--db", str(db), env=offline)
    assert done.returncode == 0, done.stderr
    assert "-0.0" not in done.stdout  # "fees": -0.0 with no fees, before
    report = json.loads(done.stdout)
    assert report["fees"] == report["slippage"] == report["trading_costs"] == 0.0
    assert report["point_in_time"].startswith("a job sees only the closes known")
    for key in (
        "money_weighted_return",
        "time_weighted_return",
        "max_drawdown",
        "max_drawdown_time_weighted",
        "turnover",
        "windfalls",
    ):
        assert isinstance(report[key], float), key
    assert report["notes"] == []


def late_near(tmp_path: Path) -> Path:
    """The sample history with NEAR (of the Layer 1 index) unlisted until 3 May 2023."""
    from stagewise import shipped

    lines = shipped.path(shipped.SAMPLE_PRICES).read_text().splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("date,"))
    column = lines[header].split(",").index("NEAR")
    out = lines[: header + 1]
    for line in lines[header + 1 :]:
        cells = line.split(",")
        if cells[0] < "2023-05-03":
            cells[column] = ""
        out.append(",".join(cells))
    path = tmp_path / "late-near.csv"
    path.write_text("\n".join(out) + "\n")
    return path


def test_a_coin_listed_later_is_simulated_and_strict_history_refuses_it(cli, offline, tmp_path):
    """The issue's case (SUI there): a coin of the plan has no price on 1 January 2023; the
    simulation runs with it out of the targets until its first close is known, and
    --strict-history refuses, as every simulation did before."""
    prices = late_near(tmp_path)
    span = ("--prices", str(prices), "--start", "2023-01-01", "--end", "2023-07-01")
    db = tmp_path / "s.db"
    done = cli("simulate", *span, "--json", "--db", str(db), env=offline)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["notes"][0].startswith(
        "listed later: NEAR (first close 2023-05-03, in the targets from 2023-05-04)"
    )
    assert report["runs_by_status"].get("failed", 0) == 0
    store = Store.open(db)
    try:
        bought = {p["period"] for p in store.proposals() if p["symbol"] == "NEAR/USDT"}
    finally:
        store.close()
    assert bought and min(bought) >= "dca:2023-05"
    strict = cli("simulate", *span, "--strict-history", "--db", str(db), env=offline)
    assert strict.returncode == 65
    assert "NEAR has no price known when the simulation starts on 2023-01-01 (listed later" in (
        strict.stderr
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--windfall", "2026-13-01:500"], "argument --windfall: '2026-13-01:500': '2026-13-01'"),
        (["--windfall", "2026-01-15"], "argument --windfall: '2026-01-15' is not DATE:AMOUNT"),
        (["--windfall", "2026-01-15:-5"], "'2026-01-15:-5': the amount must be positive"),
        (["--windfall", "2026-01-15:nan"], "'2026-01-15:nan': the amount must be positive"),
        (["--pause", "2026-01-20"], "argument --pause: '2026-01-20' is not FROM:TO[:REASON]"),
        (["--pause", "2026-01-20:2026-01-10"], "the pause must end after it starts"),
        (["--windfall", "2027-01-01:500"], "the windfall of 500.00 on 2027-01-01 is outside"),
        (
            ["--pause", "2026-01-05:2026-01-20", "--pause", "2026-01-10:2026-01-25:bills"],
            "the pause 2026-01-10 .. 2026-01-25 overlaps the pause 2026-01-05 .. 2026-01-20",
        ),
        # The live rule (`stagewise windfall`), on the simulated portfolio of that day (about
        # 3,000): a simulation took any amount up to 1e12.
        (
            ["--windfall", "2026-01-15:5000000"],
            "the windfall of 5,000,000.00 on 2026-01-15: a windfall of 5,000,000.00 USDT is not "
            "plausible: at most 1,000,000.00 USDT, the larger of 1,000,000.00 USDT and 10 times "
            "the portfolio's last recorded value (",
        ),
    ],
    ids=[
        "bad-date",
        "no-amount",
        "negative",
        "nan",
        "no-end",
        "backwards",
        "outside",
        "overlap",
        "implausible",
    ],
)
def test_bad_plan_events_are_a_bad_argument_naming_them(cli, offline, tmp_path, args, message):
    db = tmp_path / "sim.db"
    result = cli(*DEMO, "--db", str(db), *args, env=offline)
    assert result.returncode == EX_USAGE, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not db.exists() and result.stdout == ""


def test_a_windfall_and_a_pause_from_the_command_line(cli, offline, tmp_path):
    db = tmp_path / "sim.db"
    span = ("--start", "2026-01-01", "--end", "2026-05-01", "--json", "--db", str(db))
    plain = json.loads(cli("simulate", *span, env=offline).stdout)
    events = ("--windfall", "2026-01-10:10000", "--pause", "2026-02-01:2026-04-01:lost my job")
    done = cli("simulate", *span, *events, env=offline)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    # The example invests the stage's low end of bonuses; February's and March's 2,000 are
    # not contributed in the pause.
    assert report["windfalls"] > 0
    assert report["contributions"] == plain["contributions"] - 2 * 2000.0 + report["windfalls"]
    assert len(report["notes"]) == 2 and "(lost my job)" in report["notes"][1]
