"""The compositions of rule indices: each reconstitution as recorded under its period."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from stagewise.composition import Composition
from stagewise.store.codec import from_iso, iso, to_json, where_clause
from stagewise.store.events import EventStore
from stagewise.store.runs import DuplicatePeriod


class CompositionStore(EventStore):
    """The store's compositions of rule indices (each with its 'reconstituted' event)."""

    def add_composition(
        self, period: str, composition: Composition, event: Mapping[str, Any]
    ) -> None:
        """Record a reconstitution under `period` with its `reconstituted` event, in one
        transaction. Raises DuplicatePeriod if the index has one for `period` already."""
        with self._writing():
            c = composition
            try:
                self.conn.execute(  # hand-written, as the events beside it
                    "INSERT INTO compositions (index_name, period, moment, close_day, weights,"
                    " figures, ranks, notes) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        c.index,
                        period,
                        iso(c.moment),
                        c.close_day.isoformat(),
                        to_json(dict(c.weights)),
                        to_json(dict(c.figures)),
                        to_json(dict(c.ranks)),
                        to_json(list(c.notes)),
                    ],
                )
            except sqlite3.IntegrityError as e:
                raise DuplicatePeriod(
                    f"index {composition.index} is already composed for {period}"
                ) from e
            self._insert_event("reconstituted", composition.moment, event)

    def compositions(
        self,
        *,
        at: datetime | None = None,
        period: str | None = None,
        indices: Iterable[str] | None = None,
    ) -> dict[str, dict[str, Any]]:
        """Per index (of `indices`; default every one recorded), its latest recorded
        composition (at or before `at`; only of `period`): moment, close_day, weights,
        figures, ranks and notes, decoded."""
        # One row an index, through the (index_name, moment) index: a weekly index records
        # 52 a year, and decoding them all on every run grew with the file (10 years of
        # weekly reconstitutions in a simulation: 712,000 JSON decodes, 10 of its 12 s).
        where, args = where_clause(
            ("moment <= ?", None if at is None else iso(at)), ("period = ?", period)
        )
        sql = (
            "SELECT period, moment, close_day, weights, figures, ranks, notes FROM compositions"
            " WHERE index_name = ?"
            + (f" AND {where}" if where else "")
            + " ORDER BY moment DESC, id DESC LIMIT 1"
        )
        if indices is None:
            found = self.conn.execute("SELECT DISTINCT index_name FROM compositions ORDER BY 1")
            indices = [name for (name,) in found.fetchall()]
        out: dict[str, dict[str, Any]] = {}
        for name in indices:
            row = self.conn.execute(sql, [name, *args]).fetchone()
            if row is None:
                continue
            key, moment, close_day, *data = row
            weights, figures, ranks, notes = (json.loads(d) for d in data)
            out[name] = {
                "period": key,
                "moment": from_iso(moment),
                "close_day": close_day,
                "weights": weights,
                "figures": figures,
                "ranks": ranks,
                "notes": notes,
            }
        return out
