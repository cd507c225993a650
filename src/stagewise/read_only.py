"""A real account seen through a read-only key: the `Exchange`'s balances and prices as a
`Snapshot`, never an order (paper mode's account is `stagewise.paper`)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

import structlog

from stagewise.errors import ExchangeUnavailable, SnapshotError
from stagewise.exchange import Exchange
from stagewise.keyrights import ADVICE, KeyPermissions
from stagewise.snapshot import Snapshot

log = structlog.get_logger()


class ReadOnlyAccount:
    """A real account seen through a read-only key: balances and prices, never an order."""

    mode = "read-only"
    # Contributions are not on the account yet when DCA runs: the plan says what to deposit.
    allow_deposit = True
    settles = False  # proposals are for the investor to place: the balances do not move

    def __init__(self, exchange: Exchange) -> None:
        self._exchange = exchange

    def deposit(self, amount: float, now: datetime, note: str) -> list[Any]:
        """Nothing: stagewise cannot move money on a real account."""
        return []

    def settle(self, plan: Any, snapshot: Snapshot, now: datetime) -> list[Any]:
        """Nothing: proposals on a real account are for the investor to place or not."""
        return []

    def snapshot(
        self, assets: Collection[str], now: datetime, *, pending: Sequence[Any] = ()
    ) -> Snapshot:
        """One balance request and one ticker request, whatever the number of assets."""
        balances, locked = self._exchange.balances()
        wanted = set(assets) | set(balances)
        prices, markets, unpriced = self._exchange.quotes(wanted, now)
        return Snapshot(
            taken_at=now,
            quote=self._exchange.quote,
            balances=balances,
            prices=prices,
            markets=markets,
            unpriced=tuple(unpriced),
            locked=locked,
        )

    def warn_if_key_can_trade(self) -> KeyPermissions | None:
        """Log a warning when the exchange says the key may trade or withdraw. The check is
        optional: when the exchange does not serve it (or cannot be asked), a warning says so
        and None is returned, as for an exchange that does not tell; a refused key raises."""
        try:
            rights = self._exchange.key_permissions()
        except (SnapshotError, ExchangeUnavailable) as e:
            log.warning(
                "key_permissions_unknown",
                exchange=self._exchange.id,
                error=str(e),
                advice="could not ask what the API key may do: make sure it can only read",
            )
            return None
        if rights is not None and (rights.trade or rights.withdraw):
            log.warning(
                "api_key_not_read_only",
                exchange=self._exchange.id,
                trade=rights.trade,
                withdraw=rights.withdraw,
                advice=ADVICE,
            )
        return rights
