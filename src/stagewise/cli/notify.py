"""`stagewise notify [--test]`: what the daemon tells and to which targets (named by service,
never by URL), and a test message that says per target whether it arrived."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from stagewise.cli.arguments import load
from stagewise.cli.output import EX_FAILURE, EX_OK, emit_json
from stagewise.errors import ConfigError
from stagewise.sections import NOTIFY_URLS_ENV

TEST_TITLE = "stagewise: test message"
TEST_BODY = (
    "If you read this, stagewise can reach you here: proposals and alarms will arrive the "
    "same way. Nothing was proposed."
)


def add_notify_command(command: Callable[..., argparse.ArgumentParser]) -> None:
    p = command(
        "notify",
        cmd_notify,
        "notifications (Apprise): what is told, to which targets; --test sends a test message",
    )
    p.add_argument(
        "--test", action="store_true", help="send a test message; say per target if it arrived"
    )
    p.add_argument("--json", action="store_true", help="print as JSON")


def cmd_notify(args: argparse.Namespace) -> int:
    config = load(args)
    settings = config.settings.notify
    if not settings.configured:
        if args.test:
            raise ConfigError(
                "the environment: no notification target to test",
                [f"{NOTIFY_URLS_ENV}: set it to one or more Apprise URLs (the systemd env file)"],
            )
        counts = told_counts(config)
        if args.json:
            emit_json({"configured": False, "targets": [], "state": counts})
        else:
            print(f"notifications are off: {NOTIFY_URLS_ENV} is not set in this environment")
            if counts is not None:
                print(said_counts(counts))
        return EX_OK
    from stagewise.outbox import targets_for

    targets = targets_for(settings)
    if args.test:
        results = targets.send(TEST_TITLE, TEST_BODY, "info")
        arrived = sum(r.delivered for r in results)
        if args.json:
            emit_json(
                {
                    "ok": arrived == len(results),
                    "targets": [
                        {
                            "target": r.number,
                            "service": r.service,
                            "delivered": r.delivered,
                            "attempts": r.attempts,
                        }
                        for r in results
                    ],
                }
            )
        else:
            for r in results:
                tries = f"{r.attempts} attempt{'s' if r.attempts != 1 else ''}"
                said = "delivered" if r.delivered else "NOT delivered"
                print(f"{r.name}: {said} ({tries})")
            print(f"{arrived} of {len(results)} targets took the test message")
        if arrived < len(results):
            print(
                "stagewise: a target did not take the test message: check its URL in "
                f"{NOTIFY_URLS_ENV} and that the service is reachable from here",
                file=sys.stderr,
            )
            return EX_FAILURE
        return EX_OK
    counts = told_counts(config)
    if args.json:
        emit_json(
            {
                "configured": True,
                "targets": targets.names,
                "events": list(settings.events),
                "min_level": settings.min_level,
                "timeout_seconds": settings.timeout_seconds,
                "attempts": settings.attempts,
                "state": counts,
            }
        )
        return EX_OK
    print(f"notifications to {len(targets.names)}: {', '.join(targets.names)}")
    print(
        f"  events {', '.join(settings.events)}; from level {settings.min_level}; "
        f"timeout {settings.timeout_seconds:g} s, {settings.attempts} attempts"
    )
    if counts is not None:
        print(said_counts(counts))
    return EX_OK


def told_counts(config) -> dict | None:
    """What the state file says was told (None: no state file yet)."""
    from stagewise.cli.arguments import read_store

    store = read_store(config.state_path)
    if store is None:
        return None
    try:
        return store.notice_counts()
    finally:
        store.close()


def said_counts(counts: dict) -> str:
    last = f" (last failure {counts['last_failed_at']})" if counts["last_failed_at"] else ""
    return (
        f"  in the state: {counts['sent']} sent, {counts['failed']} failed{last}, "
        f"{counts['interrupted']} interrupted"
    )
