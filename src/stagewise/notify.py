"""The systemd notify protocol (sd_notify(3)): the only module that touches the notify socket.

Under systemd (`Type=notify`) the service manager passes a datagram socket in
`NOTIFY_SOCKET`; the daemon tells it "ready", "reloading", "stopping", a status
line, and pings the watchdog. Outside systemd `NOTIFY_SOCKET` is unset and every
call is a no-op, so the same code runs from a terminal, in tests and in `simulate`.

Sending never raises: a dead or full notify socket must not crash the daemon.
Callers get a bool (True = the datagram was handed to the socket) and decide
themselves whether that is worth a log line.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping

# A notify datagram is tiny and systemd reads it at once; if the socket does not
# take it within this time something is badly wrong and the daemon's loop matters more.
_SEND_TIMEOUT_S = 1.0


def _address(value: str | None) -> str | None:
    """The AF_UNIX address in NOTIFY_SOCKET: a path, or '@name' for the abstract namespace."""
    if not value:
        return None
    if value.startswith("/"):
        return value
    if value.startswith("@") and len(value) > 1:
        return "\0" + value[1:]
    # Other forms (e.g. systemd 254's "vsock:CID:PORT" for VMs) are not for us.
    return None


def _one_line(text: str) -> str:
    # The protocol is newline-separated KEY=VALUE; a newline in a status would
    # start a new (bogus) assignment.
    return " ".join(text.splitlines())


class Notifier:
    """Speaks sd_notify to the service manager named by NOTIFY_SOCKET, or does nothing."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self._address = _address(env.get("NOTIFY_SOCKET"))
        self._watchdog_usec = env.get("WATCHDOG_USEC")
        self._watchdog_pid = env.get("WATCHDOG_PID")

    @property
    def enabled(self) -> bool:
        """True when running under a service manager that listens for notifications."""
        return self._address is not None

    def notify(self, *assignments: str) -> bool:
        """Send one datagram of KEY=VALUE lines. False if disabled or the send failed."""
        if self._address is None or not assignments:
            return False
        message = "\n".join(assignments).encode("utf-8")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.settimeout(_SEND_TIMEOUT_S)
                sock.connect(self._address)
                sock.sendall(message)
        except (OSError, ValueError):
            # OSError: socket gone, refused, full (timeout), permission; ValueError: NUL in a path.
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        """Startup finished (or a reload did): the service is up."""
        return self.notify("READY=1", *self._status_line(status))

    def status(self, text: str) -> bool:
        """A one-line human status shown by `systemctl status`."""
        return self.notify(f"STATUS={_one_line(text)}")

    def watchdog(self) -> bool:
        """Keep-alive ping for WatchdogSec=, sent only when the service manager asks for one
        of this process (`watchdog_interval()`): False, sending nothing, otherwise."""
        if self.watchdog_interval() is None:
            return False
        return self.notify("WATCHDOG=1")

    def stopping(self, status: str | None = None) -> bool:
        """Shutdown has begun."""
        return self.notify("STOPPING=1", *self._status_line(status))

    def reloading(self, status: str | None = None) -> bool:
        """A config reload has begun (send `reloaded()` when done).

        MONOTONIC_USEC (CLOCK_MONOTONIC, microseconds) is what systemd >= 253 requires
        with RELOADING=1 for Type=notify-reload; older versions ignore it.
        """
        monotonic_usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.notify(
            "RELOADING=1", f"MONOTONIC_USEC={monotonic_usec}", *self._status_line(status)
        )

    def reloaded(self, status: str | None = None) -> bool:
        """A config reload finished: the service is ready again (READY=1)."""
        return self.ready(status)

    def watchdog_interval(self) -> float | None:
        """The watchdog timeout in seconds, or None when no watchdog applies to this process.

        From WATCHDOG_USEC; if WATCHDOG_PID is set it must be our pid (a child that
        inherited the environment must not ping). The daemon pings at half of it.
        """
        if not self.enabled or not self._watchdog_usec:
            return None
        if self._watchdog_pid:
            try:
                if int(self._watchdog_pid) != os.getpid():
                    return None
            except ValueError:
                return None
        try:
            usec = int(self._watchdog_usec)
        except ValueError:
            return None
        if usec <= 0:
            return None
        return usec / 1_000_000

    @staticmethod
    def _status_line(status: str | None) -> tuple[str, ...]:
        return () if status is None else (f"STATUS={_one_line(status)}",)
