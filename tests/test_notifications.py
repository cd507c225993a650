"""Notifications through Apprise, to a real HTTP receiver on 127.0.0.1 (Apprise's json://
target): one message per proposing run, delivered after the run is recorded, each at most
once across restarts; a receiver that answers 500 or hangs delays no job and loses no run; a
target URL is a secret: in no output, log or file."""

from __future__ import annotations

import json
import secrets
import signal
import sqlite3
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from standin import Receiver
from structlog.testing import capture_logs
from support import EVERY_SECOND, wait_for_fires

from stagewise.errors import ConfigError
from stagewise.notify import Notifier
from stagewise.sections import NotifySettings
from stagewise.settings import load_config

URLS = "STAGEWISE_NOTIFY__URLS"


def secret_path() -> str:
    """A URL path carrying a token, as a webhook's does: it must never be shown."""
    return "/hook/tok-" + secrets.token_hex(16)


def db_rows(db_path: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def state_files(db_path: Path) -> list[Path]:
    return [p for p in db_path.parent.iterdir() if p.name.startswith(db_path.name)]


def settings(url: str, **kw) -> NotifySettings:
    from pydantic import SecretStr

    return NotifySettings(urls=SecretStr(url), **kw)


# --- delivery (stagewise/alerts.py) ---------------------------------------------------------


def test_a_target_gets_the_message_as_apprise_sends_it() -> None:
    from stagewise.alerts import AppriseTargets

    with Receiver() as receiver:
        (result,) = AppriseTargets(settings(receiver.url("/in"))).send(
            "T", "line 1\nline 2", "warning"
        )
        (got,) = receiver.wait_for(1)
    assert (result.delivered, result.attempts, result.service) == (True, 1, "JSON")
    assert (got["title"], got["message"], got["type"], got["path"]) == (
        "T",
        "line 1\nline 2",
        "warning",
        "/in",
    )


def test_a_target_answering_500_is_tried_each_attempt_then_counted_failed() -> None:
    from stagewise.alerts import AppriseTargets

    with Receiver(status=500) as receiver:
        targets = AppriseTargets(settings(receiver.url(), attempts=3, timeout_seconds=2))
        (result,) = targets.send("T", "B", "info")
        assert len(receiver.arrived) == 3
    assert (result.delivered, result.attempts) == (False, 3)


def test_a_hanging_target_is_given_up_within_its_timeout() -> None:
    from stagewise.alerts import AppriseTargets

    with Receiver(hold=60) as receiver:
        targets = AppriseTargets(settings(receiver.url(), attempts=2, timeout_seconds=0.5))
        began = time.monotonic()
        (result,) = targets.send("T", "B", "info")
        took = time.monotonic() - began
        assert len(receiver.arrived) == 2
    assert not result.delivered
    assert took < 2 * 0.5 + 0.5 + 1.0  # two timeouts, one pause, slack


def test_a_bad_target_is_named_by_its_place_and_service_never_by_its_url() -> None:
    from stagewise.alerts import AppriseTargets

    token = secrets.token_hex(12)
    with pytest.raises(ConfigError) as raised:
        AppriseTargets(settings(f"json://127.0.0.1:9/ok, nosuchservice://{token}@host"))
    assert raised.value.problems == [
        "STAGEWISE_NOTIFY__URLS: target 2 is not a URL Apprise can send to "
        "(see https://github.com/caronc/apprise/wiki for the forms)"
    ]
    assert token not in str(raised.value)
    with pytest.raises(ConfigError, match="target 1 holds a placeholder"):
        AppriseTargets(settings("tgram://replace-with-bot-token/replace-with-chat-id"))


# --- the daemon, in-process: claimed once, delivered apart from the jobs -------------------


@pytest.fixture
def service_with(standin_config, monkeypatch):
    """A real Service (paper, against the stand-in) whose notifications go to `url`; those
    made are closed afterwards."""
    from stagewise.service import Service

    made = []

    def make(url: str, overrides: dict | None = None):
        monkeypatch.setenv(URLS, url)
        path = standin_config(
            {"notify": {"timeout_seconds": 0.5, "attempts": 2}, **(overrides or {})}
        )
        service = Service(path, load_config(path), notifier=Notifier(environ={}))
        made.append(service)
        return service

    yield make
    for service in made:
        service.stop_requested.set()
        service.tell_wanted.set()
        if service.teller is not None:
            service.teller.join(timeout=5)
        service.runtime.close()


def schedule(service, job: str):
    from stagewise.schedules import schedules

    return next(s for s in schedules(service.runtime.config) if s.job == job)


def fire(service, job: str) -> None:
    service.on_fire(schedule(service, job), datetime.now(UTC))


def dca_month() -> str:
    from zoneinfo import ZoneInfo

    return datetime.now(ZoneInfo("Europe/Berlin")).strftime("%Y-%m")


def told(service) -> int:
    return service.outbox.tell(service.store_for_notices, lambda: datetime.now(UTC))


def test_a_run_is_told_once_and_never_again_after_a_restart(service_with) -> None:
    with Receiver() as receiver:
        first = service_with(receiver.url())
        first.outbox.begin(first.runtime.store, datetime.now(UTC))
        fire(first, "dca")
        assert told(first) == 1
        assert told(first) == 0  # nothing new
        (message,) = receiver.wait_for(1)
        orders = len(first.runtime.store.proposals())
        assert message["title"] == f"{orders} orders proposed for DCA {dca_month()} (paper account)"
        first.runtime.close()
        again = service_with(receiver.url())
        again.outbox.begin(again.runtime.store, datetime.now(UTC))
        fire(again, "dca")  # the period is done: no run
        assert told(again) == 0
        assert len(receiver.messages) == 1
        assert again.runtime.store.notice_counts()["sent"] == 1


def test_a_first_start_with_notifications_tells_nothing_recorded_before_it(
    service_with,
) -> None:
    with Receiver() as receiver:
        service = service_with(receiver.url())
        fire(service, "dca")  # recorded before notifications began
        service.outbox.begin(service.runtime.store, datetime.now(UTC))
        fire(service, "reassess")
        assert told(service) == 0
        assert receiver.messages == []


def test_a_message_claimed_when_the_daemon_stopped_is_interrupted_never_resent(
    service_with,
) -> None:
    with Receiver() as receiver:
        service = service_with(receiver.url())
        store = service.runtime.store
        service.outbox.begin(store, datetime.now(UTC))
        fire(service, "dca")
        (claimed,) = service.outbox.claim(store, datetime.now(UTC))  # then a crash: not sent
        service.outbox.begin(store, datetime.now(UTC))  # the next start
        assert told(service) == 0
        assert receiver.arrived == []
        counts = store.notice_counts()
        assert (counts["interrupted"], counts["sent"], counts["sending"]) == (1, 0, 0)
        assert claimed.notice.run_id is not None


def test_a_hanging_receiver_never_delays_the_next_job_and_loses_no_run(service_with) -> None:
    with Receiver(hold=60) as receiver:
        # 2 attempts of 2 s: the delivery hangs for over 4 s.
        service = service_with(receiver.url(), {"notify": {"timeout_seconds": 2, "attempts": 2}})
        store = service.runtime.store
        service.outbox.begin(store, datetime.now(UTC))
        service.teller = threading.Thread(target=service.tells, daemon=True)
        with capture_logs() as logs:
            service.teller.start()
            fire(service, "dca")
            deadline = time.monotonic() + 10
            while not receiver.arrived:  # the delivery is under way, hanging
                assert time.monotonic() < deadline, "nothing was delivered"
                time.sleep(0.01)
            began = time.monotonic()
            fire(service, "reassess")
            assert time.monotonic() - began < 1.0  # the job did not wait for the delivery
            with service.store_for_notices() as held:
                assert held.notice_counts()["sending"] == 1  # still hanging meanwhile
            deadline = time.monotonic() + 15
            while True:
                with service.store_for_notices() as held:
                    if held.notice_counts()["failed"] == 1:
                        break
                assert time.monotonic() < deadline, "the failure was not recorded"
                time.sleep(0.05)
    runs = {r["job"]: r["status"] for r in store.runs()}
    assert runs == {"dca": "ok", "reassess": "ok"}
    (failed,) = [e for e in logs if e["event"] == "notification_failed"]
    assert failed["log_level"] == "warning"
    assert failed["services"] == ["JSON"] and failed["attempts"] == 2
    assert str(receiver.port) not in json.dumps(logs, default=str)


# --- the real daemon and CLI ----------------------------------------------------------------


def runs_with_orders(db_path: Path) -> dict[int, int]:
    rows = db_rows(db_path, "SELECT run_id, COUNT(*) FROM orders GROUP BY run_id")
    return dict(rows)


def test_a_paper_run_delivers_one_readable_message_per_proposing_run_never_showing_the_url(
    standin_config, plan_standin, spawn, cli
) -> None:
    path = secret_path()
    with Receiver() as receiver:
        env = {URLS: receiver.url(path)}
        config = standin_config()
        db_path = load_config(config).settings.state.path
        daemon = spawn("run", "--config", str(config), env=env, command=EVERY_SECOND)
        daemon.wait_for_event("daemon_started", timeout=30)
        daemon.wait_for_event("notification_sent", timeout=30)
        wait_for_fires(plan_standin)  # more fires: their periods are done, nothing more to tell
        daemon.proc.send_signal(signal.SIGTERM)
        assert daemon.finish(timeout=10) == 0
        proposing = runs_with_orders(db_path)
        messages = receiver.wait_for(len(proposing))
        # A second lifetime: nothing is told again.
        again = spawn("run", "--config", str(config), env=env, command=EVERY_SECOND)
        again.wait_for_event("daemon_started", timeout=30)
        wait_for_fires(plan_standin)
        again.proc.send_signal(signal.SIGTERM)
        assert again.finish(timeout=10) == 0
        status = cli("status", "--json", "--config", str(config), env=env)
        shown = cli("notify", "--config", str(config), env=env)
    assert proposing and len(receiver.messages) == len(messages) == len(proposing)
    told = dict(db_rows(db_path, "SELECT run_id, status FROM notifications"))
    assert told == {run_id: "sent" for run_id in proposing}
    periods = dict(db_rows(db_path, "SELECT id, period FROM runs"))
    for message in messages:
        run_id = next(r for r, p in periods.items() if f"\n{p}," in f"\n{message['message']}")
        title = message["title"]
        assert title.startswith(f"{proposing[run_id]} order")
        assert title.endswith("(paper account)")
        assert "Total: buys" in message["message"]
        assert message["path"] == path
    assert json.loads(status.stdout)["notifications"]["sent"] == len(proposing)
    assert shown.stdout.startswith("notifications to 1: target 1 (JSON)"), shown.stdout
    outputs = [*daemon.stdout, *daemon.stderr, *again.stdout, *again.stderr]
    outputs += [status.stdout, status.stderr, shown.stdout, shown.stderr]
    for text in (path, f":{receiver.port}"):
        assert not [o for o in outputs if text in o]
        for file in state_files(db_path):
            assert text.encode() not in file.read_bytes(), file.name


def test_a_receiver_answering_500_changes_nothing_else_and_status_counts_it(
    standin_config, spawn, cli
) -> None:
    path = secret_path()
    with Receiver(status=500) as receiver:
        env = {URLS: receiver.url(path)}
        config = standin_config({"notify": {"attempts": 2, "timeout_seconds": 1}})
        db_path = load_config(config).settings.state.path
        daemon = spawn("run", "--config", str(config), env=env, command=EVERY_SECOND)
        daemon.wait_for_event("daemon_started", timeout=30)
        failed = daemon.wait_for_event("notification_failed", timeout=30)
        announced = cli("windfall", "500", "--config", str(config), env=env)
        assert announced.returncode == 0, announced.stderr
        deadline = time.monotonic() + 20
        while not db_rows(
            db_path,
            "SELECT 1 FROM runs r JOIN notifications n ON n.run_id = r.id"
            " WHERE r.job = 'windfall' AND n.status = 'failed'",
        ):  # the next fire invested it, and its message failed in turn
            assert time.monotonic() < deadline, "the windfall was not invested and told"
            time.sleep(0.1)
        daemon.proc.send_signal(signal.SIGTERM)
        assert daemon.finish(timeout=10) == 0
        status = cli("status", "--config", str(config), env=env)
        status_json = cli("status", "--json", "--config", str(config), env=env)
    assert failed["services"] == ["JSON"] and failed["level"] == "warning"
    kinds = [e["event"] for e in daemon.events()]
    assert "job_crashed" not in kinds and "run_failed" not in kinds
    statuses = {s for (s,) in db_rows(db_path, "SELECT status FROM runs")}
    assert statuses <= {"ok", "skipped"}
    counts = json.loads(status_json.stdout)["notifications"]
    assert counts["failed"] == len(runs_with_orders(db_path)) and counts["sent"] == 0
    assert f"notifications: 0 sent, {counts['failed']} failed" in status.stdout
    outputs = [*daemon.stdout, *daemon.stderr, status.stdout, status.stderr, status_json.stdout]
    for text in (path, f":{receiver.port}"):
        assert not [o for o in outputs if text in o]
        for file in state_files(db_path):
            assert text.encode() not in file.read_bytes(), file.name


def test_notify_test_reports_per_target_whether_it_arrived(write_config, cli) -> None:
    config = write_config()
    with Receiver() as good, Receiver(status=500) as bad:
        urls = f"{good.url(secret_path())}, {bad.url(secret_path())}"
        env = {URLS: urls, "STAGEWISE_NOTIFY__ATTEMPTS": "2"}
        done = cli("notify", "--test", "--config", str(config), env=env)
        as_json = cli("notify", "--test", "--json", "--config", str(config), env=env)
        (message, _again) = good.wait_for(2)
    assert done.returncode == 1 and as_json.returncode == 1
    assert done.stdout.splitlines() == [
        "target 1 (JSON): delivered (1 attempt)",
        "target 2 (JSON): NOT delivered (2 attempts)",
        "1 of 2 targets took the test message",
    ]
    assert [(t["target"], t["delivered"]) for t in json.loads(as_json.stdout)["targets"]] == [
        (1, True),
        (2, False),
    ]
    assert message["title"] == "stagewise: test message"
    for text in [*urls.replace(",", " ").split(), str(good.port), str(bad.port)]:
        for out in (done.stdout, done.stderr, as_json.stdout, as_json.stderr):
            assert text not in out


def test_notify_test_without_targets_is_a_config_error(write_config, cli) -> None:
    done = cli("notify", "--test", "--config", str(write_config()))
    assert done.returncode == 78
    assert "STAGEWISE_NOTIFY__URLS: set it to one or more Apprise URLs" in done.stderr
    assert "Traceback" not in done.stderr


# --- settings: the URLs are secrets of the environment -------------------------------------


def test_notification_urls_in_the_config_file_are_refused_without_echoing_them(
    write_config, cli
) -> None:
    token = secrets.token_hex(16)
    config = write_config({"notify": {"urls": f"tgram://{token}/123"}})
    for command in ("check-config", "status", "run"):
        done = cli(command, "--config", str(config))
        assert done.returncode == 78, (command, done.stderr)
        assert "notify.urls: remove it from the file and set STAGEWISE_NOTIFY__URLS" in done.stderr
        assert token not in done.stdout + done.stderr


def test_the_urls_variable_is_a_setting_shown_by_no_command(write_config, cli) -> None:
    token = secrets.token_hex(16)
    config = write_config()
    env = {URLS: f"json://127.0.0.1:9/{token}"}
    for command in (["check-config"], ["check-config", "--json"], ["status"], ["notify"]):
        done = cli(*command, "--config", str(config), env=env)
        assert done.returncode == 0, (command, done.stderr)
        assert token not in done.stdout + done.stderr
    checked = cli("check-config", "--json", "--config", str(config), env=env)
    assert json.loads(checked.stdout)["notify"] == ["target 1 (JSON)"]
    bad = cli("check-config", "--config", str(config), env={URLS: f"nosuch://{token}"})
    assert bad.returncode == 78 and "target 1 is not a URL Apprise can send to" in bad.stderr
    assert token not in bad.stdout + bad.stderr
    misspelt = cli("check-config", "--config", str(config), env={"STAGEWISE_NOTIFY__URL": token})
    assert misspelt.returncode == 78
    assert "did you mean STAGEWISE_NOTIFY__URLS?" in misspelt.stderr
    assert token not in misspelt.stdout + misspelt.stderr


def test_a_bad_target_stops_the_daemon_at_start_as_a_config_error(write_config, cli) -> None:
    token = secrets.token_hex(16)
    done = cli("run", "--config", str(write_config()), env={URLS: f"nosuchservice://{token}"})
    assert done.returncode == 78
    assert "target 1 is not a URL Apprise can send to" in done.stderr
    assert token not in done.stdout + done.stderr
    assert "Traceback" not in done.stderr


def test_the_state_keeps_no_url_of_a_sent_message(service_with) -> None:
    path = secret_path()
    with Receiver() as receiver:
        service = service_with(receiver.url(path))
        service.outbox.begin(service.runtime.store, datetime.now(UTC))
        fire(service, "dca")
        assert told(service) == 1
        db_path = service.runtime.config.settings.state.path
        service.runtime.store.conn.execute("PRAGMA wal_checkpoint(FULL)")
        for file in state_files(db_path):
            assert path.encode() not in file.read_bytes()
            assert f":{receiver.port}".encode() not in file.read_bytes()


def test_a_look_another_daemon_claimed_first_is_not_claimed_again(tmp_path: Path) -> None:
    from stagewise.store import RunRecord, Store
    from stagewise.store.notices import Notice

    at = datetime(2027, 1, 1, tzinfo=UTC)
    path = tmp_path / "state.db"
    mine, theirs = Store.open(path), Store.open(path)
    try:
        mine.start_telling(at)
        mine.record_run(
            RunRecord(
                job="reassess",
                period="reassess:2027",
                scheduled_at=at,
                started_at=at,
                finished_at=at,
                status="ok",
                mode="paper",
            )
        )
        looked, seen = mine.untold(at), theirs.untold(at)
        assert looked == seen and [r["period"] for r in looked.runs] == ["reassess:2027"]
        notice = Notice("stage", "info", "t", "b", run_id=looked.runs[0]["id"])
        assert len(theirs.claim_notices(seen, [notice], at)) == 1
        assert mine.claim_notices(looked, [notice], at) == []  # the cursor moved: not twice
        assert mine.untold(at).runs == []
        assert mine.notice_counts()["sending"] == 1
    finally:
        mine.close()
        theirs.close()
