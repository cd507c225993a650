"""The daemon as systemd runs it: the notify protocol on a real datagram socket, SIGHUP reload
(a broken config is refused, the daemon goes on), SIGTERM stop, and periods across restarts."""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from support import EVERY_SECOND, wait_for_fires

from stagewise.notify import Notifier
from stagewise.settings import load_config
from stagewise.store import Store

BERLIN = ZoneInfo("Europe/Berlin")
WATCHDOG_USEC = "1000000"  # 1 s: the daemon pings every 0.5 s
START_TIMEOUT = 30  # seconds for a cold start (importing ccxt is most of it)
NON_CHECK_JOBS = ("dca", "rebalance", "withdraw", "reassess", "windfall")


class NotifyListener:
    """A bound AF_UNIX datagram socket standing in for systemd's NOTIFY_SOCKET."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.1)
        self.messages: list[str] = []
        self.received_at: list[float] = []  # time.monotonic() of each, filled first
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while not self._closed.is_set():
            try:
                message = self.sock.recv(4096).decode("utf-8")
            except TimeoutError:
                continue
            except OSError:
                return
            self.received_at.append(time.monotonic())
            self.messages.append(message)

    def pings(self, start: int = 0, end: int | None = None) -> list[float]:
        """When each WATCHDOG=1 among messages [start, end) arrived (time.monotonic())."""
        messages = self.messages[start:end]
        return [self.received_at[start + i] for i, m in enumerate(messages) if "WATCHDOG=1" in m]

    def wait_for(self, line: str, *, after: int = 0, timeout: float = 10) -> int:
        """Index of the first datagram from `after` on holding `line` (e.g. 'READY=1')."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for i, message in enumerate(self.messages[after:], start=after):
                if line in message.split("\n") or (
                    line.endswith("=") and any(m.startswith(line) for m in message.split("\n"))
                ):
                    return i
            time.sleep(0.02)
        raise AssertionError(f"no {line!r} datagram after #{after}; got {self.messages[-10:]}")

    def close(self) -> None:
        self._closed.set()
        self._thread.join(timeout=2)
        self.sock.close()


@pytest.fixture
def notify(tmp_path: Path) -> Iterator[NotifyListener]:
    listener = NotifyListener(tmp_path / "notify.sock")
    yield listener
    listener.close()


@pytest.fixture
def daemon_env(notify: NotifyListener) -> dict[str, str]:
    """The environment systemd gives a Type=notify service with WatchdogSec=1."""
    return {"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": WATCHDOG_USEC}


def started_every_second(standin_config, spawn, notify, env):
    """The daemon with every schedule firing each second (tests/every_second.py), started as
    systemd starts it: the daemon, the index of its READY=1 among the notify messages, and its
    config file."""
    config = standin_config()
    daemon = spawn("run", "--config", str(config), env=env, command=EVERY_SECOND)
    return daemon, notify.wait_for("READY=1", timeout=START_TIMEOUT), config


def test_ready_watchdog_status_then_stopping_on_sigterm(
    standin_config, spawn, notify, daemon_env
) -> None:
    daemon, ready, _ = started_every_second(standin_config, spawn, notify, daemon_env)
    assert ready == 0, f"something came before READY=1: {notify.messages[:ready]}"
    assert notify.messages[0].startswith("READY=1\nSTATUS=paper: ")
    notify.wait_for("WATCHDOG=1", after=ready + 1)
    status = notify.wait_for("STATUS=", after=ready + 1)
    assert notify.messages[status].startswith("STATUS=paper: last ")
    daemon.wait_for_event("run_finished")  # a job ran (every job fires each second)
    pings = notify.wait_for("WATCHDOG=1", after=status + 1)  # and the loop still pings

    daemon.proc.send_signal(signal.SIGTERM)
    assert daemon.finish(timeout=10) == 0
    stopping = notify.wait_for("STOPPING=1", after=pings)
    assert notify.messages[stopping].startswith("STOPPING=1\nSTATUS=stopping")
    assert not any("WATCHDOG=1" in m for m in notify.messages[stopping + 1 :])
    events = daemon.events()
    kinds = [e["event"] for e in events]
    # The job running at SIGTERM finishes (and logs) between these two; no other starts
    # (the scheduler's queue of due fires had run ten more jobs after the stop was asked).
    assert kinds[-1] == "daemon_stopped" and kinds.count("daemon_stopping") == 1
    after = events[kinds.index("daemon_stopping") :]
    assert len({e.get("job") for e in after if e["event"] == "run_finished"}) <= 1


