"""Rule indices live: real ccxt against the stand-in serving daily candles for 45 assets,
cached in the state file and fetched incrementally; missing or short histories left out
with a reason; faults mid-fill retried, or failing the reconstitution with the fill kept."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import tomli_w
from support import plan_stage, run_cli

from stagewise.candles import CandleData
from stagewise.errors import ExchangeUnavailable
from stagewise.exchange import Exchange
from stagewise.planner.model import Plan, PlanState
from stagewise.reconstitution import Reconstitutions
from stagewise.settings import load_config
from stagewise.store import Store

ASSETS = [f"C{i:02d}" for i in range(45)]
TODAY = date(2027, 3, 10)
NOW = datetime(2027, 3, 10, 9, 0, tzinfo=UTC)
MOMENTUM = {"top": 5, "by": "momentum", "lookback_days": 30}


def closes(i: int, days: int = 60) -> list[float]:
    """Asset i's closes: a steady growth of (i - 22) per mille a day (C44 fastest)."""
    return [100.0 * (1 + (i - 22) / 1000) ** d for d in range(days)]


def serve(standin, last_day: date = TODAY - timedelta(days=1), assets=ASSETS) -> None:
    for asset in assets:
        standin.serve_daily_closes(asset, closes(int(asset[1:])), last_day)


def write_rules(write_plan, write_config, standin, indices: dict, overrides=None) -> Path:
    plan = write_plan(
        {name: ("weekly", {"BTC": 100}) for name in indices},
        stages=[plan_stage("only", sleeves={name: 100 / len(indices) for name in indices})],
    )
    rules = {
        name: {"name": name.title(), "cadence": "weekly", **index}
        for name, index in indices.items()
    }
    Path(plan["plan"]["indices"]).write_text(tomli_w.dumps({"index": rules}))
    exchange = {
        "ccxt": standin.ccxt_config(),
        "retry_attempts": 2,
        "retry_initial_seconds": 0.01,
        "retry_max_seconds": 5,
    }
    return write_config({**plan, "exchange": exchange, **(overrides or {})})


@pytest.fixture
def live(write_plan, write_config, standin, tmp_path):
    """Reconstitutions of a config's rule indices over the stand-in and a state file."""
    opened = []

    def open_(indices: dict) -> tuple[Reconstitutions, Store]:
        config = load_config(write_rules(write_plan, write_config, standin, indices))
        store = Store.open(tmp_path / "state.db")
        exchange = Exchange(config.settings.exchange)
        opened.append((exchange, store))
        return Reconstitutions(config, store, CandleData(exchange, store)), store

    yield open_
    for exchange, store in opened:
        exchange.close()
        store.close()


def test_a_warm_cache_asks_each_market_at_most_once_a_day(live, standin):
    serve(standin)
    made, _ = live({"momentum": {"universe": ASSETS, "select": MOMENTUM}})
    weights = made.current(["momentum"], NOW, "rebalance:momentum:2027-W10", due="momentum")
    assert weights == {"momentum": dict.fromkeys(["C44", "C43", "C42", "C41", "C40"], 20.0)}
    assert standin.count("/api/v3/klines") == 45  # the first fill: one request each
    # Another reconstitution the same day: everything is cached.
    made.current(["momentum"], NOW + timedelta(hours=5), "test:again", due="momentum")
    assert standin.count("/api/v3/klines") == 45
    # The next day, one new candle each: one request each, from the newest cached on.
    serve(standin, TODAY)
    standin.clear_requests()
    made.current(["momentum"], NOW + timedelta(days=1), "test:next-day", due="momentum")
    klines = [r for r in standin.requests if r.path == "/api/v3/klines"]
    assert len(klines) == 45
    today_ms = int(datetime.combine(TODAY, datetime.min.time(), UTC).timestamp() * 1000)
    assert {int(r.query["startTime"]) for r in klines} == {today_ms}


