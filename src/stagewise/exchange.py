"""The daemon's only door to an exchange (ccxt is imported here and in its two helpers only).

`Exchange` reads market rules (cached), prices (one batched ticker request) and balances (one
request); it has NO method that creates, cancels or edits an order or moves funds, and the
ccxt object it wraps is not exposed. `ReadOnlyAccount` (stagewise.read_only) turns those into
a `Snapshot`. The helpers: stagewise.exchange_client builds the ccxt client (spot markets
only), stagewise.exchange_answers reads its answers into our numbers.

ccxt errors are translated here, grouped by what the caller should do: retried then
`ExchangeUnavailable` (network, timeouts, HTTP 5xx and the exchange's own "internal error,
try again" answers, rate limits); `ExchangeAuthError` at once (fix the key); `SnapshotError`
(an answer that cannot be used, a path the exchange does not serve). Messages are redacted of
keys and request signatures.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Collection, Mapping
from datetime import datetime, timedelta
from typing import Any, TypeVar

import ccxt
import structlog
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)

from stagewise.errors import ConfigError, ExchangeAuthError, ExchangeUnavailable, SnapshotError
from stagewise.exchange_answers import (
    candle,
    finite_number,
    network_cause,
    parsed_json,
    price_problem,
    redact,
    usable_price,
)
from stagewise.exchange_client import build_client
from stagewise.history import Candle
from stagewise.keyrights import KeyPermissions
from stagewise.sections import ExchangeSettings
from stagewise.snapshot import Market

log = structlog.get_logger()
T = TypeVar("T")

# Currencies tried, in order, to price an asset that has no market in the quote currency.
BRIDGES = ("BTC", "ETH", "BNB", "USDT", "USDC")
# Answers that will not get better by asking again, though ccxt reads them as network errors:
# the path is not served there (an exchange or a proxy without it).
NOT_SERVED = frozenset({404, 405, 501})
# What each mode needs the exchange for, said when it cannot be reached.
NEEDS = {
    "paper": "paper mode needs {id}'s public prices",
    "read-only": "read-only mode reads the account on {id}",
}
# The length of a candle of each timeframe stagewise asks for (ms).
_TIMEFRAME_MS = {"1d": 86_400_000, "1w": 7 * 86_400_000}


def known_exchanges() -> list[str]:
    """The exchange ids ccxt knows (`exchange.id` must be one)."""
    return list(ccxt.exchanges)


class Exchange:
    """Read-only access to one exchange through ccxt (public data, balances, key rights)."""

    def __init__(self, settings: ExchangeSettings) -> None:
        self._settings = settings
        self._secrets = tuple(
            s.get_secret_value()
            for s in (settings.api_key, settings.secret, settings.password)
            if s is not None
        )
        self.__ccxt = build_client(settings)
        self._markets: dict[str, dict[str, Any]] = {}
        self._markets_at: datetime | None = None
        # The HTTP status of the last answer (None: no answer at all), which ccxt does not
        # keep: a 5xx is the exchange's own failure whatever ccxt makes of its body.
        self._status: int | None = None
        session = getattr(self.__ccxt, "session", None)
        if session is not None:
            session.hooks["response"].append(self._note_status)

    @property
    def id(self) -> str:
        return self._settings.id

    @property
    def quote(self) -> str:
        return self._settings.quote

    def close(self) -> None:
        session = getattr(self.__ccxt, "session", None)
        if session is not None:
            session.close()

    # -- market rules ----------------------------------------------------------------------

    def load_markets(self, now: datetime) -> None:
        """Load market rules if never loaded or older than `markets_refresh_hours`."""
        max_age = timedelta(hours=self._settings.markets_refresh_hours)
        if self._markets_at is not None and now - self._markets_at < max_age:
            return
        # The first time, adopt the markets ccxt may have just loaded by itself (fetch_balance
        # does): a snapshot must not ask for them twice.
        reload = self._markets_at is not None
        markets = self._call("load_markets", lambda: self.__ccxt.load_markets(reload=reload))
        if not isinstance(markets, dict) or not markets:
            raise SnapshotError(f"{self.id}: the exchange listed no markets")
        self._markets = markets
        self._markets_at = now
        log.info("markets_loaded", exchange=self.id, markets=len(markets))

    def routes(self, assets: Collection[str]) -> tuple[dict[str, list[str]], list[str]]:
        """For each asset, the symbols whose prices multiply to its quote price (direct market,
        or a bridge pair); and the assets with no route at all."""
        routes: dict[str, list[str]] = {}
        unpriced: list[str] = []
        for asset in sorted(set(assets) - {self.quote}):
            direct = f"{asset}/{self.quote}"
            if self._tradable(direct):
                routes[asset] = [direct]
                continue
            bridge = next(
                (
                    b
                    for b in BRIDGES
                    if self._tradable(f"{asset}/{b}") and self._tradable(f"{b}/{self.quote}")
                ),
                None,
            )
            if bridge is None:
                unpriced.append(asset)
            else:
                routes[asset] = [f"{asset}/{bridge}", f"{bridge}/{self.quote}"]
        return routes, unpriced

    def _tradable(self, symbol: str) -> bool:
        market = self._markets.get(symbol)
        return bool(market and market.get("spot", True) and market.get("active") is not False)

    # -- the two requests of a snapshot ----------------------------------------------------

    def quotes(
        self, assets: Collection[str], now: datetime
    ) -> tuple[dict[str, float], dict[str, Market], list[str]]:
        """Prices and market rules of `assets` in the quote currency, from ONE ticker request.

        Returns (prices, markets, unpriced). A route's price that is missing, zero, negative
        or NaN fails the whole snapshot, naming every such asset and its symbol."""
        self.load_markets(now)
        routes, unpriced = self.routes(assets)
        symbols = sorted({s for route in routes.values() for s in route})
        tickers, unparsable = self._tickers(symbols, routes) if symbols else ({}, {})
        prices: dict[str, float] = {self.quote: 1.0}
        markets: dict[str, Market] = {}
        bad: list[str] = []
        for asset, route in routes.items():
            found = [unparsable.get(s) or price_problem(tickers.get(s), s) for s in route]
            problems = [p for p in found if p]
            if problems:
                bad.append(f"{asset} ({'; '.join(problems)})")
                continue
            legs = [usable_price(tickers[symbol]) for symbol in route]
            prices[asset] = math.prod(legs)
            # On a bridge pair the market's minimum cost is in the bridge currency.
            markets[asset] = self._market_rules(route[0], legs[1] if len(legs) == 2 else 1.0)
        if bad:
            raise SnapshotError(f"bad price for {', '.join(bad)}; no plan is made from bad prices")
        return prices, markets, unpriced

    def _tickers(
        self, symbols: list[str], routes: Mapping[str, list[str]]
    ) -> tuple[Mapping[str, Any], dict[str, str]]:
        """The tickers of `symbols` (one request), and the symbols whose ticker ccxt could not
        parse, each with what was wrong."""
        try:
            tickers = self._call("fetch_tickers", lambda: self.__ccxt.fetch_tickers(symbols))
        except SnapshotError as e:
            # ccxt fails the whole batch on one ticker it cannot parse (a "NaN" price): parse
            # the answer ticker by ticker, so that every bad one is named, not only the first.
            salvaged = self._parse_one_by_one(set(symbols))
            if salvaged is None or not salvaged[1]:  # no ticker to blame: blame them all
                raise SnapshotError(f"bad price for {', '.join(routes)}: {e}") from None
            return salvaged
        if not isinstance(tickers, Mapping):
            raise SnapshotError(f"{self.id}: tickers answer is not a table of prices")
        return tickers, {}

    def _parse_one_by_one(self, symbols: set[str]) -> tuple[dict[str, Any], dict[str, str]] | None:
        """The last tickers answer parsed one ticker at a time: (parsed, unparsable), or None
        when the answer is not a list of tickers at all."""
        raw = parsed_json(self.__ccxt.last_http_response)
        items = raw.values() if isinstance(raw, dict) else raw if isinstance(raw, list) else None
        if items is None:
            return None
        # Our own spot markets by exchange id: ccxt's lookup of a raw id fails when the id
        # also names a futures market (BTCUSDT spot and perpetual).
        by_id = {m.get("id"): symbol for symbol, m in self._markets.items() if symbol in symbols}
        parsed: dict[str, Any] = {}
        unparsable: dict[str, str] = {}
        for item in items:
            symbol = by_id.get(item.get("symbol")) if isinstance(item, dict) else None
            if symbol is None:
                continue
            try:
                parsed[symbol] = self.__ccxt.parse_ticker(item, self._markets[symbol])
            except (ccxt.BaseError, ValueError, TypeError, KeyError, ArithmeticError):
                last = item.get("lastPrice")
                unparsable[symbol] = f"{symbol} ticker is unparsable, last price {last!r}"
        return parsed, unparsable

    def balances(self) -> tuple[dict[str, float], dict[str, float]]:
        """Free balance per asset, and the amount its open orders hold (non-zero only), from
        ONE balance request."""
        answer = self._call("fetch_balance", self.__ccxt.fetch_balance)
        free = answer.get("free") if isinstance(answer, Mapping) else None
        # ccxt turns a non-JSON body into an EMPTY balance; an empty account must never be
        # inferred from garbage, so the raw answer has to be structured data.
        raw = answer.get("info") if isinstance(answer, Mapping) else None
        if not isinstance(free, Mapping) or not isinstance(raw, Mapping | list):
            raise SnapshotError(f"{self.id}: balance answer has no free balances")
        used = answer.get("used")
        return self._amounts(free, "balance"), self._amounts(
            used if isinstance(used, Mapping) else {}, "locked balance"
        )

    def _amounts(self, amounts: Mapping[Any, Any], what: str) -> dict[str, float]:
        found: dict[str, float] = {}
        for asset, amount in amounts.items():
            value = finite_number(amount)
            if value is None or value < 0:
                raise SnapshotError(
                    f"{self.id}: {what} of {asset} is not an amount (negative, or not a "
                    f"number): {amount!r}"
                )
            if value > 0:
                found[str(asset)] = value
        return found

    def key_permissions(self) -> KeyPermissions | None:
        """What the API key may do, where the exchange tells (Binance's apiRestrictions)."""
        method = getattr(self.__ccxt, "sapi_get_account_apirestrictions", None)
        if method is None or not self._secrets:
            return None
        answer = self._call("key_permissions", method)
        if not isinstance(answer, Mapping):
            # garbage must not read as "the exchange does not tell" (no warning would be logged)
            raise SnapshotError(f"{self.id}: API-key permissions answer is not a table")
        return KeyPermissions(
            read=bool(answer.get("enableReading", True)),
            trade=bool(answer.get("enableSpotAndMarginTrading") or answer.get("enableMargin")),
            withdraw=bool(answer.get("enableWithdrawals") or answer.get("enableInternalTransfer")),
        )

    def quote_bases(self, now: datetime) -> list[str]:
        """The assets with an active spot market against the quote currency, sorted (market
        rules loaded as `load_markets` does: no request while they are fresh)."""
        self.load_markets(now)
        return sorted(
            {
                m["base"]
                for symbol, m in self._markets.items()
                if m.get("quote") == self.quote and m.get("base") and self._tradable(symbol)
            }
        )

    def daily_candles(
        self, base: str, since_ms: int, until_ms: int, timeframe: str = "1d"
    ) -> list[Candle]:
        """The daily (or `timeframe`) candles of BASE/QUOTE opening in [since_ms, until_ms),
        paginated: each a close and its quote volume (the candle's base volume times its
        close: ccxt gives the base volume). A close that is not a positive number, or a
        volume that is negative or not a number, fails the call naming the asset."""
        symbol = f"{base}/{self.quote}"
        step = _TIMEFRAME_MS.get(timeframe, 1)
        rows: list[Candle] = []
        cursor = since_ms

        def page_from(since: int) -> Any:
            return self.__ccxt.fetch_ohlcv(symbol, timeframe, since=since, limit=1000)

        while cursor < until_ms:
            page = self._call("fetch_ohlcv", functools.partial(page_from, cursor))
            if not isinstance(page, list):
                raise SnapshotError(f"{self.id}: OHLCV answer for {symbol} is not a list")
            try:
                fresh = [candle(base, symbol, r) for r in page if int(r[0]) >= cursor]
            except (TypeError, ValueError, IndexError, KeyError) as e:
                raise SnapshotError(
                    f"{self.id}: OHLCV answer for {symbol} is unparsable: {e}"
                ) from None
            if not fresh:
                # ccxt parses a non-JSON body into an empty page: no history is not garbage
                raw = self.__ccxt.last_http_response
                if not page and isinstance(raw, str) and not isinstance(parsed_json(raw), list):
                    raise SnapshotError(f"{self.id}: OHLCV answer for {symbol} is not JSON")
                break
            rows.extend(c for c in fresh if c.ts < until_ms)
            # The next candle opens a step after the last: none left to ask for past `until`.
            cursor = fresh[-1].ts + step
        return rows

    # -- translation of ccxt's answers -----------------------------------------------------

    def _market_rules(self, symbol: str, quote_rate: float) -> Market:
        market = self._markets[symbol]
        limits = market.get("limits") or {}
        min_cost = (finite_number((limits.get("cost") or {}).get("min")) or 0.0) * quote_rate
        return Market(
            symbol=market["symbol"],
            base=market["base"],
            quote=market["quote"],
            amount_step=self._amount_step(market),
            min_amount=finite_number((limits.get("amount") or {}).get("min")) or 0.0,
            min_notional=min_cost,
            fee_rate=finite_number(market.get("taker")) or 0.0,
            price_step=self._step(market.get("precision", {}).get("price")),
            max_amount=finite_number((limits.get("amount") or {}).get("max")) or math.inf,
        )

    def _amount_step(self, market: Mapping[str, Any]) -> float:
        return self._step((market.get("precision") or {}).get("amount"))

    def _step(self, precision: Any) -> float:
        value = finite_number(precision)
        if value is None:
            return 0.0
        if self.__ccxt.precisionMode == ccxt.DECIMAL_PLACES:
            return 10.0 ** (-int(value))
        return value

    def amount_to_precision(self, symbol: str, amount: float) -> float:
        """ccxt's own rounding of an order amount (truncation to the market's precision)."""
        try:
            return float(self.__ccxt.amount_to_precision(symbol, amount))
        except ccxt.InvalidOrder:  # ccxt refuses amounts that truncate to 0; no ccxt error leaks
            return 0.0

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        s = self._settings
        retrying = Retrying(
            retry=retry_if_exception(self._temporary),
            stop=stop_after_attempt(s.retry_attempts) | stop_after_delay(s.retry_max_seconds),
            wait=wait_random_exponential(
                multiplier=s.retry_initial_seconds, max=max(s.retry_initial_seconds, 30)
            ),
            before_sleep=self._log_retry(what),
            reraise=True,
        )
        # ccxt's binance reads -2015 (bad key/IP/permissions) after any earlier successful
        # private call as a temporary ban (DDoSProtection, retried); a long-running daemon must
        # be told at once to fix its key instead, without hammering the exchange.
        options = getattr(self.__ccxt, "options", None)
        if isinstance(options, dict):
            options["hasAlreadyAuthenticatedSuccessfully"] = False

        def attempt() -> T:
            self._status = None
            return fn()

        try:
            return retrying(attempt)
        except ccxt.AuthenticationError as e:
            raise ExchangeAuthError(
                f"{self.id} refused the API key during {what}: {self._clean(e)}. Check "
                "STAGEWISE_EXCHANGE__API_KEY / __SECRET (a read-only key is enough)"
            ) from None
        except ccxt.InvalidProxySettings as e:  # the config's, before any request is sent
            raise ConfigError(
                f"exchange.ccxt: ccxt refused the proxy settings: {self._clean(e)}"
            ) from None
        except ccxt.NotSupported as e:
            if self._status is not None:  # the exchange's answer: it does not serve this
                raise SnapshotError(
                    f"{self.id} does not serve {what}: {type(e).__name__}: {self._clean(e)}"
                ) from None
            # Refused by ccxt before any request: the exchange as [exchange.ccxt] sets it up
            # (its urls, its options) cannot make the call.
            raise ConfigError(
                f"exchange.ccxt: {self.id} cannot {what} as configured: {type(e).__name__}: "
                f"{self._clean(e)} (check [exchange.ccxt]: an urls or options override?)"
            ) from None
        except ccxt.BaseError as e:
            if self._temporary(e):
                attempts = retrying.statistics.get("attempt_number", 1)
                raise ExchangeUnavailable(self._unavailable(what, e, attempts)) from None
            if self._status in NOT_SERVED:
                raise SnapshotError(
                    f"{self.id} does not serve {what} (HTTP {self._status}): {self._clean(e)}"
                ) from None
            raise SnapshotError(
                f"{self.id} gave an unusable answer to {what}: {type(e).__name__}: {self._clean(e)}"
            ) from None
        except (ValueError, TypeError, KeyError, AttributeError) as e:  # ccxt parsing garbage
            raise SnapshotError(
                f"{self.id} gave an unparsable answer to {what}: {self._clean(e)}"
            ) from None

    def _note_status(self, response: Any, *args: Any, **kwargs: Any) -> None:
        """requests' response hook: remember the status (returns None: the answer is kept)."""
        self._status = getattr(response, "status_code", None)

    def _temporary(self, error: BaseException) -> bool:
        """Worth asking again: a network fault, a rate limit, or the exchange's own failure
        (HTTP 5xx, or an answer like Binance's -1001 "Internal error; ... try again")."""
        if isinstance(error, ccxt.AuthenticationError) or self._status in NOT_SERVED:
            return False
        return isinstance(error, ccxt.OperationFailed) or (
            isinstance(error, ccxt.BaseError) and self._status is not None and self._status >= 500
        )

    def _unavailable(self, what: str, error: BaseException, attempts: int) -> str:
        """One line: what failed, why in words, and what the mode needs the exchange for."""
        detail = self._clean(error).removeprefix(f"{self.id} ")
        need = NEEDS[self._settings.mode].format(id=self.id)
        tries = f"{attempts} attempt{'s' if attempts != 1 else ''}"
        if self._status is not None:  # the exchange answered, with its own failure
            return (
                f"{self.id} unavailable during {what} after {tries}: {type(error).__name__}: "
                f"{detail}; {need}: try again later"
            )
        cause = network_cause(error, self._settings.timeout_ms)
        return (
            f"{self.id} unreachable during {what} after {tries}: {cause} ({detail}); {need}: "
            "check the network connection (and [exchange.ccxt] urls), then try again"
        )

    def _clean(self, error: BaseException) -> str:
        return redact(str(error), self._secrets)[:500]

    def _log_retry(self, what: str) -> Callable[[RetryCallState], None]:
        def before_sleep(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            log.warning(
                "exchange_retry",
                exchange=self.id,
                call=what,
                attempt=state.attempt_number,
                wait_s=round(state.next_action.sleep, 2) if state.next_action else None,
                error=type(error).__name__ if error else None,
                detail=self._clean(error) if error else None,
            )

        return before_sleep
