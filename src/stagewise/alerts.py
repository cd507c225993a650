"""Delivery through Apprise (`pip install 'stagewise[notify]'`): the only module that imports
it, and only imported when notifications are configured.

The target URLs (STAGEWISE_NOTIFY__URLS) carry tokens: they are never printed, logged or put
in an error. A target is named by its place in the list and its service ("target 2
(Telegram)"). Apprise's own log is silenced, since its lines may name a host or a path.
Each target gets every message once per attempt, with a bounded timeout and tenacity's
retries between attempts; what is sent is text.
"""

from __future__ import annotations

import dataclasses
import logging

import apprise
import tenacity
from apprise.utils.parse import parse_urls

from stagewise.errors import ConfigError
from stagewise.sections import NOTIFY_URLS_ENV, PLACEHOLDER_PREFIX, NotifySettings

TYPES = {
    "info": apprise.NotifyType.INFO,
    "warning": apprise.NotifyType.WARNING,
    "error": apprise.NotifyType.FAILURE,
}
# The first pause between attempts; it doubles, never past the timeout.
FIRST_PAUSE_SECONDS = 0.5


@dataclasses.dataclass(frozen=True, slots=True)
class TargetResult:
    """What one target did with one message."""

    number: int  # its place in STAGEWISE_NOTIFY__URLS, from 1
    service: str | None  # Apprise's name of the service (None: it names none)
    delivered: bool
    attempts: int

    @property
    def name(self) -> str:
        return f"target {self.number} ({self.service})"


def _silence_apprise() -> None:
    quiet = logging.getLogger(apprise.logger.name)
    quiet.addHandler(logging.NullHandler())
    quiet.propagate = False
    quiet.setLevel(logging.CRITICAL + 1)


class AppriseTargets:
    """The configured targets, each an Apprise plugin, and how to send to them."""

    def __init__(self, settings: NotifySettings) -> None:
        _silence_apprise()
        self.settings = settings
        text = settings.urls.get_secret_value() if settings.urls else ""
        asset = apprise.AppriseAsset(storage_mode="memory")  # no files written
        self.servers = []
        problems = []
        for number, url in enumerate(parse_urls(text), start=1):
            if PLACEHOLDER_PREFIX in url:
                problems.append(
                    f"{NOTIFY_URLS_ENV}: target {number} holds a placeholder from "
                    "stagewise.env.example, not a URL: put your service's URL there"
                )
                continue
            server = apprise.Apprise.instantiate(url, asset=asset)
            if server is None:
                problems.append(
                    f"{NOTIFY_URLS_ENV}: target {number} is not a URL Apprise can send to "
                    "(see https://github.com/caronc/apprise/wiki for the forms)"
                )
                continue
            server.socket_connect_timeout = settings.timeout_seconds
            server.socket_read_timeout = settings.timeout_seconds
            self.servers.append((number, server))
        if problems:
            raise ConfigError("the environment: invalid notification targets", problems)
        if not self.servers:
            raise ConfigError(
                "the environment: no notification target",
                [f"{NOTIFY_URLS_ENV}: set it to one or more Apprise URLs"],
            )

    @property
    def names(self) -> list[str]:
        """Each target as it may be shown: its number and service, never its URL."""
        return [f"target {n} ({s.service_name})" for n, s in self.servers]

    def send(self, title: str, body: str, level: str) -> list[TargetResult]:
        """Send one message to every target; never raises for a target that fails."""
        return [self._send_one(n, server, title, body, TYPES[level]) for n, server in self.servers]

    def _send_one(
        self, number: int, server: apprise.NotifyBase, title: str, body: str, kind: object
    ) -> TargetResult:
        timeout = self.settings.timeout_seconds
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_result(lambda ok: not ok)
            | tenacity.retry_if_exception_type(Exception),
            stop=tenacity.stop_after_attempt(self.settings.attempts),
            wait=tenacity.wait_exponential(multiplier=FIRST_PAUSE_SECONDS, max=timeout),
            retry_error_callback=lambda _state: False,
        )
        attempts = 0

        def attempt() -> bool:
            nonlocal attempts
            attempts += 1
            return bool(
                server.notify(
                    body=body,
                    title=title,
                    notify_type=kind,
                    body_format=apprise.NotifyFormat.TEXT,
                )
            )

        delivered = retrying(attempt)
        return TargetResult(number, server.service_name, bool(delivered), attempts)
