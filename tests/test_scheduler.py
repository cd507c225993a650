"""When jobs fire: period keys, a calendar year of the schedules in the investor's time zone
(DST included, checked against APScheduler's cron triggers), and what a restart after downtime
catches up."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from itertools import islice
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.cron import CronTrigger
from support import time_limit

from stagewise.periods import period_key, period_of
from stagewise.scheduler import LiveScheduler
from stagewise.schedules import Schedule, catch_up, fire_times, local_fire, schedules
from stagewise.settings import Config
from stagewise.simulate import daily

BERLIN = ZoneInfo("Europe/Berlin")
GRACE = timedelta(hours=72)
# More fire times than any schedule has in a year: a walk that loops on a DST change stops here
# (and fails its count) instead of hanging the suite.
BOUND = 20_000


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)


def year_of_fires(plan: list[Schedule], year: int, tz: ZoneInfo = BERLIN):
    start, end = datetime(year, 1, 1, tzinfo=tz), datetime(year + 1, 1, 1, tzinfo=tz)
    with time_limit(30):
        return list(islice(fire_times(plan, start, end), BOUND))


def by_name(config: Config) -> dict[str, Schedule]:
    return {s.name: s for s in schedules(config)}


def keys_of(fires: list[tuple[datetime, Schedule]], tz: ZoneInfo = BERLIN) -> list[str]:
    return [period_key(s.job, s.cadence, when.astimezone(tz)) for when, s in fires]


def never_done(_schedule: Schedule, _when: datetime) -> bool:
    return False


def cron_trigger(sched: Schedule) -> CronTrigger:
    """APScheduler's cron trigger of the same fields: the reference the schedules agree with."""
    return CronTrigger(timezone=sched.tz, second=0, **sched.cron)


def live_scheduler(config: Config, callback) -> LiveScheduler:
    return LiveScheduler(schedules(config), callback, grace=GRACE, tz=config.tz)


# --- period keys -------------------------------------------------------------------------------


def test_period_keys_name_the_calendar_period() -> None:
    moment = berlin(2027, 1, 1, 9)
    assert period_key("dca", "monthly", moment) == "dca:2027-01"
    assert period_key("rebalance", "quarterly", moment, "value_investor") == (
        "rebalance:value_investor:2027-Q1"
    )
    assert period_key("rebalance", "annual", moment, "value_investor") == (
        "rebalance:value_investor:2027"
    )
    assert period_of("quarterly", berlin(2027, 12, 31, 23)) == "2027-Q4"
    assert period_of("half", berlin(2027, 7, 1)) == "2027-H2"
    assert period_of("daily", berlin(2027, 3, 28, 23)) == "2027-03-28"
    assert period_of("hourly", berlin(2027, 3, 28, 3, 30)) == "2027-03-28T03"


def test_rebalance_fire_owns_one_period_per_sleeve_of_its_cadence(make_config) -> None:
    from stagewise.jobs import Jobs

    # Born 2001: 25-26 in 2027, a Young Professional (Momentum weekly, the rest quarterly).
    config = make_config({"investor": {"birth_date": "2001-05-10"}})
    plan = by_name(config)
    jobs = Jobs(config, store=None, account=_NoAccount())  # type: ignore[arg-type]
    quarter = berlin(2027, 1, 2, 10)
    assert jobs.periods_for(plan["rebalance-quarterly"], quarter) == [
        ("rebalance:ai_agents:2027-Q1", "ai_agents"),
        ("rebalance:balanced_investor:2027-Q1", "balanced_investor"),
        ("rebalance:portfolio:2027-Q1", None),
    ]
    assert jobs.periods_for(plan["rebalance-weekly"], berlin(2027, 1, 4, 10)) == [
        ("rebalance:momentum_trader:2027-W01", "momentum_trader")
    ]
    assert jobs.periods_for(plan["rebalance-annual"], quarter) == []  # no annual sleeve
    assert jobs.periods_for(plan["dca"], berlin(2027, 1, 1, 9)) == [("dca:2027-01", None)]


