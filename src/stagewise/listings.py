"""Assets that list later: a coin without a known price yet is left out of the targets.

Live, the same rule holds for an asset the exchange has no market for (not listed yet, or
delisted): the jobs plan without it and say so in the plan (`unlisted_note`).

Real history starts at different days for different coins. Until an asset's first close is
known, it is not in the targets: its weight is spread over the assets of its index that are
listed (in proportion to their weights), or, when none of the index's assets is listed yet,
held as cash. It joins the targets on the first day its first close is known (at midnight,
the earliest moment of that day, so no job of the day plans with a price it cannot see).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection
from datetime import date, datetime, time, timedelta, tzinfo

from stagewise.history import PriceHistory
from stagewise.targets import Compositions, Targets

RULE = (
    "an asset without a known price yet is left out of the targets until its first close is "
    "known; its weight goes to the listed assets of its index (to cash when none is listed)"
)


def unlisted_note(assets: Collection[str]) -> str:
    """The plan's note on `assets`, planned but without a market on the exchange (live)."""
    return (
        f"no market on the exchange for {', '.join(sorted(assets))} (not listed yet, or "
        "delisted): left out of the targets until it is listed; its weight goes to the listed "
        "assets of its index (to cash when none is listed)"
    )


def listed_only(targets: Targets, listed: Collection[str]) -> Targets:
    """`targets` without the assets not in `listed`: each index's weight spread over its
    listed assets, an index with none held as cash (the sleeve then drops out)."""
    members: dict[str, dict[str, float]] = {}
    as_cash = 0.0  # the weight of the indices with no listed asset
    for index, held in targets.members.items():
        kept = {a: w for a, w in held.items() if a in listed}
        whole, part = sum(held.values()), sum(kept.values())
        if part > 0:
            members[index] = {a: w * whole / part for a, w in kept.items()}
        else:
            as_cash += whole
    weights: dict[str, float] = {}
    for held in members.values():
        for asset, w in held.items():
            weights[asset] = weights.get(asset, 0.0) + w
    return dataclasses.replace(
        targets,
        sleeves={i: s for i, s in targets.sleeves.items() if i in members},
        weights=dict(sorted(weights.items())),
        members=members,
        cash=targets.cash + as_cash,
    )


class ListedTargets:
    """The targets of a day (from `targets`) holding only the assets `history` has a close of
    known at that day's midnight in `tz`: what the jobs of a simulation plan with."""

    def __init__(
        self,
        targets: Callable[[date, Compositions | None], Targets],
        history: PriceHistory,
        tz: tzinfo,
    ) -> None:
        self.targets = targets
        self.history = history
        self.tz = tz
        self._first = {a: history.first_priced(a) for a in history.closes}
        # From this day on every asset of the history is listed: nothing to leave out.
        firsts = [f for f in self._first.values() if f is not None]
        self._all_listed = date.max
        if firsts and len(firsts) == len(self._first):
            known = history.known_at(max(firsts), tz).astimezone(tz)
            self._all_listed = known.date() + timedelta(days=known.time() != time(0))
        self._last: tuple[Targets, Targets] | None = None

    def __call__(self, on: date, compositions: Compositions | None = None) -> Targets:
        base = self.targets(on, compositions)
        if on >= self._all_listed:
            return base
        last = self._last
        if last is not None and last[0] is base:
            return last[1]  # the jobs of one day
        known = self.history.known_index(datetime.combine(on, time(0), self.tz), self.tz)
        i = -1 if known is None else known
        listed = {a for a in base.weights if (f := self._first.get(a)) is not None and f <= i}
        found = base if listed >= base.weights.keys() else listed_only(base, listed)
        self._last = (base, found)
        return found
