"""When jobs fire: the daemon's schedules as plain data, in the investor's time zone.

`schedules(config)` lists them. A `Schedule` answers when it fires (`next_from`, `next_after`,
`latest`) by calendar arithmetic on its cron-like fields: the same answers for the live
scheduler (stagewise.scheduler runs them with APScheduler), the simulated clock (`fire_times`)
and the catch-up after downtime (`catch_up`). Pure: no clock, no scheduler.

Daylight saving: a local time the clocks skip (02:30 on a spring-forward night) fires as much
later as they jumped (03:30); a repeated one fires once, the first time. The hourly drift watch
fires on every real hour whose wall time has its minute: one check less, or one more.
"""

from __future__ import annotations

import calendar
import heapq
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import get_args

from stagewise.periods import Cadence, Job
from stagewise.sections import Weekday
from stagewise.settings import Config

# How far back a restart looks for periods it missed (a longer outage is logged from here).
MAX_LOOKBACK = timedelta(days=400)
QUARTER_MONTHS = frozenset({1, 4, 7, 10})
WITHDRAW_MONTHS: dict[int, tuple[frozenset[int], Cadence]] = {
    1: (frozenset({1}), "annual"),
    2: (frozenset({1, 7}), "half"),
    4: (QUARTER_MONTHS, "quarterly"),
    12: (frozenset(range(1, 13)), "monthly"),
}
WEEKDAYS: tuple[Weekday, ...] = get_args(Weekday)
# A walk gives up after this many days (or hours) without a fire: more than any schedule's gap.
_MOST_DAYS = 2 * 366
_MOST_HOURS = 3 * 24


@dataclass(frozen=True)
class Schedule:
    """One trigger of the daemon: which job it fires, the cadence of its periods, and when.

    It fires at `minute` past `hour` (every hour when None) local time in `tz`, on the days in
    `months` (every month when None) that are day `day` of the month and weekday `weekday`
    (0 Monday) where given. `checks` are watch jobs (drift, profit): they record a run only
    when they propose, are never caught up after downtime (a stale check proves nothing), and
    are never 'missed'."""

    name: str
    job: Job
    cadence: Cadence
    tz: tzinfo
    minute: int
    hour: int | None = None
    months: frozenset[int] | None = None
    day: int | None = None
    weekday: int | None = None
    checks: bool = False

    def next_from(self, moment: datetime) -> datetime | None:
        """The first fire time at or after `moment` (UTC)."""
        if self.hour is None:
            return self._next_hourly(moment)
        at = time(self.hour, self.minute)
        day = moment.astimezone(self.tz).date()
        for _ in range(_MOST_DAYS):
            if self.fires_on(day):
                fire = local_fire(day, at, self.tz)
                if fire >= moment:
                    return fire
            day = self._next_day(day)
        return None

    def _next_day(self, day: date) -> date:
        """The first local day after `day` that can match the day of the month (every day
        when none is set): a monthly or quarterly schedule walks months, not days."""
        if self.day is None:
            return day + timedelta(days=1)
        months = day.year * 12 + day.month - 1 + (day.day >= self.day)  # from year 0
        while True:  # the next month that has the day (a 31st skips the short months)
            year, month = divmod(months, 12)
            if self.day <= calendar.monthrange(year, month + 1)[1]:
                return date(year, month + 1, self.day)
            months += 1

    def next_after(self, moment: datetime) -> datetime | None:
        """The first fire time strictly after `moment`."""
        return self.next_from(moment + timedelta(microseconds=1))

    def latest(self, now: datetime) -> datetime | None:
        """The most recent fire time at or before `now`: the period being run."""
        # Back a little more than the longest gap between two fires: an hour, or a year.
        start = now - (timedelta(hours=2) if self.hour is None else timedelta(days=367))
        last = None
        fire = self.next_from(start)
        while fire is not None and fire <= now:
            last, fire = fire, self.next_after(fire)
        return last

    def fires_on(self, day: date) -> bool:
        """True when the date fields match `day` (a local date)."""
        return (
            (self.months is None or day.month in self.months)
            and (self.day is None or day.day == self.day)
            and (self.weekday is None or day.weekday() == self.weekday)
        )

    @property
    def cron(self) -> dict[str, str]:
        """The schedule as cron fields (APScheduler's names), the fields it does not set left
        out: for display, and for comparing with a cron trigger."""
        fields = {
            "month": None if self.months is None else ",".join(map(str, sorted(self.months))),
            "day": None if self.day is None else str(self.day),
            "day_of_week": None if self.weekday is None else WEEKDAYS[self.weekday],
            "hour": None if self.hour is None else str(self.hour),
            "minute": str(self.minute),
        }
        return {k: v for k, v in fields.items() if v is not None}

    def _next_hourly(self, moment: datetime) -> datetime | None:
        """Every real hour whose wall time has `minute` (on a matching day)."""
        fire = moment.astimezone(UTC)
        if fire.second or fire.microsecond:
            fire = fire.replace(second=0, microsecond=0) + timedelta(minutes=1)
        for _ in range(_MOST_HOURS * 2):
            local = fire.astimezone(self.tz)
            if local.minute == self.minute and self.fires_on(local.date()):
                return fire
            fire += timedelta(minutes=(self.minute - local.minute) % 60 or 60)
        return None