def test_weekly_keys_follow_iso_weeks_across_new_year(make_config) -> None:
    weekly = by_name(make_config())["rebalance-weekly"]  # Mondays 10:00
    fires = list(islice(fire_times([weekly], berlin(2025, 12, 1), berlin(2027, 1, 12)), BOUND))
    keys = keys_of(fires)
    assert len(keys) == len(set(keys)), "two Mondays share a week key"
    # 29 Dec 2025 is in ISO week 1 of 2026; 28 Dec 2026 in week 53 of 2026.
    on = {w.date(): k for (w, _), k in zip(fires, keys, strict=True)}
    assert on[date(2025, 12, 22)] == "rebalance:2025-W52"
    assert on[date(2025, 12, 29)] == "rebalance:2026-W01"
    assert on[date(2026, 1, 5)] == "rebalance:2026-W02"
    assert on[date(2026, 12, 28)] == "rebalance:2026-W53"
    assert on[date(2027, 1, 4)] == "rebalance:2027-W01"
    # Every week between is there once: 2026 has 53 ISO weeks.
    assert sum(k.startswith("rebalance:2026-") for k in keys) == 53


def test_weekly_on_a_friday_new_years_day_is_last_years_week(make_config) -> None:
    weekly = by_name(make_config({"schedule": {"rebalance_weekday": "fri"}}))["rebalance-weekly"]
    fires = list(islice(fire_times([weekly], berlin(2026, 12, 20), berlin(2027, 1, 10)), BOUND))
    assert [(w.date(), k) for (w, _), k in zip(fires, keys_of(fires), strict=True)] == [
        (date(2026, 12, 25), "rebalance:2026-W52"),
        (date(2027, 1, 1), "rebalance:2026-W53"),
        (date(2027, 1, 8), "rebalance:2027-W01"),
    ]


# --- a calendar year of fires --------------------------------------------------------------------


def mondays(year: int) -> int:
    day, n = date(year, 1, 1), 0
    while day.year == year:
        n += day.weekday() == 0
        day += timedelta(days=1)
    return n


@pytest.mark.parametrize("year", [2024, 2027])  # 2024 has 53 Mondays, 2027 has 52
def test_a_year_of_calendar_fires_in_berlin(make_config, year: int) -> None:
    config = make_config({"schedule": {"drift_enabled": False}})
    fires = year_of_fires(schedules(config), year)
    count = Counter(s.name for _, s in fires)
    assert count["dca"] == 12
    assert count["rebalance-weekly"] == mondays(year) == (53 if year == 2024 else 52)
    assert count["rebalance-monthly"] == 12
    assert count["rebalance-quarterly"] == 4
    assert count["rebalance-annual"] == 1
    assert count["reassess"] == 1
    assert count["profit"] == (366 if year == 2024 else 365)
    assert count["withdraw"] == 12
    # Each fire owns its own period: no key repeats within a schedule.
    for name in count:
        keys = keys_of([f for f in fires if f[1].name == name])
        assert len(keys) == len(set(keys)), name
    # All at the configured local times, whatever the UTC offset of the day.
    local = {(s.name, w.astimezone(BERLIN).strftime("%d %H:%M")) for w, s in fires}
    assert {t for n, t in local if n == "dca"} == {"01 09:00"}
    assert {t for n, t in local if n == "rebalance-quarterly"} == {"02 10:00"}
    quarters = [w.month for w, s in fires if s.name == "rebalance-quarterly"]
    assert quarters == [1, 4, 7, 10]
    # The 1 March 2027 DCA is at 09:00 CET (08:00 UTC), the 1 April one at 09:00 CEST (07:00 UTC).
    if year == 2027:
        dca = {w.month: w.astimezone(UTC).hour for w, s in fires if s.name == "dca"}
        assert (dca[3], dca[4]) == (8, 7)


