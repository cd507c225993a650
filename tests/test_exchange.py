"""The exchange adapter (stagewise/exchange.py, its helpers and stagewise/read_only.py) with
real ccxt, over real HTTP, against the local Binance stand-in (tests/standin.py): snapshot
parsing, precision, request economy, fault translation for every method that talks to the
exchange, read-only safety, secrets, key rights.
"""

from __future__ import annotations

import inspect
import json
import re
import socket
import sqlite3
import time
import tomllib
import traceback
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import ccxt
import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st
from standin import StandinExchange
from structlog.testing import capture_logs

from stagewise.errors import ConfigError, ExchangeAuthError, ExchangeUnavailable, SnapshotError
from stagewise.exchange import Exchange
from stagewise.exchange_answers import redact
from stagewise.keyrights import KeyPermissions
from stagewise.money import floor_to_step
from stagewise.read_only import ReadOnlyAccount
from stagewise.sections import ExchangeSettings
from stagewise.snapshot import Market

KEY = "KEY-SECRET-123"
SECRET = "SEC-SECRET-456"
NOW = datetime(2027, 1, 1, tzinfo=UTC)
LATER = NOW + timedelta(days=2)
DAY = 86_400_000
JAN_2020 = 1_577_836_800_000  # 2020-01-01T00:00:00Z
ATTEMPTS = 3
NAMED_ERRORS = (ExchangeUnavailable, ExchangeAuthError, SnapshotError)


def exchange_settings(standin: StandinExchange, **override: Any) -> ExchangeSettings:
    values: dict[str, Any] = {
        "id": "binance",
        "mode": "read-only",
        "quote": "USDT",
        "api_key": KEY,
        "secret": SECRET,
        "ccxt": standin.ccxt_config(),
        "timeout_ms": 1000,
        "retry_attempts": ATTEMPTS,
        "retry_initial_seconds": 0.01,
        "retry_max_seconds": 5,
    }
    return ExchangeSettings(**{**values, **override})


@pytest.fixture
def connect(standin: StandinExchange) -> Iterator[Callable[..., Exchange]]:
    """Factory of adapters wired to the stand-in (settings overridable); all closed afterwards."""
    made: list[Exchange] = []

    def make(**override: Any) -> Exchange:
        made.append(Exchange(exchange_settings(standin, **override)))
        return made[-1]

    yield make
    for exchange in made:
        exchange.close()


@pytest.fixture
def events() -> Iterator[list[dict[str, Any]]]:
    """structlog events logged during the test, whatever an earlier test configured."""
    saved = structlog.get_config()
    structlog.reset_defaults()
    try:
        with capture_logs() as logs:
            yield logs
    finally:
        structlog.configure(**saved)


