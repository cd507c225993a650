"""Reads the jobs repeat on every run (plan state, paper balances, pending windfalls), kept
until the file changes: by the store (each write drops them, or puts in what it wrote) or by
another connection (SQLite's `PRAGMA data_version` moves)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from stagewise.paper import LedgerEntry
from stagewise.planner.model import PlanState


class Reads:
    """The kept reads of one connection, by name."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.private = False  # True: no other connection can write (a store in memory)
        self._kept: dict[str, Any] = {}
        self._version: int | None = None

    def get(self, key: str, load: Callable[[], Any]) -> Any:
        """The kept read `key`, `load`ed first if it is not kept or the file has changed."""
        self.check()
        if key not in self._kept:
            self._kept[key] = load()
        return self._kept[key]

    def check(self) -> None:
        """Drop every kept read if another connection has written since they were made."""
        if self.private:
            return
        version = self.conn.execute("PRAGMA data_version").fetchone()[0]
        if version != self._version:
            self._kept.clear()
            self._version = version

    def replace(self, known: Mapping[str, Any]) -> None:
        """After a write: keep only `known`, the reads it knows to be true now."""
        self._kept = dict(known)

    def after_run(
        self, state: PlanState | None, ledger: Sequence[LedgerEntry], consumed: Sequence[int]
    ) -> dict[str, Any]:
        """The kept reads as they will be once the run being written commits: those it
        changed worked out from what it wrote (the file gives back the same values), not
        read back. Called inside the run's transaction, after the write lock is taken."""
        kept = self._kept
        known = {}
        if state is not None:
            known["plan_state"] = state
        elif "plan_state" in kept:
            known["plan_state"] = kept["plan_state"]
        if "pending_windfalls" in kept:
            known["pending_windfalls"] = [
                w for w in kept["pending_windfalls"] if w.id not in consumed
            ]
        if "ledger_balances" in kept:
            balances = _after(kept["ledger_balances"], ledger)
            if balances is not None:
                known["ledger_balances"] = balances
        return known


def _after(balances: dict[str, float], entries: Sequence[LedgerEntry]) -> dict[str, float] | None:
    """The ledger balances after `entries`, as the ledger_balances trigger computes them and
    the file returns them: REAL sums in entry order (a zero stored unsigned), by asset. None
    (read them back) for an entry whose asset or amount is not a plain str or number."""
    if not entries:
        return balances
    after = dict(balances)
    for e in entries:
        if type(e.asset) is not str or type(e.amount) not in (float, int):
            return None
        amount = float(e.amount)
        after[e.asset] = (after[e.asset] + amount if e.asset in after else amount) + 0.0
    return dict(sorted(after.items()))
