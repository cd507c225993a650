"""The Binance-spot stand-in, exercised through real ccxt over real HTTP on 127.0.0.1.

These tests also pin down what ccxt 4.5.x actually raises for each transport fault, so the
daemon's error classification can rely on it.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

import ccxt
import pytest
from standin import FAULTS, SPOT_ONLY_OPTIONS, StandinExchange

DAY = 86_400_000
JAN_2020 = 1_577_836_800_000  # 2020-01-01T00:00:00Z


def client(ex: StandinExchange, **extra: Any) -> ccxt.binance:
    """A raw ccxt client with a key, loading spot markets only (as the adapter does)."""
    config = ex.ccxt_config()
    config["options"].update(SPOT_ONLY_OPTIONS)
    return ccxt.binance({**config, "apiKey": "k", "secret": "s", **extra})


def many_markets(ex: StandinExchange, n: int) -> list[str]:
    symbols = []
    for i in range(n):
        base = f"C{i:03d}"
        ex.add_market(base)
        ex.set_price(base, 1 + i)
        symbols.append(f"{base}/USDT")
    return symbols


# -- wiring --------------------------------------------------------------------------------


def test_every_ccxt_url_points_at_the_standin(standin: StandinExchange) -> None:
    c = client(standin)
    for group in ("api", "test", "demo"):
        for name, url in c.urls[group].items():
            assert url.startswith(standin.base_url + "/"), (group, name, url)


def test_load_markets_is_one_request_with_declared_precision_and_limits(
    standin: StandinExchange,
) -> None:
    standin.add_market("BTC", step="0.00001", min_qty="0.00002", min_notional="5", tick="0.01")
    standin.add_market(
        "ETH", "BTC", step="0.001", min_qty="0.001", min_notional="0.0001", tick="0.00001"
    )
    standin.add_market("LUNA", status="BREAK")
    c = client(standin)

    markets = c.load_markets()

    assert [(r.method, r.path) for r in standin.requests] == [("GET", "/api/v3/exchangeInfo")]
    assert set(markets) == {"BTC/USDT", "ETH/BTC", "LUNA/USDT"}
    btc = markets["BTC/USDT"]
    assert btc["spot"] and btc["active"] and btc["id"] == "BTCUSDT"
    assert btc["precision"]["amount"] == pytest.approx(0.00001)
    assert btc["precision"]["price"] == pytest.approx(0.01)
    assert btc["limits"]["amount"]["min"] == pytest.approx(0.00002)
    assert btc["limits"]["cost"]["min"] == pytest.approx(5)
    eth = markets["ETH/BTC"]
    assert eth["precision"]["amount"] == pytest.approx(0.001)
    assert eth["limits"]["cost"]["min"] == pytest.approx(0.0001)
    assert markets["LUNA/USDT"]["active"] is False
    assert c.amount_to_precision("BTC/USDT", 0.123456789) == "0.12345"


def test_ccxt_defaults_also_load_the_futures_markets_under_the_spot_ids(
    standin: StandinExchange,
) -> None:
    """Why the adapter asks for spot markets only: by default, ccxt's binance fetches the
    USD-M and COIN-M futures lists too, and BTCUSDT then names two markets."""
    standin.add_market("BTC")
    standin.add_market("ETH", "BTC")
    c = ccxt.binance(standin.ccxt_config())  # no key, ccxt's own market options

    markets = c.load_markets()

    assert sorted(r.path for r in standin.requests) == [
        "/api/v3/exchangeInfo",
        "/dapi/v1/exchangeInfo",
        "/fapi/v1/exchangeInfo",
    ]
    assert set(markets) == {"BTC/USDT", "ETH/BTC", "BTC/USDT:USDT"}
    assert markets["BTC/USDT:USDT"]["swap"] and markets["BTC/USDT:USDT"]["linear"]
    assert [m["symbol"] for m in c.markets_by_id["BTCUSDT"]] == ["BTC/USDT", "BTC/USDT:USDT"]
    with pytest.raises(ccxt.ArgumentsRequired):
        c.safe_symbol("BTCUSDT")


def test_ccxt_defaults_with_a_key_ask_the_wallet_and_the_margin_pairs(
    standin: StandinExchange,
) -> None:
    """...and with a key, its private currency list and margin pairs (refused here)."""
    standin.add_market("BTC")
    config = {**standin.ccxt_config(), "apiKey": "k", "secret": "s"}
    with pytest.raises(ccxt.BadRequest, match="capital/config/getall"):
        ccxt.binance(config).load_markets()
    config["options"] = {**config["options"], "fetchCurrencies": False}
    with pytest.raises(ccxt.BadRequest, match="margin/allPairs"):
        ccxt.binance(config).load_markets()
    assert standin.count("/sapi/v1/capital/config/getall") == 1
    assert standin.count("/sapi/v1/margin/allPairs") == 1


def test_fetch_tickers_is_a_single_request_for_3_and_for_50_symbols(
    standin: StandinExchange,
) -> None:
    symbols = many_markets(standin, 50)
    c = client(standin)
    c.load_markets()

    for wanted in (symbols[:3], symbols):
        standin.clear_requests()
        tickers = c.fetch_tickers(wanted)
        assert standin.count() == 1
        assert standin.count("/api/v3/ticker/24hr", "GET") == 1
        assert json.loads(standin.requests[0].query["symbols"]) == [
            s.replace("/", "") for s in wanted
        ]
        assert sorted(tickers) == sorted(wanted)
    assert tickers["C007/USDT"]["last"] == pytest.approx(8)
    assert tickers["C007/USDT"]["bid"] == pytest.approx(8)


def test_ticker_prices_zero_and_absent(standin: StandinExchange) -> None:
    for base in ("BTC", "ZERO", "GONE", "NEVER"):
        standin.add_market(base)
    standin.set_price("BTC", 65000.5, bid=65000, ask=65001)
    standin.set_price("ZERO", 0)
    standin.set_price("GONE", 1.5)
    standin.set_price("GONE", None)  # None removes it again
    c = client(standin)
    c.load_markets()

    tickers = c.fetch_tickers(["BTC/USDT", "ZERO/USDT", "GONE/USDT", "NEVER/USDT"])

    assert set(tickers) == {"BTC/USDT", "ZERO/USDT"}  # unpriced symbols are simply missing
    btc = tickers["BTC/USDT"]
    assert (btc["last"], btc["bid"], btc["ask"]) == (65000.5, 65000, 65001)
    assert isinstance(btc["timestamp"], int)
    zero = tickers["ZERO/USDT"]
    assert zero["info"]["lastPrice"] == "0.00000000"
    assert zero["last"] is None and zero["bid"] is None  # ccxt's safe_ticker omits zeros
    with pytest.raises(KeyError):
        standin.set_price("NOPE", 1)


def test_a_nan_price_breaks_the_whole_fetch_tickers_call(standin: StandinExchange) -> None:
    """ccxt's safe_ticker does Precise arithmetic on lastPrice: "NaN" raises ValueError."""
    standin.add_market("BTC")
    standin.add_market("NAN")
    standin.set_price("BTC", 1)
    standin.set_price("NAN", "NaN")
    c = client(standin)
    c.load_markets()

    with pytest.raises(ValueError):  # a plain ValueError, not a ccxt.BaseError
        c.fetch_tickers(["BTC/USDT", "NAN/USDT"])
    assert standin.requests[-1].path == "/api/v3/ticker/24hr"
    assert "BTC/USDT" in c.fetch_tickers(["BTC/USDT"])


