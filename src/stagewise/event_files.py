"""A plan events file for `simulate --events`: CSV or TOML, one event a row, in date order.

CSV (a header, then one row per event; an empty cell, or a missing one at the end, is no
value; lines starting with # are comments):

    date,kind,amount,reason
    2026-01-10,windfall,10000,
    2026-02-01,pause,,lost my job
    2026-04-01,resume,,
    2026-06-01,outside_value,250000,

TOML (one `[[event]]` table per event, the same fields; `date` a TOML date or "YYYY-MM-DD"):

    [[event]]
    date = 2026-01-10
    kind = "windfall"
    amount = 10000

A windfall and an outside value take an amount (outside_value: the investor's investments
held outside crypto from that day, `investor.outside_investments`); a pause takes a reason;
a resume ends the pause before it and takes neither. Every problem is an EventsFileError
naming the file, the line and the field.
"""

from __future__ import annotations

import csv
import io
import math
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import NoReturn

from stagewise.errors import EventsFileError, InputMissing, UsageError
from stagewise.plan_events import Origin, OutsideValue, Pause, PlanEvent, Windfall

KINDS = ("windfall", "pause", "resume", "outside_value")
FIELDS = ("date", "kind", "amount", "reason")
# What each kind takes besides its date: the field that must be there (None: none may be).
_TAKES = {"windfall": "amount", "outside_value": "amount", "pause": "reason", "resume": None}


@dataclass(frozen=True)
class Row:
    """One event as written: where, and its fields (the date parsed, the amount a number)."""

    origin: Origin
    day: date
    kind: str
    amount: float | None
    reason: str | None


