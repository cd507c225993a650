"""A config made live: the store, the account of its mode, and the jobs over them.

Read-only mode reads a real account through a read-only key; paper mode keeps a simulated
account in the store, priced from the exchange's public endpoints (no key sent).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import structlog

from stagewise import keyrights
from stagewise.candles import CandleData
from stagewise.errors import ConfigError
from stagewise.exchange import Exchange
from stagewise.jobs import Account, Jobs
from stagewise.paper import MarketSource, PaperAccount
from stagewise.plausible_prices import PlausiblePrices
from stagewise.read_only import ReadOnlyAccount
from stagewise.settings import Config
from stagewise.snapshot import Market
from stagewise.store import Store

log = structlog.get_logger()


class PublicMarkets:
    """Prices and market rules from an exchange's public endpoints (paper mode)."""

    def __init__(self, exchange: Exchange) -> None:
        self.exchange = exchange

    def quotes(self, assets, now: datetime) -> tuple[dict[str, float], dict[str, Market]]:
        prices, markets, _unpriced = self.exchange.quotes(assets, now)
        return prices, markets


@dataclass
class Runtime:
    """Everything a running config needs; `close()` releases the file and the connection."""

    config: Config
    store: Store
    account: Account
    jobs: Jobs
    exchange: Exchange

    def check_exchange(self, now: datetime) -> None:
        """The check at every start and `once`: market rules load; what a read-only key may
        do is asked (optional), a key that can trade is warned about and kept in the state."""
        self.exchange.load_markets(now)
        if isinstance(self.account, ReadOnlyAccount):
            rights = self.account.warn_if_key_can_trade()
            keyrights.record(self.store, self.exchange.id, rights, now)

    def close(self) -> None:
        self.exchange.close()
        self.store.close()


def open_runtime(
    config: Config,
    *,
    market_source: MarketSource | None = None,
    clock: Callable[[], datetime] | None = None,
    store: Store | None = None,
) -> Runtime:
    """Open the store and build the account of the config's mode.

    `market_source` replaces the exchange's public prices in paper mode (price history);
    `clock` tells the jobs when a run finished (the daemon's and the CLI's real clock);
    `store` replaces the configured state file (a dry run's private copy of it)."""
    settings = config.settings
    missing = settings.exchange.missing_keys()
    if missing:
        raise ConfigError(f"{config.path}: cannot read the account", [missing])
    history = getattr(market_source, "history", None)  # a price history's (HistoryMarkets)
    if store is None:
        store = Store.open_state(config.state_path)
    if settings.exchange.mode == "read-only":
        exchange = Exchange(settings.exchange)
        account: Account = ReadOnlyAccount(exchange)
    else:
        # Paper mode needs no key: none is sent, even if one is configured.
        public = settings.exchange.model_copy(
            update={"api_key": None, "secret": None, "password": None}
        )
        exchange = Exchange(public)
        account = PaperAccount(
            store,
            market_source or PublicMarkets(exchange),
            settings.exchange.quote,
            fee_rate=settings.paper.fee_rate,
        )
    # Rule indices read the price history when there is one, else the exchange's candles.
    candles = None if history is not None else CandleData(exchange, store)
    # Prices from the exchange are checked against the account's last recorded ones (a
    # price history's are the simulation's data, taken as they are).
    max_jump = settings.policy.max_price_jump
    planned: Account = account if history is not None else PlausiblePrices(account, store, max_jump)
    jobs = Jobs(config, store, planned, clock, history=history, index_data=candles)
    return Runtime(config, store, account, jobs, exchange)


def seed_paper(runtime: Runtime, now: datetime) -> None:
    """Give a new paper account its configured starting balances (once)."""
    account = runtime.account
    balances = runtime.config.settings.paper.initial_balances
    if isinstance(account, PaperAccount) and balances and account.seed(balances, now):
        log.info("paper_seeded", balances=balances)
