"""A local stand-in for the Binance spot REST API that real ccxt talks HTTP to.

It serves only what ``ccxt.binance`` needs for the read-only calls stagewise makes,
in Binance's own JSON shapes:

=========================================  ====================================
``GET /api/v3/exchangeInfo``               ``load_markets()``
``GET /api/v3/ticker/24hr``                ``fetch_tickers(symbols)`` (one request)
``GET /api/v3/account`` (signed)           ``fetch_balance()``
``GET /api/v3/klines``                     ``fetch_ohlcv()`` (startTime/endTime/limit);
                                           ``serve_daily_closes`` lists a market with
                                           daily candles (any number of assets)
``GET /api/v3/time``, ``GET /api/v3/ping``  ``fetch_time()``
``GET /sapi/v1/account/apiRestrictions``   API-key permission check (signed)
``GET /fapi/v1/exchangeInfo``              USD-M futures markets (a perpetual per
                                           spot */USDT market, same id, as Binance)
``GET /dapi/v1/exchangeInfo``              COIN-M futures markets (none listed)
=========================================  ====================================

The futures market lists are served because ccxt's binance asks for them on every
``load_markets()`` unless told to load spot markets only: a client that forgets it gets
market ids that name two markets (``BTCUSDT`` spot and perpetual), as online.

Every request is recorded (``requests``, ``count``).  Anything else - any POST, PUT or
DELETE, order endpoints, margin/wallet groups (``/sapi/v1/margin/...``,
``/sapi/v1/capital/...``) - is refused with HTTP 400 and
``{"code": -1020, "msg": "This operation is not supported. ..."}`` so a test can prove it
was never called.  ``unserve(path)`` makes a served path answer like a proxy that does not
pass it on (HTTP 404).  Signed endpoints accept any signature but insist on an
``X-MBX-APIKEY`` header and ``timestamp``/``signature`` parameters, like Binance.

Usage::

    with StandinExchange() as ex:
        ex.add_market("BTC", step="0.00001", min_notional="5")
        ex.set_price("BTC", 65000)
        client = ccxt.binance({**ex.ccxt_config(), "apiKey": "k", "secret": "s"})
        client.fetch_tickers(["BTC/USDT"])
        assert ex.count("/api/v3/ticker/24hr") == 1

``ccxt_config()`` returns nested ``urls``/``options`` dicts; merge your own ``options``
into its ``options`` rather than replacing them.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

__all__ = ["FAULTS", "SPOT_ONLY_OPTIONS", "Receiver", "Request", "StandinExchange"]

SPOT_ONLY_OPTIONS: dict[str, Any] = {
    "fetchMarkets": {"types": ["spot"]},
    "fetchMargins": False,
    "fetchCurrencies": False,
}
"""ccxt binance options under which ``load_markets()`` asks for ``/api/v3/exchangeInfo`` only."""

FAULTS = frozenset(
    {"500", "503", "internal", "502-json", "429", "418", "timeout", "garbage", "auth"}
)
"""Fault names accepted by :meth:`StandinExchange.inject`."""

TIMEOUT_HOLD_SECONDS = 3.0
"""How long the ``timeout`` fault holds a request before dropping it unanswered."""

_INTERVAL_MS = {
    "1s": 1_000,
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
    "3d": 259_200_000,
    "1w": 604_800_000,
    "1M": 2_592_000_000,
}

_SIGNED_PATHS = frozenset({"/api/v3/account", "/sapi/v1/account/apiRestrictions"})

_ORDER_TYPES = [
    "LIMIT",
    "LIMIT_MAKER",
    "MARKET",
    "STOP_LOSS",
    "STOP_LOSS_LIMIT",
    "TAKE_PROFIT",
    "TAKE_PROFIT_LIMIT",
]


@dataclass(frozen=True)
class Request:
    """One request as the stand-in received it (recorded before any fault is applied)."""

    method: str
    path: str
    query: dict[str, str]
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    fault: str | None = None


def _fmt(value: Any) -> str:
    """Binance-style decimal string ("65000.12000000"); NaN/inf pass through as text."""
    d = Decimal(str(value))
    if not d.is_finite():
        return str(value)
    return f"{d:.8f}"


def _now_ms() -> int:
    return int(time.time() * 1000)


class _Reply(Exception):
    """Raised inside a route to answer with an HTTP status and a Binance error body."""

    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg = status, code, msg


class _Unserved(Exception):
    """Raised inside a route to answer as a proxy that does not serve the path."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class StandinExchange:
    """A Binance-spot-shaped HTTP server on 127.0.0.1 (random port) for ccxt tests.

    Not started by the constructor; use :meth:`start`/:meth:`stop` or ``with``.
    All setters are thread-safe and may be called while the server runs.
    A market without a price (or with price ``None``) is absent from ticker answers.
    API-key permissions default to read-only (no trading, no withdrawals).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._markets: dict[str, dict[str, Any]] = {}  # symbol id -> exchangeInfo entry
        self._prices: dict[str, dict[str, str]] = {}  # symbol id -> ticker numbers
        self._balances: dict[str, tuple[str, str]] = {}  # asset -> (free, locked)
        self._klines: dict[str, list[tuple[int, str, str, str, str, str]]] = {}
        self._perms = {"trade": False, "withdraw": False}
        self._faults: list[list[Any]] = []  # [path_prefix, fault, remaining, answered first]
        self._unserved: dict[str, int] = {}  # path -> HTTP status it is answered with
        self._requests: list[Request] = []
        self.base_url = ""

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> StandinExchange:
        """Bind 127.0.0.1 on a free port and serve from a daemon thread."""
        if self._server is not None:
            raise RuntimeError("stand-in already started")
        self._stopping.clear()
        server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        server.daemon_threads = True
        self._server = server
        host, port = server.server_address[:2]
        self.base_url = f"http://{host}:{port}"
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="standin-exchange",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; releases requests held by the ``timeout`` fault."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> StandinExchange:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- ccxt wiring -------------------------------------------------------------------

    def ccxt_config(self) -> dict[str, Any]:
        """Settings to merge into ``ccxt.binance({...})`` so it talks only to this server.

        * ``urls``: every API group of ccxt's binance (spot, sapi, futures, options,
          portfolio margin; also the ``test``/``demo`` sets) rewritten to ``base_url``,
          so even an unexpected call lands here (recorded and refused), never online.
        * ``options.adjustForTimeDifference = False``: no extra ``/api/v3/time`` call.
        * ``enableRateLimit = False``: no client-side throttling delays in tests.

        Which markets ``load_markets()`` fetches is left to the client: ccxt's defaults
        ask for the futures lists (served) and, with credentials, the margin pairs and
        the wallet's currencies (refused). ``SPOT_ONLY_OPTIONS`` are the options that
        keep a raw ccxt client to ``/api/v3/exchangeInfo``.
        """
        if not self.base_url:
            raise RuntimeError("start() the stand-in before asking for its ccxt config")
        urls: dict[str, Any] = {}
        for group, mapping in _ccxt_binance_urls().items():
            urls[group] = {name: self.base_url + urlsplit(u).path for name, u in mapping.items()}
        return {
            "urls": urls,
            "options": {"adjustForTimeDifference": False},
            "enableRateLimit": False,
        }

    # -- state setters -----------------------------------------------------------------

    def add_market(
        self,
        base: str,
        quote: str = "USDT",
        *,
        step: str = "0.0001",
        min_qty: str = "0.0001",
        min_notional: str = "5",
        tick: str = "0.01",
        status: str = "TRADING",
    ) -> None:
        """Declare a spot market BASE/QUOTE with LOT_SIZE, PRICE_FILTER and NOTIONAL filters."""
        symbol = base + quote
        entry = {
            "symbol": symbol,
            "status": status,
            "baseAsset": base,
            "baseAssetPrecision": 8,
            "quoteAsset": quote,
            "quotePrecision": 8,
            "quoteAssetPrecision": 8,
            "baseCommissionPrecision": 8,
            "quoteCommissionPrecision": 8,
            "orderTypes": list(_ORDER_TYPES),
            "icebergAllowed": True,
            "ocoAllowed": True,
            "otoAllowed": True,
            "quoteOrderQtyMarketAllowed": True,
            "allowTrailingStop": True,
            "cancelReplaceAllowed": True,
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False,
            "filters": [
                {
                    "filterType": "PRICE_FILTER",
                    "minPrice": _fmt(tick),
                    "maxPrice": "1000000.00000000",
                    "tickSize": _fmt(tick),
                },
                {
                    "filterType": "LOT_SIZE",
                    "minQty": _fmt(min_qty),
                    "maxQty": "9000000.00000000",
                    "stepSize": _fmt(step),
                },
                {"filterType": "ICEBERG_PARTS", "limit": 10},
                {
                    "filterType": "MARKET_LOT_SIZE",
                    "minQty": "0.00000000",
                    "maxQty": "9000000.00000000",
                    "stepSize": "0.00000000",
                },
                {
                    "filterType": "NOTIONAL",
                    "minNotional": _fmt(min_notional),
                    "applyMinToMarket": True,
                    "maxNotional": "9000000.00000000",
                    "applyMaxToMarket": False,
                    "avgPriceMins": 5,
                },
                {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
                {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": 5},
            ],
            "permissions": [],
            "permissionSets": [["SPOT"]],
            "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
            "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
        }
        with self._lock:
            self._markets[symbol] = entry

    def set_price(
        self,
        base: str,
        price: float | str | None,
        quote: str = "USDT",
        *,
        bid: float | str | None = None,
        ask: float | str | None = None,
        quote_volume: float | str = "1000000",
    ) -> None:
        """Set the last price (float, 0 or "NaN"); ``None`` drops the symbol from tickers.

        ``bid``/``ask`` default to the last price.  The market must have been added.
        """
        symbol = base + quote
        with self._lock:
            if symbol not in self._markets:
                raise KeyError(f"add_market({base!r}, {quote!r}) before set_price")
            if price is None:
                self._prices.pop(symbol, None)
                return
            self._prices[symbol] = {
                "last": _fmt(price),
                "bid": _fmt(price if bid is None else bid),
                "ask": _fmt(price if ask is None else ask),
                "quoteVolume": _fmt(quote_volume),
            }

    def set_balance(self, asset: str, free: float | str, locked: float | str = 0) -> None:
        """Set one asset line of the spot account."""
        with self._lock:
            self._balances[asset] = (_fmt(free), _fmt(locked))

    def set_permissions(self, *, trade: bool, withdraw: bool) -> None:
        """API-key flags for apiRestrictions (``enableReading`` is always true)."""
        with self._lock:
            self._perms = {"trade": bool(trade), "withdraw": bool(withdraw)}

    def set_klines(
        self,
        base: str,
        quote: str,
        rows: list[tuple[int, Any, Any, Any, Any, Any]],
    ) -> None:
        """Replace the candles of BASE/QUOTE; rows are ``(open_time_ms, o, h, l, c, v)``."""
        clean = sorted(
            (int(t), _fmt(o), _fmt(h), _fmt(lo), _fmt(c), _fmt(v)) for t, o, h, lo, c, v in rows
        )
        with self._lock:
            self._klines[base + quote] = clean

    def serve_daily_closes(
        self,
        base: str,
        closes: Sequence[float],
        last_day: date,
        *,
        volumes: Sequence[float] | None = None,
        quote: str = "USDT",
    ) -> None:
        """List BASE/QUOTE (if it is not yet) with one daily candle per close, the last
        opening at 00:00 UTC of `last_day`, and its last close as the ticker price.
        ``volumes``: each day's BASE volume (default 1000 units a day)."""
        first = datetime.combine(last_day, datetime.min.time(), UTC) - timedelta(
            days=len(closes) - 1
        )
        start = int(first.timestamp() * 1000)
        amounts = volumes if volumes is not None else [1000.0] * len(closes)
        rows = [
            (start + i * 86_400_000, c, c, c, c, v)
            for i, (c, v) in enumerate(zip(closes, amounts, strict=True))
        ]
        if base + quote not in self._markets:
            self.add_market(base, quote, step="0.00001", min_qty="0.00001", tick="0.0000001")
        self.set_klines(base, quote, rows)
        if closes:
            self.set_price(base, closes[-1], quote)

    def unserve(self, path: str, status: int = 404) -> None:
        """Answer ``path`` from now on as a proxy that does not pass it on: HTTP ``status``
        and its reason as plain text (404 "Not Found" by default); 400 gives Binance's own -1020
        "not supported" JSON."""
        with self._lock:
            self._unserved[path] = status

    def inject(self, path_prefix: str, fault: str, times: int = 1, *, after: int = 0) -> None:
        """Make the next ``times`` requests whose path starts with ``path_prefix`` fail
        (``after``: once that many of them have been answered, e.g. mid-way through a fill).

        Faults: ``"500"``/``"503"`` (plain-text gateway error), ``"internal"`` (HTTP 500
        with Binance's JSON ``{"code": -1001, "msg": "Internal error; ..."}``), ``"502-json"``
        (HTTP 502 with a gateway's JSON ``{"code": 502, "msg": "Bad Gateway"}``),
        ``"429"``/``"418"`` (Binance -1003 JSON, ``Retry-After``), ``"timeout"`` (held
        ``TIMEOUT_HOLD_SECONDS`` then dropped unanswered), ``"garbage"`` (HTTP 200, non-JSON
        HTML body),
        ``"auth"`` (HTTP 401, Binance code -2015).  Faults queue in injection order.
        """
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; expected one of {sorted(FAULTS)}")
        if times < 1:
            raise ValueError("times must be >= 1")
        with self._lock:
            self._faults.append([path_prefix, fault, times, after])

    def clear_faults(self) -> None:
        """Drop every fault still queued."""
        with self._lock:
            self._faults.clear()

    # -- request log -------------------------------------------------------------------

    @property
    def requests(self) -> list[Request]:
        """A snapshot copy of every request received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def count(self, path_prefix: str | None = None, method: str | None = None) -> int:
        """How many requests matched ``path_prefix`` (and ``method``, case-insensitive)."""
        with self._lock:
            return sum(
                1
                for r in self._requests
                if (path_prefix is None or r.path.startswith(path_prefix))
                and (method is None or r.method == method.upper())
            )

    def clear_requests(self) -> None:
        """Forget the recorded requests (faults and state are kept)."""
        with self._lock:
            self._requests.clear()

    # -- request handling (called from server threads) ---------------------------------

    def _record(
        self, method: str, path: str, query: dict[str, str], body: str, headers: dict[str, str]
    ) -> str | None:
        """Log the request and consume a matching fault; returns the fault, if any."""
        with self._lock:
            fault = None
            for entry in self._faults:
                if path.startswith(entry[0]) and entry[3] > 0:
                    entry[3] -= 1  # answered before the fault begins
                    break
                if path.startswith(entry[0]):
                    fault = entry[1]
                    entry[2] -= 1
                    if entry[2] == 0:
                        self._faults.remove(entry)
                    break
            self._requests.append(Request(method, path, query, body, headers, fault))
            return fault

    def _route(self, method: str, path: str, query: dict[str, str], headers: dict[str, str]) -> Any:
        if method != "GET":
            raise _Reply(400, -1020, f"This operation is not supported. ({method} {path})")
        with self._lock:
            unserved = self._unserved.get(path)
        if unserved == 400:
            raise _Reply(400, -1020, f"This operation is not supported. ({method} {path})")
        if unserved is not None:
            raise _Unserved(unserved)
        if path in _SIGNED_PATHS:
            if not headers.get("x-mbx-apikey"):
                raise _Reply(401, -2014, "API-key format invalid.")
            for name in ("timestamp", "signature"):
                if not query.get(name):
                    raise _Reply(
                        400,
                        -1102,
                        f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.",
                    )
        with self._lock:
            if path == "/api/v3/ping":
                return {}
            if path == "/api/v3/time":
                return {"serverTime": _now_ms()}
            if path == "/api/v3/exchangeInfo":
                return self._exchange_info()
            if path == "/fapi/v1/exchangeInfo":
                return self._futures_info(self._perpetuals())
            if path == "/dapi/v1/exchangeInfo":
                return self._futures_info([])
            if path == "/api/v3/ticker/24hr":
                return self._tickers(query)
            if path == "/api/v3/klines":
                return self._klines_answer(query)
            if path == "/api/v3/account":
                return self._account()
            if path == "/sapi/v1/account/apiRestrictions":
                return self._api_restrictions()
        raise _Reply(400, -1020, f"This operation is not supported. ({method} {path})")

    def _exchange_info(self) -> dict[str, Any]:
        return {
            "timezone": "UTC",
            "serverTime": _now_ms(),
            "rateLimits": [
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": 6000,
                },
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
                {
                    "rateLimitType": "RAW_REQUESTS",
                    "interval": "MINUTE",
                    "intervalNum": 5,
                    "limit": 61000,
                },
            ],
            "exchangeFilters": [],
            "symbols": [json.loads(json.dumps(m)) for m in self._markets.values()],
        }

    def _perpetuals(self) -> list[dict[str, Any]]:
        """A USD-M perpetual for every spot */USDT market, under the same id (as Binance)."""
        return [
            {
                "symbol": m["symbol"],
                "pair": m["symbol"],
                "contractType": "PERPETUAL",
                "deliveryDate": 4_133_404_800_000,
                "onboardDate": 1_569_398_400_000,
                "status": "TRADING",
                "baseAsset": m["baseAsset"],
                "quoteAsset": "USDT",
                "marginAsset": "USDT",
                "pricePrecision": 2,
                "quantityPrecision": 3,
                "baseAssetPrecision": 8,
                "quotePrecision": 8,
                "underlyingType": "COIN",
                "filters": [
                    {
                        "filterType": "PRICE_FILTER",
                        "minPrice": "0.10",
                        "maxPrice": "1000000",
                        "tickSize": "0.10",
                    },
                    {
                        "filterType": "LOT_SIZE",
                        "minQty": "0.001",
                        "maxQty": "1000",
                        "stepSize": "0.001",
                    },
                    {"filterType": "MIN_NOTIONAL", "notional": "100"},
                ],
                "orderTypes": ["LIMIT", "MARKET"],
                "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
            }
            for m in self._markets.values()
            if m["quoteAsset"] == "USDT"
        ]

    def _futures_info(self, symbols: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "timezone": "UTC",
            "serverTime": _now_ms(),
            "rateLimits": [],
            "exchangeFilters": [],
            "assets": [],
            "symbols": symbols,
        }

    def _ticker(self, symbol: str, p: dict[str, str]) -> dict[str, Any]:
        now = _now_ms()
        return {
            "symbol": symbol,
            "priceChange": "0.00000000",
            "priceChangePercent": "0.000",
            "weightedAvgPrice": p["last"],
            "prevClosePrice": p["last"],
            "lastPrice": p["last"],
            "lastQty": "1.00000000",
            "bidPrice": p["bid"],
            "bidQty": "1.00000000",
            "askPrice": p["ask"],
            "askQty": "1.00000000",
            "openPrice": p["last"],
            "highPrice": p["last"],
            "lowPrice": p["last"],
            "volume": "1000.00000000",
            "quoteVolume": p["quoteVolume"],
            "openTime": now - 86_400_000,
            "closeTime": now,
            "firstId": 1,
            "lastId": 1000,
            "count": 1000,
        }

    def _tickers(self, query: dict[str, str]) -> Any:
        if "symbol" in query and "symbols" in query:
            raise _Reply(400, -1128, "Combination of optional parameters invalid.")
        if "symbol" in query:
            symbol = query["symbol"]
            if symbol not in self._markets:
                raise _Reply(400, -1121, "Invalid symbol.")
            if symbol not in self._prices:  # never-traded symbol: Binance answers zeros
                return self._ticker(
                    symbol, dict.fromkeys(("last", "bid", "ask", "quoteVolume"), "0.00000000")
                )
            return self._ticker(symbol, self._prices[symbol])
        if "symbols" in query:
            try:
                wanted = json.loads(query["symbols"])
                if not isinstance(wanted, list) or not all(isinstance(s, str) for s in wanted):
                    raise ValueError
            except ValueError:
                raise _Reply(
                    400,
                    -1100,
                    "Illegal characters found in parameter 'symbols'; "
                    'legal range is \'^\\[("[A-Z0-9-_.]{1,20}"(,"[A-Z0-9-_.]'
                    "{1,20}\"){0,}){0,1}\\]$'.",
                ) from None
            if any(s not in self._markets for s in wanted):
                raise _Reply(400, -1121, "Invalid symbol.")
        else:
            wanted = list(self._markets)
        return [self._ticker(s, self._prices[s]) for s in wanted if s in self._prices]

    def _klines_answer(self, query: dict[str, str]) -> list[list[Any]]:
        symbol = query.get("symbol")
        if not symbol:
            raise _Reply(
                400,
                -1102,
                "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.",
            )
        if symbol not in self._markets:
            raise _Reply(400, -1121, "Invalid symbol.")
        interval = query.get("interval")
        if interval not in _INTERVAL_MS:
            raise _Reply(400, -1120, "Invalid interval.")
        try:
            limit = min(int(query.get("limit", 500)), 1000)
            start = int(query["startTime"]) if "startTime" in query else None
            end = int(query["endTime"]) if "endTime" in query else None
        except ValueError:
            raise _Reply(400, -1100, "Illegal characters found in a parameter.") from None
        if limit < 1:
            raise _Reply(400, -1100, "Illegal characters found in parameter 'limit'.")
        rows = [
            r
            for r in self._klines.get(symbol, [])
            if (start is None or r[0] >= start) and (end is None or r[0] <= end)
        ]
        # Binance: with startTime the earliest `limit` rows, otherwise the latest ones.
        rows = rows[:limit] if start is not None else rows[-limit:]
        step = _INTERVAL_MS[interval]
        return [
            [
                t,
                o,
                h,
                lo,
                c,
                v,
                t + step - 1,
                _fmt(Decimal(c) * Decimal(v)),
                100,
                "0.00000000",
                "0.00000000",
                "0",
            ]
            for t, o, h, lo, c, v in rows
        ]

    def _account(self) -> dict[str, Any]:
        trade = self._perms["trade"]
        return {
            "makerCommission": 10,
            "takerCommission": 10,
            "buyerCommission": 0,
            "sellerCommission": 0,
            "commissionRates": {
                "maker": "0.00100000",
                "taker": "0.00100000",
                "buyer": "0.00000000",
                "seller": "0.00000000",
            },
            "canTrade": trade,
            "canWithdraw": self._perms["withdraw"],
            "canDeposit": True,
            "brokered": False,
            "requireSelfTradePrevention": False,
            "preventSor": False,
            "updateTime": _now_ms(),
            "accountType": "SPOT",
            "balances": [
                {"asset": a, "free": free, "locked": locked}
                for a, (free, locked) in self._balances.items()
            ],
            "permissions": ["SPOT"],
            "uid": 354937868,
        }

    def _api_restrictions(self) -> dict[str, Any]:
        return {
            "ipRestrict": False,
            "createTime": 1_700_000_000_000,
            "enableReading": True,
            "enableSpotAndMarginTrading": self._perms["trade"],
            "enableWithdrawals": self._perms["withdraw"],
            "enableInternalTransfer": False,
            "permitsUniversalTransfer": False,
            "enableVanillaOptions": False,
            "enableFutures": False,
            "enableMargin": False,
            "enablePortfolioMarginTrading": False,
            "enableFixApiTrade": False,
            "enableFixReadOnly": False,
        }


_CCXT_URLS: dict[str, dict[str, str]] | None = None


def _ccxt_binance_urls() -> dict[str, dict[str, str]]:
    """ccxt's own binance URL groups (api/test/demo), read once from the installed ccxt."""
    global _CCXT_URLS
    if _CCXT_URLS is None:
        import ccxt  # local: the server itself does not need ccxt

        urls = ccxt.binance().urls
        _CCXT_URLS = {g: dict(urls[g]) for g in ("api", "test", "demo") if g in urls}
    return _CCXT_URLS


