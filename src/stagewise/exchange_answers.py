"""What an exchange's answers say, in our terms: finite numbers, a ticker's usable price (or
what is wrong with it), an OHLCV row as a `Candle`, a raw body as JSON; and, for a failure, why
no answer came and its message redacted of keys and request signatures."""

from __future__ import annotations

import json
import math
import re
import socket
import ssl
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import ccxt

from stagewise.errors import SnapshotError
from stagewise.history import Candle

_SIGNED = re.compile(r"(signature|apiKey|api_key|X-MBX-APIKEY|sign)=([^&\s\"']+)", re.IGNORECASE)
# A URL's user and password (http://user:password@host/, as an [exchange.ccxt] url or proxy
# may carry them).
_USERINFO = re.compile(r"(\b[a-z][a-z0-9+.-]*://)[^/?#\s@\"']+@", re.IGNORECASE)


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with request signatures, the user and password of URLs and every secret value
    replaced by <redacted>."""
    text = _SIGNED.sub(lambda m: f"{m.group(1)}=<redacted>", text)
    text = _USERINFO.sub(lambda m: f"{m.group(1)}<redacted>@", text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "<redacted>")
    return text


def parsed_json(text: Any) -> Any:
    """`text` parsed as JSON, or None."""
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return None


def network_cause(error: BaseException, timeout_ms: int) -> str:
    """Why no answer came, in words (name resolution, refused, timed out ...), from the chain
    of errors under ccxt's (requests and urllib3 wrap the socket's error)."""
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain:
        chain.append(current)
        wrapped = [a for a in (*current.args, getattr(current, "reason", None)) if a is not None]
        current = (
            current.__cause__
            or current.__context__
            or next((a for a in wrapped if isinstance(a, BaseException)), None)
        )
    timed_out = f"timed out (no answer within {timeout_ms} ms)"
    causes = (
        (socket.gaierror, "name resolution failed"),
        (ConnectionRefusedError, "connection refused"),
        (ConnectionResetError, "connection reset"),
        (ccxt.RequestTimeout, timed_out),
        (TimeoutError, timed_out),
        (ssl.SSLError, "TLS handshake failed"),
    )
    for kind, text in causes:
        if any(isinstance(e, kind) for e in chain):
            return text
    return "no connection"


def candle(base: str, symbol: str, row: Sequence[Any]) -> Candle:
    """A ccxt OHLCV row [ts, open, high, low, close, base volume] as our Candle; a close that
    is not a positive number, or a volume that is negative or not a number, is bad data."""
    ts, close = int(row[0]), finite_number(row[4])
    if close is None or close <= 0:
        raise SnapshotError(f"bad close for {base}: {symbol} at {ts} is {row[4]!r}")
    raw = row[5] if len(row) > 5 else None
    volume = None if raw is None else finite_number(raw)
    if raw is not None and (volume is None or volume < 0):
        raise SnapshotError(f"bad volume for {base}: {symbol} at {ts} is {raw!r}")
    return Candle(ts, close, None if volume is None else volume * close)


def finite_number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def price_problem(ticker: Any, symbol: str) -> str | None:
    """What makes `ticker` unusable as the price of `symbol`, or None."""
    if not isinstance(ticker, Mapping):
        return f"the exchange returned no ticker for {symbol}"
    price = _price(ticker)
    if price is None or price <= 0:
        raw = _raw_price(ticker)
        info = ticker.get("info")
        if raw is None and isinstance(info, Mapping):  # ccxt drops a zero price: show it
            raw = next((info[k] for k in ("lastPrice", "last", "price") if k in info), None)
        return f"{symbol} last price is {raw!r}"
    return None


def _raw_price(ticker: Mapping[str, Any]) -> Any:
    """The ticker's last (or close) price, else the middle of bid and ask, as given."""
    for key in ("last", "close"):
        raw = ticker.get(key)
        if raw is not None:
            return raw
    bid, ask = finite_number(ticker.get("bid")), finite_number(ticker.get("ask"))
    return (bid + ask) / 2 if bid and ask else None


def _price(ticker: Mapping[str, Any]) -> float | None:
    return finite_number(_raw_price(ticker))


def usable_price(ticker: Mapping[str, Any]) -> float:
    """The price of a ticker `price_problem` found nothing wrong with."""
    price = _price(ticker)
    assert price is not None
    return price