def test_fetch_balance_returns_the_set_balances(standin: StandinExchange) -> None:
    standin.add_market("BTC")
    standin.set_balance("BTC", "0.5", locked="0.1")
    standin.set_balance("USDT", 1234.56)
    c = client(standin)

    balance = c.fetch_balance()

    assert balance["BTC"] == {"free": 0.5, "used": 0.1, "total": pytest.approx(0.6)}
    assert balance["USDT"]["free"] == pytest.approx(1234.56)
    assert balance["USDT"]["used"] == 0
    account = [r for r in standin.requests if r.path == "/api/v3/account"]
    assert len(account) == 1
    assert {"timestamp", "recvWindow", "signature"} <= set(account[0].query)
    assert account[0].headers["x-mbx-apikey"] == "k"
    assert standin.count("/sapi") == 0


def test_signed_endpoint_without_api_key_is_refused(standin: StandinExchange) -> None:
    url = standin.base_url + "/api/v3/account?timestamp=1&signature=x"
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(url, timeout=5)
    assert info.value.code == 401
    assert json.loads(info.value.read())["code"] == -2014


@pytest.mark.parametrize(("trade", "withdraw"), [(False, False), (True, False), (True, True)])
def test_api_restrictions_reflect_the_permissions(
    standin: StandinExchange,
    trade: bool,
    withdraw: bool,
) -> None:
    standin.set_permissions(trade=trade, withdraw=withdraw)
    c = client(standin)

    answer = c.sapi_get_account_apirestrictions()

    assert answer["enableReading"] is True
    assert answer["enableSpotAndMarginTrading"] is trade
    assert answer["enableWithdrawals"] is withdraw
    assert standin.count("/sapi/v1/account/apiRestrictions", "GET") == 1
    assert "signature" in standin.requests[-1].query


