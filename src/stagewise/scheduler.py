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
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from stagewise.periods import Cadence
from stagewise.settings import Config
from stagewise.targets import add_months

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
    # The trigger's shape, when it fires at one local time of day (`at`) every `step`
    # calendar days ("days", n) or months ("months", n, on a day of month <= 28): the fire
    # after a fire is then found by calendar arithmetic instead of the trigger's field walk.
    at: time | None = None
    step: tuple[str, int] | None = None

    def next_after(self, moment: datetime) -> datetime | None:
        """The first fire time strictly after `moment`."""
        # In UTC: wall-clock arithmetic on a local time drops the fold of a repeated DST hour.
        return self.trigger.get_next_fire_time(
            None, moment.astimezone(UTC) + timedelta(microseconds=1)
        )

    def following(self, fire: datetime) -> datetime | None:
        """The fire after `fire` (a fire time of this schedule): `at` one calendar step
        later, by date arithmetic (~100x cheaper than the trigger's field walk, which also
        skips the day after a fire that precedes a spring-forward change). A local time that
        DST skips fires as much later as the clock jumped; a repeated one fires once, the
        first time. Schedules without a step ask the trigger. tests/test_scheduler.py checks
        both against the cron fields over years and time zones."""
        if self.at is None or self.step is None:
            return self.next_after(fire)
        tz = self.trigger.timezone  # type: ignore[attr-defined]  # cron triggers have one
        day = fire.astimezone(tz).date()
        if local_fire(day, self.at, tz) != fire:  # not at `at`: not a fire of ours
            return self.next_after(fire)
        return local_fire(_stepped(day, self.step), self.at, tz)


def local_fire(day: date, at: time, tz: tzinfo) -> datetime:
    """The moment (UTC) of local time `at` on `day`. A time in a DST gap is read with the
    offset from before the change (03:30 summer time for a skipped 02:30); a repeated time
    is its first occurrence."""
    return datetime.combine(day, at, tzinfo=tz).astimezone(UTC)


def _stepped(day: date, step: tuple[str, int]) -> date:
    unit, n = step
    return day + timedelta(days=n) if unit == "days" else add_months(day, n)


