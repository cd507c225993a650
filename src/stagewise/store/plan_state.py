"""The planner's carried state (one row: the PlanState as JSON) and the emergency pause it
holds, which only `set_paused` changes."""

from __future__ import annotations

import dataclasses
from datetime import datetime

from stagewise.planner.model import PlanState
from stagewise.store.codec import from_iso, iso, state_from_json, state_json
from stagewise.store.events import EventStore


@dataclasses.dataclass(frozen=True, slots=True)
class Pause:
    """The emergency pause in force: since when, and why."""

    since: datetime
    reason: str


class PlanStateStore(EventStore):
    """The store's carried plan state and pause (a pause's start and end are events)."""

    def plan_state(self) -> PlanState:
        """The planner's carried state; the default PlanState() before any was saved."""
        return self._reads.get("plan_state", self._read_state)

    def set_paused(
        self, paused: bool, reason: str, at: datetime, *, replace: bool = False
    ) -> Pause | None:
        """Start (True) or end the emergency pause, with a 'paused'/'resumed' event; returns
        the pause in force before (None: there was none). Asking for what is already so
        writes nothing, except that `replace` gives the pause in force the new reason (a
        'pause_replaced' event; the pause keeps its start)."""
        with self._writing(lock_first=True):  # the write lock before reading: no lost update
            before = self.pause()
            held = self._read_state()
            if paused == held.paused and not (paused and replace and reason != held.pause_reason):
                return before
            state = dataclasses.replace(held, paused=paused, pause_reason=reason if paused else "")
            self._write_state(state_json(state), at)
            if before is not None and paused:
                self._insert_event("pause_replaced", at, {"reason": reason, "was": before.reason})
            else:
                self._insert_event("paused" if paused else "resumed", at, {"reason": reason})
        return before

    def pause(self) -> Pause | None:
        """The emergency pause in force (since its 'paused' event), or None."""
        state = self.plan_state()
        if not state.paused:
            return None
        started = "SELECT at FROM events WHERE kind = 'paused' ORDER BY id DESC LIMIT 1"
        # set_paused writes the two together; the state's own time stands in for a lost event
        row = (
            self.conn.execute(started).fetchone()
            or self.conn.execute("SELECT updated_at FROM plan_state").fetchone()
        )
        return Pause(from_iso(row[0]), state.pause_reason)

    # -- writing, inside a caller's transaction ---------------------------------------------

    def _carry_state(self, state: PlanState, at: datetime) -> None:
        """Write `state` as the carried one, keeping the pause the file holds (called with
        the write lock held: the kept read is the file's)."""
        held = self.plan_state()
        kept = dataclasses.replace(state, paused=held.paused, pause_reason=held.pause_reason)
        if kept != held:  # unchanged (most runs): its row stays, with when it last changed
            self._write_state(state_json(kept), at)

    def _read_state(self) -> PlanState:
        row = self.conn.execute("SELECT state FROM plan_state WHERE id = 1").fetchone()
        return PlanState() if row is None else state_from_json(row[0])

    def _write_state(self, text: str, at: datetime) -> None:
        # Hand-written: most runs change the carried state (an upsert through the Table costs
        # its lookups of the table on every run).
        self.conn.execute(
            "INSERT INTO plan_state (id, state, updated_at) VALUES (1, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET state = excluded.state, "
            "updated_at = excluded.updated_at",
            [text, iso(at)],
        )
