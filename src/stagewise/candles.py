"""Rule indices' market data live: the exchange's daily candles, cached in the state file.

A reconstitution at `now` reads the candles of the days that ended by then (UTC days: a
daily candle closes at 00:00 UTC). Each market's candles are asked for at most once a day:
the first time for the whole window the index reads (`composition.history_days`), then only
from the newest cached candle on. A market the exchange has no candles of, or too few, is
left out by the composition with a note; an exchange fault is the adapter's (retried, then
a named error: the reconstitution fails, the candles fetched before it are kept).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, time

import structlog

from stagewise.exchange import Exchange
from stagewise.history import PriceHistory, from_candles
from stagewise.stages import Index
from stagewise.store import Store
from stagewise.universe import Universe, resolve

log = structlog.get_logger()

DAY_MS = 86_400_000
TIMEFRAME = "1d"
# A market whose newest candle is older than this many days is not priced any more (a
# delisted coin): its last close is not carried past them.
STALE_DAYS = 2


class CandleData:
    """The universes and price histories of rule indices, from one exchange and store."""

    def __init__(self, exchange: Exchange, store: Store) -> None:
        self.exchange = exchange
        self.store = store

    def universe(
        self, index: Index, now: datetime, assets: Sequence[str] | None = None
    ) -> Universe:
        """The universe of `index` (or the list `assets`) among the exchange's markets
        against the quote currency."""
        listed = self.exchange.quote_bases(now)
        unlisted = f"no {{asset}}/{{quote}} market on {self.exchange.id}"
        return resolve(index, listed, self.exchange.quote, unlisted, assets)

    def history(self, assets: Sequence[str], now: datetime, days: int) -> PriceHistory:
        """The daily candles of `assets` for the `days` days that ended by `now` (and one
        more), fetched as needed (see the module's docstring)."""
        until = int(datetime.combine(now.astimezone(UTC).date(), time(0), UTC).timestamp() * 1000)
        since = until - (days + 1) * DAY_MS
        today = now.astimezone(UTC).date().isoformat()
        ex, quote = self.exchange, self.exchange.quote
        fetches = self.store.candle_fetches(ex.id, TIMEFRAME)
        symbols = {asset: f"{asset}/{quote}" for asset in assets}
        asked = 0
        for asset, symbol in symbols.items():
            last = fetches.get(symbol)
            if last is not None and last.since <= since:
                if last.fetched_on == today or (last.newest or 0) + DAY_MS >= until:
                    continue  # asked today already, or nothing new has closed since
                start = max(since, (last.newest or since) + DAY_MS)
            else:
                start = since  # the first fill, or a longer window than was asked for
            rows = ex.daily_candles(asset, start, until, TIMEFRAME)
            reach = since if last is None else min(since, last.since)
            self.store.cache_candles(ex.id, symbol, TIMEFRAME, rows, (today, reach))
            asked += 1
        if asked:
            log.info("candles_fetched", exchange=ex.id, markets=asked, of=len(symbols))
        cached = self.store.cached_candles(ex.id, list(symbols.values()), TIMEFRAME, since, until)
        candles = {asset: cached.get(symbol, []) for asset, symbol in symbols.items()}
        return from_candles(candles, f"{ex.id} daily candles", hold_days=STALE_DAYS)