def schedules(config: Config, *, daily_prices: bool = False) -> list[Schedule]:
    """Every trigger the config asks for (sleeve cadences from the data, stage cadences too).

    `daily_prices` (simulations over daily closes): the drift watch fires once a day, at
    00:`drift_minute`, since its other 23 checks of a day would see the same prices."""
    s = config.settings.schedule
    tz = config.tz

    def timed(
        name: str,
        job: str,
        cadence: Cadence,
        step: tuple[str, int] | None,
        hour: int | None,
        minute: int = 0,
        checks: bool = False,
        **dates: object,
    ) -> Schedule:
        """A cron schedule at `minute` of `hour` (of every hour when None) in the investor's
        time zone, on the days `dates` match, which are `step` apart."""
        if s.interval_seconds:  # the tests' fast clock: no calendar shape
            trigger: BaseTrigger = IntervalTrigger(seconds=s.interval_seconds, timezone=tz)
            return Schedule(name, job, cadence, trigger, checks)
        fields = (
            {**dates, "minute": minute}
            if hour is None
            else {**dates, "hour": hour, "minute": minute}
        )
        trigger = CronTrigger(timezone=tz, second=0, **fields)  # type: ignore[arg-type]
        if hour is None or step is None:
            return Schedule(name, job, cadence, trigger, checks)
        return Schedule(name, job, cadence, trigger, checks, time(hour, minute), step)

    birth = config.settings.investor.birth_date
    # A 29 February birthday is re-assessed on 28 February, which exists every year.
    reassess_day = min(birth.day, 28) if birth.month == 2 else birth.day
    months, withdraw_cadence = WITHDRAW_MONTHS[s.withdraw_periods]
    withdraw_step = ("months", 12 // s.withdraw_periods)
    out = [
        timed("dca", "dca", "monthly", ("months", 1), s.dca_hour, day=s.dca_day),
        timed(
            "rebalance-weekly",
            "rebalance",
            "weekly",
            ("days", 7),
            s.rebalance_hour,
            day_of_week=s.rebalance_weekday,
        ),
        timed(
            "rebalance-monthly",
            "rebalance",
            "monthly",
            ("months", 1),
            s.rebalance_hour,
            day=s.rebalance_day,
        ),
        timed(
            "rebalance-quarterly",
            "rebalance",
            "quarterly",
            ("months", 3),
            s.rebalance_hour,
            month=QUARTER_MONTHS,
            day=s.rebalance_day,
        ),
        timed(
            "rebalance-annual",
            "rebalance",
            "annual",
            ("months", 12),
            s.rebalance_hour,
            month=1,
            day=s.rebalance_day,
        ),
        timed("profit", "profit", "daily", ("days", 1), s.profit_hour, checks=True),
        timed(
            "withdraw",
            "withdraw",
            withdraw_cadence,
            withdraw_step,
            s.dca_hour,
            month=months,
            day=s.withdraw_day,
        ),
        timed(
            "reassess",
            "reassess",
            "annual",
            ("months", 12),
            s.reassess_hour,
            month=birth.month,
            day=reassess_day,
        ),
    ]
    if s.drift_enabled:
        # Hourly; once a day on daily prices (no calendar step for the hourly walk: only the
        # live daemon and catch-up use it, over short stretches).
        hour, step = (0, ("days", 1)) if daily_prices else (None, None)
        out.append(timed("drift", "drift", "hourly", step, hour, s.drift_minute, checks=True))
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
        following = sched.following(when)
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


# A failed run is tried again after these delays (doubling from the first, at most the
# last), while the retry still falls inside the grace window of the fire.
RETRY_FIRST = timedelta(minutes=5)
RETRY_MOST = timedelta(hours=1)


def retry_at(
    scheduled_at: datetime, failures: int, now: datetime, grace: timedelta
) -> datetime | None:
    """When a fire whose periods failed `failures` times is tried again: 5 minutes after the
    first failure, doubling to at most an hour apart; None once that would be past the grace
    window (`scheduled_at + grace`): the period then stays open, with its failed attempts
    recorded, for a person to run with `stagewise once`."""
    if failures < 1:
        return None
    delay = min(RETRY_FIRST * 2 ** min(failures - 1, 16), RETRY_MOST)
    when = now + delay
    return when if when <= scheduled_at + grace else None


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
        """Replace every scheduled job by `plan` (used on start and on a config reload);
        pending retries are kept."""
        for job in self._scheduler.get_jobs():
            if not job.id.startswith(_RETRY):
                job.remove()
        self._schedules = plan
        for sched in plan:
            self._scheduler.add_job(
                self._fire, trigger=_Stepping(sched), args=[sched], id=sched.name, name=sched.name
            )

    def retry(self, sched: Schedule, scheduled_at: datetime, when: datetime) -> None:
        """Fire `sched` for `scheduled_at` again at `when` (a failed run's retry). Each retry
        is its own one-off job: a retry that fails schedules the next one from inside the
        running job, which APScheduler removes once it has run (a shared id would lose the
        new one). A fire whose periods are done by then runs nothing."""
        from apscheduler.triggers.date import DateTrigger

        self._scheduler.add_job(
            self._callback,
            trigger=DateTrigger(run_date=when),
            args=[sched, scheduled_at],
            id=f"{_RETRY}{sched.name}:{scheduled_at.isoformat()}:{when.isoformat()}",
            name=f"retry {sched.name}",
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

    def retries(self) -> dict[str, datetime]:
        """The pending retries, by job id, with when they fire."""
        return {
            j.id: j.trigger.run_date for j in self._scheduler.get_jobs() if j.id.startswith(_RETRY)
        }

    def next_runs(self) -> dict[str, datetime]:
        """The next fire time of each schedule."""
        return {j.id: j.next_run_time for j in self._scheduler.get_jobs() if j.next_run_time}


_RETRY = "retry:"  # the id prefix of a retry's one-off job


class _Stepping(BaseTrigger):
    """A schedule's trigger for the live scheduler: the fire after a fire is
    `Schedule.following`, as in `fire_times`. APScheduler 3's cron trigger alone moves a day by
    adding 24 hours, and so skips the day after a daily fire that comes before a spring-forward
    change (agronholm/apscheduler#529, #606)."""

    def __init__(self, schedule: Schedule) -> None:
        self.schedule = schedule

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        if previous_fire_time is None:
            return self.schedule.trigger.get_next_fire_time(None, now)
        return self.schedule.following(previous_fire_time)

    def __str__(self) -> str:
        return str(self.schedule.trigger)


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