def test_reassess_fires_once_on_the_birthday(make_config) -> None:
    config = make_config()  # born 1987-06-15, reassess_hour 8
    fires = year_of_fires([by_name(config)["reassess"]], 2027)
    assert [(w, keys_of(fires)[0]) for w, _ in fires] == [(berlin(2027, 6, 15, 8), "reassess:2027")]


@pytest.mark.parametrize("year", [2027, 2028])  # 2028 is a leap year: still 28 February
def test_a_29_february_birthday_is_reassessed_on_28_february(make_config, year: int) -> None:
    config = make_config({"investor": {"birth_date": "2000-02-29"}})
    fires = year_of_fires([by_name(config)["reassess"]], year)
    assert [w for w, _ in fires] == [berlin(year, 2, 28, 8)]


def test_hourly_drift_across_both_dst_changes(make_config) -> None:
    """The drift watch fires once per real hour that has a matching wall time (as APScheduler
    fires a cron trigger).

    2027 in Berlin: on 28 March 02:00 CET jumps to 03:00 CEST, so 02:30 does not exist and
    does not fire; on 31 October 03:00 CEST falls back to 02:00 CET, so 02:30 happens twice
    (fold 0 at 00:30 UTC, fold 1 at 01:30 UTC) and fires twice. The year has 8760 real hours:
    8760 fires, over 8759 hour keys, the repeated hour's key once for both of its fires."""
    drift = by_name(make_config())["drift"]
    fires = year_of_fires([drift], 2027)
    assert len(fires) == 365 * 24 == 8760
    utc = [w.astimezone(UTC) for w, _ in fires]
    assert all(b - a == timedelta(hours=1) for a, b in zip(utc, utc[1:], strict=False))
    keys = Counter(keys_of(fires))
    assert len(keys) == 8759
    assert {k: n for k, n in keys.items() if n > 1} == {"drift:2027-10-31T02": 2}
    twice = [w for w, _ in fires if w.astimezone(BERLIN).strftime("%m-%d %H") == "10-31 02"]
    assert [w.astimezone(UTC).hour for w in twice] == [0, 1]
    assert [w.astimezone(BERLIN).fold for w in twice] == [0, 1]
    every_label = {
        f"drift:{(datetime(2027, 1, 1) + timedelta(hours=h)).strftime('%Y-%m-%dT%H')}"
        for h in range(8760)
    }
    assert every_label - set(keys) == {"drift:2027-03-28T02"}  # the hour that does not exist


@pytest.fixture
def bounded():
    """Each test below fails, rather than hangs, if a schedule stops advancing."""
    with time_limit(10):
        yield


def test_latest_fire_in_the_repeated_hour_is_that_hour(make_config, bounded) -> None:
    drift = by_name(make_config())["drift"]
    second = datetime(2027, 10, 31, 1, 30, tzinfo=UTC)  # 02:30 CET, the second 02:30
    found = drift.latest(second + timedelta(minutes=10))
    assert found is not None and found.astimezone(UTC) == second
    after = drift.latest(datetime(2027, 10, 31, 2, 45, tzinfo=UTC))  # 03:45 CET
    assert after is not None and after.astimezone(UTC) == datetime(2027, 10, 31, 2, 30, tzinfo=UTC)
    spring = drift.latest(datetime(2027, 3, 28, 1, 15, tzinfo=UTC))  # 03:15 CEST
    assert spring == berlin(2027, 3, 28, 1, 30)  # 02:30 never happened


def test_next_after_steps_through_the_repeated_hour(make_config, bounded) -> None:
    drift = by_name(make_config())["drift"]
    first = datetime(2027, 10, 31, 0, 30, tzinfo=UTC).astimezone(BERLIN)
    second = drift.next_after(first)
    third = drift.next_after(second) if second else None
    assert second is not None and second.astimezone(UTC).hour == 1
    assert third is not None and third.astimezone(UTC).hour == 2


# --- catch-up ------------------------------------------------------------------------------------


