"""Windfalls: money announced with `stagewise windfall` for the next run to invest, pending
until a run consumes it (RunRecord.consume_windfalls) or a cancel does."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Literal

from stagewise.errors import UsageError
from stagewise.money import MAX_MONEY
from stagewise.store.codec import from_iso, iso
from stagewise.store.runs import RunRecord, RunStore


@dataclasses.dataclass(frozen=True, slots=True)
class PendingWindfall:
    """Money announced with `stagewise windfall` that no run has invested yet."""

    id: int
    at: datetime
    amount: float


WindfallStatus = Literal["pending", "done", "cancelled"]


@dataclasses.dataclass(frozen=True, slots=True)
class Windfall:
    """A windfall announced with `stagewise windfall` and what became of it: pending, done
    (a run handled it: invested it or, under the emergency pause, did not), or cancelled;
    `settled_at` and `period` name that run (None while pending)."""

    id: int
    at: datetime
    amount: float
    status: WindfallStatus
    settled_at: datetime | None
    period: str | None


class WindfallStore(RunStore):
    """The store's windfalls (a cancel is recorded as a skipped run that consumes it)."""

    def add_pending_windfall(self, amount: float, at: datetime) -> int:
        """Announce a windfall for the next run to invest; returns its id (and logs an event).
        Raises ValueError for an amount that is not finite and positive, or above MAX_MONEY."""
        if not 0 < amount <= MAX_MONEY:  # NaN compares False
            raise ValueError(f"a windfall of {amount!r} is not a usable amount of money")
        with self._writing():
            table = self.db.table("pending_windfalls").insert({"at": iso(at), "amount": amount})
            windfall_id = int(table.last_pk or 0)  # an INTEGER PRIMARY KEY: never None
            self._insert_event("windfall", at, {"id": windfall_id, "amount": amount})
        return windfall_id

    def pending_windfalls(self) -> list[PendingWindfall]:
        """Windfalls no run has consumed yet, oldest first."""

        def load() -> list[PendingWindfall]:
            rows = self.conn.execute(
                "SELECT id, at, amount FROM pending_windfalls WHERE consumed_run IS NULL "
                "ORDER BY id"
            ).fetchall()
            return [PendingWindfall(i, from_iso(at), amount) for i, at, amount in rows]

        return list(self._reads.get("pending_windfalls", load))

    def windfalls(self) -> list[Windfall]:
        """Every windfall announced, pending or not, oldest first."""
        rows = self.conn.execute(
            "SELECT w.id, w.at, w.amount, r.status, r.finished_at, r.period"
            " FROM pending_windfalls w LEFT JOIN runs r ON r.id = w.consumed_run ORDER BY w.id"
        ).fetchall()
        return [
            Windfall(
                i,
                from_iso(at),
                amount,
                "pending" if status is None else "cancelled" if status == "skipped" else "done",
                None if settled is None else from_iso(settled),
                period,
            )
            for i, at, amount, status, settled, period in rows
        ]

    def cancel_windfall(self, windfall_id: int, at: datetime, mode: str) -> Windfall:
        """Cancel a pending windfall: a skipped run `windfall:ID:cancelled` consumes it (with a
        'windfall_cancelled' event), so no job invests it. Returns it as it was; raises
        UsageError for an id that is unknown or no longer pending."""
        with self._writing(lock_first=True):  # the write lock first: no job consumes it meanwhile
            found = next((w for w in self.windfalls() if w.id == windfall_id), None)
            if found is None:
                raise UsageError(f"there is no windfall #{windfall_id} (`stagewise windfall list`)")
            if found.status != "pending":
                raise UsageError(
                    f"windfall #{windfall_id} is not pending: {found.status} by the run "
                    f"{found.period} at {found.settled_at:%Y-%m-%d %H:%M} UTC"
                )
            self.record_run(
                RunRecord(
                    job="windfall",
                    period=f"windfall:{windfall_id}:cancelled",
                    scheduled_at=at,
                    started_at=at,
                    finished_at=at,
                    status="skipped",
                    mode=mode,
                    error="cancelled with `stagewise windfall cancel`",
                    events=[("windfall_cancelled", {"id": windfall_id, "amount": found.amount})],
                    consume_windfalls=[windfall_id],
                )
            )
        return found
