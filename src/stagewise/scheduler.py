"""The live scheduler: APScheduler running the schedules (the only APScheduler importer).

One job at a time in one worker thread, missed fires coalesced; a failed run's retries are
one-off jobs of their own. When a schedule fires is the schedule's own answer
(stagewise.schedules): APScheduler only keeps the time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta, tzinfo

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.date import DateTrigger

from stagewise.schedules import Schedule


class LiveScheduler:
    """APScheduler running `plan` live: one job at a time, missed fires coalesced.

    `callback(schedule, scheduled_at)` runs in the scheduler's single worker thread."""

    def __init__(
        self,
        plan: Sequence[Schedule],
        callback: Callable[[Schedule, datetime], None],
        *,
        grace: timedelta,
        tz: tzinfo,
    ) -> None:
        self._scheduler = BackgroundScheduler(
            timezone=tz,
            executors={"default": ThreadPoolExecutor(max_workers=1)},
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": int(grace.total_seconds()) or 1,
            },
        )
        self._tz = tz
        self._callback = callback
        self.install(plan)

    def install(self, plan: Sequence[Schedule]) -> None:
        """Replace every scheduled job by `plan` (used on start and on a config reload);
        pending retries are kept."""
        for job in self._scheduler.get_jobs():
            if not job.id.startswith(_RETRY):
                job.remove()
        for sched in plan:
            self._scheduler.add_job(
                self._fire, trigger=_Stepping(sched), args=[sched], id=sched.name, name=sched.name
            )

    def retry(self, sched: Schedule, scheduled_at: datetime, when: datetime) -> None:
        """Fire `sched` for `scheduled_at` again at `when` (a failed run's retry). Each retry
        is its own one-off job: a retry that fails schedules the next one from inside the
        running job, which APScheduler removes once it has run (a shared id would lose the
        new one). A fire whose periods are done by then runs nothing."""
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
        self._callback(sched, sched.latest(now) or now)

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
        """The next fire time of each schedule, in the investor's time zone."""
        return {
            j.id: j.next_run_time.astimezone(self._tz)
            for j in self._scheduler.get_jobs()
            if j.next_run_time
        }


_RETRY = "retry:"  # the id prefix of a retry's one-off job


class _Stepping(BaseTrigger):
    """A schedule as an APScheduler trigger: the fire after a fire is the schedule's own
    `next_after`, as in `fire_times` (APScheduler 3's cron trigger moves a day by adding 24
    hours, and so skips the day after a daily fire that comes before a spring-forward change:
    agronholm/apscheduler#529, #606)."""

    def __init__(self, schedule: Schedule) -> None:
        self.schedule = schedule

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        if previous_fire_time is None:
            return self.schedule.next_from(now)
        return self.schedule.next_after(previous_fire_time)

    def __str__(self) -> str:
        cron = {**self.schedule.cron, "second": "0"}  # as APScheduler shows a cron trigger
        return "cron[" + ", ".join(f"{k}='{v}'" for k, v in cron.items()) + "]"