def test_catch_up_inside_the_grace_window_runs_the_missed_dca_once(make_config) -> None:
    dca = by_name(make_config())["dca"]
    plan = catch_up([dca], berlin(2027, 2, 27, 12), berlin(2027, 3, 2, 8), GRACE, never_done)
    assert [(w, s.name) for w, s in plan.due] == [(berlin(2027, 3, 1, 9), "dca")]
    assert plan.missed == []


def test_catch_up_past_the_grace_window_records_the_dca_missed(make_config) -> None:
    dca = by_name(make_config())["dca"]
    plan = catch_up([dca], berlin(2027, 2, 27, 12), berlin(2027, 3, 4, 10), GRACE, never_done)
    assert plan.due == []
    assert [(w, s.name) for w, s in plan.missed] == [(berlin(2027, 3, 1, 9), "dca")]


def test_first_start_catches_nothing_up(make_config) -> None:
    plan = catch_up(schedules(make_config()), None, berlin(2027, 3, 2, 8), GRACE, never_done)
    assert plan.due == [] and plan.missed == []


def test_a_long_outage_runs_only_the_latest_period_inside_the_window(make_config) -> None:
    config = make_config({"schedule": {"grace_hours": 24 * 40}})
    dca = by_name(config)["dca"]
    grace = timedelta(hours=config.settings.schedule.grace_hours)
    plan = catch_up([dca], berlin(2026, 12, 20), berlin(2027, 3, 5), grace, never_done)
    assert [w for w, _ in plan.due] == [berlin(2027, 3, 1, 9)]
    assert [w for w, _ in plan.missed] == [berlin(2027, 1, 1, 9), berlin(2027, 2, 1, 9)]


def test_catch_up_skips_done_periods_and_never_catches_up_watch_jobs(make_config) -> None:
    config = make_config()
    ran = {berlin(2027, 3, 1, 9)}

    def done(schedule: Schedule, when: datetime) -> bool:
        return schedule.name == "dca" and when in ran

    plan = catch_up(schedules(config), berlin(2027, 2, 27, 12), berlin(2027, 3, 2, 12), GRACE, done)
    names = [s.name for _, s in plan.due]
    assert "dca" not in names
    assert not any(s.checks for _, s in [*plan.due, *plan.missed])
    # Monday 1 March 10:00 weekly, Tuesday 2 March 10:00 monthly/quarterly-day rebalances.
    assert names == ["rebalance-weekly", "rebalance-monthly"]


class _NoAccount:
    mode = "paper"
    allow_deposit = False
    settles = True


# --- the schedules agree with the cron triggers ---------------------------------------------------


def fires_day_by_day(sched: Schedule, start: datetime, end: datetime) -> list[datetime]:
    """The reference: the cron trigger asked afresh from each local midnight in [start, end).

    Not from the previous fire: APScheduler 3's field walk adds 24 hours to move a day, so
    after a fire before a spring-forward change it skips the next day (agronholm/apscheduler
    #529, #606; e.g. 00:30 daily on 29 March 2026 in Berlin gives 31 March next)."""
    tz = start.tzinfo
    trigger = cron_trigger(sched)
    fires: set[datetime] = set()
    day = start.date()
    while day < end.date():
        fire = trigger.get_next_fire_time(None, datetime.combine(day, time(0), tzinfo=tz))
        if fire is not None and fire < end:
            fires.add(fire.astimezone(UTC))
        day += timedelta(days=1)
    return sorted(fires)


def cron_days(sched: Schedule, start: date, end: date) -> list[date]:
    """The days the schedule's date fields match in [start, end), from the same cron fields
    in UTC (where no day has a DST change to get wrong)."""
    dates = {k: v for k, v in sched.cron.items() if k not in ("hour", "minute")}
    utc = CronTrigger(timezone=UTC, hour=0, minute=0, second=0, **dates)
    days, fire = [], utc.get_next_fire_time(None, datetime.combine(start, time(0), tzinfo=UTC))
    while fire is not None and fire.date() < end:
        days.append(fire.date())
        fire = utc.get_next_fire_time(None, fire + timedelta(microseconds=1))
    return days