def refused_port() -> int:
    """A port of 127.0.0.1 where nothing listens (bound, then closed): connections are refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def json_replace(value: Any, old: str, new: str) -> Any:
    """`value` (nested dicts, lists, strings) with `old` replaced by `new` in every string."""
    return json.loads(json.dumps(value).replace(old, new))


def signatures(standin: StandinExchange) -> set[str]:
    return {r.query["signature"] for r in standin.requests if r.query.get("signature")}


def assert_no_secrets(text: str, standin: StandinExchange) -> None:
    assert KEY not in text
    assert SECRET not in text
    for signature in signatures(standin):
        assert signature not in text


def run(call: Callable[[], Any]) -> tuple[Any, BaseException | None]:
    """(result, None) or (None, error): any exception that is not a named one fails the test."""
    try:
        return call(), None
    except Exception as e:
        assert isinstance(e, NAMED_ERRORS), f"{type(e).__name__} escaped the adapter: {e}"
        return None, e


# -- 1. snapshot parsing ---------------------------------------------------------------------


def declare_account(standin: StandinExchange) -> None:
    standin.add_market("BTC", step="0.00001", min_qty="0.00002", min_notional="5", tick="0.01")
    standin.add_market("ETH", step="0.0001", min_qty="0.001", min_notional="10", tick="0.1")
    standin.add_market(
        "XMR", "BTC", step="0.001", min_qty="0.01", min_notional="0.0001", tick="0.000001"
    )
    standin.add_market("LUNA", status="BREAK", step="1", min_qty="1")
    standin.set_price("BTC", 65000)
    standin.set_price("ETH", 3000.5)
    standin.set_price("XMR", 0.003, "BTC")
    standin.set_price("LUNA", 0.0001)
    standin.set_balance("BTC", "0.5", locked="0.1")
    standin.set_balance("ETH", 2)
    standin.set_balance("XMR", 3)
    standin.set_balance("USDT", "1234.56")
    standin.set_balance("DUST", 7)  # listed nowhere
    standin.set_balance("LUNA", 100)  # its only market is halted
    standin.set_balance("SOL", 0)  # zero: not a balance


def test_snapshot_parses_balances_prices_and_market_rules(
    standin: StandinExchange, connect: Callable[..., Exchange]
) -> None:
    declare_account(standin)
    account = ReadOnlyAccount(connect())

    snap = account.snapshot(["BTC", "ETH", "XMR", "ADA"], NOW)

    assert snap.taken_at == NOW and snap.quote == "USDT"
    assert snap.balances == {
        "BTC": 0.5,
        "ETH": 2.0,
        "XMR": 3.0,
        "USDT": 1234.56,
        "DUST": 7.0,
        "LUNA": 100.0,
    }  # free amounts only, zero lines dropped
    assert snap.locked == {"BTC": 0.1}  # what open orders hold: said in every plan
    assert snap.prices == {
        "USDT": 1.0,
        "BTC": 65000.0,
        "ETH": 3000.5,
        "XMR": pytest.approx(0.003 * 65000),
    }
    assert sorted(snap.unpriced) == ["ADA", "DUST", "LUNA"]
    assert snap.markets["BTC"] == Market(
        symbol="BTC/USDT",
        base="BTC",
        quote="USDT",
        amount_step=pytest.approx(0.00001),
        min_amount=pytest.approx(0.00002),
        min_notional=pytest.approx(5),
        fee_rate=pytest.approx(0.001),  # ccxt's Binance spot taker fee (the stand-in has none)
        price_step=pytest.approx(0.01),
        max_amount=pytest.approx(9_000_000),  # LOT_SIZE maxQty
    )
    eth = snap.markets["ETH"]
    assert (eth.symbol, eth.amount_step, eth.min_amount, eth.min_notional, eth.price_step) == (
        "ETH/USDT",
        pytest.approx(0.0001),
        pytest.approx(0.001),
        pytest.approx(10),
        pytest.approx(0.1),
    )
    # XMR has only XMR/BTC: priced through BTC/USDT, its minimum order value turned into USDT
    xmr = snap.markets["XMR"]
    assert (xmr.symbol, xmr.base, xmr.quote) == ("XMR/BTC", "XMR", "BTC")
    assert xmr.amount_step == pytest.approx(0.001)
    assert xmr.min_amount == pytest.approx(0.01)
    assert xmr.min_notional == pytest.approx(0.0001 * 65000)
    assert set(snap.markets) == {"BTC", "ETH", "XMR"}
    assert snap.total_value == pytest.approx(1234.56 + 0.5 * 65000 + 2 * 3000.5 + 3 * 195)


def test_a_negative_locked_balance_is_refused_naming_it(
    standin: StandinExchange, connect: Callable[..., Exchange]
) -> None:
    declare_account(standin)
    standin.set_balance("BTC", "0.05", locked="-1")  # it was taken without a word
    with pytest.raises(SnapshotError, match="locked balance of BTC is not an amount"):
        ReadOnlyAccount(connect()).snapshot(["BTC"], NOW)


def test_direct_market_is_preferred_to_a_bridge(
    standin: StandinExchange, connect: Callable[..., Exchange]
) -> None:
    standin.add_market("BTC")
    standin.add_market("ETH")
    standin.add_market("ETH", "BTC")
    standin.set_price("BTC", 60000)
    standin.set_price("ETH", 3000)
    standin.set_price("ETH", 0.04, "BTC")
    exchange = connect()
    exchange.load_markets(NOW)

    assert exchange.routes(["ETH", "USDT", "NOPE"]) == ({"ETH": ["ETH/USDT"]}, ["NOPE"])
    prices, markets, unpriced = exchange.quotes(["ETH"], NOW)
    assert prices["ETH"] == 3000 and markets["ETH"].symbol == "ETH/USDT" and unpriced == []


@pytest.mark.parametrize(
    ("price", "setup"),
    [
        ("NaN", None),
        (0, None),
        (None, None),  # no ticker at all for the symbol
        (1.0, "bridge-missing"),  # X/BTC priced, BTC/USDT not
    ],
    ids=["nan", "zero", "missing", "bridge-leg-missing"],
)
def test_an_unusable_price_fails_the_snapshot_naming_the_asset(
    standin: StandinExchange, connect: Callable[..., Exchange], price: Any, setup: str | None
) -> None:
    standin.add_market("BTC")
    standin.set_price("BTC", 65000)
    if setup == "bridge-missing":
        standin.add_market("BAD", "BTC")
        standin.set_price("BAD", price, "BTC")
        standin.add_market("ETH")
        standin.set_price("ETH", 3000)
        standin.set_price("BTC", None)
        wanted = ["BAD", "ETH"]
    else:
        standin.add_market("BAD")
        standin.set_price("BAD", price)
        wanted = ["BTC", "BAD"]
    standin.set_balance("USDT", 100)
    account = ReadOnlyAccount(connect())

    result, error = run(lambda: account.snapshot(wanted, NOW))

    assert result is None and type(error) is SnapshotError
    message = str(error)
    assert "BAD" in message
    assert "ETH" not in message and "BTC/USDT:" not in message
    assert standin.count("/api/v3/ticker/24hr") == 1  # never retried: it will not get better


@pytest.mark.parametrize("eth", [0, "NaN"], ids=["zero", "nan"])
def test_every_unusable_price_is_named_not_only_the_first(
    standin: StandinExchange, connect: Callable[..., Exchange], eth: Any
) -> None:
    for base, price in (("BTC", 65000), ("ETH", eth), ("SOL", None), ("ADA", 0.5)):
        standin.add_market(base)
        standin.set_price(base, price)
    standin.set_balance("USDT", 100)
    account = ReadOnlyAccount(connect())

    result, error = run(lambda: account.snapshot(["BTC", "ETH", "SOL", "ADA"], NOW))

    assert result is None and type(error) is SnapshotError
    message = str(error)
    shown = "'NaN'" if eth == "NaN" else "'0.00000000'"  # not "None": what the exchange said
    assert f"ETH (ETH/USDT last price is {shown}" in message or (
        eth == "NaN" and "ETH (ETH/USDT ticker is unparsable, last price 'NaN')" in message
    )
    assert "SOL (the exchange returned no ticker for SOL/USDT)" in message
    assert "BTC" not in message and "ADA" not in message
    assert "\n" not in message
    assert standin.count("/api/v3/ticker/24hr") == 1


def test_a_nan_price_fails_cleanly_with_futures_markets_loaded_too(
    standin: StandinExchange, connect: Callable[..., Exchange]
) -> None:
    """A config's own ccxt options may load the perpetuals, whose ids are the spot ones
    (BTCUSDT): naming the culprit must not ask ccxt to tell them apart (ArgumentsRequired)."""
    for base, price in (("BTC", 65000), ("ETH", "NaN"), ("SOL", 0)):
        standin.add_market(base)
        standin.set_price(base, price)
    standin.set_balance("USDT", 100)
    ccxt_config = standin.ccxt_config()
    ccxt_config["options"]["fetchMarkets"] = {"types": ["spot", "linear"]}
    exchange = connect(mode="paper", api_key=None, secret=None, ccxt=ccxt_config)

    result, error = run(lambda: exchange.quotes(["BTC", "ETH", "SOL"], NOW))

    assert standin.count("/fapi/v1/exchangeInfo") == 1  # the futures markets are loaded
    assert result is None and type(error) is SnapshotError
    assert "ETH (ETH/USDT ticker is unparsable, last price 'NaN')" in str(error)
    assert "SOL (SOL/USDT last price is '0.00000000')" in str(error)
    assert "BTC" not in str(error)
    standin.set_price("ETH", 3000)
    standin.set_price("SOL", 150)
    prices, markets, _ = exchange.quotes(["BTC", "ETH", "SOL"], NOW)
    assert prices == {"USDT": 1.0, "BTC": 65000.0, "ETH": 3000.0, "SOL": 150.0}
    assert markets["ETH"].symbol == "ETH/USDT"  # the spot market, not the perpetual


# -- 2. precision ------------------------------------------------------------------------------

STEPS = {"S3": 0.001, "S2": 0.01, "S0": 1.0, "S5": 0.00001, "S1": 0.1, "S8": 0.00000001}


@pytest.fixture(scope="module")
def precision_exchange() -> Iterator[tuple[Exchange, dict[str, Market]]]:
    """An adapter whose markets S3/USDT ... carry the step sizes of STEPS, and their rules."""
    with StandinExchange() as standin:
        for base, step in STEPS.items():
            standin.add_market(base, step=f"{step:.8f}", min_qty=f"{step:.8f}")
            standin.set_price(base, 1)
        exchange = Exchange(exchange_settings(standin))
        _, markets, _ = exchange.quotes(list(STEPS), NOW)
        yield exchange, markets
        exchange.close()


def binance_amounts(step: float) -> st.SearchStrategy[float]:
    """Amounts as an exchange reports them (8 decimals) and arbitrary floats, up to 1e7 steps."""
    top = step * 10_000_000
    eight_decimals = st.integers(0, int(top * 10**8)).map(lambda n: float(Decimal(n) / 10**8))
    whole_steps = st.integers(0, 10_000_000).map(lambda n: float(Decimal(n) * Decimal(repr(step))))
    return st.one_of(
        eight_decimals, whole_steps, st.floats(0, top, allow_nan=False, allow_infinity=False)
    )


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_floor_to_step_agrees_with_ccxt_truncation(
    precision_exchange: tuple[Exchange, dict[str, Market]], data: st.DataObject
) -> None:
    exchange, markets = precision_exchange
    market = markets[data.draw(st.sampled_from(sorted(STEPS)))]
    step = market.amount_step
    assert step == pytest.approx(STEPS[market.base])
    amount = data.draw(binance_amounts(step))

    ours = floor_to_step(amount, step)
    theirs = exchange.amount_to_precision(market.symbol, amount)

    assert ours == pytest.approx(theirs, rel=1e-12, abs=1e-12), (amount, step)
    assert ours <= amount


# Amounts just below a step boundary: a relative slack once rounded these UP past the amount.
@pytest.mark.parametrize(
    ("amount", "base"),
    [(99.99999999, "S0"), (123456.78999999, "S5"), (0.0029999999999, "S3")],
)
def test_floor_to_step_never_rounds_up(
    precision_exchange: tuple[Exchange, dict[str, Market]], amount: float, base: str
) -> None:
    exchange, markets = precision_exchange
    ours = floor_to_step(amount, markets[base].amount_step)
    assert ours <= amount
    assert ours == exchange.amount_to_precision(f"{base}/USDT", amount)


def test_amount_below_one_step_is_zero_not_a_ccxt_error(
    precision_exchange: tuple[Exchange, dict[str, Market]],
) -> None:
    exchange, _ = precision_exchange
    assert exchange.amount_to_precision("S3/USDT", 0.0009) == 0.0
    assert exchange.amount_to_precision("S3/USDT", 0.0) == 0.0
    assert floor_to_step(0.0009, 0.001) == 0.0


# -- 3. request economy ------------------------------------------------------------------------


def priced_assets(standin: StandinExchange, n: int) -> list[str]:
    assets = []
    for i in range(n):
        base = f"C{i:03d}"
        standin.add_market(base)
        standin.set_price(base, 1 + i)
        standin.set_balance(base, 1)
        assets.append(base)
    standin.set_balance("USDT", 100)
    return assets


@pytest.mark.parametrize("n", [3, 50])
def test_a_snapshot_costs_one_balance_and_one_ticker_request(
    standin: StandinExchange, connect: Callable[..., Exchange], n: int
) -> None:
    assets = priced_assets(standin, n)
    account = ReadOnlyAccount(connect())
    account.snapshot(assets, NOW)  # loads (and caches) the markets, once
    assert sorted(r.path for r in standin.requests) == [
        "/api/v3/account",
        "/api/v3/exchangeInfo",
        "/api/v3/ticker/24hr",
    ]
    standin.clear_requests()

    snap = account.snapshot(assets, NOW + timedelta(hours=1))

    assert [(r.method, r.path) for r in standin.requests] == [
        ("GET", "/api/v3/account"),
        ("GET", "/api/v3/ticker/24hr"),
    ]
    asked = standin.requests[1].query["symbols"]
    assert sorted(re.findall(r"C\d{3}USDT", asked)) == [f"{a}USDT" for a in assets]
    assert len(snap.prices) == n + 1 and snap.unpriced == ()


@pytest.mark.parametrize("keyed", [True, False], ids=["read-only key", "paper, no key"])
def test_only_spot_markets_are_loaded(
    standin: StandinExchange, connect: Callable[..., Exchange], keyed: bool
) -> None:
    """ccxt's defaults also fetch the futures lists and, with a key, the margin pairs and the
    wallet's currencies (see test_standin): a spot-reading key must be enough."""
    declare_account(standin)
    keys = {} if keyed else {"mode": "paper", "api_key": None, "secret": None}
    exchange = connect(**keys)

    exchange.load_markets(NOW)
    exchange.load_markets(LATER)  # a reload too

    paths = [r.path for r in standin.requests]
    assert paths == ["/api/v3/exchangeInfo"] * 2
    assert not [p for p in paths if p.startswith(("/fapi", "/dapi", "/sapi"))]
    assert exchange.routes(["BTC", "ETH"]) == ({"BTC": ["BTC/USDT"], "ETH": ["ETH/USDT"]}, [])