def test_default_permissions_are_read_only(standin: StandinExchange) -> None:
    answer = client(standin).sapi_get_account_apirestrictions()
    assert answer["enableSpotAndMarginTrading"] is False
    assert answer["enableWithdrawals"] is False


def test_fetch_time(standin: StandinExchange) -> None:
    assert abs(client(standin).fetch_time() - time.time() * 1000) < 5_000


# -- klines --------------------------------------------------------------------------------


Row = tuple[int, float, float, float, float, float]


def daily_rows(n: int, start: int = JAN_2020) -> list[Row]:
    return [(start + i * DAY, 100 + i, 101 + i, 99 + i, 100.5 + i, 10) for i in range(n)]


def test_fetch_ohlcv_paginates_with_since_and_limit(standin: StandinExchange) -> None:
    standin.add_market("BTC")
    standin.set_klines("BTC", "USDT", daily_rows(2500))
    c = client(standin)
    c.load_markets()
    standin.clear_requests()

    candles: list[list[float]] = []
    since = JAN_2020
    while True:
        batch = c.fetch_ohlcv("BTC/USDT", "1d", since, 1000)
        candles += batch
        if len(batch) < 1000:
            break
        since = batch[-1][0] + 1

    assert standin.count("/api/v3/klines") == 3
    assert [r.query["startTime"] for r in standin.requests] == [
        str(JAN_2020),
        str(JAN_2020 + 999 * DAY + 1),
        str(JAN_2020 + 1999 * DAY + 1),
    ]
    assert len(candles) == 2500
    assert [c[0] for c in candles] == [JAN_2020 + i * DAY for i in range(2500)]
    assert candles[0] == [JAN_2020, 100.0, 101.0, 99.0, 100.5, 10.0]


def test_klines_window_semantics(standin: StandinExchange) -> None:
    standin.add_market("ETH")
    standin.set_klines("ETH", "USDT", daily_rows(700))
    c = client(standin)

    assert len(c.fetch_ohlcv("ETH/USDT", "1d")) == 500  # no since: the latest 500
    assert c.fetch_ohlcv("ETH/USDT", "1d")[-1][0] == JAN_2020 + 699 * DAY
    mid = c.fetch_ohlcv("ETH/USDT", "1d", JAN_2020 + 10 * DAY, 5)
    assert [row[0] for row in mid] == [JAN_2020 + i * DAY for i in range(10, 15)]
    upto = c.fetch_ohlcv("ETH/USDT", "1d", limit=3, params={"until": JAN_2020 + 20 * DAY})
    assert [row[0] for row in upto] == [JAN_2020 + i * DAY for i in range(18, 21)]
    assert c.fetch_ohlcv("ETH/USDT", "1d", JAN_2020 + 5000 * DAY, 10) == []


def test_ccxt_deterministic_pagination_is_served(standin: StandinExchange) -> None:
    standin.add_market("BTC")
    standin.set_klines("BTC", "USDT", daily_rows(300))
    c = client(standin)
    c.load_markets()
    standin.clear_requests()

    candles = c.fetch_ohlcv(
        "BTC/USDT",
        "1d",
        JAN_2020,
        params={"paginate": True, "until": JAN_2020 + 300 * DAY, "maxEntriesPerRequest": 100},
    )

    assert [c[0] for c in candles] == [JAN_2020 + i * DAY for i in range(300)]
    # windows start at since + k * (100 days - 1 ms), so 300 days take a 4th, 1-candle call
    assert standin.count("/api/v3/klines") == 4
    assert all(r.query["limit"] == "100" for r in standin.requests)