@pytest.mark.parametrize(
    ("zone", "hour", "weekday", "withdraw_periods", "birth"),
    [
        ("Europe/Berlin", 0, "sun", 12, "1980-03-29"),  # fires before the DST change
        ("Europe/Berlin", 2, "sun", 12, "1980-03-29"),  # 02:00: skipped in spring, twice in autumn
        ("America/New_York", 1, "sun", 4, "1972-02-29"),
        ("Australia/Lord_Howe", 2, "sat", 2, "1960-10-31"),  # a half-hour DST shift at 02:00
        ("America/Santiago", 0, "sat", 1, "1955-09-07"),  # DST changes at midnight
        ("America/Asuncion", 0, "sun", 12, "1970-10-01"),  # midnight, a 1 October DCA included
        ("Asia/Beirut", 0, "sun", 12, "1990-03-30"),
        ("UTC", 23, "mon", 12, "1990-12-31"),
    ],
)
def test_calendar_steps_fire_on_every_day_the_cron_fields_match(
    make_config, zone: str, hour: int, weekday: str, withdraw_periods: int, birth: str
) -> None:
    """`Schedule.next_after` (what `fire_times` and the live scheduler walk) over four years,
    for every schedule (the drift watch as a simulation runs it, daily): one fire on each day
    the cron fields match, DST days included (a skipped local time fires as much later as the
    clock jumped, a repeated one once), and on every ordinary day exactly the cron trigger's
    own fire time."""
    config = make_config(
        {
            "investor": {"timezone": zone, "birth_date": birth},
            "schedule": {
                "dca_hour": hour,
                "rebalance_hour": hour,
                "rebalance_weekday": weekday,
                "profit_hour": hour,
                "reassess_hour": hour,
                "drift_minute": 30,
                "withdraw_periods": withdraw_periods,
                "drift_enabled": True,
            },
        }
    )
    tz = ZoneInfo(zone)
    start, end = datetime(2026, 1, 1, tzinfo=tz), datetime(2030, 1, 1, tzinfo=tz)
    stepped = [daily(s) for s in schedules(config)]
    with time_limit(60):
        for sched in stepped:
            assert sched.hour is not None
            at = time(sched.hour, sched.minute)
            walked = [w.astimezone(UTC) for w, _ in islice(fire_times([sched], start, end), BOUND)]
            days = cron_days(sched, start.date(), end.date())
            expected = [local_fire(d, at, tz) for d in days]
            assert walked == [f for f in expected if f >= start], sched.name
            ordinary = {d for d in days if regular(datetime.combine(d, at, tzinfo=tz))}
            on_ordinary_days = [f for f in walked if f.astimezone(tz).date() in ordinary]
            assert on_ordinary_days == [
                f
                for f in fires_day_by_day(sched, start, end)
                if f.astimezone(tz).date() in ordinary
            ], sched.name
            every_day = sched.cron.keys() == {"hour", "minute"}
            assert len(walked) >= (4 * 365 if every_day else 4), sched.name


def regular(local: datetime) -> bool:
    return local.utcoffset() == local.replace(fold=1).utcoffset()


def test_the_live_scheduler_does_not_skip_the_day_after_a_spring_forward_fire(make_config) -> None:
    """APScheduler's cron trigger alone goes from 00:00 on 29 March 2026 (Berlin, before the
    02:00 change) to 31 March; the schedule, and the trigger the live scheduler runs, step to
    30 March."""
    config = make_config({"schedule": {"profit_hour": 0}})
    live = live_scheduler(config, lambda _s, _w: None)
    trigger = live._scheduler.get_job("profit").trigger  # the trigger APScheduler runs
    profit = by_name(config)["profit"]
    fire = berlin(2026, 3, 29, 0)
    cron = cron_trigger(profit)
    assert cron.get_next_fire_time(None, fire + timedelta(microseconds=1)) == berlin(2026, 3, 31)
    assert profit.next_after(fire) == berlin(2026, 3, 30, 0)
    assert trigger.get_next_fire_time(fire, fire) == berlin(2026, 3, 30, 0)
    assert trigger.get_next_fire_time(None, fire) == berlin(2026, 3, 29, 0)
    assert str(trigger) == str(cron)


