"""Plan events a simulation applies at their dates: windfalls, the emergency pause, and the
investor's value held outside crypto.

Each is applied at the midnight of its day the way it happens live, so the jobs meet it as
they would in the daemon: a windfall (`stagewise windfall AMOUNT`) is invested by the next
job, a pause (`pause --reason`, ended by `resume`) stops contributions until it is resumed,
both through the store's calls those commands make; an outside value is what an edit of
`investor.outside_investments` and a reload do, a new Jobs of the edited config.

The command line's `--windfall` and `--pause` and an `--events` file (`event_files`) give
the same events, checked here in one place: refused naming the flag, or the file, line and
field, that gave them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import partial
from typing import NoReturn

from stagewise.errors import EventsFileError, UsageError
from stagewise.money import MAX_MONEY
from stagewise.planner.windfall import implausible
from stagewise.store import Store


@dataclass(frozen=True)
class Origin:
    """Where an event was written: a line of an `--events` file (an event without one came
    from the command line)."""

    path: str
    line: int

    def __str__(self) -> str:
        return f"{self.path}, line {self.line}"


@dataclass(frozen=True)
class Windfall:
    """A bonus announced on `day` (at its midnight), as `stagewise windfall AMOUNT` does."""

    day: date
    amount: float
    origin: Origin | None = None

    def __str__(self) -> str:
        return f"the windfall of {self.amount:,.2f} on {self.day}"


@dataclass(frozen=True)
class Pause:
    """The emergency pause from `start` to `end` (midnights; `end` excluded; None: not
    resumed), as `stagewise pause --reason REASON` and `stagewise resume` do."""

    start: date
    end: date | None
    reason: str = "simulated pause"
    origin: Origin | None = None

    def __str__(self) -> str:
        return (
            f"the pause {self.start} .. {self.end}" if self.end else f"the pause from {self.start}"
        )


@dataclass(frozen=True)
class OutsideValue:
    """The investor's investments held outside crypto from `day` on (`amount`, the quote
    currency): `investor.outside_investments` edited, the config reloaded at its midnight."""

    day: date
    amount: float
    origin: Origin | None = None

    def __str__(self) -> str:
        return f"the outside value of {self.amount:,.2f} from {self.day}"


PlanEvent = Windfall | Pause | OutsideValue


def check_events(events: Sequence[PlanEvent], start: date, end: date) -> None:
    """Refuse an event outside [start, end), an amount that is no windfall or outside value,
    a pause that ends before it starts or overlaps another, two outside values of one day:
    UsageError naming it, or EventsFileError naming its file, line and field."""
    last = end - timedelta(days=1)
    for event in events:
        if not start <= first_day(event) <= last:
            _refuse(event, "date", f"{event} is outside the simulation ({start} .. {last})")
        if isinstance(event, Windfall) and not 0 < event.amount <= MAX_MONEY:
            _refuse(
                event, "amount", f"{event}: not an amount of money (0 < amount <= {MAX_MONEY:g})"
            )
        if isinstance(event, OutsideValue) and not 0 <= event.amount <= MAX_MONEY:
            _refuse(event, "amount", f"{event}: not an amount of money (0 to {MAX_MONEY:g})")
        if isinstance(event, Pause) and event.end is not None and event.end <= event.start:
            _refuse(event, "date", f"{event} ends before it starts")
    pauses = sorted((e for e in events if isinstance(e, Pause)), key=lambda p: p.start)
    for before, after in zip(pauses, pauses[1:], strict=False):
        if before.end is None or after.start < before.end:
            _refuse(after, "date", f"{after} overlaps {before}")
    outside: dict[date, OutsideValue] = {}
    for event in events:
        if isinstance(event, OutsideValue):
            if event.day in outside:
                _refuse(event, "date", f"{event}: a second outside value that day")
            outside[event.day] = event


def _refuse(event: PlanEvent, field: str, message: str) -> NoReturn:
    if event.origin is None:
        raise UsageError(message)
    raise EventsFileError(f"{event.origin}, {field}: {message}")


@dataclass(frozen=True)
class Announcement:
    """What an event does at `at`: a store call of `stagewise windfall`, `pause` or `resume`
    (`record`), or the investor's outside investments from then on (`outside_value`)."""

    at: datetime
    record: Callable[[Store], object] | None = None
    outside_value: float | None = None


def announcements(events: Sequence[PlanEvent], tz: tzinfo, quote: str) -> list[Announcement]:
    """What each event does, and when: at the midnight (in `tz`) of its day(s)."""
    out: list[Announcement] = []
    for e in events:
        if isinstance(e, Windfall):
            at = _midnight(e.day, tz)
            out.append(Announcement(at, partial(_announce, windfall=e, at=at, quote=quote)))
        elif isinstance(e, OutsideValue):
            out.append(Announcement(_midnight(e.day, tz), outside_value=e.amount))
        else:
            at = _midnight(e.start, tz)
            out.append(
                Announcement(at, partial(Store.set_paused, paused=True, reason=e.reason, at=at))
            )
            if e.end is not None:
                at = _midnight(e.end, tz)
                out.append(
                    Announcement(at, partial(Store.set_paused, paused=False, reason="", at=at))
                )
    return sorted(out, key=lambda a: a.at)


def _announce(store: Store, windfall: Windfall, at: datetime, quote: str) -> None:
    """`stagewise windfall AMOUNT` at `at`: refused, as live, when the amount is not a
    plausible bonus for the portfolio of that day (the simulation stops, naming it)."""
    why = implausible(windfall.amount, store.portfolio_value(), quote)
    if why is not None:
        _refuse(windfall, "amount", f"{windfall}: {why} on that day; check the amount")
    store.add_pending_windfall(windfall.amount, at)


def outside_values(initial: float, events: Sequence[PlanEvent]) -> list[tuple[date, float]]:
    """The outside value from each day it changes: `initial` (the config's) from the first
    day (date.min), then each OutsideValue's, in date order."""
    steps = sorted((e.day, e.amount) for e in events if isinstance(e, OutsideValue))
    return [(date.min, initial), *steps]


def _midnight(day: date, tz: tzinfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def first_day(event: PlanEvent) -> date:
    return event.start if isinstance(event, Pause) else event.day


def note(event: PlanEvent, end: date) -> str:
    """What a simulation ending before `end` did with `event`, for its report."""
    if isinstance(event, Windfall):
        return f"{event}: announced at its midnight, invested by the next job"
    if isinstance(event, OutsideValue):
        return (
            f"{event}: investor.outside_investments from its midnight (the crypto share of the "
            "whole portfolio is measured against it)"
        )
    resumed = (
        f"resumed on {event.end}"
        if event.end is not None and event.end < end
        else "not resumed in the period"
    )
    return f"{event} ({event.reason}): paused from {event.start}, {resumed}"