# -- faults --------------------------------------------------------------------------------

FRESH_CLIENT_FAULTS = [
    ("500", ccxt.ExchangeNotAvailable),
    ("503", ccxt.ExchangeNotAvailable),
    ("internal", ccxt.OperationFailed),  # Binance -1001 "Internal error ... try again"
    ("502-json", ccxt.ExchangeError),  # a JSON body of unknown code, whatever the status
    ("429", ccxt.DDoSProtection),  # binance.handle_errors: 418/429 -> DDoSProtection
    ("418", ccxt.DDoSProtection),
    ("auth", ccxt.AuthenticationError),
    ("timeout", ccxt.RequestTimeout),
]


@pytest.mark.parametrize(("fault", "expected"), FRESH_CLIENT_FAULTS)
def test_fault_maps_to_ccxt_exception(
    standin: StandinExchange,
    fault: str,
    expected: type[Exception],
) -> None:
    standin.add_market("BTC")
    standin.set_price("BTC", 1)
    c = client(standin, timeout=1000)
    c.load_markets()
    standin.inject("/api/v3/ticker", fault)

    started = time.monotonic()
    with pytest.raises(expected) as raised:
        c.fetch_tickers(["BTC/USDT"])
    assert type(raised.value) is expected
    assert time.monotonic() - started < 2.5
    assert standin.requests[-1].fault == fault
    # one-shot: the next call succeeds
    assert c.fetch_tickers(["BTC/USDT"])["BTC/USDT"]["last"] == 1


def test_fault_classes_are_what_the_daemon_can_rely_on() -> None:
    network = [cls for f, cls in FRESH_CLIENT_FAULTS if f not in ("auth", "internal", "502-json")]
    assert all(issubclass(cls, ccxt.NetworkError) for cls in network)
    # The exchange's own failures are not network errors to ccxt: the adapter retries
    # OperationFailed, and any error that came with an HTTP 5xx.
    assert not issubclass(ccxt.OperationFailed, ccxt.NetworkError)
    assert issubclass(ccxt.NetworkError, ccxt.OperationFailed)
    assert not issubclass(ccxt.ExchangeError, ccxt.OperationFailed)
    assert issubclass(ccxt.RateLimitExceeded, ccxt.NetworkError)
    assert not issubclass(ccxt.AuthenticationError, ccxt.NetworkError)
    assert issubclass(ccxt.AuthenticationError, ccxt.ExchangeError)
    assert not issubclass(ccxt.NetworkError, ccxt.ExchangeError)  # both under OperationFailed


def test_auth_error_after_a_successful_private_call_becomes_ddos_protection(
    standin: StandinExchange,
) -> None:
    # ccxt quirk: once any private call succeeded, Binance -2015 is read as a temporary ban.
    c = client(standin)
    c.fetch_balance()
    standin.inject("/api/v3/account", "auth")
    with pytest.raises(ccxt.DDoSProtection):
        c.fetch_balance()


def test_garbage_is_not_caught_by_ccxt(standin: StandinExchange) -> None:
    """A 200 with a non-JSON body is handed to the parsers as a str; ccxt raises nothing useful.

    The daemon must validate answers itself (or catch plain exceptions) - this pins it.
    """
    standin.add_market("BTC")
    standin.set_price("BTC", 1)
    standin.set_balance("BTC", 1)
    standin.set_klines("BTC", "USDT", daily_rows(3))

    c = client(standin)
    standin.inject("/api/v3/exchangeInfo", "garbage")
    assert c.load_markets() == {}  # silently empty - and cached by ccxt

    c = client(standin)
    c.load_markets()
    standin.inject("/api/v3/ticker", "garbage")
    with pytest.raises(AttributeError):  # not a ccxt.BaseError at all
        c.fetch_tickers(["BTC/USDT"])

    standin.inject("/api/v3/account", "garbage")
    balance = c.fetch_balance()
    assert "BTC" not in balance and isinstance(balance["info"], str)

    standin.inject("/api/v3/klines", "garbage")
    rows = c.fetch_ohlcv("BTC/USDT", "1d", 0, 3)
    assert rows and all(row[1] is None for row in rows)  # parsed from the str's chars, no error