def test_markets_are_reloaded_only_after_the_refresh_period(
    standin: StandinExchange, connect: Callable[..., Exchange]
) -> None:
    assets = priced_assets(standin, 3)
    account = ReadOnlyAccount(connect(markets_refresh_hours=6))

    def loads_at(now: datetime) -> int:
        before = standin.count("/api/v3/exchangeInfo")
        account.snapshot(assets, now)
        return standin.count("/api/v3/exchangeInfo") - before

    assert loads_at(NOW) == 1
    assert loads_at(NOW + timedelta(hours=5, minutes=59, seconds=59)) == 0
    assert loads_at(NOW + timedelta(hours=6)) == 1
    assert loads_at(NOW + timedelta(hours=11, minutes=59)) == 0  # counted from the reload
    assert loads_at(NOW + timedelta(hours=12)) == 1
    assert standin.count("/api/v3/account") == 5 and standin.count("/api/v3/ticker") == 5


# -- 4. faults -----------------------------------------------------------------------------


def warm_up(exchange: Exchange) -> None:
    """A running daemon's adapter: markets cached and one private call already succeeded."""
    exchange.load_markets(NOW)
    exchange.balances()


def assert_maps_faults(
    call: Callable[[Exchange], Any],
    standin: StandinExchange,
    path: str,
    connect: Callable[..., Exchange],
    *,
    names: tuple[str, ...] = (),
) -> None:
    """Every stand-in fault on requests to `path` during `call` either recovers within the
    retry bounds, with the same answer as a clean call, or fails with the right named error.

    the exchange's own failure or a network-ish one (500/503, Binance -1001 "internal", a
        JSON 502, 429/418): ATTEMPTS - 1 faults -> recovered after as many retries;
        ATTEMPTS faults -> ExchangeUnavailable after exactly ATTEMPTS requests.
    timeout: 1 -> recovered; with retry_max_seconds below the timeout -> ExchangeUnavailable
        after one request.
    auth -> ExchangeAuthError after exactly one request (never retried).
    garbage -> SnapshotError after one request, naming `names` (the assets concerned).
    No other exception type, no secret in any message or log event.
    """
    exchange = connect()
    warm_up(exchange)
    before = standin.count(path)
    expected = call(exchange)
    clean = standin.count(path) - before
    assert clean >= 1, f"a clean call makes no request to {path}"

    cases: list[tuple[str, int, dict[str, Any], type[Exception] | None, int]] = []
    for fault in ("500", "503", "internal", "502-json", "429", "418"):
        cases.append((fault, ATTEMPTS - 1, {}, None, clean + ATTEMPTS - 1))
        cases.append((fault, ATTEMPTS, {}, ExchangeUnavailable, ATTEMPTS))
    cases += [
        ("timeout", 1, {}, None, clean + 1),
        ("timeout", 1, {"retry_max_seconds": 0.5}, ExchangeUnavailable, 1),
        ("auth", 1, {}, ExchangeAuthError, 1),
        ("garbage", 1, {}, SnapshotError, 1),
    ]
    for fault, times, override, error_type, requests in cases:
        what = f"{fault} x{times} on {path}"
        exchange = connect(**override)
        warm_up(exchange)
        before = standin.count(path)
        standin.inject(path, fault, times)
        started = time.monotonic()
        with capture_logs() as logs:
            result, error = run(lambda ex=exchange: call(ex))
        elapsed = time.monotonic() - started

        assert standin.count(path) - before == requests, what
        assert elapsed < 1.0 * (fault == "timeout") * times + 1.5, what
        retries = [e for e in logs if e["event"] == "exchange_retry"]
        if error_type is None:
            assert error is None, f"{what}: {error!r}"
            assert result == expected, what
            assert len(retries) == times, what
        else:
            assert type(error) is error_type, f"{what}: {error!r}"
            assert len(retries) == (ATTEMPTS - 1 if requests == ATTEMPTS else 0), what
            for name in names if error_type is SnapshotError else ():
                assert name in str(error), f"{what}: {error}"
            if error_type is ExchangeUnavailable:  # the exchange's fault, not the assets'
                assert "bad price" not in str(error), f"{what}: {error}"
                assert f"after {requests} attempt" in str(error), f"{what}: {error}"
            assert_no_secrets("".join(traceback.format_exception(error)), standin)
        assert_no_secrets(repr(logs), standin)
        # whatever happened, the next call works again
        assert call(exchange) == expected, what


