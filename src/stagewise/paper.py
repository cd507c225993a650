"""The paper account: a simulated exchange account kept as an append-only ledger
(`stagewise.ledger`); `PaperAccount` only joins the stored ledger to market prices. Paper mode
never talks to an exchange's private endpoints: prices and market rules come from a
`MarketSource` (the exchange's public endpoints, or price history in `simulate`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from types import MappingProxyType
from typing import Protocol

from stagewise.ledger import (
    LedgerEntry,
    deposit_entry,
    fill_entries,
    withdrawal_entry,
)
from stagewise.planner.model import Plan
from stagewise.snapshot import Market, Snapshot


class MarketSource(Protocol):
    """Public prices and market rules, without any account (exchange public API or history)."""

    def quotes(
        self, assets: Sequence[str], now: datetime
    ) -> tuple[dict[str, float], Mapping[str, Market]]:
        """Prices in the quote currency for `assets` (a new dict, the caller's), and market
        rules keyed by base asset (at least those of the priced assets)."""
        ...


class Ledger(Protocol):
    """What the paper account needs of the store: the ledger it keeps."""

    def ledger_balances(self) -> dict[str, float]: ...  # the caller's own copy

    def seed_ledger(
        self, balances: Mapping[str, float], at: datetime, *, prices: Mapping[str, float]
    ) -> bool: ...


# The note of the ledger withdrawal that moves profit taken out of the account.
PROFIT_TAKEN = "profit taken: moved to diversified traditional investments"
# The rules whose sale proceeds leave the account, with the note of their ledger entry.
_PAYOUTS = {"withdraw": "withdrawal payout", "profit": PROFIT_TAKEN}


class PaperAccount:
    """The simulated account: balances from the stored ledger, prices from a MarketSource."""

    mode = "paper"
    # Paper DCA deposits its contribution first: buys never need money that is not there.
    allow_deposit = False
    settles = True  # a plan fills on the ledger: the balances move

    def __init__(
        self,
        store: Ledger,
        market_source: MarketSource,
        quote: str,
        *,
        fee_rate: float = 0.001,
    ) -> None:
        self.store = store
        self.market_source = market_source
        self.quote = quote
        self.fee_rate = fee_rate
        self._last_rules: tuple[dict[str, Market], Mapping[str, Market]] | None = None

    def snapshot(
        self, assets: Iterable[str], now: datetime, *, pending: Sequence[LedgerEntry] = ()
    ) -> Snapshot:
        """The account at `now`; `pending` entries (a deposit not yet recorded) count as made.

        Prices are asked for `assets` and every asset held; the quote is priced 1.
        """
        balances = self.store.ledger_balances()
        for e in pending:
            balances[e.asset] = balances.get(e.asset, 0.0) + e.amount
        balances.setdefault(self.quote, 0.0)
        asked = (set(assets) | balances.keys()) - {self.quote}
        prices, markets = self.market_source.quotes(sorted(asked), now)
        for extra in prices.keys() - asked:  # e.g. an exchange's price of the quote itself
            del prices[extra]
        unpriced = tuple(sorted(asked - prices.keys()))
        prices[self.quote] = 1.0
        return Snapshot(now, self.quote, balances, prices, self._own_fees(markets), unpriced)

    def _own_fees(self, markets: Mapping[str, Market]) -> Mapping[str, Market]:
        """Each market with the paper account's own fee, whatever the exchange charges. The
        last answer is kept while the source hands out equal markets (one dict comparison,
        cheap when they are the same objects: every snapshot of a simulation; without it
        bench/bench_simulate.py took 5.0 s instead of 2.2 s)."""
        last = self._last_rules
        if last is None or last[0] != markets:
            fee = self.fee_rate
            rules = {a: dataclasses.replace(m, fee_rate=fee) for a, m in markets.items()}
            last = self._last_rules = (dict(markets), MappingProxyType(rules))
        return last[1]  # read only: the snapshots share it

    def fills(self, plan: Plan, snapshot: Snapshot, at: datetime) -> list[LedgerEntry]:
        """The entries of filling `plan` (priced with this account's fee and the slippage)."""
        return fill_entries(plan, snapshot, at=at)

    def deposit(self, amount: float, now: datetime, note: str) -> list[LedgerEntry]:
        """A contribution is deposited before it is planned (the pending entry of its run)."""
        return [deposit_entry(self.quote, amount, now, note)] if amount > 0 else []

    def settle(self, plan: Plan, snapshot: Snapshot, now: datetime) -> list[LedgerEntry]:
        """What `plan` does to the paper account: its fills, and the proceeds that leave it
        (a withdrawal's payout; profit taken, moved to traditional investments)."""
        entries = self.fills(plan, snapshot, now)
        payout = _PAYOUTS.get(plan.rule)
        if payout is not None:
            proceeds = sum(e.amount for e in entries if e.asset == self.quote)
            if proceeds > 0:
                entries.append(withdrawal_entry(self.quote, proceeds, now, payout))
        return entries

    def seed(self, balances: Mapping[str, float], now: datetime) -> bool:
        """Seed an empty ledger with `balances`, costed at `now`'s prices; False if not empty."""
        assets = sorted(a for a in balances if a != self.quote)
        prices, _ = self.market_source.quotes(assets, now) if assets else ({}, {})
        return self.store.seed_ledger(balances, now, prices=prices)