def test_fault_times_and_prefix_matching(standin: StandinExchange) -> None:
    standin.add_market("BTC")
    standin.set_price("BTC", 1)
    c = client(standin)
    c.load_markets()
    standin.inject("/api/v3/ticker", "503", times=2)
    standin.inject("/api/v3/klines", "500")  # other prefix: untouched by ticker calls
    for _ in range(2):
        with pytest.raises(ccxt.ExchangeNotAvailable):
            c.fetch_tickers(["BTC/USDT"])
    assert "BTC/USDT" in c.fetch_tickers(["BTC/USDT"])
    assert [r.fault for r in standin.requests if r.path == "/api/v3/ticker/24hr"] == [
        "503",
        "503",
        None,
    ]
    with pytest.raises(ccxt.ExchangeNotAvailable):
        c.fetch_ohlcv("BTC/USDT", "1d")
    with pytest.raises(ValueError):
        standin.inject("/x", "explode")
    assert {
        "500",
        "503",
        "internal",
        "502-json",
        "429",
        "418",
        "timeout",
        "garbage",
        "auth",
    } == FAULTS


# -- refusals ------------------------------------------------------------------------------


def test_raw_post_order_is_recorded_and_refused(standin: StandinExchange) -> None:
    body = b"symbol=BTCUSDT&side=BUY&type=MARKET&quantity=1&timestamp=1&signature=x"
    req = urllib.request.Request(
        standin.base_url + "/api/v3/order",
        data=body,
        method="POST",
        headers={"X-MBX-APIKEY": "k", "Content-Type": "application/x-www-form-urlencoded"},
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req, timeout=5)

    assert 400 <= info.value.code < 500
    error = json.loads(info.value.read())
    assert error["code"] == -1020 and "POST /api/v3/order" in error["msg"]
    assert standin.count("/api/v3/order", "POST") == 1
    assert standin.requests[0].body == body.decode()


def test_ccxt_order_calls_are_recorded_and_refused(standin: StandinExchange) -> None:
    standin.add_market("BTC")
    c = client(standin)
    c.load_markets()

    with pytest.raises(ccxt.BadRequest):
        c.create_order("BTC/USDT", "limit", "buy", 0.001, 60000)
    with pytest.raises(ccxt.BadRequest):
        c.cancel_order("123", "BTC/USDT")
    with pytest.raises(ccxt.BadRequest):
        c.fetch_open_orders("BTC/USDT")  # unserved GET

    assert standin.count("/api/v3/order", "POST") == 1
    assert standin.count("/api/v3/order", "DELETE") == 1
    assert standin.count("/api/v3/openOrders", "GET") == 1


def test_unserved_paths_and_methods_are_refused(standin: StandinExchange) -> None:
    for method, path in [
        ("GET", "/sapi/v1/capital/config/getall"),
        ("PUT", "/api/v3/order"),
        ("DELETE", "/api/v3/openOrders"),
        ("GET", "/fapi/v1/order"),
        ("GET", "/sapi/v1/margin/allPairs"),
    ]:
        req = urllib.request.Request(standin.base_url + path, method=method)
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(req, timeout=5)
        assert info.value.code == 400
    assert standin.count() == 5
    assert standin.count(method="put") == 1


@pytest.mark.parametrize(
    ("status", "expected"), [(404, ccxt.ExchangeNotAvailable), (400, ccxt.BadRequest)]
)
def test_an_unserved_path_answers_as_a_proxy_without_it(
    standin: StandinExchange, status: int, expected: type[Exception]
) -> None:
    c = client(standin)
    assert c.sapi_get_account_apirestrictions()["enableReading"] is True
    standin.unserve("/sapi/v1/account/apiRestrictions", status)

    for _ in range(2):  # for good, unlike a fault
        with pytest.raises(expected) as raised:
            c.sapi_get_account_apirestrictions()
        assert type(raised.value) is expected  # 404: a *network* error to ccxt
    assert c.fetch_balance()["info"]["accountType"] == "SPOT"  # other paths still served
    assert standin.count("/sapi/v1/account/apiRestrictions") == 3


def test_not_started_and_restart_guard() -> None:
    ex = StandinExchange()
    with pytest.raises(RuntimeError):
        ex.ccxt_config()
    with ex, pytest.raises(RuntimeError):
        ex.start()
    ex.stop()  # idempotent
