"""When jobs fire: cron triggers in the investor's time zone (the only APScheduler importer).

`schedules(config)` lists the daemon's triggers; `fire_times` walks them in time order (the
simulated clock of `simulate` and of the tests); `catch_up` decides, on start, which missed
periods still run (inside the grace window) and which are recorded as missed. `Daemon` runs
the live loop: one job at a time, sd_notify, SIGHUP reload, SIGTERM stop.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from daemon.periods import Cadence
from daemon.settings import Config

# How far back a restart looks for periods it missed (a longer outage is logged from here).
MAX_LOOKBACK = timedelta(days=400)
QUARTER_MONTHS = "1,4,7,10"
WITHDRAW_MONTHS = {
    1: ("1", "annual"),
    2: ("1,7", "half"),
    4: (QUARTER_MONTHS, "quarterly"),
    12: ("*", "monthly"),
}


@dataclass(frozen=True)
class Schedule:
    """One trigger of the daemon: which job it fires and the cadence of its periods.

    `checks` are watch jobs (drift, profit): they record a run only when they propose, are
    never caught up after downtime (a stale check proves nothing), and are never 'missed'."""

    name: str
    job: str
    cadence: Cadence
    trigger: BaseTrigger
    checks: bool = False

    def next_after(self, moment: datetime) -> datetime | None:
        """The first fire time strictly after `moment`."""
        # In UTC: wall-clock arithmetic on a local time drops the fold of a repeated DST hour.
        return self.trigger.get_next_fire_time(
            None, moment.astimezone(UTC) + timedelta(microseconds=1)
        )


def schedules(config: Config, *, daily_prices: bool = False) -> list[Schedule]:
    """Every trigger the config asks for (sleeve cadences from the data, stage cadences too).

    `daily_prices` (simulations over daily closes): the drift watch fires once a day, at
    00:`drift_minute`, since its other 23 checks of a day would see the same prices."""
    s = config.settings.schedule
    tz = config.tz

    def cron(**fields: object) -> BaseTrigger:
        if s.interval_seconds:
            return IntervalTrigger(seconds=s.interval_seconds, timezone=tz)
        return CronTrigger(timezone=tz, second=0, **fields)  # type: ignore[arg-type]

    birth = config.settings.investor.birth_date
    # A 29 February birthday is re-assessed on 28 February, which exists every year.
    reassess_day = min(birth.day, 28) if birth.month == 2 else birth.day
    months, withdraw_cadence = WITHDRAW_MONTHS[s.withdraw_periods]
    out = [
        Schedule("dca", "dca", "monthly", cron(day=s.dca_day, hour=s.dca_hour, minute=0)),
        Schedule(
            "rebalance-weekly",
            "rebalance",
            "weekly",
            cron(day_of_week=s.rebalance_weekday, hour=s.rebalance_hour, minute=0),
        ),
        Schedule(
            "rebalance-monthly",
            "rebalance",
            "monthly",
            cron(day=s.rebalance_day, hour=s.rebalance_hour, minute=0),
        ),
        Schedule(
            "rebalance-quarterly",
            "rebalance",
            "quarterly",
            cron(month=QUARTER_MONTHS, day=s.rebalance_day, hour=s.rebalance_hour, minute=0),
        ),
        Schedule(
            "rebalance-annual",
            "rebalance",
            "annual",
            cron(month=1, day=s.rebalance_day, hour=s.rebalance_hour, minute=0),
        ),
        Schedule("profit", "profit", "daily", cron(hour=s.profit_hour, minute=0), checks=True),
        Schedule(
            "withdraw",
            "withdraw",
            withdraw_cadence,
            cron(month=months, day=s.withdraw_day, hour=s.dca_hour, minute=0),
        ),
        Schedule(
            "reassess",
            "reassess",
            "annual",
            cron(month=birth.month, day=reassess_day, hour=s.reassess_hour, minute=0),
        ),
    ]
    if s.drift_enabled:
        hours = {"hour": 0} if daily_prices else {}
        out.append(
            Schedule("drift", "drift", "hourly", cron(minute=s.drift_minute, **hours), checks=True)
        )
    return out


def fire_times(
    plan: Iterable[Schedule], start: datetime, end: datetime
) -> Iterator[tuple[datetime, Schedule]]:
    """Every fire time in [start, end) of every schedule, in time order (ties: list order)."""
    heap: list[tuple[datetime, int, Schedule]] = []
    for order, sched in enumerate(plan):
        first = sched.trigger.get_next_fire_time(None, start)
        if first is not None and first < end:
            heap.append((first, order, sched))
    heapq.heapify(heap)
    while heap:
        when, order, sched = heapq.heappop(heap)
        yield when, sched
        following = sched.next_after(when)
        if following is not None and following < end:
            heapq.heappush(heap, (following, order, sched))


@dataclass(frozen=True)
class CatchUp:
    """What a start after downtime does: run `due` once each, record `missed`."""

    due: list[tuple[datetime, Schedule]]
    missed: list[tuple[datetime, Schedule]]


def catch_up(
    plan: Iterable[Schedule],
    last_seen: datetime | None,
    now: datetime,
    grace: timedelta,
    done: Callable[[Schedule, datetime], bool],
) -> CatchUp:
    """Periods that fired while the daemon was down, and were not run.

    The latest fire time of each schedule inside the grace window runs once, if its period
    was not done; earlier ones, and those before the window, are missed. A first start
    (no `last_seen`) catches nothing up: a new install never trades for the past. Watch
    jobs are never caught up."""
    if last_seen is None:
        return CatchUp(due=[], missed=[])
    window_start = now - grace
    since = max(last_seen, now - MAX_LOOKBACK)
    latest: dict[str, tuple[datetime, Schedule]] = {}
    missed: list[tuple[datetime, Schedule]] = []
    for when, sched in fire_times([p for p in plan if not p.checks], since, now):
        if done(sched, when):
            continue
        if when >= window_start:
            previous = latest.get(sched.name)
            if previous is not None:
                missed.append(previous)
            latest[sched.name] = (when, sched)
        else:
            missed.append((when, sched))
    return CatchUp(due=sorted(latest.values(), key=lambda x: x[0]), missed=missed)


class LiveScheduler:
    """APScheduler running the schedules live: one job at a time, missed fires coalesced.

    `callback(schedule, scheduled_at)` runs in the scheduler's single worker thread."""

    def __init__(self, config: Config, callback: Callable[[Schedule, datetime], None]) -> None:
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.background import BackgroundScheduler

        grace = int(config.settings.schedule.grace_hours * 3600) or 1
        self._scheduler = BackgroundScheduler(
            timezone=config.tz,
            executors={"default": ThreadPoolExecutor(max_workers=1)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": grace},
        )
        self._callback = callback
        self._schedules: list[Schedule] = []
        self.install(schedules(config))

    def install(self, plan: list[Schedule]) -> None:
        """Replace every scheduled job by `plan` (used on start and on a config reload)."""
        self._scheduler.remove_all_jobs()
        self._schedules = plan
        for sched in plan:
            self._scheduler.add_job(
                self._fire, trigger=sched.trigger, args=[sched], id=sched.name, name=sched.name
            )

    def _fire(self, sched: Schedule) -> None:
        # The scheduler is the clock's edge: jobs get times passed in.
        now = datetime.now(UTC)
        self._callback(sched, latest_fire(sched, now) or now)

    def start(self) -> None:
        self._scheduler.start()

    def shutdown(self) -> None:
        """Stop firing; wait for a running job to finish (its run is one transaction)."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)

    def next_runs(self) -> dict[str, datetime]:
        """The next fire time of each schedule."""
        return {j.id: j.next_run_time for j in self._scheduler.get_jobs() if j.next_run_time}


# How far back the latest fire of a cadence can lie (a bit over one period).
_LOOKBACK = {
    "hourly": timedelta(hours=2),
    "daily": timedelta(days=2),
    "weekly": timedelta(days=15),
    "monthly": timedelta(days=63),
    "quarterly": timedelta(days=190),
    "half": timedelta(days=370),
    "annual": timedelta(days=370),
}


def latest_fire(sched: Schedule, now: datetime) -> datetime | None:
    """The most recent fire time of `sched` at or before `now`: the period being run."""
    if isinstance(sched.trigger, IntervalTrigger):  # demo/test intervals: the fire is now
        return now
    last = None
    for when, _ in fire_times([sched], now - _LOOKBACK[sched.cadence], now + timedelta(seconds=1)):
        last = when
    return last