@pytest.mark.parametrize("how", ["deleted", "replaced"])
def test_a_state_file_deleted_or_replaced_under_the_daemon_stops_it(
    standin_config, spawn, notify, daemon_env, cli, how
) -> None:
    """Its runs went on into a deleted file no one would open again (and a reload opened a
    new, empty one: the paper account restarted empty, without a word). A deleted file is
    put back whole from the one the daemon has open; a replaced one is left as it is. Either
    way the daemon says so and exits 1 (systemd starts it again, on the file at the path)."""
    daemon, _, config = started_every_second(standin_config, spawn, notify, daemon_env)
    daemon.wait_for_event("run_finished")
    state = config.parent / "state" / "stagewise.db"
    if how == "deleted":
        seen = Store.read(state)
        try:
            recorded = len(seen.runs(limit=10_000))
        finally:
            seen.close()
        for file in state.parent.glob("stagewise.db*"):
            file.unlink()
    else:  # at once, by a rename over it (a backup put back, say)
        other = config.parent / "other.db"
        env = {"STAGEWISE_STATE__PATH": str(other)}
        assert cli("--config", str(config), "pause", "--reason", "mine", env=env).returncode == 0
        theirs = other.read_bytes()
        other.replace(state)
    assert daemon.finish(timeout=20) == 1
    if how == "deleted":
        gone = daemon.wait_for_event("state_file_gone")
        assert gone["level"] == "error" and gone["put_back"] is True
        store = Store.read(state)  # the history is back at the path
        try:
            assert len(store.runs(limit=10_000)) >= recorded >= 1
        finally:
            store.close()
    else:
        assert daemon.wait_for_event("state_file_replaced")["level"] == "error"
        assert state.read_bytes() == theirs


def test_a_second_daemon_on_the_same_state_file_is_refused(
    standin_config, spawn, notify, daemon_env
) -> None:
    """It started beside the first (READY, its own fires): both asked the exchange and fired
    every job. The second exits 75 naming the first's pid; the first goes on."""
    daemon, ready, config = started_every_second(standin_config, spawn, notify, daemon_env)
    second = spawn("run", "--config", str(config), env=daemon_env)  # `stagewise run` itself
    assert second.finish(timeout=30) == 75
    said = second.stderr[-1]
    assert f"another stagewise daemon (pid {daemon.proc.pid}) runs on the state file" in said
    assert "daemon_started" not in [e["event"] for e in second.events()]
    notify.wait_for("WATCHDOG=1", after=ready + 1)  # the first still pings
    daemon.proc.send_signal(signal.SIGTERM)
    assert daemon.finish(timeout=10) == 0
    again = spawn("run", "--config", str(config), env=daemon_env, command=EVERY_SECOND)
    again.wait_for_event("daemon_started", timeout=START_TIMEOUT)  # the lock went with the first
    again.proc.send_signal(signal.SIGTERM)
    assert again.finish(timeout=10) == 0


def test_sighup_with_a_broken_config_is_refused_and_the_daemon_goes_on(
    standin_config, spawn, notify, daemon_env
) -> None:
    daemon, ready, config = started_every_second(standin_config, spawn, notify, daemon_env)
    daemon.wait_for_event("run_finished")

    standin_config({"schedule": {"dca_day": 31}})  # the same file
    seen = len(daemon.events())
    daemon.proc.send_signal(signal.SIGHUP)
    refused = daemon.wait_for_event("config_reload_refused", after=seen)
    assert refused["level"] == "error"
    assert any(p.startswith("schedule.dca_day") for p in refused["problems"])
    reloading = notify.wait_for("RELOADING=1", after=ready + 1)
    again = notify.wait_for("READY=1", after=reloading)  # still serving, on the old config
    ping = notify.wait_for("WATCHDOG=1", after=again + 1)
    last = notify.wait_for("WATCHDOG=1", after=ping + 1, timeout=3)  # it keeps pinging
    assert daemon.proc.poll() is None

    # A good config is taken on the next SIGHUP.
    standin_config({"schedule": {"dca_day": 3}})
    seen = len(daemon.events())
    daemon.proc.send_signal(signal.SIGHUP)
    daemon.wait_for_event("config_reloaded", after=seen)
    notify.wait_for("READY=1", after=last + 1)

    daemon.proc.send_signal(signal.SIGTERM)
    assert daemon.finish(timeout=10) == 0
    notify.wait_for("STOPPING=1", after=last + 1)
    store = Store.open(load_config(config).settings.state.path)
    try:
        assert [e["kind"] for e in store.events(kind="config_reload_refused")] == [
            "config_reload_refused"
        ]
        assert len(store.events(kind="config_reloaded")) == 1
    finally:
        store.close()
    crashed = [e for e in daemon.events() if e["event"] == "job_crashed"]
    assert crashed == [], crashed[0].get("exception") if crashed else ""


