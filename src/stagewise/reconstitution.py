"""When a rule index is reconstituted, and what the jobs see of it: the latest recorded
composition of each rule index, a new one at the index's own rebalance (or the first time
any job needs it), recorded in the state file with one `reconstituted` event.

The choosing itself is `stagewise.composition` (pure); this module reads and writes the store.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from datetime import datetime

import structlog

from stagewise.composition import Composition, changes, compose, left_reason
from stagewise.errors import ConfigError
from stagewise.history import PriceHistory
from stagewise.planner.model import Plan
from stagewise.settings import Config
from stagewise.store import DuplicatePeriod, Store

log = structlog.get_logger()

NO_HISTORY = "rule indices need price history: live support comes later"


class Reconstitutions:
    """The compositions of one config's rule indices over one store and price history."""

    def __init__(self, config: Config, store: Store, history: PriceHistory | None) -> None:
        self.config = config
        self.store = store
        self.history = history
        self._left: dict[str, dict[str, str]] = {}  # per index, this run's leavers and why

    def current(
        self, indices: Iterable[str], now: datetime, period: str, due: str | None = None
    ) -> dict[str, dict[str, float]]:
        """Per rule index of `indices`, its weights (percent): the latest recorded; for `due`
        (the index whose rebalance this is) and any never composed, a new composition made
        at `now` under `period` (one of `period` already recorded is reused: a retry)."""
        recorded = self.store.compositions(at=now)
        self._left = {}
        out: dict[str, dict[str, float]] = {}
        for index in indices:
            last = recorded.get(index)
            if index == due or last is None:
                out[index] = self._reconstitute(index, now, period, last)
            else:
                out[index] = last["weights"]
        return out

    def left(self, index: str) -> Mapping[str, str]:
        """The assets that left `index` at this run's reconstitution, each with its reason."""
        return self._left.get(index, {})

    def explain(self, plan: Plan, index: str) -> Plan:
        """`plan` with each sell of an asset that left `index` given the rule's reason."""
        left = self.left(index)
        if not left:
            return plan
        orders = tuple(
            dataclasses.replace(o, reason=left[o.base])
            if o.side == "sell" and o.base in left
            else o
            for o in plan.orders
        )
        return dataclasses.replace(plan, orders=orders)

    def _reconstitute(
        self, index: str, now: datetime, period: str, last: Mapping | None
    ) -> dict[str, float]:
        again = self.store.compositions(period=period).get(index)
        if again is not None:  # a retry of this period: what it chose stands
            return again["weights"]
        if self.history is None:
            raise ConfigError(f"index {index}: {NO_HISTORY}")
        rule = self.config.plan.indices[index]
        made = compose(index, rule, self.history, now)
        entered, left = changes(None if last is None else last["weights"], made.weights)
        self._left[index] = {a: left_reason(rule, made, a) for a in left}
        try:
            self.store.add_composition(period, made, _event(made, period, entered, left))
        except DuplicatePeriod:  # another process composed it first: take its choice
            return self.store.compositions(period=period)[index]["weights"]
        log.info(
            "reconstituted",
            index=index,
            constituents=list(made.weights),
            entered=entered,
            left=left,
            notes=list(made.notes),
        )
        return dict(made.weights)


def _event(made: Composition, period: str, entered: list[str], left: list[str]) -> dict:
    return {
        "index": made.index,
        "period": period,
        "close_day": made.close_day.isoformat(),
        "weights": {a: round(w, 4) for a, w in made.weights.items()},
        "entered": entered,
        "left": left,
        "figures": {a: round(f, 6) for a, f in made.figures.items()},
        "notes": list(made.notes),
    }
