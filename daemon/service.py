"""The long-running daemon (`stagewise run`): start-up checks, catch-up, the scheduler loop,
systemd notify (READY, WATCHDOG, STATUS, STOPPING), SIGHUP reload and SIGTERM stop.

A failing job is logged and recorded, never fatal. Only a bad config at start (exit 78) or
an exchange that cannot be reached at start (exit 69, systemd retries) stops the daemon.
"""

from __future__ import annotations

import signal
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import structlog

from stagewise.errors import ConfigError
from stagewise.notify import Notifier
from stagewise.runtime import Runtime, open_runtime, seed_paper
from stagewise.scheduler import LiveScheduler, Schedule, catch_up, retry_at, schedules
from stagewise.settings import Config, load_config

log = structlog.get_logger()

# How often the main loop wakes when systemd asks for no watchdog: to refresh STATUS.
IDLE_TICK_SECONDS = 30.0


def utcnow() -> datetime:
    """The daemon's clock (its edge: everything below gets `now` passed in)."""
    return datetime.now(UTC)


class Service:
    """The daemon: owns the runtime, the live scheduler and the notify socket."""

    def __init__(self, config_path: Path, config: Config, notifier: Notifier | None = None):
        self.config_path = config_path
        self.runtime: Runtime = open_runtime(config, clock=utcnow)
        self.notifier = notifier or Notifier()
        self.scheduler: LiveScheduler | None = None
        self.lock = threading.Lock()  # one job, or one reload, at a time
        self.stop_requested = threading.Event()
        self.reload_requested = threading.Event()
        self.wake = threading.Event()
        self.last_result = "no run yet"

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Start-up: exchange check, paper seed, catch-up; then the scheduler and READY=1."""
        now = utcnow()
        self.runtime.check_exchange(now)
        seed_paper(self.runtime, now)
        failed = self.catch_up(now)
        self.runtime.store.add_event("daemon_started", now, {"mode": self.mode})
        self.scheduler = LiveScheduler(self.runtime.config, self.on_fire)
        for when, sched in failed:
            self.retry_later(sched, when)
        self.scheduler.start()
        log.info("daemon_started", mode=self.mode, next_runs=self.next_runs_text())
        self.notifier.ready(self.status_text())

    def serve(self) -> int:
        """The main loop, until SIGTERM/SIGINT; returns the exit code (0)."""
        self.install_signal_handlers()
        self.start()
        interval = self.notifier.watchdog_interval()
        tick = interval / 2 if interval else IDLE_TICK_SECONDS
        while not self.stop_requested.is_set():
            self.wake.wait(timeout=tick)
            self.wake.clear()
            if self.reload_requested.is_set():
                self.reload_requested.clear()
                self.reload()
            if self.scheduler is not None and not self.stop_requested.is_set():
                self.notifier.watchdog()
                self.notifier.status(self.status_text())
        return self.stop()

    def stop(self) -> int:
        self.notifier.stopping("stopping: finishing the current job")
        log.info("daemon_stopping")
        if self.scheduler is not None:
            self.scheduler.shutdown()  # waits for a running job; its run is one transaction
        with self.lock:
            self.runtime.store.add_event("daemon_stopped", utcnow(), {})
            self.runtime.close()
        log.info("daemon_stopped")
        return 0

    def install_signal_handlers(self) -> None:
        def on_stop(signum: int, _frame: object) -> None:
            self.stop_requested.set()
            self.wake.set()

        def on_hup(_signum: int, _frame: object) -> None:
            self.reload_requested.set()
            self.wake.set()

        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGINT, on_stop)
        signal.signal(signal.SIGHUP, on_hup)

    # -- runs ----------------------------------------------------------------------------

    def on_fire(self, schedule: Schedule, scheduled_at: datetime) -> None:
        """A trigger fired (in the scheduler's worker thread). Never raises."""
        with self.lock:
            try:
                outcomes = self.runtime.jobs.fire(schedule, scheduled_at, utcnow())
            except Exception:  # a bug must not stop the daemon: log it whole, go on
                log.exception("job_crashed", schedule=schedule.name)
                self.last_result = f"{schedule.name}: crashed (see log)"
                return
        for o in outcomes:
            if o.status != "quiet":
                self.last_result = f"{o.period} {o.status}, {o.orders} orders"
        if any(o.status == "failed" for o in outcomes) and not schedule.checks:
            self.retry_later(schedule, scheduled_at)
        self.wake.set()

    def retry_later(self, schedule: Schedule, scheduled_at: datetime) -> None:
        """After a failed run: fire again with backoff while inside the grace window."""
        runtime, now = self.runtime, utcnow()
        failures = runtime.jobs.failures(schedule, scheduled_at)
        grace = timedelta(hours=runtime.config.settings.schedule.grace_hours)
        when = retry_at(scheduled_at, failures, now, grace)
        if when is not None and self.scheduler is not None:
            self.scheduler.retry(schedule, scheduled_at, when)
            log.info("retry_scheduled", schedule=schedule.name, at=when.isoformat())
        elif failures:
            log.error(
                "retries_exhausted",
                schedule=schedule.name,
                failures=failures,
                advice="the period stays open: `stagewise once` runs it once the cause is fixed",
            )
            runtime.store.add_event(
                "retries_exhausted", now, {"schedule": schedule.name, "failures": failures}
            )

    def catch_up(self, now: datetime) -> list[tuple[datetime, Schedule]]:
        """Run once the periods missed while down inside the grace window (and those that
        failed before the stop); record the rest as missed. Returns the fires that failed."""
        jobs, store = self.runtime.jobs, self.runtime.store
        grace = timedelta(hours=self.runtime.config.settings.schedule.grace_hours)
        plan = catch_up(schedules(self.runtime.config), self.last_seen(), now, grace, jobs.done)
        for when, sched in plan.missed:
            jobs.record_missed(sched, when, now)
        due = list(plan.due)
        seen = {(when, sched.name) for when, sched in due}
        for when, sched in self.open_failures(now - grace):
            if (when, sched.name) not in seen:
                due.append((when, sched))  # failed before the stop: retried inside the grace
        failed = []
        for when, sched in sorted(due, key=lambda d: d[0]):
            log.info("catch_up", schedule=sched.name, scheduled_at=when.isoformat())
            outcomes = jobs.fire(sched, when, now)
            if any(o.status == "failed" for o in outcomes):
                failed.append((when, sched))
        if plan.missed:
            store.add_event("periods_missed", now, {"count": len(plan.missed)})
        return failed

    def open_failures(self, since: datetime) -> list[tuple[datetime, Schedule]]:
        """The fires at or after `since` whose periods failed and are still open."""
        jobs, config = self.runtime.jobs, self.runtime.config
        found = []
        for row in self.runtime.store.open_failures(since):
            for sched in schedules(config):
                if sched.job != row["job"] or sched.checks:
                    continue
                when = row["scheduled_at"]
                if any(key == row["period"] for key, _ in jobs.periods_for(sched, when)):
                    found.append((when, sched))
                    break
        return found

    def last_seen(self) -> datetime | None:
        """When the daemon last showed life: its newest run or start/stop event."""
        store = self.runtime.store
        times = [r["started_at"] for r in store.runs(limit=1)]
        times += [
            e["at"]
            for kind in ("daemon_started", "daemon_stopped")
            for e in store.events(kind=kind, limit=1)
        ]
        return max(times) if times else None

    # -- reload --------------------------------------------------------------------------

    def reload(self) -> None:
        """SIGHUP: re-read the config; an invalid one is refused and the old one kept."""
        self.notifier.reloading()
        try:
            config = load_config(self.config_path)
        except ConfigError as e:
            log.error("config_reload_refused", error=str(e), problems=e.problems)
            with self.lock:  # the worker may be mid-run on the same connection
                self.runtime.store.add_event("config_reload_refused", utcnow(), {"error": str(e)})
            self.notifier.reloaded(self.status_text())
            return
        with self.lock:
            old = self.runtime
            self.runtime = open_runtime(config, clock=utcnow)
            old.close()
            if self.scheduler is not None:
                self.scheduler.install(schedules(config))
            self.runtime.store.add_event(
                "config_reloaded", utcnow(), {"path": str(self.config_path)}
            )
        log.info("config_reloaded", path=str(self.config_path))
        self.notifier.reloaded(self.status_text())

    # -- status --------------------------------------------------------------------------

    @property
    def mode(self) -> str:
        return self.runtime.account.mode

    def next_runs_text(self) -> str:
        if self.scheduler is None:
            return ""
        upcoming = sorted(self.scheduler.next_runs().items(), key=lambda kv: kv[1])[:1]
        return ", ".join(
            f"{name} at {when.isoformat(timespec='minutes')}" for name, when in upcoming
        )

    def status_text(self) -> str:
        return f"{self.mode}: last {self.last_result}; next {self.next_runs_text() or '-'}"
