"""The event log: what happened outside a run (stage change, fault, pause, config reload …)
and what a run logged, a row each with its `data` as JSON."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from stagewise.store.base import StoreBase
from stagewise.store.codec import iso, to_json, where_clause


class EventStore(StoreBase):
    """The store's event log."""

    def add_event(self, kind: str, at: datetime, data: Mapping[str, Any]) -> None:
        """Log something that happened outside a run (stage change, fault, config reload …)."""
        with self._writing():
            self._insert_event(kind, at, data)

    def events(self, *, kind: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Logged events, newest first, optionally of one kind; `data` decoded."""
        where, args = where_clause(("kind = ?", kind))
        return self._newest("events", where, args, limit)

    # -- writing, inside a caller's transaction ---------------------------------------------

    def _insert_event(
        self, kind: str, at: datetime, data: Mapping[str, Any], run_id: int | None = None
    ) -> None:
        # Hand-written: a run's events and a weekly index's reconstitutions (sqlite-utils'
        # insert looks the table up on every call: 0.1 s of a 10-year weekly-index simulation).
        self.conn.execute(
            "INSERT INTO events (at, kind, run_id, data) VALUES (?, ?, ?, ?)",
            [iso(at), kind, run_id, to_json(data)],
        )