def _make_handler(ex: StandinExchange) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "standin-binance/1"
        timeout = 10  # drop idle/half-sent connections

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # keep pytest output clean

        def _send(
            self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None
        ) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for k, v in (extra or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)
            except OSError:
                pass  # client went away (e.g. after its own timeout)

        def _json(self, status: int, obj: Any, extra: dict[str, str] | None = None) -> None:
            self._send(status, json.dumps(obj).encode(), "application/json;charset=UTF-8", extra)

        def _handle(self) -> None:
            split = urlsplit(self.path)
            query = dict(parse_qsl(split.query, keep_blank_values=True))
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
            headers = {k.lower(): v for k, v in self.headers.items()}
            fault = ex._record(self.command, split.path, query, body, headers)
            if fault is not None:
                self._fault(fault)
                return
            try:
                answer = ex._route(self.command, split.path, query, headers)
            except _Reply as r:
                self._json(r.status, {"code": r.code, "msg": r.msg})
                return
            except _Unserved as u:
                self._send(u.status, HTTPStatus(u.status).phrase.encode(), "text/plain")
                return
            self._json(200, answer)

        def _fault(self, fault: str) -> None:
            if fault in ("500", "503"):
                text = {"500": "Internal Server Error", "503": "Service Unavailable"}[fault]
                self._send(
                    int(fault),
                    f"<html><body><h1>{fault} {text}</h1></body></html>".encode(),
                    "text/html",
                )
            elif fault == "internal":
                self._json(
                    500,
                    {
                        "code": -1001,
                        "msg": "Internal error; unable to process your request. Please try again.",
                    },
                )
            elif fault == "502-json":
                self._json(502, {"code": 502, "msg": "Bad Gateway"})
            elif fault == "429":
                self._json(
                    429,
                    {
                        "code": -1003,
                        "msg": "Too many requests; current limit of IP "
                        "is 6000 requests per minute. Please use WebSocket Streams for "
                        "live updates to avoid polling the API.",
                    },
                    {"Retry-After": "1"},
                )
            elif fault == "418":
                self._json(
                    418,
                    {
                        "code": -1003,
                        "msg": "Way too many requests; IP banned until "
                        f"{_now_ms() + 120_000}. Please use WebSocket Streams for live "
                        "updates to avoid bans.",
                    },
                    {"Retry-After": "120"},
                )
            elif fault == "auth":
                self._json(
                    401, {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}
                )
            elif fault == "garbage":
                self._send(
                    200,
                    b"<html><head><title>502</title></head><body>upstream "
                    b"garbage \x00\xff</body></html>",
                    "text/html",
                )
            elif fault == "timeout":
                ex._stopping.wait(TIMEOUT_HOLD_SECONDS)
                self.close_connection = True  # drop it without an answer

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle

    return Handler