FAULT_CALLS: list[tuple[str, Callable[[Exchange], Any], str, tuple[str, ...]]] = [
    ("load_markets", lambda ex: ex.load_markets(LATER), "/api/v3/exchangeInfo", ()),
    (
        "quotes",
        lambda ex: ex.quotes(["BTC", "ETH", "XMR"], NOW),
        "/api/v3/ticker/24hr",
        ("BTC", "ETH", "XMR"),
    ),
    ("balances", lambda ex: ex.balances(), "/api/v3/account", ()),
    ("key_permissions", lambda ex: ex.key_permissions(), "/sapi/v1/account/apiRestrictions", ()),
    (
        "daily_candles",
        lambda ex: ex.daily_candles("BTC", JAN_2020, JAN_2020 + 10 * DAY),
        "/api/v3/klines",
        ("BTC",),
    ),
    ("quote_bases", lambda ex: ex.quote_bases(LATER), "/api/v3/exchangeInfo", ()),
]


def test_every_method_that_talks_to_the_exchange_is_covered() -> None:
    talking = {
        "load_markets",
        "quotes",
        "balances",
        "key_permissions",
        "daily_candles",
        "quote_bases",
    }
    assert {name for name, *_ in FAULT_CALLS} == talking
    methods = {n for n, v in vars(Exchange).items() if callable(v) and not n.startswith("_")}
    local = {"close", "routes", "amount_to_precision"}  # no request of their own
    assert methods == talking | local


@pytest.mark.parametrize(
    ("call", "path", "names"),
    [pytest.param(c, p, n, id=name) for name, c, p, n in FAULT_CALLS],
)
def test_faults_are_retried_or_named(
    standin: StandinExchange,
    connect: Callable[..., Exchange],
    call: Callable[[Exchange], Any],
    path: str,
    names: tuple[str, ...],
) -> None:
    declare_account(standin)
    standin.set_klines(
        "BTC", "USDT", [(JAN_2020 + i * DAY, 1, 2, 0.5, 1.5 + i, 10) for i in range(5)]
    )
    assert_maps_faults(call, standin, path, connect, names=names)


def test_auth_is_not_retried_on_a_fresh_client(
    standin: StandinExchange, connect: Callable[..., Exchange]
) -> None:
    standin.inject("/api/v3/account", "auth", times=ATTEMPTS)
    result, error = run(connect().balances)
    assert result is None and type(error) is ExchangeAuthError
    assert "STAGEWISE_EXCHANGE__API_KEY" in str(error)
    assert standin.count("/api/v3/account") == 1


def test_a_path_the_exchange_does_not_serve_is_named_and_not_retried(
    standin: StandinExchange, connect: Callable[..., Exchange]
) -> None:
    declare_account(standin)
    exchange = connect()
    standin.unserve("/api/v3/account")  # 404, which ccxt reads as a network error

    result, error = run(exchange.balances)

    assert result is None and type(error) is SnapshotError
    assert "does not serve fetch_balance (HTTP 404)" in str(error)
    assert standin.count("/api/v3/account") == 1


