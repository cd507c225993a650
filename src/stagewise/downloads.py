"""Price history from the exchange (`simulate --from-exchange`): the daily closes of every
asset of the plan, from its public endpoints (no key), through a cache beside the state file:
a later run over the same days downloads nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

from stagewise.exchange import Exchange
from stagewise.history import PriceHistory, from_closes
from stagewise.settings import Config
from stagewise.simulate import plan_assets
from stagewise.store import Store

CACHE_FILE = "price-cache.db"  # beside the state file
DAY_MS = 86_400_000


def download_history(
    config: Config,
    start: date,
    end: date,
    *,
    downloading: Callable[[str], None] = lambda symbol: None,
) -> PriceHistory:
    """The daily closes of every plan asset over [start, end), and the two days before (the
    closes a job of the first day knows, in any time zone: the candles close at 00:00 UTC).
    `downloading(symbol)` is told of each market not cached whole, before it is downloaded."""
    public = config.settings.exchange.model_copy(
        update={"api_key": None, "secret": None, "password": None}
    )
    since = _ms(start - timedelta(days=2))
    until = _ms(end)
    cache = Store.open(config.state_path.with_name(CACHE_FILE))
    exchange = Exchange(public)
    closes: dict[str, list[tuple[int, float]]] = {}
    try:
        for asset in sorted(plan_assets(config, start, end)):
            symbol = f"{asset}/{config.quote}"
            rows = cache.cached_closes(exchange.id, symbol, "1d", since, until)
            if len(rows) < (until - since) // DAY_MS:
                downloading(symbol)
                rows = exchange.ohlcv_closes(asset, since, until)
                cache.cache_closes(exchange.id, symbol, "1d", rows)
            closes[asset] = rows
    finally:
        exchange.close()
        cache.close()
    return from_closes(closes, f"{config.settings.exchange.id} daily closes")


def _ms(day: date) -> int:
    """Midnight UTC of `day`, in milliseconds since the epoch (ccxt's timestamps)."""
    return int(datetime.combine(day, datetime.min.time(), UTC).timestamp() * 1000)
