"""The sd_notify client against real AF_UNIX datagram sockets standing in for systemd."""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from stagewise.notify import Notifier


def _listener(address: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(2.0)
    return sock


@pytest.fixture
def systemd(tmp_path: Path) -> Iterator[tuple[socket.socket, dict[str, str]]]:
    """A bound notify socket in tmp_path and the environment systemd would give the daemon."""
    path = tmp_path / "notify.sock"
    sock = _listener(str(path))
    try:
        yield sock, {"NOTIFY_SOCKET": str(path)}
    finally:
        sock.close()


def _received(sock: socket.socket) -> str:
    return sock.recv(4096).decode("utf-8")


def test_ready_sends_ready_datagram(systemd):
    sock, env = systemd
    notifier = Notifier(env)
    assert notifier.enabled
    assert notifier.ready() is True
    assert _received(sock) == "READY=1"


def test_ready_with_status_sends_both_in_one_datagram(systemd):
    sock, env = systemd
    assert Notifier(env).ready("waiting for the next job")
    assert _received(sock) == "READY=1\nSTATUS=waiting for the next job"


def test_status_watchdog_and_stopping_datagrams(systemd):
    sock, env = systemd
    notifier = Notifier(env | {"WATCHDOG_USEC": "120000000"})
    notifier.status("dca:2027-01 done")
    notifier.watchdog()
    notifier.stopping()
    notifier.stopping("bye")
    assert [_received(sock) for _ in range(4)] == [
        "STATUS=dca:2027-01 done",
        "WATCHDOG=1",
        "STOPPING=1",
        "STOPPING=1\nSTATUS=bye",
    ]


def test_status_newlines_cannot_inject_assignments(systemd):
    sock, env = systemd
    Notifier(env).status("line one\nREADY=1")
    assert _received(sock) == "STATUS=line one READY=1"


def test_reloading_carries_monotonic_usec_then_reloaded_is_ready(systemd):
    sock, env = systemd
    notifier = Notifier(env)
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert notifier.reloading()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    reloading, monotonic = _received(sock).split("\n")
    assert reloading == "RELOADING=1"
    key, _, value = monotonic.partition("=")
    assert key == "MONOTONIC_USEC"
    assert before <= int(value) <= after

    assert notifier.reloaded("config reloaded")
    assert _received(sock) == "READY=1\nSTATUS=config reloaded"


def test_abstract_namespace_socket():
    name = f"stagewise-test-{uuid.uuid4().hex}"
    sock = _listener("\0" + name)
    try:
        assert Notifier({"NOTIFY_SOCKET": "@" + name}).status("up")
        assert _received(sock) == "STATUS=up"
    finally:
        sock.close()


@pytest.mark.parametrize("env", [{}, {"NOTIFY_SOCKET": ""}, {"NOTIFY_SOCKET": "vsock:2:1"}])
def test_disabled_outside_systemd_every_call_is_a_noop(env):
    notifier = Notifier(env)
    assert not notifier.enabled
    assert notifier.ready("x") is False
    assert notifier.status("x") is False
    assert notifier.watchdog() is False
    assert notifier.stopping() is False
    assert notifier.reloading() is False
    assert notifier.reloaded() is False
    assert notifier.watchdog_interval() is None


def test_defaults_to_process_environment(monkeypatch, systemd):
    sock, env = systemd
    monkeypatch.setenv("NOTIFY_SOCKET", env["NOTIFY_SOCKET"])
    assert Notifier().ready()
    assert _received(sock) == "READY=1"
    monkeypatch.delenv("NOTIFY_SOCKET")
    assert not Notifier().enabled


def test_dead_socket_returns_false_instead_of_raising(tmp_path):
    path = tmp_path / "gone.sock"
    _listener(str(path)).close()  # bound then closed: the file remains, nobody listens
    notifier = Notifier({"NOTIFY_SOCKET": str(path)})
    assert notifier.enabled
    assert notifier.ready() is False
    assert notifier.watchdog() is False
    assert Notifier({"NOTIFY_SOCKET": str(tmp_path / "missing.sock")}).status("x") is False


def test_full_socket_returns_false_instead_of_blocking(monkeypatch, systemd):
    import stagewise.notify

    monkeypatch.setattr(stagewise.notify, "_SEND_TIMEOUT_S", 0.05)
    sock, env = systemd
    notifier = Notifier(env)
    assert notifier.status("first") is True
    # Nobody reads: the queue fills (net.unix.max_dgram_qlen, 10 by default) and a send times out.
    for _ in range(10_000):
        if not notifier.status("x" * 1000):
            break
    else:
        pytest.fail("a full notify socket never reported failure")


@pytest.mark.parametrize(
    ("watchdog", "expected"),
    [
        ({"WATCHDOG_USEC": "120000000"}, 120.0),
        ({"WATCHDOG_USEC": "1500000", "WATCHDOG_PID": str(os.getpid())}, 1.5),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "-5"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({"WATCHDOG_USEC": ""}, None),
        ({}, None),
        ({"WATCHDOG_USEC": "120000000", "WATCHDOG_PID": "not-a-pid"}, None),
    ],
)
def test_watchdog_interval_from_watchdog_usec(systemd, watchdog, expected):
    _, env = systemd
    assert Notifier(env | watchdog).watchdog_interval() == expected


@pytest.mark.parametrize(
    "watchdog",
    [
        {},
        {"WATCHDOG_USEC": "0"},
        {"WATCHDOG_USEC": "120000000", "WATCHDOG_PID": str(os.getpid() + 1)},
    ],
    ids=["no WATCHDOG_USEC", "zero", "another pid"],
)
def test_no_watchdog_ping_unless_the_service_manager_asks_for_one(systemd, watchdog):
    sock, env = systemd
    notifier = Notifier(env | watchdog)
    assert notifier.watchdog() is False
    assert notifier.status("marker")
    assert _received(sock) == "STATUS=marker"  # the first datagram: no WATCHDOG=1 before it


def test_watchdog_interval_is_none_for_another_pid(systemd):
    # A child that inherited the environment (WATCHDOG_PID names the parent) must not ping.
    _, env = systemd
    other = {"WATCHDOG_USEC": "120000000", "WATCHDOG_PID": str(os.getpid() + 1)}
    assert Notifier(env | other).watchdog_interval() is None
