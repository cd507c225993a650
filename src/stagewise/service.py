"""The long-running daemon (`stagewise run`): start-up checks, catch-up, the scheduler loop,
systemd notify (READY, WATCHDOG, STATUS, STOPPING), SIGHUP reload and SIGTERM stop.

The main loop only pings the watchdog and refreshes STATUS: it never waits for a job. Jobs
run one at a time in the scheduler's worker; a reload runs in a thread of its own and waits
there for the running job, so a job stuck on a timing-out exchange, with a reload behind it,
never silences the watchdog. Notifications (when targets are configured) are delivered by a
thread of their own too, after each run is recorded: no job waits for a slow target.

A failing job is logged and recorded, never fatal; a state file another process is writing
is tried again. Only a bad config at start (exit 78), an exchange that cannot be reached at
start (exit 69) or a state file still busy, or a full disk, at start (exit 75) stops the
daemon (systemd restarts it but for 78).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import structlog
import tenacity

from stagewise.errors import ConfigError, StagewiseError, StateBusy, StateUnavailable
from stagewise.notify import Notifier
from stagewise.runtime import Runtime, open_runtime, seed_paper
from stagewise.scheduler import LiveScheduler
from stagewise.schedules import Schedule, catch_up, retry_at, schedules
from stagewise.settings import Config, load_config

log = structlog.get_logger()

# How often the main loop wakes when systemd asks for no watchdog: to refresh STATUS.
IDLE_TICK_SECONDS = 30.0
# A state file another process is writing is tried this often, this far apart; each try
# itself waits out the store's busy timeout (5 s): ~26 s in all, inside the unit's
# TimeoutStartSec=90s beside the exchange check.
BUSY_TRIES = 4
BUSY_PAUSE_SECONDS = 2.0
# How long a stop waits for a notification being delivered (it is marked 'interrupted' at the
# next start if it has not finished by then: never sent twice).
TELL_JOIN_SECONDS = 2.0

if TYPE_CHECKING:
    from stagewise.outbox import Outbox
    from stagewise.store import Store

T = TypeVar("T")


def notifications(config: Config) -> Outbox | None:
    """The config's outbox; None without notification targets (then neither the messages
    nor Apprise are imported: the daemon's memory is as without the extra)."""
    if not config.settings.notify.configured:
        return None
    from stagewise.outbox import outbox_for

    return outbox_for(config)


def utcnow() -> datetime:
    """The daemon's clock (its edge: everything below gets `now` passed in)."""
    return datetime.now(UTC)


