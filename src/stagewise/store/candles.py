"""The candle cache: closes and volumes downloaded from an exchange, per market, and each
market's last request."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from stagewise.history import Candle
from stagewise.store.base import StoreBase


@dataclasses.dataclass(frozen=True, slots=True)
class CandleFetch:
    """A market's last candle request: its UTC day, the earliest open time asked for (ms),
    and the newest candle cached (ms; None: the exchange had none)."""

    fetched_on: str
    since: int
    newest: int | None


class CandleStore(StoreBase):
    """The store's candle cache."""

    def cached_candles(
        self,
        exchange: str,
        symbols: Sequence[str],
        timeframe: str,
        since_ms: int,
        until_ms: int,
    ) -> dict[str, list[Candle]]:
        """Per symbol of `symbols`, its cached candles opening in [since_ms, until_ms), oldest
        first (a symbol without any is absent)."""
        # One query a market: its rows come out of the primary key in order, each a Candle.
        sql = (
            "SELECT ts, close, volume FROM price_cache WHERE exchange = ? AND symbol = ? AND "
            "timeframe = ? AND ts >= ? AND ts < ? ORDER BY ts"
        )
        out: dict[str, list[Candle]] = {}
        for symbol in symbols:
            rows = self.conn.execute(sql, [exchange, symbol, timeframe, since_ms, until_ms])
            found = list(map(Candle._make, rows))
            if found:
                out[symbol] = found
        return out

    def cache_candles(
        self,
        exchange: str,
        symbol: str,
        timeframe: str,
        rows: Sequence[Candle],
        fetched: tuple[str, int] | None = None,
    ) -> None:
        """Keep downloaded candles (replacing the same timestamps) and, with `fetched` (the
        UTC day of the request, the earliest open time it covers), note the request, in one
        transaction."""
        market = {"exchange": exchange, "symbol": symbol, "timeframe": timeframe}
        with self._writing():
            self.db.table("price_cache").upsert_all(
                ({**market, "ts": c.ts, "close": c.close, "volume": c.quote_volume} for c in rows),
                pk=_CLOSE_KEY,
            )
            if fetched is not None:
                on, since = fetched
                self.db.table("candle_fetches").upsert(
                    {**market, "fetched_on": on, "since": since}, pk=_CLOSE_KEY[:3]
                )

    def candle_fetches(self, exchange: str, timeframe: str) -> dict[str, CandleFetch]:
        """Per symbol, its last candle request and the newest candle cached of it."""
        rows = self.conn.execute(
            "SELECT f.symbol, f.fetched_on, f.since, (SELECT MAX(ts) FROM price_cache p"
            " WHERE p.exchange = f.exchange AND p.symbol = f.symbol AND p.timeframe ="
            " f.timeframe) FROM candle_fetches f WHERE f.exchange = ? AND f.timeframe = ?",
            [exchange, timeframe],
        )
        return {s: CandleFetch(on, since, newest) for s, on, since, newest in rows}


# The primary key of a cached close.
_CLOSE_KEY = ("exchange", "symbol", "timeframe", "ts")