@pytest.mark.parametrize(
    ("mode", "need"),
    [
        ("paper", "paper mode needs binance's public prices"),
        ("read-only", "read-only mode reads the account on binance"),
    ],
)
def test_an_exchange_that_refuses_connections_is_named_with_the_cause_in_one_line(
    standin: StandinExchange, connect: Callable[..., Exchange], mode: str, need: str
) -> None:
    closed = refused_port()
    urls = standin.ccxt_config()
    urls["urls"] = json_replace(urls["urls"], standin.base_url, f"http://127.0.0.1:{closed}")
    exchange = connect(mode=mode, ccxt=urls)

    started = time.monotonic()
    result, error = run(lambda: exchange.load_markets(NOW))

    assert time.monotonic() - started < 2
    assert result is None and type(error) is ExchangeUnavailable
    message = str(error)
    assert message.startswith(f"binance unreachable during load_markets after {ATTEMPTS} attempts")
    assert "connection refused" in message and f"127.0.0.1:{closed}" in message
    assert need in message and "\n" not in message
    assert standin.count() == 0


def test_a_timeout_is_named_as_such(
    standin: StandinExchange, connect: Callable[..., Exchange]
) -> None:
    declare_account(standin)
    exchange = connect(retry_max_seconds=0.5)
    exchange.load_markets(NOW)
    standin.inject("/api/v3/account", "timeout")

    result, error = run(exchange.balances)

    assert result is None and type(error) is ExchangeUnavailable
    assert "timed out (no answer within 1000 ms)" in str(error)
    assert "read-only mode reads the account on binance" in str(error)


def test_daily_candles_paginate_and_refuse_a_nan_close(
    standin: StandinExchange, connect: Callable[..., Exchange]
) -> None:
    standin.add_market("BTC")
    rows = [(JAN_2020 + i * DAY, 1, 2, 0.5, 100 + i, 10) for i in range(2500)]
    standin.set_klines("BTC", "USDT", rows)
    exchange = connect()

    candles = exchange.daily_candles("BTC", JAN_2020, JAN_2020 + 2400 * DAY)
    assert [(c.ts, c.close) for c in candles] == [
        (JAN_2020 + i * DAY, 100.0 + i) for i in range(2400)
    ]
    # The quote volume: the base volume (10) times the close.
    assert [c.quote_volume for c in candles[:2]] == [1000.0, 1010.0]
    assert standin.count("/api/v3/klines") == 3

    standin.set_klines("BTC", "USDT", [*rows[:3], (JAN_2020 + 3 * DAY, 1, 2, 0.5, "NaN", 10)])
    result, error = run(lambda: exchange.daily_candles("BTC", JAN_2020, JAN_2020 + 10 * DAY))
    assert result is None and type(error) is SnapshotError and "BTC" in str(error)


def test_daily_candles_ask_once_when_the_window_ends_with_the_last_candle(
    standin: StandinExchange, connect: Callable[..., Exchange]
) -> None:
    standin.add_market("BTC")
    standin.set_klines("BTC", "USDT", [(JAN_2020 + i * DAY, 1, 2, 0.5, 5, 1) for i in range(10)])
    exchange = connect()
    assert len(exchange.daily_candles("BTC", JAN_2020, JAN_2020 + 10 * DAY)) == 10
    # The next candle would open at the end of the window: nothing more is asked for.
    assert standin.count("/api/v3/klines") == 1


def test_daily_candles_refuse_a_negative_volume(
    standin: StandinExchange, connect: Callable[..., Exchange]
) -> None:
    standin.add_market("BTC")
    standin.set_klines(
        "BTC", "USDT", [(JAN_2020, 1, 2, 0.5, 5, 1), (JAN_2020 + DAY, 1, 2, 0.5, 5, -3)]
    )
    result, error = run(lambda: connect().daily_candles("BTC", JAN_2020, JAN_2020 + 2 * DAY))
    assert result is None and type(error) is SnapshotError
    assert "bad volume for BTC: BTC/USDT" in str(error)


def test_quote_bases_are_the_active_spot_markets_against_the_quote(
    standin: StandinExchange, connect: Callable[..., Exchange]
) -> None:
    standin.add_market("BTC")
    standin.add_market("ETH")
    standin.add_market("OLD", status="BREAK")
    standin.add_market("SOL", quote="BTC")
    assert connect().quote_bases(NOW) == ["BTC", "ETH"]


def test_an_unknown_exchange_id_is_a_config_error(standin: StandinExchange) -> None:
    with pytest.raises(ConfigError, match="nosuchexchange"):
        Exchange(exchange_settings(standin, id="nosuchexchange"))


def test_proxy_settings_ccxt_refuses_are_a_config_error_not_the_exchanges(
    standin: StandinExchange, connect: Callable[..., Exchange]
) -> None:
    """Two proxies in [exchange.ccxt]: ccxt refuses them before any request; the config is
    at fault, not the exchange (and a proxy's password is not shown)."""
    proxies = {"httpsProxy": "http://me:pr0xy-pw@127.0.0.1:9", "httpProxy": "http://127.0.0.1:9"}
    exchange = connect(ccxt={**standin.ccxt_config(), **proxies})
    with pytest.raises(ConfigError, match="^exchange.ccxt: ccxt refused the proxy settings: ") as e:
        exchange.load_markets(NOW)
    assert "pr0xy-pw" not in str(e.value)
    assert standin.requests == []


def test_urls_ccxt_cannot_use_are_a_config_error_not_the_exchanges(
    standin: StandinExchange, connect: Callable[..., Exchange]
) -> None:
    """`urls = {api = "..."}` in [exchange.ccxt] replaces binance's table of endpoints: ccxt
    finds none for its public calls and refuses before any request (NotSupported, "does not
    have a testnet/sandbox URL"); it read as the exchange's unusable answer, exit 1."""
    exchange = connect(ccxt={**standin.ccxt_config(), "urls": {"api": standin.base_url}})
    with pytest.raises(ConfigError, match="^exchange.ccxt: binance cannot load_markets as ") as e:
        exchange.load_markets(NOW)
    assert "configured" in str(e.value) and "NotSupported" in str(e.value)
    assert standin.requests == []


# -- 5. safety -----------------------------------------------------------------------------

_MUTATING = re.compile(
    r"^(create|cancel|edit|withdraw|transfer|futures_transfer|borrow|repay|set_|add_margin|"
    r"reduce_margin|close_position|close_all_positions)|_(post|put|delete|patch)_",
    re.IGNORECASE,
)
CCXT_MUTATING = {n for n in {*dir(ccxt.Exchange), *dir(ccxt.binance)} if _MUTATING.search(n)}


