"""`simulate` against an independent backtester: pmorissette/bt on the same prices.

A fixed basket (X 50 / Y 30 / Z 20) rebalanced quarterly, with no fees, no slippage and no
other money moving, over three years of generated daily closes. Our side runs the daemon's
own jobs with everything but the quarterly rebalance made inert (drift watch off, DCA of 0,
no profit milestones, no withdrawals) and a band so tiny every quarterly rebalance trades back
to target. bt runs `RunQuarterly, SelectAll, WeighSpecified, Rebalance` with fractional
positions. Both must trade on the same days and agree on the value within 0.01 %.

Dates: our quarterly rebalance fires on `schedule.rebalance_day` (1) of Jan/Apr/Jul/Oct at
`rebalance_hour` in the investor's time zone (UTC here) and, point in time, is priced at the
last close known then: the close of the day before, the quarter's last day. bt decides and
fills at the close of the day it runs, so it runs on the last date of each quarter
(`run_on_end_of_period`) and, with `run_on_first_date` (its default), on the first date of
the data (bt's Backtest puts a day of pure cash before it). The data start on 31 December,
the day before our simulation: each of bt's trades is ours of the next morning at the same
price, and the two values agree at every close.

bt is a test-only dependency (`pip install bt`); without it this file is skipped.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from support import (
    CAPITAL,
    END,
    FIRST,
    QUARTERLY_ONLY,
    START,
    TOLERANCE,
    WEIGHTS,
    deep_merge,
    generated_closes,
    plan_stage,
    run_bt,
    write_config_file,
    write_plan_files,
)

bt = pytest.importorskip("bt")
pytestmark = pytest.mark.filterwarnings("ignore:A future version of pandas will return")
pd = pytest.importorskip("pandas")

from stagewise.history import PriceHistory  # noqa: E402
from stagewise.settings import load_config  # noqa: E402
from stagewise.simulate import simulate  # noqa: E402
from stagewise.store import Store  # noqa: E402


@pytest.fixture(scope="module")
def prices() -> tuple[list[date], dict[str, tuple[float, ...]]]:
    days = [FIRST + timedelta(days=i) for i in range((END - FIRST).days)]
    return days, generated_closes(days)


@pytest.fixture(scope="module")
def ours(tmp_path_factory, prices):
    days, closes = prices
    folder = tmp_path_factory.mktemp("quarterly")
    plan = write_plan_files(
        folder / "plan", {"basket": ("quarterly", WEIGHTS)}, [plan_stage("only")]
    )
    config = load_config(write_config_file(folder, deep_merge(QUARTERLY_ONLY, plan)))
    db = folder / "sim.db"
    history = PriceHistory(tuple(days), closes, "generated")
    return simulate(config, history, START, END, db, min_notional=0), db


@pytest.fixture(scope="module")
def theirs(prices):
    days, closes = prices
    return run_bt(closes, days)


def test_bt_invests_on_the_first_date_and_trades_on_each_quarters_last_day(theirs, prices):
    values = theirs.strategy.values
    # bt's Backtest starts one day before the data, all cash.
    assert values.index[0].date() == FIRST - timedelta(days=1)
    assert values.iloc[0] == CAPITAL
    # 31 Dec 2023, the data's last date, ends no quarter bt can see the end of: no trade.
    assert traded_days(theirs) == [d - timedelta(days=1) for d in quarter_starts()]


def test_quarterly_rebalance_trades_the_morning_after_bt_at_its_close(ours, theirs):
    result, db = ours
    assert our_traded_days(db) == quarter_starts()
    assert [d + timedelta(days=1) for d in traded_days(theirs)] == quarter_starts()
    assert result.proposals_by_job == {"rebalance": 12 * len(WEIGHTS)}


def test_our_rebalances_fill_at_the_close_bt_trades_at(ours, prices):
    """Point in time: each rebalance fills at the close of the day before (no slippage)."""
    _, db = ours
    days, closes = prices
    store = Store.open(db)
    try:
        proposals = store.proposals()
    finally:
        store.close()
    for p in proposals:
        before = p["finished_at"].date() - timedelta(days=1)
        assert p["price"] == closes[p["base"]][days.index(before)]


def test_quarterly_rebalance_final_value_matches_bt(ours, theirs):
    result, _ = ours
    expected = float(theirs.strategy.values.iloc[-1])
    assert result.seed_value == CAPITAL
    assert result.fees == 0.0 and result.contributions == 0.0
    assert result.final_value == pytest.approx(expected, rel=TOLERANCE)
    # Three years of random walk moved the basket far from its start: a real comparison.
    assert abs(expected / CAPITAL - 1) > 0.2


def test_quarterly_rebalance_value_matches_bt_every_day(ours, theirs):
    result, _ = ours
    bt_values = {ts.date(): float(v) for ts, v in theirs.strategy.values.items()}
    assert len(result.series) == len(bt_values) - 2  # bt's day of cash, our day before
    worst = max(abs(value / bt_values[day] - 1) for day, value, _ in result.series)
    assert worst < TOLERANCE


# --- helpers ------------------------------------------------------------------------------------


def quarter_starts() -> list[date]:
    return [date(y, m, 1) for y in range(START.year, END.year) for m in (1, 4, 7, 10)]


def traded_days(test) -> list[date]:
    """Days on which bt's positions changed."""
    moved = test.strategy.positions.diff().abs().sum(axis=1)
    return [ts.date() for ts, change in moved.items() if change > 0]


def our_traded_days(db: Path) -> list[date]:
    store = Store.open(db)
    try:
        return sorted({p["finished_at"].date() for p in store.proposals()})
    finally:
        store.close()
