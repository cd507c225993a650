"""The paper account's append-only ledger (its rows written by runs.insert_ledger) and the
balance per asset a trigger keeps from it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from stagewise.ledger import LedgerEntry
from stagewise.store import runs
from stagewise.store.codec import from_iso
from stagewise.store.events import EventStore


class LedgerStore(EventStore):
    """The store's paper ledger."""

    def ledger_entries(self) -> list[LedgerEntry]:
        """The whole paper ledger, in the order it was written."""
        rows = self.conn.execute(
            "SELECT at, kind, asset, amount, price, note FROM ledger ORDER BY id"
        )
        entries = []
        times: dict[str, datetime] = {}  # a run's entries share one time: parse it once
        for at, kind, asset, amount, price, note in rows:
            when = times.get(at)
            if when is None:
                when = times[at] = from_iso(at)
            entries.append(LedgerEntry(when, kind, asset, amount, price, note))
        return entries

    def ledger_balances(self) -> dict[str, float]:
        """The paper account's balance per asset: the sum of its ledger entries."""
        # Kept by a trigger on each ledger insert (schema m003): equal to the per-asset sums.
        sql = "SELECT asset, balance FROM ledger_balances ORDER BY asset"
        return dict(
            self._reads.get("ledger_balances", lambda: dict(self.conn.execute(sql).fetchall()))
        )

    def seed_ledger(
        self,
        balances: Mapping[str, float],
        at: datetime,
        *,
        prices: Mapping[str, float] | None = None,
    ) -> bool:
        """Seed an empty ledger with `balances` (cost basis from `prices` where given).

        True when seeded; False, writing nothing, when the ledger already has entries.
        """
        prices = prices or {}
        entries = [
            LedgerEntry(at, "seed", asset, amount, prices.get(asset), "initial balance")
            for asset, amount in sorted(balances.items())
            if amount != 0
        ]
        with self._writing():
            if self.conn.execute("SELECT 1 FROM ledger LIMIT 1").fetchone():
                return False
            runs.insert_ledger(self.conn, entries, None)
            self._insert_event("ledger_seeded", at, {"balances": dict(balances)})
        return True