def public_names(obj: object) -> set[str]:
    return {n for n in dir(obj) if not n.startswith("_")}


def test_ccxt_mutating_names_are_the_ones_we_mean() -> None:
    assert {
        "create_order",
        "create_orders",
        "create_market_buy_order",
        "cancel_order",
        "cancel_all_orders",
        "edit_order",
        "withdraw",
        "transfer",
        "private_post_order",
        "private_delete_order",
        "sapi_post_capital_withdraw_apply",
    } <= CCXT_MUTATING
    assert not CCXT_MUTATING & {"fetch_balance", "fetch_tickers", "load_markets"}


def test_the_adapter_cannot_place_cancel_or_move_anything(
    standin: StandinExchange, connect: Callable[..., Exchange]
) -> None:
    declare_account(standin)
    exchange = connect()
    exchange.load_markets(NOW)
    for obj in (Exchange, exchange, ReadOnlyAccount, ReadOnlyAccount(exchange)):
        names = public_names(obj)
        assert not names & CCXT_MUTATING, obj
        assert not [n for n in names if re.search(r"order|withdraw|transfer|cancel", n)], obj
    for name in CCXT_MUTATING:
        assert not hasattr(exchange, name), name  # nor delegated through __getattr__
    assert all(name.startswith("_") for name in vars(exchange))


def test_no_public_attribute_hands_out_the_ccxt_object(
    standin: StandinExchange, connect: Callable[..., Exchange]
) -> None:
    exchange = connect()
    for name in public_names(exchange):
        value = getattr(exchange, name)
        assert not isinstance(value, ccxt.Exchange), name
        if inspect.ismethod(value):
            returns = str(inspect.signature(value).return_annotation)
            assert "ccxt" not in returns and "Any" not in returns, (name, returns)


def test_a_full_session_makes_only_read_requests(
    standin: StandinExchange, connect: Callable[..., Exchange]
) -> None:
    declare_account(standin)
    standin.set_klines("BTC", "USDT", [(JAN_2020 + i * DAY, 1, 2, 0.5, 1.5, 10) for i in range(3)])
    exchange = connect()
    account = ReadOnlyAccount(exchange)

    account.warn_if_key_can_trade()
    snap = account.snapshot(["BTC", "ETH"], NOW)
    exchange.quotes(["XMR"], LATER)
    exchange.daily_candles("BTC", JAN_2020, JAN_2020 + 3 * DAY)
    exchange.amount_to_precision("BTC/USDT", 0.123456789)
    exchange.close()

    assert snap.prices["BTC"] == 65000
    requests = standin.requests
    assert requests and all(r.method == "GET" for r in requests)
    assert standin.count(method="POST") + standin.count(method="DELETE") == 0
    assert {r.path for r in requests} <= {
        "/api/v3/exchangeInfo",
        "/api/v3/ticker/24hr",
        "/api/v3/account",
        "/api/v3/klines",
        "/sapi/v1/account/apiRestrictions",
    }
    assert not [r for r in requests if re.search(r"order|withdraw|transfer", r.path, re.I)]


# -- 6. secrets ----------------------------------------------------------------------------


def test_errors_and_logs_never_carry_the_key_secret_or_signature(
    standin: StandinExchange, connect: Callable[..., Exchange], events: list[dict[str, Any]]
) -> None:
    declare_account(standin)
    errors: list[BaseException] = []

    def provoke(fault: str, path: str, times: int, call: Callable[[Exchange], Any]) -> None:
        exchange = connect()
        exchange.load_markets(NOW)
        standin.inject(path, fault, times)
        result, error = run(lambda: call(exchange))
        assert result is None and error is not None, fault
        errors.append(error)

    provoke("auth", "/api/v3/account", 1, lambda ex: ex.balances())
    provoke("auth", "/sapi/v1/account/apiRestrictions", 1, lambda ex: ex.key_permissions())
    provoke("500", "/api/v3/account", ATTEMPTS, lambda ex: ex.balances())
    provoke("429", "/sapi/v1/account/apiRestrictions", ATTEMPTS, lambda ex: ex.key_permissions())
    provoke("garbage", "/api/v3/account", 1, lambda ex: ex.balances())
    provoke("garbage", "/api/v3/ticker", 1, lambda ex: ex.quotes(["BTC"], NOW))
    provoke("garbage", "/sapi/v1/account/apiRestrictions", 1, lambda ex: ex.key_permissions())

    assert [type(e) for e in errors] == [
        ExchangeAuthError,
        ExchangeAuthError,
        ExchangeUnavailable,
        ExchangeUnavailable,
        SnapshotError,
        SnapshotError,
        SnapshotError,
    ]
    unavailable = str(errors[2])
    assert "signature=<redacted>" in unavailable  # the URL is kept, its signature is not
    assert len(signatures(standin)) >= 2 * ATTEMPTS
    for error in errors:
        assert_no_secrets(str(error), standin)
        assert_no_secrets(repr(error), standin)
        assert_no_secrets("".join(traceback.format_exception(error)), standin)
    retries = [e for e in events if e["event"] == "exchange_retry"]
    assert len(retries) == 2 * (ATTEMPTS - 1)
    balance_retries = [e for e in retries if e["call"] == "fetch_balance"]
    assert balance_retries and all("signature=<redacted>" in e["detail"] for e in balance_retries)
    assert_no_secrets(repr(events), standin)


def test_settings_and_adapter_reprs_hide_the_keys(
    standin: StandinExchange, connect: Callable[..., Exchange]
) -> None:
    exchange = connect()
    assert_no_secrets(repr(exchange_settings(standin)), standin)
    assert_no_secrets(repr(exchange) + str(exchange), standin)


def test_redact_replaces_signatures_and_secret_values() -> None:
    url = (
        "binance GET http://x/api/v3/account?timestamp=1&recvWindow=10000&signature=abc123def"
        " 500 Internal Server Error"
    )
    assert redact(url, ()) == (
        "binance GET http://x/api/v3/account?timestamp=1&recvWindow=10000&signature=<redacted>"
        " 500 Internal Server Error"
    )
    assert redact("a=1&Signature=XYZ&b=2", ()) == "a=1&Signature=<redacted>&b=2"
    assert redact("apiKey=K1 api_key=K2 X-MBX-APIKEY=K3 sign=S1", ()) == (
        "apiKey=<redacted> api_key=<redacted> X-MBX-APIKEY=<redacted> sign=<redacted>"
    )
    assert redact('{"signature": "q", "url": "..?signature=zz"}', ()) == (
        '{"signature": "q", "url": "..?signature=<redacted>"}'
    )
    text = f"key {KEY} and {SECRET} and again {KEY}"
    assert redact(text, [KEY, SECRET]) == "key <redacted> and <redacted> and again <redacted>"
    assert redact("nothing to hide", ["", KEY]) == "nothing to hide"
    assert redact("", [KEY]) == ""


