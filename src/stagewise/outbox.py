"""Telling a person what the daemon did, after it is recorded: the runs and events since the
last look become messages (stagewise/messages.py), each claimed in the state once, then
delivered (stagewise/alerts.py, Apprise) and its outcome recorded.

A look and a claim are short transactions; a delivery holds nothing: the daemon runs it in a
thread of its own, so a target that answers 500 or never answers delays no job. A message is
sent at most once, across restarts; one that fails is a `notification_failed` warning (the
services' names, never a URL) and a count `status` shows.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

import structlog

from stagewise.errors import ConfigError, StateUnavailable
from stagewise.messages import notices_for
from stagewise.sections import NOTIFY_URLS_ENV, NotifySettings
from stagewise.settings import Config
from stagewise.store import Store
from stagewise.store.notices import Notice

if TYPE_CHECKING:
    from stagewise.alerts import AppriseTargets

log = structlog.get_logger()


class Delivery(Protocol):
    """What sends a message to every target (AppriseTargets implements it)."""

    def send(self, title: str, body: str, level: str) -> list: ...


@dataclasses.dataclass(frozen=True, slots=True)
class Claimed:
    """A message claimed in the state, to deliver once."""

    id: int
    notice: Notice


# The store, held for the caller's use (None: the daemon is stopping).
StoreAccess = Callable[[], contextlib.AbstractContextManager[Store | None]]


def outbox_for(config: Config) -> Outbox | None:
    """The config's outbox; None without notification targets (Apprise is not imported)."""
    if not config.settings.notify.configured:
        return None
    return Outbox(config, targets_for(config.settings.notify))


def targets_for(settings: NotifySettings) -> AppriseTargets:
    """The Apprise targets of the settings (ConfigError: Apprise missing, a bad URL)."""
    try:
        from stagewise.alerts import AppriseTargets
    except ImportError as e:
        if e.name is None or not e.name.startswith("apprise"):
            raise
        raise ConfigError(
            "the environment: notification targets are set, but Apprise is not installed",
            [f"{NOTIFY_URLS_ENV}: install the extra: pip install 'stagewise[notify]'"],
        ) from None
    return AppriseTargets(settings)


class Outbox:
    """The messages of one config, and the delivery that sends them."""

    def __init__(self, config: Config, delivery: Delivery) -> None:
        self.config = config
        self.delivery = delivery
        # Runs and events older than this at a look are not told (e.g. recorded while
        # notifications were off): the same window a missed period is caught up in.
        self.horizon = timedelta(hours=config.settings.schedule.grace_hours)

    def begin(self, store: Store, now: datetime) -> None:
        """At the daemon's start (see Store.start_telling)."""
        store.start_telling(now)

    def claim(self, store: Store, now: datetime) -> list[Claimed]:
        """The messages recorded since the last look, claimed (a short write)."""
        looked = store.untold(now - self.horizon)
        if looked is None or looked.end == looked.start:
            return []
        found = notices_for(looked, self.config.settings.notify, self.config.quote, self.config.tz)
        ids = store.claim_notices(looked, found, now)
        return [Claimed(i, n) for i, n in zip(ids, found, strict=True)]

    def deliver(self, claimed: Claimed) -> list:
        """Send one claimed message to every target (the slow part: no lock held)."""
        n = claimed.notice
        return self.delivery.send(n.title, n.body, n.level)

    def record(self, store: Store, claimed: Claimed, results: list, now: datetime) -> None:
        """Keep what became of a delivered message, and say it in the log."""
        failed = [r.service for r in results if not r.delivered]
        store.notice_done(claimed.id, len(results), failed, now)
        n = claimed.notice
        if failed:
            log.warning(
                "notification_failed",
                kind=n.kind,
                title=n.title,
                services=failed,
                attempts=max(r.attempts for r in results),
                delivered=len(results) - len(failed),
            )
        else:
            log.info("notification_sent", kind=n.kind, title=n.title, targets=len(results))

    def tell(self, using: StoreAccess, clock: Callable[[], datetime]) -> int:
        """Claim, deliver and record every message waiting, one at a time, the store held
        only to claim and to record; returns how many were delivered. A state file busy or
        gone (the daemon stopping) ends the pass: the rest waits for the next one, and a
        message claimed but not recorded is marked 'interrupted' at the next start."""
        told = 0
        try:
            while True:
                with using() as store:
                    claimed = [] if store is None else self.claim(store, clock())
                if not claimed:
                    return told
                for c in claimed:
                    results = self.deliver(c)
                    with using() as store:
                        if store is None:
                            return told
                        self.record(store, c, results, clock())
                    told += 1
        except StateUnavailable as e:
            log.error("state_unavailable", step="notify", error=str(e))
            return told
