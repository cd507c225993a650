"""A rule index's reconstitution over a 300-asset exchange universe from a warm cache.

    python bench/bench_indices.py [--reps N] [--assets N]

The stand-in of tests/standin.py lists 300 markets against USDT, each with 120 days of
daily candles; real ccxt talks to it over HTTP. The rule: every asset of the exchange less
the exclusions, a liquidity floor (median daily quote volume over 30 days), the top 20 by
30-day momentum, weighed by inverse 30-day volatility, at most 10 % each. One untimed
reconstitution fills the candle cache in a state file; then N reconstitutions of the same
day (each a new period: composed and recorded anew) are timed, from the markets (cached)
and the candles (cached: no request) to the recorded composition.

Goal: at most 50 ms median, and no candle request with the cache warm.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import tomli_w  # noqa: E402
from standin import StandinExchange  # noqa: E402
from support import plan_stage, write_config_file, write_plan_files  # noqa: E402

from stagewise import logs  # noqa: E402
from stagewise.candles import CandleData  # noqa: E402
from stagewise.exchange import Exchange  # noqa: E402
from stagewise.reconstitution import Reconstitutions  # noqa: E402
from stagewise.settings import load_config  # noqa: E402
from stagewise.store import Store  # noqa: E402

GOAL_MS = 50.0
NOW = datetime(2027, 3, 10, 9, tzinfo=UTC)
RULE = {
    "name": "Momentum 300",
    "cadence": "weekly",
    "universe": "exchange",
    "liquidity": {"min_quote_volume": 50_000, "days": 30},
    "select": {"top": 20, "by": "momentum", "lookback_days": 30},
    "weigh": "inverse_volatility",
    "volatility_days": 30,
    "max_weight_pct": 10,
}


def list_markets(standin: StandinExchange, n: int) -> None:
    """`n` markets with 120 days of candles to yesterday: a drift and a wobble of their own,
    volumes from 100 to 10,000 base units a day (some under the floor)."""
    yesterday = NOW.date() - timedelta(days=1)
    for i in range(n):
        drift, wobble = (i % 37 - 18) / 2000, 0.01 + (i % 11) / 200
        closes = [10.0 * (1 + drift) ** d * (1 + wobble * (-1) ** d) for d in range(120)]
        volumes = [100.0 + 100 * (i % 100)] * 120
        standin.serve_daily_closes(f"C{i:03d}", closes, yesterday, volumes=volumes)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--assets", type=int, default=300)
    args = parser.parse_args()
    logs.configure("warning", "console")
    with tempfile.TemporaryDirectory() as tmp, StandinExchange() as standin:
        folder = Path(tmp)
        list_markets(standin, args.assets)
        overrides = write_plan_files(
            folder / "plan",
            {"momentum": ("weekly", {"BTC": 100})},
            stages=[plan_stage("only", sleeves={"momentum": 100})],
        )
        (folder / "plan" / "indices.toml").write_text(tomli_w.dumps({"index": {"momentum": RULE}}))
        exchange_settings = {"ccxt": standin.ccxt_config(), "retry_attempts": 2}
        path = write_config_file(folder, {**overrides, "exchange": exchange_settings})
        config = load_config(path)
        store = Store.open(folder / "state.db")
        exchange = Exchange(config.settings.exchange)
        made = Reconstitutions(config, store, CandleData(exchange, store))
        try:
            began = time.perf_counter()
            made.current(["momentum"], NOW, "bench:fill", due="momentum")
            fill_s = time.perf_counter() - began
            filled = standin.count("/api/v3/klines")
            standin.clear_requests()
            times = []
            for rep in range(args.reps):
                at = NOW + timedelta(minutes=rep + 1)
                began = time.perf_counter()
                weights = made.current(["momentum"], at, f"bench:{rep}", due="momentum")
                times.append((time.perf_counter() - began) * 1000)
            warm_requests = standin.count("/api/v3/klines")
        finally:
            exchange.close()
            store.close()
    median = statistics.median(times)
    p95 = sorted(times)[max(0, int(len(times) * 0.95) - 1)]
    held = len(weights["momentum"])
    print(
        f"universe: {args.assets} markets; the first fill: {filled} candle requests, {fill_s:.1f} s"
    )
    print(
        f"reconstitution from a warm cache: median {median:.1f} ms, p95 {p95:.1f} ms "
        f"({args.reps} runs; {held} constituents; {warm_requests} candle requests)"
    )
    met = median <= GOAL_MS and warm_requests == 0
    print(f"goal <= {GOAL_MS:g} ms median, no request: {'goal met' if met else 'MISSED'}")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