# -- 7. key permissions --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("trade", "withdraw", "warned"),
    [(True, False, True), (False, True, True), (True, True, True), (False, False, False)],
)
def test_a_key_that_can_trade_or_withdraw_is_warned_about(
    standin: StandinExchange,
    connect: Callable[..., Exchange],
    events: list[dict[str, Any]],
    trade: bool,
    withdraw: bool,
    warned: bool,
) -> None:
    standin.set_permissions(trade=trade, withdraw=withdraw)

    rights = ReadOnlyAccount(connect()).warn_if_key_can_trade()

    assert rights == KeyPermissions(read=True, trade=trade, withdraw=withdraw)
    warnings = [e for e in events if e["event"] == "api_key_not_read_only"]
    if warned:
        assert len(warnings) == 1
        assert warnings[0]["log_level"] == "warning"
        assert (warnings[0]["trade"], warnings[0]["withdraw"]) == (trade, withdraw)
        assert warnings[0]["exchange"] == "binance"
    else:
        assert warnings == []
    assert standin.count("/sapi/v1/account/apiRestrictions") == 1
    assert_no_secrets(repr(events), standin)


@pytest.mark.parametrize(
    ("unserved", "requests"),
    [(404, 1), (400, 1), ("503", ATTEMPTS)],
    ids=["404 proxy", "-1020 not supported", "503 for good"],
)
def test_a_permission_check_the_exchange_does_not_answer_warns_and_goes_on(
    standin: StandinExchange,
    connect: Callable[..., Exchange],
    events: list[dict[str, Any]],
    unserved: int | str,
    requests: int,
) -> None:
    declare_account(standin)
    path = "/sapi/v1/account/apiRestrictions"
    if isinstance(unserved, int):
        standin.unserve(path, unserved)
    else:
        standin.inject(path, unserved, times=ATTEMPTS)
    account = ReadOnlyAccount(connect())

    assert account.warn_if_key_can_trade() is None
    assert account.snapshot(["BTC"], NOW).prices["BTC"] == 65000  # the job goes on

    assert standin.count(path) == requests
    unknown = [e for e in events if e["event"] == "key_permissions_unknown"]
    assert len(unknown) == 1 and unknown[0]["log_level"] == "warning"
    assert "key_permissions" in unknown[0]["error"]
    assert_no_secrets(repr(events), standin)


def test_redact_hides_the_user_and_password_of_urls() -> None:
    said = "GET http://user:hunter2@127.0.0.1:1/api/v3/exchangeInfo via https://me@proxy:3128"
    assert redact(said, ()) == (
        "GET http://<redacted>@127.0.0.1:1/api/v3/exchangeInfo via https://<redacted>@proxy:3128"
    )
    kept = "GET https://api.binance.com/api/v3/ticker?symbol=BTCUSDT (mail me@example.com)"
    assert redact(kept, ()) == kept


def test_a_refused_key_is_not_taken_for_an_unanswered_permission_check(
    standin: StandinExchange, connect: Callable[..., Exchange]
) -> None:
    standin.inject("/sapi/v1/account/apiRestrictions", "auth")
    result, error = run(ReadOnlyAccount(connect()).warn_if_key_can_trade)
    assert result is None and type(error) is ExchangeAuthError


def test_without_keys_permissions_are_not_asked(
    standin: StandinExchange, connect: Callable[..., Exchange], events: list[dict[str, Any]]
) -> None:
    exchange = connect(mode="paper", api_key=None, secret=None)
    assert ReadOnlyAccount(exchange).warn_if_key_can_trade() is None
    assert standin.count() == 0
    assert not [e for e in events if e["event"] == "api_key_not_read_only"]


# -- 8. the exchange under the command line ------------------------------------------------

KEYS = {"STAGEWISE_EXCHANGE__API_KEY": KEY, "STAGEWISE_EXCHANGE__SECRET": SECRET}
QUICK_RETRIES = {"retry_attempts": 2, "retry_initial_seconds": 0.01}


def stderr_events(stderr: str) -> list[dict[str, Any]]:
    """The JSON log events of a command's stderr (its last line, the error, is not JSON)."""
    found = []
    for line in stderr.splitlines():
        try:
            found.append(json.loads(line))
        except ValueError:
            continue
    return [e for e in found if isinstance(e, dict)]


def test_once_with_a_nan_price_fails_each_period_cleanly_naming_the_asset(
    standin_config: Callable[..., Any], plan_standin: StandinExchange, cli: Callable[..., Any]
) -> None:
    plan_standin.set_price("BTC", "NaN")
    config = standin_config({"exchange": QUICK_RETRIES})

    done = cli("once", "rebalance", "--json", "--config", str(config))

    assert done.returncode == 1, done.stderr  # "1 a run failed"
    assert "Traceback" not in done.stderr and "ArgumentsRequired" not in done.stderr
    outcomes = json.loads(done.stdout)
    assert len(outcomes) >= 2  # the sleeves of the fire and the portfolio
    for outcome in outcomes:
        assert outcome["status"] == "failed"
        assert "BTC (BTC/USDT ticker is unparsable, last price 'NaN')" in outcome["error"]
    assert not [e for e in stderr_events(done.stderr) if e.get("event") == "proposal"]


@pytest.mark.parametrize("factor", [1000, 1e-9], ids=["x1000", "near-zero"])
def test_a_price_far_from_the_last_recorded_one_is_refused(
    standin_config: Callable[..., Any],
    plan_standin: StandinExchange,
    cli: Callable[..., Any],
    plan_prices: dict[str, float],
    factor: float,
) -> None:
    """A first DCA records the account at the stand-in's prices; then the exchange gives BTC
    at 1000x (or a billionth of) that: the rebalance proposed selling 527,371 USDT of BTC
    (and a DCA in paper mode filled 67 billion ETH at 1e-8). Refused, naming the price, the
    last recorded one and the way out (policy.max_price_jump); the same run at 9x goes on."""
    config = standin_config({"exchange": QUICK_RETRIES})
    assert cli("once", "dca", "--config", str(config)).returncode == 0
    btc = plan_prices["BTC"]
    plan_standin.set_price("BTC", btc * factor)

    done = cli("once", "rebalance", "--json", "--config", str(config))

    assert done.returncode == 1, done.stderr
    outcomes = json.loads(done.stdout)
    assert outcomes and all(o["status"] == "failed" for o in outcomes)
    error = outcomes[0]["error"]
    assert error.startswith("BTC is ") and "of the last recorded snapshot" in error, error
    assert "taken for a bad price: no plan is made from it" in error
    assert "policy.max_price_jump" in error
    assert not [e for e in stderr_events(done.stderr) if e.get("event") == "proposal"]
    plan_standin.set_price("BTC", btc * 9)
    assert cli("once", "rebalance", "--config", str(config)).returncode == 0


