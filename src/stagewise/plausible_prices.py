"""A live account whose prices are checked against the account's own last recorded ones.

An exchange (or a proxy, a cache, a bad release of its API) can answer a price that is off by
a factor: the planner would trade the whole account on it, and the implausible-order cap,
measured against the account's value at the same price, would not stop it (a BTC at 1000x
made a sell of 527,371 USDT from a 8,000 USDT account). A price more than
`policy.max_price_jump` times above or below the asset's price in the newest recorded
snapshot, if that is at most a month old, refuses the snapshot (SnapshotError: the run fails,
is retried and told like any other failure). A simulation's prices are its history, taken
as they are: it does not use this.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta

from stagewise.errors import SnapshotError
from stagewise.jobs import Account
from stagewise.ledger import LedgerEntry
from stagewise.money import price_text
from stagewise.planner.model import Plan
from stagewise.snapshot import Snapshot
from stagewise.store import Store

# The newest recorded snapshot is a reference this long (a month of DCA runs at least).
REFERENCE_AGE = timedelta(days=31)


class PlausiblePrices:
    """`account`, its snapshots refused when a price jumped (see the module)."""

    def __init__(self, account: Account, store: Store, max_jump: float) -> None:
        self.account, self.store, self.max_jump = account, store, max_jump
        self.mode, self.allow_deposit = account.mode, account.allow_deposit
        self.settles = account.settles

    def snapshot(
        self, assets: Collection[str], now: datetime, *, pending: Sequence[LedgerEntry] = ()
    ) -> Snapshot:
        snapshot = self.account.snapshot(assets, now, pending=pending)
        if self.max_jump > 0:
            check_jumps(snapshot, self.store.latest_snapshot(), self.max_jump)
        return snapshot

    def deposit(self, amount: float, now: datetime, note: str) -> list[LedgerEntry]:
        return self.account.deposit(amount, now, note)

    def settle(self, plan: Plan, snapshot: Snapshot, now: datetime) -> list[LedgerEntry]:
        return self.account.settle(plan, snapshot, now)


def check_jumps(
    snapshot: Snapshot, reference: tuple[datetime, dict[str, dict]] | None, max_jump: float
) -> None:
    """Raise SnapshotError naming each asset whose price is more than `max_jump` times above
    or below its price in `reference` (the newest recorded snapshot: its time and rows), when
    that is at most REFERENCE_AGE older than `snapshot`."""
    if reference is None or snapshot.taken_at - reference[0] > REFERENCE_AGE:
        return
    at, rows = reference
    quote = snapshot.quote
    jumps = []
    for asset, row in sorted(rows.items()):
        before, now = row.get("price"), snapshot.prices.get(asset)
        if asset == quote or not before or not now or before <= 0 or now <= 0:
            continue  # nothing to compare (a price missing is refused by the planner)
        ratio = now / before
        if ratio > max_jump or ratio < 1 / max_jump:
            jumps.append(
                f"{asset} is {price_text(now)} {quote} on the exchange, {ratio:.3g}x its "
                f"{price_text(before)} {quote} of the last recorded snapshot "
                f"({at.isoformat(timespec='minutes')})"
            )
    if jumps:
        raise SnapshotError(
            "; ".join(jumps) + f": more than policy.max_price_jump ({max_jump:g}x) away, taken "
            "for a bad price: no plan is made from it (if the market really moved so, raise "
            "policy.max_price_jump for a run, or set it to 0)"
        )
