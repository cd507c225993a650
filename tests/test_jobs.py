"""The jobs: a year of real triggers under freezegun, each period once; failures, the failing
alarm, the emergency pause and windfalls, on a real store and a paper account priced from
history."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import freezegun
import freezegun.api
import pytest
from structlog.testing import capture_logs
from support import plan_stage, time_limit, write_config_file

from stagewise.contributions import bonus_share_pct, monthly_contribution
from stagewise.history import PriceHistory
from stagewise.jobs import FAILURES_BEFORE_ALARM, Outcome
from stagewise.runtime import Runtime, seed_paper
from stagewise.schedules import Schedule, schedules
from stagewise.settings import load_config
from stagewise.targets import targets_on

BERLIN = ZoneInfo("Europe/Berlin")
YOUNG = {"investor": {"birth_date": "2001-05-10"}}  # 25-26 in 2027: Young Professionals
CAREER = {"investor": {"birth_date": "1993-03-01"}}  # 33-34 in 2027: Career Builders
BOUND = 20_000  # more fires than a year has: a loop that stops advancing fails, not hangs


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)


def real(moment: datetime) -> datetime:
    """`moment` as a real datetime (not freezegun's FakeDatetime).

    FakeDatetime arithmetic drops `fold`, which names which of a DST fall-back day's two 02:30s
    a time is. The schedules get real datetimes; jobs get the frozen clock. (Read through the
    module: freezegun rewrites imported names.)"""
    return freezegun.api.real_datetime.fromtimestamp(moment.timestamp(), UTC)


def travel(
    runtime: Runtime, plan: list[Schedule], frozen, end: datetime
) -> list[tuple[Schedule, datetime, Outcome]]:
    """Drive the jobs with the real schedules until `end`: jump the frozen clock to the next
    fire time of any schedule, fire every schedule due then (list order), repeat."""
    fired: list[tuple[Schedule, datetime, Outcome]] = []
    after = real(datetime.now(UTC))
    for _ in range(BOUND):
        upcoming = [
            (when.astimezone(UTC), s) for s in plan if (when := s.next_from(after)) is not None
        ]
        moment = min(when for when, _ in upcoming)
        if moment >= end:
            return fired
        frozen.move_to(moment)
        now = datetime.now(UTC)  # the clock jumped
        assert real(now) == moment
        for when, sched in upcoming:
            if when == moment:
                scheduled_at = sched.latest(real(now))
                assert scheduled_at is not None and scheduled_at.astimezone(UTC) == moment
                fired += [
                    (sched, scheduled_at, o) for o in runtime.jobs.fire(sched, scheduled_at, now)
                ]
        after = real(now) + timedelta(microseconds=1)
    raise AssertionError(f"the clock did not reach {end} in {BOUND} fires")


def a_year(tmp_path_factory, history_2027: PriceHistory, overrides: dict, drift: bool):
    """A whole calendar year 2027 of one investor, from a fresh paper account."""
    from stagewise.history import HistoryMarkets
    from stagewise.runtime import open_runtime

    folder = tmp_path_factory.mktemp("year")
    config = load_config(
        write_config_file(folder, {**overrides, "schedule": {"drift_enabled": drift}})
    )
    runtime = open_runtime(
        config, market_source=HistoryMarkets(history_2027, config.quote, tz=config.tz)
    )
    with (
        time_limit(45),
        capture_logs(),
        freezegun.freeze_time(berlin(2027, 1, 1), ignore=["apscheduler"]) as frozen,
    ):
        seed_paper(runtime, datetime.now(UTC))
        fired = travel(runtime, schedules(config), frozen, berlin(2028, 1, 1).astimezone(UTC))
    return config, runtime, fired


@pytest.fixture(scope="module")
def young_year(tmp_path_factory, history_2027):
    """2027 of a Young Professional, every trigger including the hourly drift watch."""
    config, runtime, fired = a_year(tmp_path_factory, history_2027, YOUNG, drift=True)
    yield config, runtime, fired
    runtime.close()


@pytest.fixture(scope="module")
def career_year(tmp_path_factory, history_2027):
    """2027 of a Career Builder (Value annual among its sleeves); no drift watch, for speed."""
    config, runtime, fired = a_year(tmp_path_factory, history_2027, CAREER, drift=False)
    yield config, runtime, fired
    runtime.close()


def recorded(runtime: Runtime) -> list[dict]:
    return runtime.store.runs(limit=100_000)


def periods_by_scope(runs: list[dict], job: str) -> dict[str, list[str]]:
    """period keys of `job` grouped by their middle part (sleeve scope), in run order."""
    grouped: dict[str, list[str]] = defaultdict(list)
    for r in sorted(runs, key=lambda r: r["id"]):
        if r["job"] == job:
            head, _, period = r["period"].rpartition(":")
            grouped[head.partition(":")[2]].append(period)
    return dict(grouped)


QUARTERS = ["2027-Q1", "2027-Q2", "2027-Q3", "2027-Q4"]
WEEKS = [f"2027-W{w:02d}" for w in range(1, 53)]
MONTHS = [f"2027-{m:02d}" for m in range(1, 13)]


# --- a year of real triggers ---------------------------------------------------------------------


def test_a_young_investors_year_runs_every_period_once(young_year) -> None:
    config, runtime, fired = young_year
    runs = recorded(runtime)
    assert [o for _, _, o in fired if o.status == "failed"] == []
    assert [r for r in runs if r["status"] == "failed"] == []
    periods = [r["period"] for r in runs]
    assert len(periods) == len(set(periods))
    assert [r["period"] for r in reversed(runs) if r["job"] == "dca"] == [
        f"dca:{m}" for m in MONTHS
    ]
    assert all(r["status"] == "ok" for r in runs if r["job"] == "dca")
    assert periods_by_scope(runs, "rebalance") == {
        "momentum_trader": WEEKS,  # the guide: Momentum weekly
        "ai_agents": QUARTERS,
        "balanced_investor": QUARTERS,  # the guide: Balanced quarterly
        "portfolio": QUARTERS,
    }
    reassess = [r for r in runs if r["job"] == "reassess"]
    assert [(r["period"], r["scheduled_at"]) for r in reassess] == [
        ("reassess:2027", berlin(2027, 5, 10, 8).astimezone(UTC))
    ]
    # A Young Professional withdraws nothing: each monthly withdrawal period is skipped, once.
    withdraw = [r for r in runs if r["job"] == "withdraw"]
    assert len(withdraw) == 12 and {r["status"] for r in withdraw} == {"skipped"}


def test_each_dca_deposits_the_months_contribution_once(young_year) -> None:
    config, runtime, _ = young_year
    deposits = [e for e in runtime.store.ledger_entries() if e.kind == "deposit"]
    assert [e.note for e in deposits] == [f"dca:{m}" for m in MONTHS]
    for e in deposits:
        on = e.at.astimezone(BERLIN)
        assert (on.day, on.hour) == (1, 9)
        assert e.amount == pytest.approx(monthly_contribution(config, on.date()))


def test_the_drift_watch_checks_every_hour_that_exists_once(young_year) -> None:
    """8760 hourly fires over 8759 hour keys (see test_scheduler): the hour that repeats when
    the clocks go back is one period; whichever of its two fires records it, no key twice."""
    _, runtime, fired = young_year
    drift = [o for s, _, o in fired if s.name == "drift"]
    assert {o.status for o in drift} <= {"quiet", "ok"}
    keys = Counter(o.period for o in drift)
    start = datetime(2027, 1, 1)
    every_hour = {f"drift:{(start + timedelta(hours=h)):%Y-%m-%dT%H}" for h in range(8760)}
    assert set(keys) == every_hour - {"drift:2027-03-28T02"}
    repeated = "drift:2027-10-31T02"
    assert {k for k, n in keys.items() if n > 1} <= {repeated}
    recorded_drift = [r["period"] for r in recorded(runtime) if r["job"] == "drift"]
    assert len(recorded_drift) == len(set(recorded_drift))
    first_recorded = [o for o in drift if o.period == repeated][0].status == "ok"
    assert keys[repeated] == (1 if first_recorded else 2)
    assert len(drift) == 8760 - (1 if first_recorded else 0)


def test_a_career_builders_year_rebalances_value_yearly(career_year) -> None:
    _, runtime, fired = career_year
    runs = recorded(runtime)
    assert [r for r in runs if r["status"] == "failed"] == []
    assert periods_by_scope(runs, "rebalance") == {
        "value_investor": ["2027"],  # the guide: Value annual
        "balanced_investor": QUARTERS,
        "layer1": QUARTERS,
        "defi": QUARTERS,
        "ai_agents": QUARTERS,
        "portfolio": QUARTERS,
    }
    value = [r for r in runs if r["period"] == "rebalance:value_investor:2027"]
    assert value[0]["scheduled_at"] == berlin(2027, 1, 2, 10).astimezone(UTC)
    assert sum(r["job"] == "dca" for r in runs) == 12
    assert sum(r["job"] == "reassess" for r in runs) == 1
    # The weekly and monthly triggers fired all year and owned nothing for this stage.
    assert {s.name for s, _, _ in fired if s.job == "rebalance"} == {
        "rebalance-quarterly",
        "rebalance-annual",
    }


# --- single fires, times passed in ------------------------------------------------------------


@pytest.fixture
def young(make_config, history_runtime):
    """A Young Professional's paper runtime priced from history, seeded on 1 January 2027."""
    runtime = history_runtime(make_config(YOUNG))
    seed_paper(runtime, berlin(2027, 1, 1))
    return runtime


def sched(runtime: Runtime, name: str) -> Schedule:
    return next(s for s in schedules(runtime.config) if s.name == name)


def dca_on(runtime: Runtime, month: int) -> list[Outcome]:
    at = berlin(2027, month, 1, 9)
    return runtime.jobs.fire(sched(runtime, "dca"), at, at + timedelta(seconds=2))


def run_ledger(runtime: Runtime, period: str) -> list[tuple[str, str, float]]:
    rows = runtime.store.conn.execute(
        "SELECT l.kind, l.asset, l.amount FROM ledger l JOIN runs r ON r.id = l.run_id "
        "WHERE r.period = ? ORDER BY l.id",
        [period],
    ).fetchall()
    return [tuple(r) for r in rows]


def orders_of(runtime: Runtime, period: str) -> list[dict]:
    return [p for p in runtime.store.proposals() if p["period"] == period]


def test_the_same_period_fired_twice_runs_once(young) -> None:
    first = dca_on(young, 1)
    assert [(o.period, o.status) for o in first] == [("dca:2027-01", "ok")]
    assert first[0].orders > 0
    with capture_logs() as logs:
        assert dca_on(young, 1) == []
        later = berlin(2027, 1, 20, 9)  # a late fire inside the same month: the same period
        assert young.jobs.fire(sched(young, "dca"), later, later) == []
    assert [e["event"] for e in logs] == ["period_already_done"] * 2
    assert len(young.store.runs(job="dca")) == 1
    assert sum(kind == "deposit" for kind, _, _ in run_ledger(young, "dca:2027-01")) == 1
    assert len(orders_of(young, "dca:2027-01")) == first[0].orders


def without(history: PriceHistory, asset: str) -> PriceHistory:
    """`history` with `asset` at 0 every day: no usable price (every plan that needs it is
    refused). (Was: without its column; an asset with no price at all is now one the market
    does not list, left out of the targets, see test_listings.)"""
    zero = tuple(0.0 for _ in history.days)
    return PriceHistory(
        history.days, {a: zero if a == asset else c for a, c in history.closes.items()}
    )


@pytest.fixture
def runtime_without_bnb(make_config, history_runtime, history_2027):
    """A career builder's seeded paper account whose prices lack BNB, an asset of the plan's
    fixed Value basket: every run that needs it fails. (It was FET of a young investor's
    fixed AI basket; the shipped AI Agents index is a rule now, which leaves an unpriced coin
    out of its composition instead.)"""
    runtime = history_runtime(make_config(CAREER), without(history_2027, "BNB"))
    seed_paper(runtime, berlin(2027, 1, 1))
    return runtime


def test_a_failed_run_leaves_its_period_open_until_a_retry_runs_it(
    runtime_without_bnb, history_2027
) -> None:
    runtime = runtime_without_bnb
    failed = dca_on(runtime, 1)
    assert [(o.status, o.error) for o in failed] == [("failed", "no usable price: BNB (0.0)")]
    run = runtime.store.last_run("dca")
    assert run is not None and (run["period"], run["status"]) == ("dca:2027-01", "failed")
    assert run_ledger(runtime, "dca:2027-01") == []  # nothing deposited for a failed run
    assert not runtime.store.has_period("dca:2027-01")  # the month's DCA is not used up
    assert dca_on(runtime, 1)[0].status == "failed"  # tried again: recorded again
    assert runtime.store.failed_attempts("dca:2027-01") == 2

    runtime.account.market_source.history = history_2027  # type: ignore[attr-defined]
    at = berlin(2027, 1, 1, 9)
    retried = runtime.jobs.fire(sched(runtime, "dca"), at, at + timedelta(days=1))  # in grace
    assert [(o.period, o.status) for o in retried] == [("dca:2027-01", "ok")]
    assert retried[0].orders > 0 and runtime.store.has_period("dca:2027-01")
    assert runtime.store.failed_attempts("dca:2027-01") == 0  # done: nothing to retry
    assert dca_on(runtime, 1) == []  # done periods run once
    ok = dca_on(runtime, 2)
    assert [(o.period, o.status) for o in ok] == [("dca:2027-02", "ok")] and ok[0].orders > 0
    assert runtime.store.events(kind="job_failing") == []


def test_three_failures_in_a_row_raise_job_failing(runtime_without_bnb) -> None:
    runtime = runtime_without_bnb
    with capture_logs() as logs:
        for month in range(1, FAILURES_BEFORE_ALARM):
            assert dca_on(runtime, month)[0].status == "failed"
        assert runtime.store.events(kind="job_failing") == []
        assert dca_on(runtime, FAILURES_BEFORE_ALARM)[0].status == "failed"
    events = runtime.store.events(kind="job_failing")
    assert [e["data"] for e in events] == [
        {"job": "dca", "last_error": "no usable price: BNB (0.0)"}
    ]
    alarms = [e for e in logs if e["event"] == "job_failing_repeatedly"]
    assert [(e["log_level"], e["failures"]) for e in alarms] == [("error", FAILURES_BEFORE_ALARM)]


def test_a_success_between_failures_resets_the_count(runtime_without_bnb, history_2027) -> None:
    runtime = runtime_without_bnb
    markets = runtime.account.market_source  # type: ignore[attr-defined]
    without_bnb = markets.history
    for month, history in enumerate([without_bnb, without_bnb, history_2027, without_bnb], 1):
        markets.history = history
        dca_on(runtime, month)
    assert [r["status"] for r in reversed(runtime.store.runs(job="dca"))] == [
        "failed",
        "failed",
        "ok",
        "failed",
    ]
    assert runtime.store.events(kind="job_failing") == []


def test_paused_dca_buys_nothing_and_deposits_nothing_until_resumed(young) -> None:
    young.store.set_paused(True, "lost my job", berlin(2027, 1, 5))
    paused = dca_on(young, 2)
    assert [(o.period, o.status, o.orders) for o in paused] == [("dca:2027-02", "ok", 0)]
    assert run_ledger(young, "dca:2027-02") == []
    assert orders_of(young, "dca:2027-02") == []
    assert young.store.ledger_balances() == {"USDT": 1000.0}  # the seed, untouched

    young.store.set_paused(False, "", berlin(2027, 2, 20))
    resumed = dca_on(young, 3)
    assert resumed[0].status == "ok" and resumed[0].orders > 0
    kinds = Counter(kind for kind, _, _ in run_ledger(young, "dca:2027-03"))
    contribution = monthly_contribution(young.config, date(2027, 3, 1))
    deposit = [a for k, asset, a in run_ledger(young, "dca:2027-03") if k == "deposit"]
    assert deposit == [pytest.approx(contribution)]
    assert kinds["fill"] == 2 * resumed[0].orders and kinds["fee"] == resumed[0].orders
    assert all(o["side"] == "buy" for o in orders_of(young, "dca:2027-03"))


@pytest.mark.parametrize("watch", ["sleeve", "asset"])
def test_the_drift_watch_setting_reaches_the_jobs(make_config, history_runtime, watch) -> None:
    runtime = history_runtime(make_config({**YOUNG, "policy": {"drift_watch": watch}}))
    assert runtime.jobs.policy.drift_watch == watch


def test_a_dca_with_nothing_to_invest_is_skipped_without_asking_for_prices(
    make_config, history_runtime
) -> None:
    runtime = history_runtime(
        make_config({**YOUNG, "investor": {**YOUNG["investor"], "monthly_contribution": 0}})
    )
    seed_paper(runtime, berlin(2027, 1, 1))
    runtime.account.market_source = None  # type: ignore[attr-defined]  # any quote would fail
    outcomes = dca_on(runtime, 2)
    reason = "the monthly contribution is 0 and nothing is carried: nothing to invest"
    assert [(o.period, o.status, o.error) for o in outcomes] == [("dca:2027-02", "skipped", reason)]
    assert runtime.store.last_run("dca")["error"] == reason  # type: ignore[index]
    assert orders_of(runtime, "dca:2027-02") == [] and run_ledger(runtime, "dca:2027-02") == []


def test_a_windfall_is_invested_at_the_next_fire_with_the_stages_bonus_share(young) -> None:
    bonus = 10_000.0
    windfall_id = young.store.add_pending_windfall(bonus, berlin(2027, 1, 10))
    stage = targets_on(young.config.profile, date(2027, 1, 11)).stage
    share = bonus_share_pct(young.config, stage) / 100
    assert share == 0.5  # the guide, stage 1: "allocate 50% of bonuses to crypto indices"
    monday = berlin(2027, 1, 11, 10)
    outcomes = young.jobs.fire(sched(young, "rebalance-weekly"), monday, monday)
    key = f"windfall:{windfall_id}"
    assert [(o.job, o.period, o.status) for o in outcomes][0] == ("windfall", key, "ok")
    deposits = [a for k, asset, a in run_ledger(young, key) if k == "deposit"]
    assert deposits == [pytest.approx(bonus * share)]
    bought = orders_of(young, key)
    assert bought and all(o["side"] == "buy" and o["rule"] == "windfall" for o in bought)
    assert sum(o["notional"] + o["fee"] for o in bought) <= bonus * share + 1e-6
    assert sum(o["notional"] for o in bought) > bonus * share * 0.95
    assert young.store.pending_windfalls() == []
    again = young.jobs.fire(sched(young, "profit"), monday, monday + timedelta(hours=8))
    assert all(o.job != "windfall" for o in again)
    assert len(young.store.runs(job="windfall")) == 1


def test_a_windfall_while_paused_deposits_nothing(young) -> None:
    young.store.set_paused(True, "crisis", berlin(2027, 1, 5))
    windfall_id = young.store.add_pending_windfall(4_000, berlin(2027, 1, 10))
    outcomes = dca_on(young, 2)
    assert [o.job for o in outcomes] == ["windfall", "dca"]
    assert run_ledger(young, f"windfall:{windfall_id}") == []
    assert young.store.ledger_balances() == {"USDT": 1000.0}


class RacingMarkets:
    """A MarketSource that, on its first quote, lets `rival` run first: another process
    (`stagewise once` beside the daemon) recording the same period mid-run."""

    def __init__(self, inner, rival) -> None:
        self.inner = inner
        self.rival = rival

    def quotes(self, assets, now):
        if self.rival is not None:
            rival, self.rival = self.rival, None
            rival()
        return self.inner.quotes(assets, now)


def test_a_period_another_process_records_mid_run_is_not_recorded_or_paid_twice(
    make_config, history_runtime
) -> None:
    config = make_config(YOUNG)
    winner = history_runtime(config)
    loser = history_runtime(config)  # the same state file, its own connection
    seed_paper(winner, berlin(2027, 1, 1))
    at = berlin(2027, 1, 1, 9)
    dca = sched(winner, "dca")
    markets = loser.account.market_source  # type: ignore[attr-defined]
    loser.account.market_source = RacingMarkets(  # type: ignore[attr-defined]
        markets, lambda: winner.jobs.fire(dca, at, at)
    )
    lost = loser.jobs.fire(dca, at, at)
    assert [(o.period, o.status) for o in lost] == [("dca:2027-01", "duplicate")]
    assert [r["period"] for r in winner.store.runs()] == ["dca:2027-01"]
    assert winner.store.runs()[0]["status"] == "ok"
    assert [e.note for e in winner.store.ledger_entries() if e.kind == "deposit"] == ["dca:2027-01"]


# --- one fire, several periods: planned in turn against what the earlier ones leave -------------


def replay(balances: dict[str, float], outcomes_orders: list[dict]) -> dict[str, float]:
    """The balances after placing `outcomes_orders` in turn; fails on the first order that
    sells more than is held or spends more than the cash (with the fees, to a cent's slack)."""
    left = dict(balances)
    for o in outcomes_orders:
        cost = o["notional"] + o["fee"]
        if o["side"] == "sell":
            left[o["base"]] = left.get(o["base"], 0.0) - o["amount"]
            assert left[o["base"]] >= -1e-9, f"oversold {o['base']}: {o}"
            left["USDT"] = left.get("USDT", 0.0) + o["notional"] - o["fee"]
        else:
            left["USDT"] = left.get("USDT", 0.0) - cost
            assert left["USDT"] >= -0.01, f"spent more than the cash: {o}"
            left[o["base"]] = left.get(o["base"], 0.0) + o["amount"]
    return left


@pytest.fixture
def read_only_runtime(standin_config, monkeypatch, plan_standin):
    """A career builder's read-only runtime against the stand-in (a key from the
    environment, as the daemon gets it)."""
    from stagewise.runtime import open_runtime

    monkeypatch.setenv("STAGEWISE_EXCHANGE__API_KEY", "k" * 16)
    monkeypatch.setenv("STAGEWISE_EXCHANGE__SECRET", "s" * 16)
    path = standin_config({**CAREER, "exchange": {"mode": "read-only"}})
    runtime = open_runtime(load_config(path))
    yield runtime
    runtime.close()


@pytest.mark.parametrize("holding", ["SOL", "LINK", "ETH"])
def test_a_read_only_fire_never_sells_a_coin_or_spends_cash_twice(
    read_only_runtime, plan_standin, plan_prices, holding
) -> None:
    """A quarterly fire plans every sleeve of that cadence and the portfolio, from an account
    that does not move when a plan is proposed: all it proposes must be placeable, in turn."""
    runtime = read_only_runtime
    balances = {"USDT": 500.0, holding: 20_000 / plan_prices[holding]}
    for asset, amount in balances.items():
        plan_standin.set_balance(asset, amount)
    at = berlin(2027, 4, 2, 10)  # a quarterly rebalance day
    quarterly = sched(runtime, "rebalance-quarterly")
    outcomes = runtime.jobs.fire(quarterly, at, at + timedelta(seconds=1))
    periods = [o.period for o in outcomes if o.status == "ok"]
    assert len(periods) >= 2, outcomes  # several periods in one fire: the case at stake
    proposed = sorted(
        (p for p in runtime.store.proposals() if p["period"] in periods),
        key=lambda p: (p["run_id"], p["seq"]),
    )
    assert proposed, "the concentrated account must be rebalanced"
    sold = sum(p["amount"] for p in proposed if p["side"] == "sell" and p["base"] == holding)
    assert sold <= balances[holding] + 1e-9
    replay(balances, proposed)
    # The account is read as it is: the stored snapshots are the exchange's, not the plans'.
    latest = runtime.store.latest_snapshot()
    assert latest is not None and latest[1][holding]["amount"] == pytest.approx(balances[holding])


def test_a_paper_fire_places_in_turn_what_it_proposes(make_config, history_runtime) -> None:
    runtime = history_runtime(make_config(CAREER))
    seed_paper(runtime, berlin(2027, 1, 1))
    before = dict(runtime.store.ledger_balances())
    at = berlin(2027, 4, 2, 10)
    outcomes = runtime.jobs.fire(sched(runtime, "rebalance-quarterly"), at, at)
    periods = [o.period for o in outcomes]
    proposed = sorted(
        (p for p in runtime.store.proposals() if p["period"] in periods),
        key=lambda p: (p["run_id"], p["seq"]),
    )
    left = replay(before, proposed)
    after = runtime.store.ledger_balances()
    for asset, amount in after.items():  # the ledger is the replay, up to slippage on cash
        if asset != "USDT":
            assert amount == pytest.approx(left.get(asset, 0.0), abs=1e-9)


def test_read_only_cost_basis_follows_the_account_not_the_proposals(
    read_only_runtime, plan_standin, plan_prices
) -> None:
    runtime = read_only_runtime
    plan_standin.set_balance("USDT", 100.0)
    at = berlin(2027, 1, 1, 9)
    dca = runtime.jobs.fire(sched(runtime, "dca"), at, at + timedelta(seconds=1))
    assert dca[0].status == "ok" and dca[0].orders > 0
    assert runtime.store.plan_state().cost_basis == {}  # proposed buys, none placed: no basis

    # The person bought BTC at a price the daemon cannot see; it is costed when first seen.
    plan_standin.set_balance("BTC", 0.01)
    at = berlin(2027, 2, 1, 9)
    runtime.jobs.fire(sched(runtime, "dca"), at, at + timedelta(seconds=1))
    assert runtime.store.plan_state().cost_basis == {"BTC": pytest.approx(plan_prices["BTC"])}

    # More of it later, at a higher price: the added part costed at that price.
    plan_standin.set_price("BTC", plan_prices["BTC"] * 2)
    plan_standin.set_balance("BTC", 0.03)
    at = berlin(2027, 3, 1, 9)
    runtime.jobs.fire(sched(runtime, "dca"), at, at + timedelta(seconds=1))
    expected = (plan_prices["BTC"] * 0.01 + plan_prices["BTC"] * 2 * 0.02) / 0.03
    assert runtime.store.plan_state().cost_basis["BTC"] == pytest.approx(expected)

    plan_standin.set_balance("BTC", 0)  # sold: the basis goes with the position
    at = berlin(2027, 4, 1, 9)
    runtime.jobs.fire(sched(runtime, "dca"), at, at + timedelta(seconds=1))
    assert "BTC" not in runtime.store.plan_state().cost_basis


# --- profit taken leaves the crypto portfolio -------------------------------------------------


def rising_btc() -> PriceHistory:
    """2027 day by day (from the last close of 2026, which the jobs of 1 January plan with):
    ETH flat at 100, BTC at 100 that rises to 210 on 15 May."""
    days = tuple(date(2026, 12, 31) + timedelta(days=n) for n in range(366))
    btc = tuple(100.0 if d < date(2027, 5, 15) else 210.0 for d in days)
    return PriceHistory(days, {"BTC": btc, "ETH": (100.0,) * len(days)}, "rising BTC")


def test_profit_taken_on_paper_leaves_the_account_and_the_drift_watch_does_not_buy_it_back(
    make_config, write_plan, history_runtime
) -> None:
    plan = write_plan(
        {"basket": ("quarterly", {"BTC": 50, "ETH": 50})},
        [plan_stage("only", profit_milestones_pct=(50, 100))],
    )
    config = make_config(
        {
            **plan,
            "investor": {"outside_investments": 0, "monthly_contribution": 0},
            "paper": {"initial_balances": {"USDT": 10_000}},
        }
    )
    runtime = history_runtime(config, rising_btc())
    seed_paper(runtime, berlin(2027, 1, 1))
    at = berlin(2027, 1, 1, 10, 30)  # the drift watch invests the seed (all cash: off band)
    [bought] = runtime.jobs.fire(sched(runtime, "drift"), at, at)
    assert bought.status == "ok" and bought.orders == 2

    at = berlin(2027, 6, 1, 18)  # BTC +110 %, held 151 days, worth about 10,500: taken
    [profit] = runtime.jobs.fire(sched(runtime, "profit"), at, at)
    assert profit.status == "ok" and profit.orders == 1
    [sale] = orders_of(runtime, profit.period)
    assert sale["side"] == "sell" and sale["base"] == "BTC"
    assert "move them to your diversified traditional investments" in sale["reason"]
    ledger = run_ledger(runtime, profit.period)
    proceeds = sale["notional"] - sale["fee"]
    assert ledger[-1] == ("withdrawal", "USDT", pytest.approx(-proceeds))
    cash = runtime.store.ledger_balances()["USDT"]
    assert cash == pytest.approx(
        sum(a for _, asset, a in run_ledger(runtime, bought.period) if asset == "USDT") + 10_000
    )
    assert cash < 10  # what the first buys left: the proceeds are gone from the account
    assert runtime.store.plan_state().profit_to_move == 0.0  # booked out, nothing set aside

    # The night after (the issue: bought back at 00:30), and the day after: nothing bought.
    for at in (berlin(2027, 6, 2, 0, 30), berlin(2027, 6, 2, 10, 30)):
        outcomes = runtime.jobs.fire(sched(runtime, "drift"), at, at)
        assert [o.status for o in outcomes] == ["quiet"], outcomes
    assert runtime.store.ledger_balances()["USDT"] == pytest.approx(cash)
    # Both milestones taken: they re-armed at 210. The sale was above the 25 % cap, so it
    # was proposed in part: the next day's profit run sells the rest (and only that), and
    # the day after has nothing left to take (was: the rest was never sold).
    state = runtime.store.plan_state()
    assert state.profit_base == {"BTC": 210.0} and state.profit_due["BTC"] > 0
    assert "(part: " in sale["reason"] and "the rest at a later run" in sale["reason"]
    at = berlin(2027, 6, 2, 18)
    [rest] = runtime.jobs.fire(sched(runtime, "profit"), at, at)
    assert rest.status == "ok" and rest.orders == 1
    [order] = orders_of(runtime, rest.period)
    assert order["base"] == "BTC" and order["side"] == "sell"
    assert "the rest of a profit sale the cap split" in order["reason"]
    assert order["amount"] == pytest.approx(state.profit_due["BTC"], rel=1e-6)
    assert runtime.store.plan_state().profit_due == {}
    at = berlin(2027, 6, 3, 18)
    assert [o.status for o in runtime.jobs.fire(sched(runtime, "profit"), at, at)] == ["quiet"]


def test_read_only_profit_proceeds_are_set_aside_until_the_person_moves_them(
    read_only_runtime, plan_standin, plan_prices
) -> None:
    runtime = read_only_runtime
    price = plan_prices["BTC"]
    btc = 20_000 / price
    plan_standin.set_balance("BTC", btc)
    plan_standin.set_balance("USDT", 0)
    profit = sched(runtime, "profit")
    at = berlin(2027, 1, 5, 18)  # first seen: costed and dated today
    runtime.jobs.fire(profit, at, at + timedelta(seconds=1))
    state = runtime.store.plan_state()
    assert state.cost_basis == {"BTC": pytest.approx(price)}
    assert state.held_since == {"BTC": "2027-01-05"}

    plan_standin.set_price("BTC", price * 2)
    at = berlin(2027, 5, 5, 18)  # 120 days later, +100 %
    [taken] = runtime.jobs.fire(profit, at, at + timedelta(seconds=1))
    assert taken.status == "ok" and taken.orders == 1
    [sale] = orders_of(runtime, taken.period)
    proceeds = sale["notional"] - sale["fee"]
    assert runtime.store.plan_state().profit_to_move == pytest.approx(proceeds)
    notes = runtime.store.last_run("profit")["notes"]  # type: ignore[index]
    assert any("diversified traditional investments" in n for n in notes)

    # The person sold, the money is still on the account: the drift watch (crypto far below
    # its band of the whole portfolio) does not spend it.
    plan_standin.set_balance("BTC", btc - sale["amount"])
    plan_standin.set_balance("USDT", proceeds)
    drift = sched(runtime, "drift")
    at = berlin(2027, 5, 6, 0, 30)
    [rebalanced] = runtime.jobs.fire(drift, at, at + timedelta(seconds=1))
    orders = orders_of(runtime, rebalanced.period)
    bought = sum(o["notional"] + o["fee"] for o in orders if o["side"] == "buy")
    sold = sum(o["notional"] - o["fee"] for o in orders if o["side"] == "sell")
    assert orders and bought <= sold + 1e-6
    assert runtime.store.plan_state().profit_to_move == pytest.approx(proceeds, rel=0.01)

    # Moved to the bank: seen gone, nothing set aside any more.
    plan_standin.set_balance("USDT", 0)
    at = berlin(2027, 5, 6, 1, 30)
    runtime.jobs.fire(drift, at, at + timedelta(seconds=1))
    assert runtime.store.plan_state().profit_to_move == 0.0


# --- stages own their contributions; retirement ---------------------------------------------------

# 62 on 10 March 2028 (the guide's Linda, "planning to retire at 62"): a Pre-Retiree by age.
EARLY_RETIREE = {
    "investor": {
        "birth_date": "1966-03-10",
        "retirement_age": 62,
        "monthly_contribution": 2_000,
        "contribution_start": None,
    },
    "paper": {"initial_balances": {"USDT": 1_000, "BTC": 1, "ETH": 10}},
}


RETIREE = {"investor": {"birth_date": "1955-01-01", "contribution_start": None}}  # 72 in 2027


def fire_at(runtime: Runtime, name: str, at: datetime) -> list[Outcome]:
    return runtime.jobs.fire(sched(runtime, name), at, at + timedelta(seconds=2))


def deposits_of(runtime: Runtime, period: str) -> list[float]:
    return [a for kind, _, a in run_ledger(runtime, period) if kind == "deposit"]


def test_a_retiree_gets_no_dca_and_withdrawals_from_the_retirement_date(
    make_config, history_runtime
) -> None:
    runtime = history_runtime(make_config(EARLY_RETIREE))
    seed_paper(runtime, berlin(2028, 2, 1))
    assert fire_at(runtime, "dca", berlin(2028, 3, 1, 9))[0].status == "ok"
    assert deposits_of(runtime, "dca:2028-03") == [2_000]
    before = fire_at(runtime, "withdraw", berlin(2028, 2, 15, 9))
    assert [(o.status, o.error) for o in before] == [
        ("skipped", "withdrawals start at retirement on 2028-03-10 (investor.retirement_age 62)")
    ]

    withdrawn = fire_at(runtime, "withdraw", berlin(2028, 3, 15, 9))  # retired on the 10th
    assert withdrawn[0].status == "ok" and withdrawn[0].orders > 0
    sells = orders_of(runtime, "withdraw:2028-03")
    assert {o["side"] for o in sells} == {"sell"}
    assert all("withdrawal of 3.0% a year in 12 part(s)" in o["reason"] for o in sells)
    after = fire_at(runtime, "dca", berlin(2028, 4, 1, 9))
    assert after[0].status in ("ok", "skipped")  # ok when cents are carried: no deposit either
    assert deposits_of(runtime, "dca:2028-04") == []
    # The age band still sets the allocation: a Pre-Retiree's (51-64).
    assert targets_on(runtime.config.profile, date(2028, 4, 1)).stage.id == "pre_retiree"


def test_a_retiree_by_age_invests_nothing(make_config, history_runtime) -> None:
    """Before, `monthly_contribution` applied in every stage: a 72-year-old kept investing
    2,000 a month."""
    runtime = history_runtime(make_config(RETIREE))
    seed_paper(runtime, berlin(2027, 1, 1))
    outcomes = dca_on(runtime, 2)
    reason = (
        "retired since 2020-01-01 (the age band of stage 'retiree'): no contribution unless "
        "[investor.contributions] gives retiree one and nothing is carried: nothing to invest"
    )
    assert [(o.status, o.error) for o in outcomes] == [("skipped", reason)]
    assert deposits_of(runtime, "dca:2027-02") == []


def test_a_retiree_invests_what_the_config_names_for_the_stage(
    make_config, history_runtime
) -> None:
    investor = {**RETIREE["investor"], "contributions": {"retiree": 300}}
    runtime = history_runtime(make_config({"investor": investor}))
    seed_paper(runtime, berlin(2027, 1, 1))
    assert dca_on(runtime, 2)[0].status == "ok"
    assert deposits_of(runtime, "dca:2027-02") == [300]


@pytest.mark.parametrize(("amount", "warned"), [(1_000, True), (400, False)])
def test_the_yearly_reassessment_warns_of_a_contribution_outside_the_stages_range(
    make_config, history_runtime, amount, warned
) -> None:
    investor = {**YOUNG["investor"], "contributions": {"young_professional": amount}}
    runtime = history_runtime(make_config({"investor": investor}))
    seed_paper(runtime, berlin(2027, 1, 1))
    with capture_logs() as logs:
        assert fire_at(runtime, "reassess", berlin(2027, 5, 10, 8))[0].status == "ok"
    events = runtime.store.events(kind="contribution_outside_range")
    warnings = [e for e in logs if e["event"] == "contribution_outside_range"]
    if not warned:
        assert events == [] and warnings == []
        return
    text = (
        "investor.contributions.young_professional: stage 'young_professional' starts with "
        "1,000.00 USDT a month, above the guide's 200-500"
    )
    assert [e["data"] for e in events] == [
        {"stage": "young_professional", "starts_with": 1_000.0, "warning": text}
    ]
    assert [(e["log_level"], e["warning"]) for e in warnings] == [("warning", text)]


def test_an_index_of_cadence_never_has_no_rebalance_period(
    make_config, history_runtime, write_plan
) -> None:
    plan = write_plan(
        {"dca": ("never", {"BTC": 100}), "core": ("quarterly", {"ETH": 100})},
        [plan_stage("only", sleeves={"dca": 50, "core": 50}, portfolio_rebalance="quarterly")],
    )
    runtime = history_runtime(make_config({**YOUNG, **plan}))
    at = berlin(2027, 1, 2, 10)
    assert runtime.jobs.periods_for(sched(runtime, "rebalance-quarterly"), at) == [
        ("rebalance:core:2027-Q1", "core"),
        ("rebalance:portfolio:2027-Q1", None),
    ]
    for other in ("rebalance-weekly", "rebalance-monthly", "rebalance-annual"):
        assert runtime.jobs.periods_for(sched(runtime, other), at) == []


def test_the_yearly_reassessment_records_the_goal_and_the_emergency_fund(
    make_config, history_runtime
) -> None:
    runtime = history_runtime(make_config(YOUNG))
    seed_paper(runtime, berlin(2027, 1, 1))
    assert fire_at(runtime, "reassess", berlin(2027, 5, 10, 8))[0].status == "ok"
    [event] = runtime.store.events(kind="reassessed")
    data = event["data"]
    value = data["account_value"]
    assert data["emergency_fund_months"] == [3, 3]
    assert data["portfolio_goal"] == {
        "min": 50_000,
        "max": 100_000,
        "by_age": 30,
        "progress": f"{value / 50_000 * 100:.1f} % of the goal's lower end",
    }
