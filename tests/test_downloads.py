"""Price history from the exchange (`simulate --from-exchange`): real ccxt against the local
stand-in's candles, a real cache file; a second run over the same days downloads nothing."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from stagewise.downloads import CACHE_FILE, download_history
from stagewise.settings import load_config

START, END = date(2026, 3, 1), date(2026, 3, 8)
KLINES = "/api/v3/klines"


def candles(first: float) -> list[tuple[int, float, float, float, float, float]]:
    """Daily candles from two days before START to END, the close rising by 1 a day."""
    day = START - timedelta(days=2)
    rows = []
    while day < END:
        ms = int(datetime.combine(day, datetime.min.time(), UTC).timestamp() * 1000)
        close = first + (day - START).days
        rows.append((ms, close, close, close, close, 10.0))
        day += timedelta(days=1)
    return rows


NOW = datetime(2026, 12, 3, tzinfo=UTC)  # the exchange's listings as of then (rule indices)


def test_the_plans_daily_closes_are_downloaded_once_then_read_from_the_cache(
    standin, write_config, write_plan
) -> None:
    for asset, first in (("X", 100.0), ("Y", 20.0)):
        standin.add_market(asset, step="0.001", min_qty="0.001", tick="0.01")
        standin.set_klines(asset, "USDT", candles(first))
    plan = write_plan({"basket": ("quarterly", {"X": 60, "Y": 40})})
    exchange = {"exchange": {"ccxt": standin.ccxt_config()}}
    paper = {"paper": {"initial_balances": {"USDT": 1_000}}}
    config = load_config(write_config({**plan, **exchange, **paper}))

    told: list[str] = []
    history = download_history(config, START, END, NOW, downloading=told.append)
    assert told == ["X/USDT", "Y/USDT"]
    asked = standin.count(KLINES)
    assert asked >= 2
    assert history.days[0] == START - timedelta(days=2) and history.days[-1] == END - timedelta(1)
    assert history.closes["X"][2] == 100.0 and history.closes["Y"][-1] == 26.0
    assert config.settings.state.path.with_name(CACHE_FILE).is_file()

    again = download_history(config, START, END, NOW, downloading=told.append)
    assert told == ["X/USDT", "Y/USDT"]  # nothing downloaded again
    assert standin.count(KLINES) == asked
    assert (again.days, again.closes) == (history.days, history.closes)