class Service:
    """The daemon: owns the runtime, the live scheduler and the notify socket."""

    def __init__(
        self,
        config_path: Path,
        config: Config,
        notifier: Notifier | None = None,
        plan: Callable[[Config], list[Schedule]] = schedules,
    ):
        self.config_path = config_path
        self.notifier = notifier or Notifier()
        self.plan = plan  # the schedules of a config
        self.scheduler: LiveScheduler | None = None
        self.lock = threading.Lock()  # one job, or one reload, at a time
        # Clear while a reload waits for the lock: the next fire waits behind it (a Lock is
        # not fair: fires every second kept a waiting reload out for good).
        self.no_reload_waiting = threading.Event()
        self.no_reload_waiting.set()
        self.stop_requested = threading.Event()
        self.reload_requested = threading.Event()
        self.wake = threading.Event()
        self.last_result = "no run yet"
        self.exit_code = 0  # what `serve` returns: 1 after a stop of the daemon's own
        self.status_sent: str | None = None
        # Notifications (None: none configured): delivered by a thread of their own.
        self.outbox: Outbox | None = notifications(config)
        self.tell_wanted = threading.Event()
        self.teller: threading.Thread | None = None
        self.runtime: Runtime = self.while_busy(
            "open_state", lambda: open_runtime(config, clock=utcnow)
        )

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Start-up: exchange check, paper seed, catch-up; then the scheduler and READY=1."""
        now = utcnow()
        self.runtime.check_exchange(now)
        failed = self.while_busy("start", lambda: self.start_state(now))  # each step idempotent
        config = self.runtime.config
        grace = timedelta(hours=config.settings.schedule.grace_hours)
        self.scheduler = LiveScheduler(self.plan(config), self.on_fire, grace=grace, tz=config.tz)
        for when, sched in failed:
            self.retry_later(sched, when)
        self.scheduler.start()
        log.info("daemon_started", mode=self.mode, next_runs=self.next_runs_text())
        self.status_sent = self.status_text()
        self.notifier.ready(self.status_sent)

    def start_state(self, now: datetime) -> list[tuple[datetime, Schedule]]:
        """What start-up writes: the paper seed, the catch-up, the start event. Returns the
        fires the catch-up ran that failed (retried once the scheduler runs)."""
        if self.outbox is not None:
            self.outbox.begin(self.runtime.store, now)
        seed_paper(self.runtime, now)
        failed = self.catch_up(now)
        self.runtime.store.add_event("daemon_started", now, {"mode": self.mode})
        return failed

    def serve(self) -> int:
        """The main loop, until SIGTERM/SIGINT; returns the exit code (0). It pings the
        watchdog at half the period systemd asks for (none when it asks for none), and sends
        STATUS when it changed; reloads run in their own thread."""
        with one_daemon(self.runtime.config.state_path):
            return self._serve()

    def _serve(self) -> int:
        self.install_signal_handlers()
        self.start()
        threading.Thread(target=self.reloads, name="reload", daemon=True).start()
        if self.outbox is not None:
            self.teller = threading.Thread(target=self.tells, name="notify", daemon=True)
            self.teller.start()
            self.tell_wanted.set()  # what the start's catch-up recorded
        interval = self.notifier.watchdog_interval()
        ping_every = interval / 2 if interval else None
        next_ping = time.monotonic()
        while not self.stop_requested.is_set():
            if ping_every is not None and time.monotonic() >= next_ping:
                self.notifier.watchdog()
                next_ping = time.monotonic() + ping_every
            self.send_status()
            wait = IDLE_TICK_SECONDS if ping_every is None else next_ping - time.monotonic()
            self.wake.wait(timeout=max(wait, 0.0))  # a fire or a signal wakes it sooner
            self.wake.clear()
        return self.stop()

    def send_status(self) -> None:
        text = self.status_text()
        if text != self.status_sent:
            self.status_sent = text
            self.notifier.status(text)

    def stop(self) -> int:
        self.notifier.stopping("stopping: finishing the current job")
        log.info("daemon_stopping")
        if self.scheduler is not None:
            self.scheduler.shutdown()  # waits for a running job; its run is one transaction
        if self.teller is not None:
            self.tell_wanted.set()
            self.teller.join(timeout=TELL_JOIN_SECONDS)
        with self.lock:
            self.note("daemon_stopped", {})
            self.runtime.close()
        log.info("daemon_stopped")
        return self.exit_code

    def install_signal_handlers(self) -> None:
        def on_stop(signum: int, _frame: object) -> None:
            self.stop_requested.set()
            self.wake.set()

        def on_hup(_signum: int, _frame: object) -> None:
            self.reload_requested.set()  # the reload thread takes it

        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGINT, on_stop)
        signal.signal(signal.SIGHUP, on_hup)

    # -- runs ----------------------------------------------------------------------------

    def on_fire(self, schedule: Schedule, scheduled_at: datetime) -> None:
        """A trigger fired (in the scheduler's worker thread). Never raises. Once a stop is
        asked for, no new job starts (the scheduler's queue still hands out fires that were
        due, e.g. a catch-up's: the stop would wait for all of them)."""
        self.no_reload_waiting.wait()
        with self.lock:
            if self.stop_requested.is_set():
                log.info("not_started_stopping", schedule=schedule.name)
                return
            if self.state_file_moved():
                return
            try:
                jobs = self.runtime.jobs
                outcomes = self.while_busy(
                    schedule.name, lambda: jobs.fire(schedule, scheduled_at, utcnow())
                )
                if any(o.status == "failed" for o in outcomes) and not schedule.checks:
                    # Under the lock: it reads the store, which a reload may be replacing.
                    self.retry_later(schedule, scheduled_at)
            except StateUnavailable as e:
                # Not even a failed run could be recorded: the period stays open.
                log.error("state_unavailable", schedule=schedule.name, error=str(e))
                self.last_result = f"{schedule.name}: not run, {e}"
                return
            except Exception:  # a bug must not stop the daemon: log it whole, go on
                log.exception("job_crashed", schedule=schedule.name)
                self.last_result = f"{schedule.name}: crashed (see log)"
                return
        for o in outcomes:
            if o.status != "quiet":
                self.last_result = f"{o.period} {o.status}, {o.orders} orders"
        self.tell_wanted.set()
        self.wake.set()

    def retry_later(self, schedule: Schedule, scheduled_at: datetime) -> None:
        """After a failed run: fire again with backoff while inside the grace window (the
        caller holds the lock: this reads and writes the store)."""
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
        plan = catch_up(self.plan(self.runtime.config), self.last_seen(), now, grace, jobs.done)
        for when, sched in plan.missed:
            jobs.record_missed(sched, when, now)
        due = list(plan.due)
        seen = {(when, sched.name) for when, sched in due}
        for when, sched in self.open_failures(now - grace):
            if (when, sched.name) not in seen:
                due.append((when, sched))  # failed before the stop: retried inside the grace
        failed = []
        for when, sched in sorted(due, key=lambda d: d[0]):
            if self.stop_requested.is_set():  # the rest waits for the next start
                break
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
            for sched in self.plan(config):
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

    # -- the state file ----------------------------------------------------------------------

    def while_busy(self, step: str, work: Callable[[], T]) -> T:
        """`work()`, tried again while the state file is busy (BUSY_TRIES in all, a
        `state_busy` warning before each wait); a stop ends the tries. Raises the last
        StateBusy."""
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(StateBusy),
            stop=tenacity.stop_after_attempt(BUSY_TRIES)
            | tenacity.stop_when_event_set(self.stop_requested),
            wait=tenacity.wait_fixed(BUSY_PAUSE_SECONDS),
            sleep=self._pause,
            before_sleep=lambda attempt: log.warning(
                "state_busy",
                step=step,
                attempt=attempt.attempt_number,
                of=BUSY_TRIES,
                error=str(attempt.outcome.exception()) if attempt.outcome else None,
            ),
            reraise=True,
        )
        return retrying(work)

    def _pause(self, seconds: float) -> None:
        """Wait `seconds` between tries of a busy state file; a stop ends the wait."""
        self.stop_requested.wait(seconds)

    def note(self, kind: str, data: dict[str, Any]) -> None:
        """Record a daemon event (the caller holds the lock). A state file still busy loses
        the event, not the daemon."""
        try:
            self.while_busy(kind, lambda: self.runtime.store.add_event(kind, utcnow(), data))
        except StateUnavailable as e:
            log.error("event_not_recorded", kind=kind, error=str(e))

    def state_file_moved(self) -> bool:
        """True, and the daemon stopping with exit 1 (systemd starts it again), when its state
        file is no longer at its path (the caller holds the lock): its runs would be written
        where no one reads them. A deleted file is first put back, whole, from the open one;
        one replaced by another file is left as it is (the next start opens that one)."""
        store = self.runtime.store
        moved = store.file_moved()
        if moved is None:
            return False
        path = str(self.runtime.config.state_path)
        if moved == "gone":
            try:
                log.error("state_file_gone", path=str(store.put_back()), put_back=True)
            except StagewiseError as e:
                log.error("state_file_gone", path=path, put_back=False, error=str(e))
        else:
            log.error(
                "state_file_replaced",
                path=path,
                advice="another file is at the state file's path: the daemon stops; its next "
                "start opens that file",
            )
        self.exit_code = 1
        self.stop_requested.set()
        self.wake.set()
        return True

    # -- notifications -------------------------------------------------------------------

    def tells(self) -> None:
        """The notification thread: after each fire, and at least every idle tick (for what a
        command beside the daemon recorded, e.g. `stagewise pause`), what was recorded since
        the last look is told. Jobs never wait for it."""
        while not self.stop_requested.is_set():
            self.tell_wanted.wait(timeout=IDLE_TICK_SECONDS)
            self.tell_wanted.clear()
            outbox = self.outbox
            if outbox is None or self.stop_requested.is_set():
                continue
            try:
                outbox.tell(self.store_for_notices, utcnow)
            except Exception:  # a bug must not end the notifications: log it whole, go on
                log.exception("notify_crashed")

    @contextlib.contextmanager
    def store_for_notices(self) -> Iterator[Store | None]:
        """The store, held (one thread at a time uses it); None once stopping."""
        with self.lock:
            yield None if self.stop_requested.is_set() else self.runtime.store

    # -- reload --------------------------------------------------------------------------

    def reloads(self) -> None:
        """The reload thread: one reload per SIGHUP (those arriving during one: one more)."""
        while True:
            self.reload_requested.wait()
            if self.stop_requested.is_set():
                return
            self.reload_requested.clear()
            try:
                self.reload()
            except Exception:  # a bug must not end the reloads: log it whole, go on
                log.exception("reload_crashed")

    def reload(self) -> None:
        """SIGHUP: re-read the config; an invalid one is refused and the old one kept. Waits
        for a running job (the store's connection is one thread's at a time)."""
        self.notifier.reloading()
        try:
            config = load_config(self.config_path, now=utcnow())
        except ConfigError as e:
            log.error("config_reload_refused", error=str(e), problems=e.problems)
            with self.lock:
                if not self.stop_requested.is_set():
                    self.note("config_reload_refused", {"error": str(e)})
            self.notifier.reloaded(self.status_text())
            return
        self.no_reload_waiting.clear()
        try:
            with self.lock:
                if self.stop_requested.is_set():
                    return  # stopping: the runtime is closed, or about to be
                reloaded = self.switch_to(config)
        finally:
            self.no_reload_waiting.set()
        if reloaded:
            log.info("config_reloaded", path=str(self.config_path))
        self.notifier.reloaded(self.status_text())

    def switch_to(self, config: Config) -> bool:
        """Run `config` from now on (the caller holds the lock); False, keeping the old one,
        when its runtime cannot be opened (e.g. its state file is busy)."""
        if self.state_file_moved():  # before a new file is opened where it was
            return False
        try:
            outbox = notifications(config)
            runtime = self.while_busy("config_reload", lambda: open_runtime(config, clock=utcnow))
        except StagewiseError as e:
            log.error("config_reload_failed", error=str(e))
            return False
        old, self.runtime = self.runtime, runtime
        old.close()
        self.outbox = outbox
        if self.scheduler is not None:
            self.scheduler.install(self.plan(config))
        self.note("config_reloaded", {"path": str(self.config_path)})
        return True

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


@contextlib.contextmanager
def one_daemon(state: Path) -> Iterator[None]:
    """Hold the daemon's lock on `state` (a file beside it, `NAME.lock`, locked while the
    daemon lives: the kernel lets it go when the process ends, however it ends). A second
    daemon on the same state file is refused (StateBusy, exit 75): two would each ask the
    exchange and fire every job, and a second's start marks the first's notices in flight as
    interrupted. `stagewise once` and the other commands take no such lock."""
    lock = state.with_name(f"{state.name}.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("a+") as held:
        try:
            fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            held.seek(0)
            pid = held.read().strip() or "?"
            raise StateBusy(
                f"another stagewise daemon (pid {pid}) runs on the state file {state}: one "
                "daemon per state file"
            ) from None
        held.seek(0)
        held.truncate()
        held.write(f"{os.getpid()}\n")
        held.flush()
        yield