def test_without_a_watchdog_no_ping_is_sent(standin_config, spawn, notify, plan_standin) -> None:
    """NOTIFY_SOCKET without WATCHDOG_USEC (a unit without WatchdogSec=): jobs fire each
    second, and each one wakes the loop, yet no WATCHDOG=1 is sent."""
    env = {"NOTIFY_SOCKET": str(notify.path)}
    daemon, _, _ = started_every_second(standin_config, spawn, notify, env)
    daemon.wait_for_event("run_finished")
    wait_for_fires(plan_standin, 3)  # three more fires
    daemon.proc.send_signal(signal.SIGTERM)
    assert daemon.finish(timeout=10) == 0
    notify.wait_for("STOPPING=1")
    assert notify.wait_for("STATUS=", after=1) > 0  # the loop ran and spoke
    assert [m for m in notify.messages if "WATCHDOG=1" in m] == []


def test_a_reload_behind_a_job_on_a_timing_out_exchange_never_silences_the_watchdog(
    standin_config, spawn, notify, plan_standin
) -> None:
    """SIGHUP while a job waits on an exchange that does not answer: the reload waits for the
    job, the watchdog pings go on at half the period (never a gap systemd would kill for,
    never a burst)."""
    from standin import TIMEOUT_HOLD_SECONDS

    watchdog_s = 2.0
    env = {"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": str(int(watchdog_s * 1e6))}
    daemon, ready, _ = started_every_second(standin_config, spawn, notify, env)
    daemon.wait_for_event("run_finished")
    # The next job's two tries (retry_attempts = 2) are each held, then dropped unanswered.
    plan_standin.inject("/api/v3/ticker/24hr", "timeout", times=2)
    deadline = time.monotonic() + 20
    while not any(r.fault == "timeout" for r in plan_standin.requests):
        assert time.monotonic() < deadline, "no job met the timing-out exchange"
        time.sleep(0.02)
    seen = len(daemon.events())
    hup = len(notify.messages)
    daemon.proc.send_signal(signal.SIGHUP)
    daemon.wait_for_event("config_reloaded", after=seen, timeout=30)
    reloading = notify.wait_for("RELOADING=1", after=hup)
    reloaded = notify.wait_for("READY=1", after=reloading)
    after = notify.wait_for("WATCHDOG=1", after=reloaded + 1, timeout=5)

    # The reload really waited behind the job (the rest of its first try, at least) ...
    waited = notify.received_at[reloaded] - notify.received_at[reloading]
    assert waited > TIMEOUT_HOLD_SECONDS / 2, f"the reload did not wait for the job: {waited}"
    # ... and the pings went on all along, half a period apart.
    pings = notify.pings(hup, after + 1)
    gaps = [b - a for a, b in zip(pings, pings[1:], strict=False)]
    assert len(pings) >= 3 and max(gaps) < watchdog_s, gaps
    everywhere = notify.pings(ready)
    all_gaps = [b - a for a, b in zip(everywhere, everywhere[1:], strict=False)]
    assert min(all_gaps) > watchdog_s / 4, f"a burst of pings: {all_gaps}"

    daemon.proc.send_signal(signal.SIGTERM)
    assert daemon.finish(timeout=15) == 0
    crashed = [e for e in daemon.events() if e["event"] in ("job_crashed", "reload_crashed")]
    assert crashed == [], crashed


