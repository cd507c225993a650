"""Requests per snapshot against the local Binance stand-in, by number of assets.

    python bench/bench_requests.py [--snapshots N]

For accounts of 3, 10 and 50 assets (each with a market, a price and a balance on the
stand-in of tests/standin.py, spoken to by real ccxt over HTTP): the market rules are loaded
once, then N snapshots are taken and the requests the stand-in received are counted.

- read-only account: one balance request and one ticker request. Goal: 2 per snapshot,
  whatever the number of assets.
- paper account (public prices, balances from the local ledger): one ticker request.

Also prints the milliseconds per snapshot (stand-in on localhost: this is ccxt's and our
parsing, not the network).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from standin import StandinExchange  # noqa: E402

from stagewise import logs  # noqa: E402
from stagewise.exchange import Exchange  # noqa: E402
from stagewise.paper import PaperAccount  # noqa: E402
from stagewise.read_only import ReadOnlyAccount  # noqa: E402
from stagewise.runtime import PublicMarkets  # noqa: E402
from stagewise.sections import ExchangeSettings  # noqa: E402
from stagewise.store import Store  # noqa: E402

SIZES = (3, 10, 50)
GOAL = 2
NOW = datetime(2027, 1, 4, 10, tzinfo=UTC)


def settings(standin: StandinExchange, *, keyed: bool) -> ExchangeSettings:
    keys = {"api_key": "bench-key", "secret": "bench-secret"} if keyed else {}
    return ExchangeSettings(
        id="binance",
        mode="read-only" if keyed else "paper",
        quote="USDT",
        ccxt=standin.ccxt_config(),
        timeout_ms=2000,
        retry_attempts=1,
        **keys,
    )


def declare(standin: StandinExchange, n: int) -> list[str]:
    assets = [f"C{i:02d}" for i in range(n)]
    for i, asset in enumerate(assets):
        standin.add_market(asset, step="0.0001", min_qty="0.0001", min_notional="5")
        standin.set_price(asset, 1.5 + i)
        standin.set_balance(asset, 10 + i)
    standin.set_balance("USDT", 1000)
    return assets


def per_snapshot(standin: StandinExchange, take, snapshots: int) -> tuple[float, float, Counter]:
    """Requests and milliseconds per snapshot over `snapshots` calls of `take(now)`."""
    standin.clear_requests()
    began = time.perf_counter()
    for i in range(snapshots):
        take(NOW + timedelta(minutes=i))  # within markets_refresh_hours: markets stay cached
    ms = (time.perf_counter() - began) * 1000 / snapshots
    paths = Counter(r.path for r in standin.requests)
    return len(standin.requests) / snapshots, ms, paths


def measure(n: int, snapshots: int, folder: Path) -> list[tuple[str, float, float, Counter]]:
    rows = []
    with StandinExchange() as standin:
        assets = declare(standin, n)
        exchange = Exchange(settings(standin, keyed=True))
        account = ReadOnlyAccount(exchange)
        try:
            account.snapshot(assets, NOW)  # the first one also loads the markets
            rows.append(
                (
                    "read-only",
                    *per_snapshot(standin, lambda t: account.snapshot(assets, t), snapshots),
                )
            )
        finally:
            exchange.close()
        public = Exchange(settings(standin, keyed=False))
        store = Store.open(folder / f"paper-{n}.db")
        try:
            paper = PaperAccount(store, PublicMarkets(public), "USDT")
            paper.seed({"USDT": 1000, **{a: 1.0 for a in assets}}, NOW)
            paper.snapshot(assets, NOW)
            rows.append(
                ("paper", *per_snapshot(standin, lambda t: paper.snapshot(assets, t), snapshots))
            )
        finally:
            store.close()
            public.close()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshots", type=int, default=20, help="snapshots per size (20)")
    args = parser.parse_args(argv)
    logs.configure("warning", "console")
    print(f"requests per snapshot after the markets are cached ({args.snapshots} snapshots each)")
    print(f"{'assets':>6}  {'account':<9}  {'requests':>8}  {'ms':>6}  endpoints")
    worst = 0.0
    with tempfile.TemporaryDirectory(prefix="bench-requests-") as tmp:
        for n in SIZES:
            for kind, requests, ms, paths in measure(n, args.snapshots, Path(tmp)):
                if kind == "read-only":
                    worst = max(worst, requests)
                endpoints = ", ".join(
                    f"{p} x{c / args.snapshots:g}" for p, c in sorted(paths.items())
                )
                print(f"{n:>6}  {kind:<9}  {requests:>8g}  {ms:>6.1f}  {endpoints}")
    verdict = "goal met" if worst <= GOAL else "MISSED"
    print(f"read-only: at most {worst:g} requests per snapshot; goal {GOAL} at any size: {verdict}")
    return 0 if worst <= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