def test_a_fault_mid_fill_is_retried(live, standin):
    serve(standin)
    made, _ = live({"momentum": {"universe": ASSETS, "select": MOMENTUM}})
    standin.inject("/api/v3/klines", "500", times=1, after=20)
    made.current(["momentum"], NOW, "rebalance:momentum:2027-W10", due="momentum")
    assert standin.count("/api/v3/klines") == 46  # the 21st asked twice


def test_a_lasting_fault_mid_fill_fails_the_reconstitution_and_keeps_the_fill(live, standin):
    serve(standin)
    made, store = live({"momentum": {"universe": ASSETS, "select": MOMENTUM}})
    standin.inject("/api/v3/klines", "503", times=2, after=20)  # both attempts of the 21st
    with pytest.raises(ExchangeUnavailable, match="binance unavailable during fetch_ohlcv"):
        made.current(["momentum"], NOW, "rebalance:momentum:2027-W10", due="momentum")
    assert store.compositions() == {}  # nothing chosen from a part of the universe
    assert standin.count("/api/v3/klines") == 22
    # The retry of the period asks only for the markets not yet filled.
    made.current(
        ["momentum"], NOW + timedelta(minutes=5), "rebalance:momentum:2027-W10", "momentum"
    )
    assert standin.count("/api/v3/klines") == 22 + 25
    assert set(store.compositions()["momentum"]["weights"]) == {"C44", "C43", "C42", "C41", "C40"}


def test_missing_short_and_stale_histories_are_left_out_with_a_reason(live, standin):
    serve(standin, assets=ASSETS[3:])
    standin.add_market("C00")  # listed, no candles at all
    standin.serve_daily_closes("C01", closes(1, days=5), TODAY - timedelta(days=1))
    standin.serve_daily_closes("C02", closes(2), TODAY - timedelta(days=11))  # delisted
    universe = ["C00", "C01", "C02", "C44", "C43", "NOPE"]
    made, store = live({"momentum": {"universe": universe, "select": MOMENTUM}})
    weights = made.current(["momentum"], NOW, "rebalance:momentum:2027-W10", due="momentum")
    assert weights == {"momentum": {"C44": 50.0, "C43": 50.0}}
    notes = store.compositions()["momentum"]["notes"]
    assert notes == [
        "NOPE excluded: no NOPE/USDT market on binance",
        "C00 excluded: no close of 2027-03-09",
        "C02 excluded: no close of 2027-03-09",
        "C01 excluded: less than 30 days of closes",
        "only 2 of the top 5 qualify: it holds those",
    ]
    # One request each (NOPE has no market to ask), two for C02: its candles end before
    # the window does, and the page after them is empty.
    assert standin.count("/api/v3/klines") == 6


def test_an_index_with_nothing_to_choose_fails_alone(live, standin):
    serve(standin)
    standin.add_market("ZZZ")  # no candles
    made, _ = live(
        {
            "momentum": {"universe": ASSETS, "select": MOMENTUM},
            "empty": {"universe": ["ZZZ"]},
        }
    )
    weights = made.current(["empty", "momentum"], NOW, "dca:2027-03")
    assert weights["empty"] == {}  # held as cash
    assert len(weights["momentum"]) == 5
    plan = Plan("dca", orders=(), skipped=(), notes=(), state=PlanState(), summary=None)
    notes = made.annotate(plan).notes
    assert len(notes) == 1 and notes[0].startswith(
        "index empty was not reconstituted (index Empty: no asset of its universe qualifies"
    )


