"""Logging set up once, at the edge: JSON lines for journald, readable lines on a terminal.

Modules just `log = structlog.get_logger()` and log short, stable event names with data.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import structlog

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


class RedactSecrets:
    """A processor that replaces any secret value found in an event's strings by <redacted>:
    a last line of defence, should a key ever reach a log call."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self.secrets = tuple(s for s in secrets if s)

    def __call__(self, _logger: Any, _name: str, event: MutableMapping[str, Any]) -> Any:
        if self.secrets:
            for key, value in event.items():
                if isinstance(value, str):
                    for secret in self.secrets:
                        if secret in value:
                            value = value.replace(secret, "<redacted>")
                    event[key] = value
        return event


def configure(
    level: str = "info",
    fmt: str = "auto",
    stream: TextIO | None = None,
    secrets: Iterable[str] = (),
) -> None:
    """Configure structlog for the process. fmt: auto (JSON unless a terminal), json, console."""
    out = stream or sys.stderr
    as_json = fmt == "json" or (fmt == "auto" and not out.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer(sort_keys=False)
        if as_json
        else structlog.dev.ConsoleRenderer(colors=out.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            RedactSecrets(secrets),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