def local_fire(day: date, at: time, tz: tzinfo) -> datetime:
    """The moment (UTC) of local time `at` on `day`. A time in a DST gap is read with the
    offset from before the change (03:30 summer time for a skipped 02:30); a repeated time
    is its first occurrence."""
    return datetime.combine(day, at, tzinfo=tz).astimezone(UTC)


def schedules(config: Config) -> list[Schedule]:
    """Every trigger the config asks for (sleeve cadences from the data, stage cadences too)."""
    s = config.settings.schedule
    tz = config.tz

    def at(
        name: str,
        job: Job,
        cadence: Cadence,
        hour: int | None,
        *,
        minute: int = 0,
        months: frozenset[int] | None = None,
        day: int | None = None,
        weekday: int | None = None,
        checks: bool = False,
    ) -> Schedule:
        return Schedule(name, job, cadence, tz, minute, hour, months, day, weekday, checks)

    birth = config.settings.investor.birth_date
    # A 29 February birthday is re-assessed on 28 February, which exists every year.
    reassess_day = min(birth.day, 28) if birth.month == 2 else birth.day
    months, withdraw_cadence = WITHDRAW_MONTHS[s.withdraw_periods]
    weekday = WEEKDAYS.index(s.rebalance_weekday)
    out = [
        at("dca", "dca", "monthly", s.dca_hour, day=s.dca_day),
        at("rebalance-weekly", "rebalance", "weekly", s.rebalance_hour, weekday=weekday),
        at("rebalance-monthly", "rebalance", "monthly", s.rebalance_hour, day=s.rebalance_day),
        at(
            "rebalance-quarterly",
            "rebalance",
            "quarterly",
            s.rebalance_hour,
            months=QUARTER_MONTHS,
            day=s.rebalance_day,
        ),
        at(
            "rebalance-annual",
            "rebalance",
            "annual",
            s.rebalance_hour,
            months=frozenset({1}),
            day=s.rebalance_day,
        ),
        at("profit", "profit", "daily", s.profit_hour, checks=True),
        at(
            "withdraw",
            "withdraw",
            withdraw_cadence,
            s.dca_hour,
            months=months,
            day=s.withdraw_day,
        ),
        at(
            "reassess",
            "reassess",
            "annual",
            s.reassess_hour,
            months=frozenset({birth.month}),
            day=reassess_day,
        ),
    ]
    if s.drift_enabled:
        out.append(at("drift", "drift", "hourly", None, minute=s.drift_minute, checks=True))
    return out


def fire_times(
    plan: Iterable[Schedule], start: datetime, end: datetime
) -> Iterator[tuple[datetime, Schedule]]:
    """Every fire time in [start, end) of every schedule, in time order (ties: list order)."""
    heap: list[tuple[datetime, int, Schedule]] = []
    for order, sched in enumerate(plan):
        first = sched.next_from(start)
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