def test_a_state_file_another_process_is_writing_at_start_is_tried_again(
    standin_config, spawn, notify, daemon_env
) -> None:
    """Start-up meets a write lock held by another process: `state_busy` is logged, and once
    the lock is gone the daemon starts (it does not exit with a traceback)."""
    import sqlite3

    config = standin_config()
    db_path = load_config(config).settings.state.path
    Store.open(db_path).close()
    holder = sqlite3.connect(db_path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        daemon = spawn("run", "--config", str(config), env=daemon_env)
        busy = daemon.wait_for_event("state_busy", timeout=START_TIMEOUT)
    finally:
        holder.close()
    assert busy["level"] == "warning" and str(db_path) in busy["error"]
    assert busy["attempt"] == 1
    notify.wait_for("READY=1", timeout=START_TIMEOUT)
    daemon.proc.send_signal(signal.SIGTERM)
    assert daemon.finish(timeout=10) == 0
    store = Store.open(db_path)
    try:
        assert len(store.events(kind="daemon_started")) == 1
        assert len(store.events(kind="ledger_seeded")) == 1  # the paper seed, once
    finally:
        store.close()


def non_check_runs(db_path: Path) -> dict[str, int]:
    """period -> run id of every run of a scheduled (non-watch) job."""
    store = Store.open(db_path)
    try:
        return {
            r["period"]: r["id"] for r in store.runs(limit=10_000) if r["job"] in NON_CHECK_JOBS
        }
    finally:
        store.close()


def recorded_jobs(db_path: Path, jobs: set[str], timeout: float = 30) -> None:
    """Wait until each of `jobs` has a run recorded in the state file at `db_path`."""
    deadline = time.monotonic() + timeout
    while True:
        found = {p.split(":")[0] for p in non_check_runs(db_path)} if db_path.exists() else set()
        if jobs <= found:
            return
        assert time.monotonic() < deadline, f"no run of {sorted(jobs - found)} in {timeout} s"
        time.sleep(0.05)


def test_two_daemon_lifetimes_never_record_a_period_twice(
    standin_config, plan_standin, spawn, notify, daemon_env
) -> None:
    config = standin_config()
    db_path = load_config(config).settings.state.path
    lifetimes = []
    for n in range(2):
        daemon = spawn("run", "--config", str(config), env=daemon_env, command=EVERY_SECOND)
        notify.wait_for("READY=1", after=len(notify.messages), timeout=START_TIMEOUT)
        if n == 0:
            # Every job has its period recorded before the stop (once a stop is asked, the
            # fires still queued do not start: a job not yet fired would be the second
            # lifetime's first period, not a period recorded twice).
            recorded_jobs(db_path, {"dca", "rebalance", "withdraw", "reassess"})
        wait_for_fires(plan_standin)  # more fires of every job: they find their periods done
        daemon.proc.send_signal(signal.SIGTERM)
        assert daemon.finish(timeout=10) == 0
        lifetimes.append((daemon, non_check_runs(db_path)))

    (first, first_runs), (second, second_runs) = lifetimes
    assert {p.split(":")[0] for p in first_runs} >= {"dca", "rebalance", "reassess"}
    assert {p: second_runs[p] for p in first_runs} == first_runs  # nothing recorded anew
    # A period the second lifetime recorded anew is a later one of the same job and sleeve
    # (the calendar moved on between the two: a new week, month, quarter or year).
    for key in set(second_runs) - set(first_runs):
        head, period = key.rsplit(":", 1)
        earlier = [p for k in first_runs for h, p in [k.rsplit(":", 1)] if h == head]
        assert earlier and max(earlier) < period, key
    for daemon in (first, second):
        kinds = [e["event"] for e in daemon.events()]
        assert "job_crashed" not in kinds and "run_failed" not in kinds
    proposed_again = {e.get("period") for e in second.events() if e["event"] == "proposal"}
    assert not proposed_again & set(first_runs)
    store = Store.open(db_path)
    try:
        deposits = [e.note for e in store.ledger_entries() if e.kind == "deposit"]
        assert deposits and len(deposits) == len(set(deposits))
        assert len(store.events(kind="daemon_started")) == 2
        assert len(store.events(kind="daemon_stopped")) == 2
    finally:
        store.close()


# --- catch-up across restarts, in-process with the real Service and the cron triggers --------


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)


@pytest.fixture
def lifetime(standin_config) -> Callable[[datetime], list[tuple[str, str]]]:
    """One daemon start at `now`: a real Service (paper, against the stand-in) catches up what
    was missed since it last showed life; returns the (period, status) runs recorded."""
    from stagewise.service import Service

    path = standin_config()
    config = load_config(path)

    def start(now: datetime) -> list[tuple[str, str]]:
        service = Service(path, config, notifier=Notifier(environ={}))
        try:
            before = {r["id"] for r in service.runtime.store.runs(limit=10_000)}
            service.catch_up(now)
            service.runtime.store.add_event("daemon_stopped", now, {})
            return [
                (r["period"], r["status"])
                for r in reversed(service.runtime.store.runs(limit=10_000))
                if r["id"] not in before
            ]
        finally:
            service.runtime.close()

    return start


