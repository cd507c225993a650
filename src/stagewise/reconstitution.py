"""When a rule index is reconstituted, and what the jobs see of it: the latest recorded
composition of each rule index, a new one at the index's own rebalance (or the first time
any job needs it), recorded in the state file with one `reconstituted` event.

The choosing itself is `stagewise.composition` (pure); the market data come from an
`IndexData`: a price history (`simulate`) or the exchange's candles (`stagewise.candles`).
An index that cannot be composed fails its own rebalance; any other run goes on with its
last composition (none yet: its share is held as cash), saying so in the run's notes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, tzinfo
from typing import Protocol

import structlog

from stagewise.composition import (
    Composition,
    changes,
    compose,
    from_holdings,
    history_days,
    left_reason,
    usable_days,
)
from stagewise.errors import ConfigError, StagewiseError
from stagewise.history import PriceHistory
from stagewise.holdings_files import read_holdings
from stagewise.planner.model import Plan
from stagewise.settings import Config
from stagewise.stages import Index
from stagewise.store import DuplicatePeriod, Store
from stagewise.universe import Universe, resolve

log = structlog.get_logger()

NO_DATA = "rule indices need market data: price history or the exchange's candles"


class IndexData(Protocol):
    """Where a reconstitution reads its market data: universes and price histories."""

    def universe(
        self, index: Index, now: datetime, assets: Sequence[str] | None = None
    ) -> Universe: ...

    def history(self, assets: Sequence[str], now: datetime, days: int) -> PriceHistory: ...


class HistoryData:
    """Market data from a price history (a simulation): its assets are the listed ones; a
    CSV's days are the investor's (`tz`): a close is known from the midnight ending it."""

    def __init__(self, history: PriceHistory, quote: str = "", tz: tzinfo = UTC) -> None:
        self.prices = history if history.zone else dataclasses.replace(history, zone=tz)
        self.quote = quote

    def universe(
        self, index: Index, now: datetime, assets: Sequence[str] | None = None
    ) -> Universe:
        unlisted = f"no prices in {self.prices.source or 'the price history'}"
        return resolve(index, self.prices.assets, self.quote, unlisted, assets)

    def history(self, assets: Sequence[str], now: datetime, days: int) -> PriceHistory:
        """The closes (and volumes) of `assets` of the `days` days known at `now` and one
        more, as the exchange's candles come: what a reconstitution reads (a copy of every
        column up to `now` at each of a weekly index's reconstitutions was a tenth of a
        10-year simulation)."""
        prices = self.prices
        n = usable_days(prices, now)
        first = max(0, n - days - 1)
        return PriceHistory(
            prices.days[first:n],
            {a: prices.closes[a][first:n] for a in assets if a in prices.closes},
            prices.source,
            prices.zone,
            {a: prices.volumes[a][first:n] for a in assets if a in prices.volumes},
        )


class Reconstitutions:
    """The compositions of one config's rule indices over one store and market data."""

    def __init__(self, config: Config, store: Store, data: IndexData | None) -> None:
        self.config = config
        self.store = store
        self.data = data
        self._left: dict[str, dict[str, str]] = {}  # per index, this run's leavers and why
        self._failed: dict[str, str] = {}  # per index, why this run could not compose it
        self._warned: set[str] = set()  # the indices whose failure has been logged

    def current(
        self, indices: Iterable[str], now: datetime, period: str, due: str | None = None
    ) -> dict[str, dict[str, float]]:
        """Per rule index of `indices`, its weights (percent): the latest recorded; for `due`
        (the index whose rebalance this is) and any never composed, a new composition made
        at `now` under `period` (one of `period` already recorded is reused: a retry).
        `due` that cannot be composed raises; another keeps its last (or holds nothing)."""
        indices = list(indices)
        recorded = self.store.compositions(at=now, indices=indices)
        self._left, self._failed = {}, {}
        out: dict[str, dict[str, float]] = {}
        for index in indices:
            last = recorded.get(index)
            if index != due and last is not None:
                out[index] = last["weights"]
                continue
            try:
                out[index] = self._reconstitute(index, now, period, last)
            except StagewiseError as e:
                if index == due:
                    raise
                self._failed[index] = str(e)
                # Said once until it composes: every run of the day would repeat it.
                say = log.debug if index in self._warned else log.warning
                say("reconstitution_failed", index=index, error=str(e))
                self._warned.add(index)
                out[index] = {} if last is None else last["weights"]
            else:
                self._warned.discard(index)
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

    def annotate(self, plan: Plan) -> Plan:
        """`plan` with a note for each rule index this run could not compose."""
        if not self._failed:
            return plan
        notes = [
            f"index {index} was not reconstituted ({error}); it holds its last composition, "
            "or cash until it has one"
            for index, error in self._failed.items()
        ]
        return dataclasses.replace(plan, notes=(*plan.notes, *notes))

    def _reconstitute(
        self, index: str, now: datetime, period: str, last: Mapping | None
    ) -> dict[str, float]:
        again = self.store.compositions(period=period, indices=[index]).get(index)
        if again is not None:  # a retry of this period: what it chose stands
            return again["weights"]
        if self.data is None:
            raise ConfigError(f"index {index}: {NO_DATA}")
        rule = self.config.plan.indices[index]
        made = self._compose(index, rule, now)
        before = None if last is None else last["weights"]
        entered, left = changes(before, made.weights)
        self._left[index] = {a: left_reason(rule, made, a) for a in left}
        event = _event(made, period, entered, left, reweighted(before, made.weights))
        if rule.source is not None:
            event["source"] = str(rule.source)
        try:
            self.store.add_composition(period, made, event)
        except DuplicatePeriod:  # another process composed it first: take its choice
            return self.store.compositions(period=period, indices=[index])[index]["weights"]
        moved = event["reweighted"]
        log.info(
            "reconstituted",
            index=index,
            constituents=list(made.weights),
            entered=entered,
            left=left,
            reweighted=moved,
            notes=list(made.notes),
        )
        if rule.source is not None and before is not None and (entered or left or moved):
            # what the provider changed in its file since the last reconstitution
            source = str(rule.source)
            log.info(
                "holdings_changed",
                index=index,
                source=source,
                entered=entered,
                left=left,
                reweighted=moved,
            )
        return dict(made.weights)

    def _compose(self, index: str, rule: Index, now: datetime) -> Composition:
        """A composition of `rule` at `now` from the market data (a holdings file re-read)."""
        assert self.data is not None
        if rule.source is not None:
            holdings = read_holdings(rule.source)
            assets = list(holdings.weights)
            universe = self.data.universe(rule, now, assets)
            history = self.data.history(universe.assets, now, 1)
            return from_holdings(index, holdings, history, now, universe.excluded)
        universe = self.data.universe(rule, now)
        history = self.data.history(universe.assets, now, history_days(rule))
        return compose(index, rule, history, now, universe)


def reweighted(
    before: Mapping[str, float] | None, after: Mapping[str, float]
) -> dict[str, list[float]]:
    """The assets held before and after whose weight moved (by 0.01 point or more), each
    with [before, after] percent."""
    if not before:
        return {}
    return {
        a: [round(before[a], 4), round(w, 4)]
        for a, w in after.items()
        if a in before and abs(before[a] - w) >= 0.01
    }


def _event(
    made: Composition,
    period: str,
    entered: list[str],
    left: list[str],
    moved: Mapping[str, list[float]],
) -> dict:
    return {
        "index": made.index,
        "period": period,
        "close_day": made.close_day.isoformat(),
        "weights": {a: round(w, 4) for a, w in made.weights.items()},
        "entered": entered,
        "left": left,
        "reweighted": dict(moved),
        "figures": {a: round(f, 6) for a, f in made.figures.items()},
        "notes": list(made.notes),
    }
