"""The compositions of rule indices: each reconstitution as recorded under its period."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
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
                self.db.table("compositions").insert(
                    {
                        "index_name": c.index,
                        "period": period,
                        "moment": iso(c.moment),
                        "close_day": c.close_day.isoformat(),
                        "weights": to_json(dict(c.weights)),
                        "figures": to_json(dict(c.figures)),
                        "ranks": to_json(dict(c.ranks)),
                        "notes": to_json(list(c.notes)),
                    }
                )
            except sqlite3.IntegrityError as e:
                raise DuplicatePeriod(
                    f"index {composition.index} is already composed for {period}"
                ) from e
            self._insert_event("reconstituted", composition.moment, event)

    def compositions(
        self, *, at: datetime | None = None, period: str | None = None
    ) -> dict[str, dict[str, Any]]:
        """Per index, its latest recorded composition (at or before `at`; only of `period`):
        moment, close_day, weights, figures, ranks and notes, decoded."""
        where, args = where_clause(
            ("moment <= ?", None if at is None else iso(at)), ("period = ?", period)
        )
        rows = self.conn.execute(
            "SELECT index_name, period, moment, close_day, weights, figures, ranks, notes"
            " FROM compositions" + (f" WHERE {where}" if where else "") + " ORDER BY moment, id",
            args,
        ).fetchall()
        out: dict[str, dict[str, Any]] = {}
        for name, key, moment, close_day, *data in rows:
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