class Receiver:
    """A notification service stand-in on 127.0.0.1 (random port) for Apprise's ``json://``
    target: it keeps each message it takes (Apprise's JSON: title, message, type) with the
    time it arrived, and answers ``status`` (200), after holding each request ``hold``
    seconds (a service that hangs; released at stop). ``url(path)`` is the Apprise URL."""

    def __init__(self, status: int = 200, hold: float = 0.0) -> None:
        self.status = status
        self.hold = hold
        self.messages: list[dict[str, Any]] = []
        self.arrived: list[float] = []  # time.monotonic() of each request, answered or not
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self.port = 0

    def __enter__(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def do_POST(self) -> None:  # noqa: N802
                receiver.arrived.append(time.monotonic())
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if receiver.hold and receiver._stopping.wait(receiver.hold):
                    return  # stopping: never answered
                if receiver.status == 200:
                    receiver.messages.append({**body, "path": self.path})
                try:
                    self.send_response(receiver.status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the client gave up (its timeout)

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._server, self.port = server, server.server_address[1]
        threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def url(self, path: str = "/hook") -> str:
        return f"json://127.0.0.1:{self.port}{path}"

    def wait_for(self, count: int, timeout: float = 20) -> list[dict[str, Any]]:
        """The messages once `count` have arrived (AssertionError past `timeout`)."""
        deadline = time.monotonic() + timeout
        while len(self.messages) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.messages)} of {count} messages: {self.messages}")
            time.sleep(0.02)
        return list(self.messages)