def test_downtime_across_restarts_runs_each_missed_period_at_most_once(lifetime) -> None:
    assert lifetime(berlin(2027, 2, 26, 12)) == []  # a first start catches nothing up
    # Down from Friday 26 Feb to Tuesday 2 March 08:00: the 1 March DCA and the Monday
    # rebalance are inside the 72 h grace window; they run once.
    caught = lifetime(berlin(2027, 3, 2, 8))
    # (the example investor holds no weekly sleeve: the Monday trigger owns no period)
    assert caught == [("dca:2027-03", "ok")]
    # Restarted a few minutes later: nothing is due again.
    assert lifetime(berlin(2027, 3, 2, 8, 10)) == []
    # Down for five weeks: 1 April is past the grace window, so recorded missed, not run.
    long_outage = lifetime(berlin(2027, 4, 10, 12))
    sleeves = ["ai_agents", "balanced_investor", "defi", "layer1", "rwa", "portfolio"]
    assert long_outage == [
        ("withdraw:2027-03", "missed"),  # (this stage withdraws nothing; it is still a period)
        ("dca:2027-04", "missed"),
        *[(f"rebalance:{s}:2027-Q2", "missed") for s in sleeves],
    ]
    assert lifetime(berlin(2027, 4, 10, 13)) == []


def test_a_restart_inside_the_grace_window_after_a_crash_mid_month(lifetime) -> None:
    lifetime(berlin(2027, 5, 20, 12))  # first start
    assert lifetime(berlin(2027, 6, 1, 8)) == []  # before the June DCA fires: nothing
    june = lifetime(berlin(2027, 6, 3, 20))  # 59 h after the 1 June 09:00 DCA
    assert [p for p, s in june if p.startswith("dca:")] == ["dca:2027-06"]
    assert lifetime(berlin(2027, 6, 3, 21)) == []


class HeldMarkets:
    """A MarketSource that holds the job inside its snapshot until `release` is set."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.entered = threading.Event()
        self.release = threading.Event()

    def quotes(self, assets, now):
        self.entered.set()
        assert self.release.wait(10)
        return self.inner.quotes(assets, now)


def test_a_refused_reload_waits_for_the_running_job(standin_config) -> None:
    """The store's one connection is used by one thread at a time: a SIGHUP arriving while a
    job runs records its refusal after the job, never inside the job's transaction."""
    from stagewise.schedules import schedules
    from stagewise.service import Service

    path = standin_config()
    config = load_config(path)
    service = Service(path, config, notifier=Notifier(environ={}))
    try:
        held = HeldMarkets(service.runtime.account.market_source)  # type: ignore[attr-defined]
        service.runtime.account.market_source = held  # type: ignore[attr-defined]
        dca = next(s for s in schedules(config) if s.name == "dca")
        job = threading.Thread(target=service.on_fire, args=(dca, berlin(2027, 1, 1, 9)))
        job.start()
        assert held.entered.wait(10)

        standin_config({"schedule": {"dca_day": 31}})  # broken
        reload = threading.Thread(target=service.reload)
        reload.start()
        reload.join(0.3)
        assert reload.is_alive(), "the refused reload wrote while a job was running"
        held.release.set()
        job.join(10)
        reload.join(10)
        assert not job.is_alive() and not reload.is_alive()

        store = service.runtime.store
        assert [(r["period"], r["status"]) for r in store.runs()] == [("dca:2027-01", "ok")]
        assert len(store.events(kind="config_reload_refused")) == 1
        assert store.integrity_ok()
    finally:
        held.release.set()
        service.runtime.close()


def test_a_start_retries_a_period_that_failed_before_the_stop_inside_the_grace(
    standin_config, lifetime
) -> None:
    from stagewise.schedules import schedules
    from stagewise.service import Service

    lifetime(berlin(2027, 2, 26, 12))  # first start
    path = standin_config()
    config = load_config(path)
    dca = next(s for s in schedules(config) if s.name == "dca")
    fired, stopped = berlin(2027, 3, 1, 9), berlin(2027, 3, 1, 9, 1)
    service = Service(path, config, notifier=Notifier(environ={}))
    try:  # the 1 March DCA failed (say, the exchange was down), then the daemon stopped
        failed = service.runtime.jobs.record_failed(dca, fired, stopped, "exchange down")
        assert [o.status for o in failed] == ["failed"]
        service.runtime.store.add_event("daemon_stopped", stopped, {})
    finally:
        service.runtime.close()
    assert lifetime(berlin(2027, 3, 2, 8)) == [("dca:2027-03", "ok")]  # 23 h later: retried
    assert lifetime(berlin(2027, 3, 2, 9)) == []