@pytest.mark.parametrize(("faults", "code"), [(2, 69), (1, 0)], ids=["spent", "recovered"])
def test_once_retries_an_internal_error_and_exits_69_when_the_retries_are_spent(
    standin_config: Callable[..., Any],
    plan_standin: StandinExchange,
    cli: Callable[..., Any],
    faults: int,
    code: int,
) -> None:
    plan_standin.inject("/api/v3/exchangeInfo", "internal", times=faults)
    config = standin_config({"exchange": QUICK_RETRIES})

    done = cli("once", "dca", "--config", str(config))

    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr
    retries = [e for e in stderr_events(done.stderr) if e.get("event") == "exchange_retry"]
    assert [e["call"] for e in retries] == ["load_markets"] * min(faults, 1)
    if code:
        last = done.stderr.strip().splitlines()[-1]
        assert last.startswith("stagewise: binance unavailable during load_markets after 2")
        assert "-1001" in last and "Internal error" in last
        assert plan_standin.count("/api/v3/exchangeInfo") == 2
    else:
        assert plan_standin.count("/api/v3/exchangeInfo") == 2  # the fault, then the answer
        assert plan_standin.count("/api/v3/ticker/24hr") == 1


@pytest.mark.parametrize("job", ["dca", "rebalance", "profit"])
def test_read_only_jobs_go_on_without_the_key_permissions_endpoint(
    standin_config: Callable[..., Any],
    plan_standin: StandinExchange,
    cli: Callable[..., Any],
    job: str,
) -> None:
    plan_standin.set_balance("USDT", 1000)
    plan_standin.unserve("/sapi/v1/account/apiRestrictions")  # a proxy without it
    config = standin_config({"exchange": {"mode": "read-only", **QUICK_RETRIES}})

    done = cli("once", job, "--json", "--config", str(config), env=KEYS)

    assert done.returncode == 0, done.stderr
    assert {o["status"] for o in json.loads(done.stdout)} <= {"ok", "quiet"}
    unknown = [e for e in stderr_events(done.stderr) if e.get("event") == "key_permissions_unknown"]
    assert len(unknown) == 1 and "does not serve key_permissions (HTTP 404)" in unknown[0]["error"]
    assert plan_standin.count("/sapi/v1/account/apiRestrictions") == 1  # not retried
    assert KEY not in done.stderr and SECRET not in done.stderr


def test_paper_mode_offline_says_it_needs_the_public_prices_and_why_in_one_line(
    standin_config: Callable[..., Any], plan_standin: StandinExchange, cli: Callable[..., Any]
) -> None:
    closed = refused_port()
    offline = json_replace(
        plan_standin.ccxt_config()["urls"], plan_standin.base_url, f"http://127.0.0.1:{closed}"
    )
    config = standin_config({"exchange": {"ccxt": {"urls": offline}, **QUICK_RETRIES}})

    started = time.monotonic()
    done = cli("once", "dca", "--config", str(config))

    assert time.monotonic() - started < 15  # the process's start, two quick attempts
    assert done.returncode == 69, done.stderr
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("stagewise: binance unreachable during load_markets after 2 attempts")
    assert f"connection refused (GET http://127.0.0.1:{closed}/api/v3/exchangeInfo)" in last
    assert "paper mode needs binance's public prices" in last
    assert plan_standin.count() == 0


def test_a_key_that_can_trade_is_recorded_shown_and_warned_about_until_it_changes(
    standin_config: Callable[..., Any], plan_standin: StandinExchange, cli: Callable[..., Any]
) -> None:
    plan_standin.set_balance("USDT", 1000)
    plan_standin.set_permissions(trade=True, withdraw=True)
    config = standin_config({"exchange": {"mode": "read-only", **QUICK_RETRIES}})
    db_path = tomllib.loads(config.read_text())["state"]["path"]

    def once() -> list[dict[str, Any]]:
        done = cli("once", "dca", "--config", str(config), env=KEYS)
        assert done.returncode == 0, done.stderr
        return [e for e in stderr_events(done.stderr) if e.get("event") == "api_key_not_read_only"]

    def status() -> tuple[str, dict[str, Any]]:
        text = cli("status", "--config", str(config))
        data = cli("status", "--json", "--config", str(config))
        assert text.returncode == data.returncode == 0, text.stderr + data.stderr
        return text.stdout, json.loads(data.stdout)

    def recorded() -> list[tuple[str, str]]:
        with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as conn:
            rows = conn.execute(
                "SELECT kind, data FROM events WHERE kind LIKE 'key_%' ORDER BY id"
            ).fetchall()
        conn.close()
        return rows

    first = once()
    assert [(e["trade"], e["withdraw"], e["level"]) for e in first] == [(True, True, "warning")]
    text, data = status()
    assert "WARNING: the API key can trade and withdraw (binance said so at " in text
    assert data["api_key"]["trade"] and data["api_key"]["withdraw"]
    assert data["api_key"]["read_only"] is False and data["api_key"]["exchange"] == "binance"

    assert len(once()) == 1  # warned again at every check (the period is already recorded)
    plan_standin.inject("/sapi/v1/account/apiRestrictions", "503", times=2)
    (from_record,) = once()  # the exchange cannot tell this time: what is on record is said
    assert from_record["reported_at"] == data["api_key"]["at"]
    assert [kind for kind, _ in recorded()] == ["key_can_trade"]  # recorded once, not per check

    plan_standin.set_permissions(trade=False, withdraw=False)  # a read-only key now
    assert once() == []
    text, data = status()
    assert "API key" not in text
    assert data["api_key"]["read_only"] is True
    assert [kind for kind, _ in recorded()] == ["key_can_trade", "key_read_only"]
    assert json.loads(recorded()[0][1]) == {"exchange": "binance", "trade": True, "withdraw": True}
