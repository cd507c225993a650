"""Plan events a simulation applies at their dates: windfalls and the emergency pause.

Each is announced to the simulation's store at the midnight of its day with the call the
command line makes live (`stagewise windfall AMOUNT`, `pause --reason`, `resume`), so the
jobs meet it as they would in the daemon: a windfall is invested by the next job, a pause
stops contributions until it is resumed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import partial

from stagewise.errors import UsageError
from stagewise.money import MAX_MONEY
from stagewise.store import Store


@dataclass(frozen=True)
class Windfall:
    """A bonus announced on `day` (at its midnight), as `stagewise windfall AMOUNT` does."""

    day: date
    amount: float

    def __str__(self) -> str:
        return f"the windfall of {self.amount:,.2f} on {self.day}"


@dataclass(frozen=True)
class Pause:
    """The emergency pause from `start` to `end` (midnights; `end` excluded), as `stagewise
    pause --reason REASON` and `stagewise resume` do."""

    start: date
    end: date
    reason: str = "simulated pause"

    def __str__(self) -> str:
        return f"the pause {self.start} .. {self.end}"


PlanEvent = Windfall | Pause


def check_events(events: Sequence[PlanEvent], start: date, end: date) -> None:
    """Refuse (UsageError, naming it) an event outside [start, end), an amount that is no
    windfall, a pause that ends before it starts or overlaps another."""
    last = end - timedelta(days=1)
    for event in events:
        if not start <= first_day(event) <= last:
            raise UsageError(f"{event} is outside the simulation ({start} .. {last})")
        if isinstance(event, Windfall) and not 0 < event.amount <= MAX_MONEY:
            raise UsageError(f"{event}: not an amount of money (0 < amount <= {MAX_MONEY:g})")
        if isinstance(event, Pause) and event.end <= event.start:
            raise UsageError(f"{event} ends before it starts")
    pauses = sorted((e for e in events if isinstance(e, Pause)), key=lambda p: p.start)
    for before, after in zip(pauses, pauses[1:], strict=False):
        if after.start < before.end:
            raise UsageError(f"{after} overlaps {before}")


Announcement = tuple[datetime, Callable[[Store], object]]


def announcements(events: Sequence[PlanEvent], tz: tzinfo) -> list[Announcement]:
    """What each event does to the store, and when: at the midnight (in `tz`) of its day(s),
    with the calls `stagewise windfall`, `pause` and `resume` make."""
    out: list[Announcement] = []
    for e in events:
        if isinstance(e, Windfall):
            at = _midnight(e.day, tz)
            out.append((at, partial(Store.add_pending_windfall, amount=e.amount, at=at)))
        else:
            start_at, end_at = _midnight(e.start, tz), _midnight(e.end, tz)
            pause = partial(Store.set_paused, paused=True, reason=e.reason, at=start_at)
            out.append((start_at, pause))
            out.append((end_at, partial(Store.set_paused, paused=False, reason="", at=end_at)))
    return sorted(out, key=lambda a: a[0])


def _midnight(day: date, tz: tzinfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def first_day(event: PlanEvent) -> date:
    return event.day if isinstance(event, Windfall) else event.start


def note(event: PlanEvent, end: date) -> str:
    """What a simulation ending before `end` did with `event`, for its report."""
    if isinstance(event, Windfall):
        return f"{event}: announced at its midnight, invested by the next job"
    resumed = f"resumed on {event.end}" if event.end < end else "not resumed in the period"
    return f"{event} ({event.reason}): paused from {event.start}, {resumed}"