def test_a_period_that_failed_before_a_long_outage_stays_open_and_is_not_run_late(
    standin_config, lifetime
) -> None:
    from stagewise.schedules import schedules
    from stagewise.service import Service

    lifetime(berlin(2027, 2, 26, 12))
    path = standin_config()
    config = load_config(path)
    dca = next(s for s in schedules(config) if s.name == "dca")
    service = Service(path, config, notifier=Notifier(environ={}))
    try:
        service.runtime.jobs.record_failed(dca, berlin(2027, 3, 1, 9), berlin(2027, 3, 1, 9), "x")
        service.runtime.store.add_event("daemon_stopped", berlin(2027, 3, 1, 9, 1), {})
    finally:
        service.runtime.close()
    assert lifetime(berlin(2027, 3, 5, 12)) == []  # 99 h later: past the 72 h grace


def test_a_failed_fire_schedules_its_retry_inside_the_grace(standin_config, plan_standin) -> None:
    from datetime import UTC, timedelta

    from stagewise.scheduler import LiveScheduler
    from stagewise.schedules import RETRY_FIRST, schedules
    from stagewise.service import Service

    path = standin_config()
    config = load_config(path)
    service = Service(path, config, notifier=Notifier(environ={}))
    try:
        grace = timedelta(hours=config.settings.schedule.grace_hours)
        plan = schedules(config)
        # installed, not started
        service.scheduler = LiveScheduler(plan, service.on_fire, grace=grace, tz=config.tz)
        dca = next(s for s in schedules(config) if s.name == "dca")
        plan_standin.inject("/api/v3/ticker", "auth", times=100)  # every price request fails
        fired = datetime.now(UTC)
        service.on_fire(dca, fired)
        (when,) = service.scheduler.retries().values()
        assert fired + RETRY_FIRST <= when <= datetime.now(UTC) + RETRY_FIRST
        assert [r["status"] for r in service.runtime.store.runs()] == ["failed"]

        late = fired - grace
        service.scheduler = LiveScheduler(plan, service.on_fire, grace=grace, tz=config.tz)
        service.on_fire(dca, late)  # a fire at the window's edge: no retry past it
        assert service.scheduler.retries() == {}
        assert service.runtime.store.events(kind="retries_exhausted")
    finally:
        service.runtime.close()


def test_a_job_meeting_a_busy_state_file_is_tried_again_not_crashed(standin_config) -> None:
    """A fire whose run (and even its failure) cannot be recorded while another process
    holds the write lock: `state_busy`, tried again, recorded once the lock is gone."""
    import sqlite3

    from structlog.testing import capture_logs

    from stagewise.schedules import schedules
    from stagewise.service import Service

    path = standin_config()
    config = load_config(path)
    service = Service(path, config, notifier=Notifier(environ={}))
    service.runtime.store.conn.execute("PRAGMA busy_timeout=100")  # the test's patience
    holder = sqlite3.connect(config.settings.state.path, isolation_level=None)
    try:
        dca = next(s for s in schedules(config) if s.name == "dca")
        with capture_logs() as logs:
            holder.execute("BEGIN IMMEDIATE")
            job = threading.Thread(target=service.on_fire, args=(dca, berlin(2027, 1, 1, 9)))
            job.start()
            deadline = time.monotonic() + 15
            while not any(e["event"] == "state_busy" for e in logs):
                assert time.monotonic() < deadline, [e["event"] for e in logs]
                time.sleep(0.01)
            holder.execute("ROLLBACK")
            job.join(15)
        assert not job.is_alive()
        busy = [e for e in logs if e["event"] == "state_busy"]
        assert busy[0]["step"] == "dca" and "is busy" in busy[0]["error"]
        assert not [e for e in logs if e["event"] in ("job_crashed", "state_unavailable")]
        store = service.runtime.store
        assert [(r["period"], r["status"]) for r in store.runs()] == [("dca:2027-01", "ok")]
    finally:
        holder.close()
        service.runtime.close()