def load_events(path: Path) -> list[PlanEvent]:
    """The events of `path` (.csv or .toml), a pause and the resume after it one Pause.
    InputMissing (exit 66) when there is no such file; EventsFileError (exit 65) naming the
    file, line and field of a problem."""
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".toml"):
        raise UsageError(f"--events {path}: name a .csv or a .toml file")
    if not path.is_file():
        raise InputMissing(f"--events {path}: no such file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise EventsFileError(f"cannot read the events file {path}: {e}") from None
    rows = list(_csv_rows(path, text) if suffix == ".csv" else _toml_rows(path, text))
    return _events(rows)


def _events(rows: list[Row]) -> list[PlanEvent]:
    """The rows as events, in date order: each pause paired with the resume that ends it."""
    events: list[PlanEvent] = []
    paused: Row | None = None  # the pause not resumed yet
    for before, row in zip([None, *rows], rows, strict=False):
        if before is not None and row.day < before.day:
            _refuse(
                row.origin,
                "date",
                f"{row.day} is before {before.day} (line "
                f"{before.origin.line}): write the events in date order",
            )
        if row.kind == "pause":
            if paused is not None:
                _refuse(
                    row.origin,
                    "kind",
                    f"a pause while the pause of line "
                    f"{paused.origin.line} ({paused.day}) is not resumed yet",
                )
            paused = row
        elif row.kind == "resume":
            if paused is None:
                _refuse(row.origin, "kind", "a resume with no pause before it to end")
            if row.day == paused.day:
                _refuse(
                    row.origin,
                    "date",
                    f"the resume is on the day of its pause (line "
                    f"{paused.origin.line}): a pause lasts at least a day",
                )
            events.append(Pause(paused.day, row.day, paused.reason or "", paused.origin))
            paused = None
        elif row.kind == "windfall":
            events.append(Windfall(row.day, row.amount or 0.0, row.origin))
        else:
            events.append(OutsideValue(row.day, row.amount or 0.0, row.origin))
    if paused is not None:
        events.append(Pause(paused.day, None, paused.reason or "", paused.origin))
    return events


def _csv_rows(path: Path, text: str) -> Iterator[Row]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        numbered = [
            (reader.line_num, cells)
            for cells in reader
            if cells and "".join(cells).strip() and not cells[0].lstrip().startswith("#")
        ]
    except csv.Error as e:
        raise EventsFileError(f"{path}, line {reader.line_num}: {e}") from None
    if not numbered:
        raise EventsFileError(f"{path}: no header (date,kind,amount,reason)")
    line, header = numbered[0]
    names = [h.strip().lower() for h in header]
    unknown = [n for n in names if n not in FIELDS]
    if unknown or len(set(names)) != len(names) or not {"date", "kind"} <= set(names):
        hint = " (it is semicolon-separated: use commas)" if ";" in header[0] else ""
        raise EventsFileError(
            f"{path}, line {line}: the header must name the columns date,kind,amount,reason "
            f"(amount and reason may be left out), not {','.join(header)}{hint}"
        )
    for line, cells in numbered[1:]:
        origin = Origin(str(path), line)
        if len(cells) > len(names):
            hint = " (an amount with a decimal comma? write 1500.50)" if "amount" in names else ""
            raise EventsFileError(
                f"{origin}: {len(cells)} cells, the header names {len(names)}{hint}"
            )
        fields = {n: c.strip() for n, c in zip(names, cells, strict=False) if c.strip()}
        yield _row(origin, fields)


_EVENT_HEADER = re.compile(r"^\s*\[\[\s*event\s*\]\]")


def _toml_rows(path: Path, text: str) -> Iterator[Row]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise EventsFileError(f"{path}: not TOML: {e}") from None
    other = sorted(set(data) - {"event"})
    if other or not isinstance(data.get("event", []), list):
        raise EventsFileError(
            f"{path}: only [[event]] tables may be in an events file, not "
            f"{', '.join(other) or 'event'}"
        )
    tables = data.get("event", [])
    # tomllib keeps no positions: the n-th [[event]] header's line is the n-th event's.
    lines = [n for n, t in enumerate(text.splitlines(), 1) if _EVENT_HEADER.match(t)]
    if len(lines) != len(tables):
        raise EventsFileError(f"{path}: write each event as an [[event]] table of its own")
    for line, table in zip(lines, tables, strict=True):
        origin = Origin(str(path), line)
        unknown = sorted(set(table) - set(FIELDS))
        if unknown:
            _refuse(origin, unknown[0], f"not a field of an event ({', '.join(FIELDS)})")
        yield _row(origin, table)


def _row(origin: Origin, fields: Mapping[str, object]) -> Row:
    """One event's fields checked: a known kind, a day, an amount or reason where it takes one."""
    kind = str(fields.get("kind", "")).strip().lower()
    if kind not in KINDS:
        got = f"'{kind}' is not a kind" if kind else "missing"
        _refuse(origin, "kind", f"{got} (windfall, pause, resume or outside_value)")
    takes = _TAKES[kind]
    for name in ("amount", "reason"):
        if name in fields and name != takes:
            which = "neither an amount nor a reason" if takes is None else f"only its {takes}"
            _refuse(origin, name, f"a {kind} takes no {name} ({which})")
    if takes is not None and takes not in fields:
        _refuse(origin, takes, f"a {kind} needs its {takes}")
    reason = fields.get("reason")
    if reason is not None and not (isinstance(reason, str) and reason.strip()):
        _refuse(origin, "reason", "a reason is a text (it is kept in the journal)")
    return Row(
        origin,
        _day(origin, fields.get("date")),
        kind,
        None if takes != "amount" else _amount(origin, fields["amount"]),
        reason.strip() if isinstance(reason, str) else None,
    )


def _day(origin: Origin, value: object) -> date:
    if value is None:
        _refuse(origin, "date", "missing (YYYY-MM-DD)")
    if isinstance(value, datetime):  # a subclass of date: a time is no day
        _refuse(origin, "date", f"{value} is a time, not a day (YYYY-MM-DD)")
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        _refuse(origin, "date", f"'{value}' is not a date (YYYY-MM-DD)")


def _amount(origin: Origin, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        _refuse(origin, "amount", f"{value!r} is not a number")
    try:
        amount = float(value)
    except ValueError:
        _refuse(origin, "amount", f"'{value}' is not a number (write 1500.50: a point, no commas)")
    if not math.isfinite(amount):
        _refuse(origin, "amount", f"'{value}' is not an amount of money")
    return amount


def _refuse(origin: Origin, field: str, message: str) -> NoReturn:
    raise EventsFileError(f"{origin}, {field}: {message}")