def test_an_exchange_universe_with_exclusions_and_a_liquidity_floor(live, standin):
    serve(standin)
    for asset in ("USDC", "BTC", "BTCUP", "WBTC"):
        standin.serve_daily_closes(asset, [1.0] * 60, TODAY - timedelta(days=1))
    # C44 and C43 trade 1 unit a day: worth about 100 of USDT, under the floor.
    for i in (44, 43):
        standin.serve_daily_closes(f"C{i}", closes(i), TODAY - timedelta(days=1), volumes=[1] * 60)
    made, store = live(
        {
            "momentum": {
                "universe": "exchange",
                "exclude": ["C42"],
                "liquidity": {"min_quote_volume": 10_000, "days": 30},
                "select": MOMENTUM,
            }
        }
    )
    weights = made.current(["momentum"], NOW, "rebalance:momentum:2027-W10", due="momentum")
    assert list(weights["momentum"]) == ["C41", "C40", "C39", "C38", "C37"]
    notes = store.compositions()["momentum"]["notes"]
    assert notes[0] == (
        "4 excluded as stablecoins, fiat, wrapped or leveraged tokens or by the index's "
        "exclude list: BTCUP, C42, USDC, WBTC"
    )
    assert any(n.startswith("C44 excluded: median daily quote volume ") for n in notes)
    # The excluded markets are never asked for their candles.
    asked = {r.query["symbol"] for r in standin.requests if r.path == "/api/v3/klines"}
    assert asked == {f"C{i:02d}USDT" for i in range(45) if i != 42} | {"BTCUSDT"}


def test_check_config_accepts_a_rule_index(write_plan, write_config, standin):
    config = write_rules(write_plan, write_config, standin, {"momentum": {"universe": ASSETS}})
    result = run_cli("--config", str(config), "check-config")
    assert result.returncode == 0, result.stderr
    assert standin.requests == []  # check-config asks the exchange nothing


def test_once_composes_a_rule_index_from_the_exchange(write_plan, write_config, standin):
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    serve(standin, yesterday)
    config = write_rules(
        write_plan,
        write_config,
        standin,
        {"momentum": {"universe": ASSETS, "select": MOMENTUM}},
        {"paper": {"initial_balances": {"USDT": 10_000}}, "log": {"format": "json"}},
    )
    done = run_cli("once", "dca", "--json", "--config", str(config))
    assert done.returncode == 0, done.stderr
    state = load_config(config).settings.state.path
    conn = sqlite3.connect(state)
    ((weights, close_day),) = conn.execute("SELECT weights, close_day FROM compositions").fetchall()
    assert set(json.loads(weights)) == {"C44", "C43", "C42", "C41", "C40"}
    assert close_day == yesterday.isoformat()
    bought = {b for (b,) in conn.execute("SELECT base FROM orders WHERE side = 'buy'")}
    assert bought and bought <= {"C44", "C43", "C42", "C41", "C40"}  # biggest gaps first
    cached = conn.execute("SELECT COUNT(DISTINCT symbol) FROM price_cache").fetchone()[0]
    assert cached == 45  # in the state file
    conn.close()


def test_simulate_from_the_exchange_reads_the_candles_volumes_through_its_cache(
    write_plan, write_config, standin, tmp_path
):
    serve(standin, assets=ASSETS[:10])
    # C03 trades the most (in quote: volume x close), then C07, C05 ...
    for i, units in ((3, 9000), (7, 8000), (5, 7000)):
        asset = f"C{i:02d}"
        standin.serve_daily_closes(
            asset, closes(i), TODAY - timedelta(days=1), volumes=[units] * 60
        )
    config = write_rules(
        write_plan,
        write_config,
        standin,
        {
            "volume": {
                "universe": ASSETS[:10],
                "select": {"top": 3, "by": "volume", "lookback_days": 30},
            }
        },
        {"paper": {"initial_balances": {"USDT": 10_000}}},
    )
    args = ["--config", str(config), "simulate", "--from-exchange", "--json", "--proposals", "0"]
    span = ["--start", "2027-02-15", "--end", "2027-03-01", "--db", str(tmp_path / "sim.db")]
    done = run_cli(*args, *span)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert set(report["rule_indices"]["volume"]["weights"]) == {"C03", "C07", "C05"}
    assert standin.count("/api/v3/klines") == 10  # one request a market
    again = run_cli(*args, *span)
    assert again.returncode == 0, again.stderr
    assert standin.count("/api/v3/klines") == 10  # the second run: from the cache
