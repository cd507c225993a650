"""How the store's values become columns and back: times, JSON, the plan state.

Times are aware datetimes in the API (naive ones raise ValueError) and ISO-8601 UTC text in
the file, fixed width so that text order is time order. Rows go back to callers as dicts with
times as aware datetimes and JSON columns decoded.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import operator
import sqlite3
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from stagewise.planner.model import PlanState

_TIME_COLUMNS = frozenset(
    {"at", "scheduled_at", "started_at", "finished_at", "snapshot_at", "updated_at"}
)
_JSON_COLUMNS = frozenset({"notes", "summary", "data", "failed_services"})


def iso(at: datetime) -> str:
    """`at` as fixed-width ISO-8601 UTC text; naive datetimes are refused."""
    if at.tzinfo is UTC:  # the common case: already UTC, no conversion to make
        return _utc_text(at)
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"naive datetime {at!r}: pass an aware one (UTC in storage)")
    return at.astimezone(UTC).isoformat(timespec="microseconds")


# A run stamps one moment several times. Only UTC times are remembered: two local times that
# differ only by `fold` (the repeated hour) compare equal but are an hour apart.
@functools.lru_cache(maxsize=64)
def _utc_text(at: datetime) -> str:
    return at.isoformat(timespec="microseconds")


def from_iso(text: str) -> datetime:
    """A stored time back as an aware datetime (UTC)."""
    return datetime.fromisoformat(text)


def _plain(value: object) -> object:
    """JSON fallback: dataclasses and read-only mappings as plain dicts."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return columns(value)
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"cannot store {type(value).__name__} as JSON")


# The arguments json.dumps would be given, built once: NaN/inf in stored money would be a bug
# upstream; refuse it rather than store it.
_ENCODER = json.JSONEncoder(default=_plain, allow_nan=False, sort_keys=True)


def to_json(value: object) -> str:
    """`value` as JSON text; dataclasses and mappings as objects, NaN and inf refused."""
    return _ENCODER.encode(value)


@functools.cache
def fields_of(cls: type) -> tuple[tuple[str, ...], Callable[[Any], tuple[Any, ...]]]:
    """A dataclass's field names, and a getter of an instance's values in that order (both
    looked up once per class)."""
    names = tuple(f.name for f in dataclasses.fields(cls))
    return names, operator.attrgetter(*names) if len(names) > 1 else lambda o: (
        getattr(o, names[0]),
    )


def columns(obj: object) -> dict[str, Any]:
    """A dataclass's fields by name (shallow: mappings and tuples stay as they are)."""
    names, values = fields_of(type(obj))  # type: ignore[arg-type]  # a class is hashable
    return dict(zip(names, values(obj), strict=True))


def state_json(state: PlanState) -> str:
    """The plan state as one JSON object, every field by name."""
    return to_json(columns(state))


def state_from_json(text: str) -> PlanState:
    """The plan state back; fields missing from an older file take their defaults."""
    stored = json.loads(text)
    known = fields_of(PlanState)[0]
    values = {k: v for k, v in stored.items() if k in known}  # a newer file's extras: ignored
    if "milestones_taken" in values:
        values["milestones_taken"] = {a: tuple(m) for a, m in values["milestones_taken"].items()}
    return PlanState(**values)


def decode(row: Mapping[str, Any]) -> dict[str, Any]:
    """A stored row for callers: times as aware datetimes, JSON columns decoded."""
    out = dict(row)
    for key, value in row.items():
        if value is None:
            continue
        if key in _TIME_COLUMNS:
            out[key] = from_iso(value)
        elif key in _JSON_COLUMNS:
            out[key] = json.loads(value)
    return out


def decoded(cursor: sqlite3.Cursor) -> list[dict[str, Any]]:
    """A query's rows for callers, by column name, each `decode`d."""
    names = [d[0] for d in cursor.description]
    return [decode(dict(zip(names, row, strict=True))) for row in cursor]


def where_clause(*conditions: tuple[str, object]) -> tuple[str | None, list[object]]:
    """AND of the conditions whose value is not None, with their arguments."""
    used = [(sql, value) for sql, value in conditions if value is not None]
    return (" AND ".join(sql for sql, _ in used) or None), [value for _, value in used]