# --- retries of a failed run ---------------------------------------------------------------------


def test_a_failed_fire_is_retried_with_doubling_delays_inside_the_grace_window() -> None:
    from stagewise.schedules import RETRY_FIRST, RETRY_MOST, retry_at

    fired = datetime(2027, 1, 1, 8, tzinfo=UTC)
    grace = timedelta(hours=72)
    waits = [retry_at(fired, n, fired, grace) - fired for n in range(1, 9)]  # type: ignore[operator]
    assert waits[:4] == [RETRY_FIRST, 2 * RETRY_FIRST, 4 * RETRY_FIRST, 8 * RETRY_FIRST]
    assert max(waits) == RETRY_MOST and waits == sorted(waits)
    assert retry_at(fired, 0, fired, grace) is None  # nothing failed: nothing to retry
    late = fired + grace - timedelta(minutes=1)
    assert retry_at(fired, 1, late, grace) is None  # past the window: the period stays open
    assert retry_at(fired, 10_000, fired, grace) == fired + RETRY_MOST  # bounded, no overflow


def test_the_live_scheduler_fires_a_retry_and_a_reload_keeps_it(make_config) -> None:
    import threading

    config = make_config()
    fired: list[tuple[str, datetime]] = []
    done = threading.Event()

    def callback(sched: Schedule, scheduled_at: datetime) -> None:
        fired.append((sched.name, scheduled_at))
        done.set()

    live = live_scheduler(config, callback)
    dca = next(s for s in schedules(config) if s.name == "dca")
    scheduled_at = datetime(2027, 1, 1, 8, tzinfo=UTC)
    live.retry(dca, scheduled_at, datetime.now(UTC) + timedelta(seconds=0.3))
    live.install(schedules(config))  # a config reload
    assert len(live.retries()) == 1
    live.start()
    try:
        assert done.wait(10), "the retry did not fire"
        settled(live)
    finally:
        live.shutdown()
    assert fired == [("dca", scheduled_at)]  # the fire's own time: the same periods


def test_a_retry_that_fails_schedules_the_next_one_and_it_fires_too(make_config) -> None:
    """The retry chain: the callback of a retry adds the next retry of the same fire while
    APScheduler is finishing the one that runs; the new one must survive and fire."""
    import threading

    config = make_config()
    calls: list[datetime] = []
    done = threading.Event()
    live: LiveScheduler

    def callback(sched: Schedule, scheduled_at: datetime) -> None:
        calls.append(scheduled_at)
        if len(calls) < 3:  # "failed": try again shortly
            live.retry(sched, scheduled_at, datetime.now(UTC) + timedelta(seconds=0.2))
        else:
            done.set()

    live = live_scheduler(config, callback)
    dca = next(s for s in schedules(config) if s.name == "dca")
    scheduled_at = datetime(2027, 1, 1, 8, tzinfo=UTC)
    live.retry(dca, scheduled_at, datetime.now(UTC) + timedelta(seconds=0.2))
    live.start()
    try:
        assert done.wait(10), f"the retry chain broke after {len(calls)} call(s)"
        settled(live)
    finally:
        live.shutdown()
    assert calls == [scheduled_at] * 3


def settled(live) -> None:
    """Wait until the scheduler has removed the one-off jobs that ran (it does so just after
    handing them to the worker: a shutdown in between races it in APScheduler's thread)."""
    import time

    deadline = time.monotonic() + 5
    while live.retries():
        assert time.monotonic() < deadline, live.retries()
        time.sleep(0.01)
