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

import json
import os
import statistics
import sys
from datetime import date, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest
from conftest import deep_merge, plan_stage

from stagewise.errors import OutputRefused, PriceHistoryError, UsageError
from stagewise.history import PriceHistory, load_csv
from stagewise.settings import load_config
from stagewise.simulate import StageSpan, simulate
from stagewise.store import Store

CENT = 0.005  # "equal to the cent": closer than half a cent

# Every job stays out of the way except DCA: no drift watch, bands so wide no weight can
# leave them, no crypto-share check (no outside investments), no seed, no yearly increase.
QUIET = {
    "investor": {
        "timezone": "UTC",
        "outside_investments": 0,
        "monthly_contribution": 1000,
        "contribution_start": None,
    },
    "paper": {"initial_balances": None, "fee_rate": 0.001, "slippage": 0},
    "schedule": {"drift_enabled": False, "dca_day": 1, "dca_hour": 9},
    "policy": {"band_abs_pct": 100, "band_rel_pct": 1000},
}


@pytest.fixture
def quiet_config(write_plan, write_config):
    """A loaded config: one index 'basket' of `constituents`, only DCA trading."""

    def make(constituents: dict[str, float], **overrides):
        plan = write_plan({"basket": ("quarterly", constituents)})
        return load_config(write_config(deep_merge(deep_merge(QUIET, plan), overrides)))

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
    assert result.withdrawals == 0.0
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
    return load_config(write_config(deep_merge(deep_merge(QUIET, plan), overrides)))


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
