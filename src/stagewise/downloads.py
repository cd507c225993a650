"""Price history from the exchange (`simulate --from-exchange`): the daily candles (closes
and quote volumes) of every asset a simulation may hold, from the exchange's public
endpoints (no key), through a cache beside the state file: a later run over the same days
downloads nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

from stagewise.composition import history_days
from stagewise.exchange import Exchange
from stagewise.history import Candle, PriceHistory, from_candles
from stagewise.holdings_files import read_holdings
from stagewise.settings import Config
from stagewise.simulate import plan_assets
from stagewise.store import Store
from stagewise.universe import resolve

CACHE_FILE = "price-cache.db"  # beside the state file
DAY_MS = 86_400_000


def download_history(
    config: Config,
    start: date,
    end: date,
    now: datetime,
    *,
    downloading: Callable[[str], None] = lambda symbol: None,
) -> PriceHistory:
    """The daily candles over [start, end) of every asset `download_assets` names (as the
    exchange lists them at `now`), from two days before (the closes a job of the first day
    knows, in any time zone: the candles close at 00:00 UTC) and as many more days as the rule
    indices read before it. `downloading(symbol)` is told of each market not cached whole (or
    cached without the volumes a rule needs), before it is downloaded."""
    public = config.settings.exchange.model_copy(
        update={"api_key": None, "secret": None, "password": None}
    )
    rules = [config.plan.indices[i] for i in config.plan.rule_indices()]
    reach = max((history_days(index) for index in rules), default=0)
    volumes = any(index.needs_volumes for index in rules)  # candles cached without: again
    since = _ms(start - timedelta(days=2 + reach))
    until = _ms(end)
    cache = Store.open(config.state_path.with_name(CACHE_FILE))
    exchange = Exchange(public)
    candles: dict[str, list[Candle]] = {}
    try:
        assets = download_assets(config, exchange, start, end, now)
        symbols = {asset: f"{asset}/{config.quote}" for asset in assets}
        cached = cache.cached_candles(exchange.id, list(symbols.values()), "1d", since, until)
        for asset, symbol in symbols.items():
            rows = cached.get(symbol, [])
            unknown = volumes and any(r.quote_volume is None for r in rows)
            if len(rows) < (until - since) // DAY_MS or unknown:
                downloading(symbol)
                rows = exchange.daily_candles(asset, since, until)
                cache.cache_candles(exchange.id, symbol, "1d", rows)
            candles[asset] = rows
    finally:
        exchange.close()
        cache.close()
    return from_candles(candles, f"{config.settings.exchange.id} daily candles")


def download_assets(
    config: Config, exchange: Exchange, start: date, end: date, now: datetime
) -> list[str]:
    """The assets a simulation over [start, end) may hold: the plan's fixed baskets', the
    rule indices' listed universes, a holdings file's (as it is now), and for an exchange
    universe every asset the exchange lists against the quote currency at `now`, less the
    exclusions (today's list: coins delisted since are missing, a survivorship bias)."""
    assets = set(plan_assets(config, start, end))
    listed: list[str] | None = None
    for name in config.plan.rule_indices():
        index = config.plan.indices[name]
        if index.universe == "exchange":
            if listed is None:
                listed = exchange.quote_bases(now)
            assets |= set(resolve(index, listed, config.quote, "").assets)
        elif index.source is not None:  # what the file holds now
            assets |= set(read_holdings(index.source).weights)
        else:
            assets |= set(index.assets())
    return sorted(assets)


def _ms(day: date) -> int:
    """Midnight UTC of `day`, in milliseconds since the epoch (ccxt's timestamps)."""
    return int(datetime.combine(day, datetime.min.time(), UTC).timestamp() * 1000)
