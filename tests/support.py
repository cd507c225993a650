"""What the tests and the benchmarks share: the checkout's files, the real command line, config
and plan files of a test's own, the planner's plain-data builders and the bt reference.

Plain functions and values (the pytest fixtures are in conftest.py, the stand-in exchange in
standin.py): a test module or a benchmark imports them from here, never from another test.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import random
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import tomli_w

from stagewise.history import Candle, PriceHistory, from_candles
from stagewise.ledger import LedgerEntry
from stagewise.planner import Plan, Policy
from stagewise.settings import Config, load_config
from stagewise.snapshot import Market, Snapshot
from stagewise.stages import Stage
from stagewise.targets import Targets

# --- the checkout and the real command line -----------------------------------------------------

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "config" / "example.toml"
SAMPLE_PRICES = REPO / "config" / "sample-prices.csv"
# The command users run: the venv's console script, beside the interpreter running the tests.
CONSOLE_SCRIPT = str(Path(sys.executable).with_name("stagewise"))
# `stagewise run` with every schedule firing each second (tests/every_second.py).
EVERY_SECOND = (sys.executable, str(Path(__file__).with_name("every_second.py")))


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the installed `stagewise` console script with ARGS from an empty folder (nothing
    of the checkout within reach), with `env` added to the caller's environment less its
    STAGEWISE_ variables; returns the finished process."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("STAGEWISE_")}
    full_env.update(env or {})
    with tempfile.TemporaryDirectory(prefix="stagewise-cwd-") as empty:
        return subprocess.run(
            [CONSOLE_SCRIPT, *args],
            capture_output=True,
            text=True,
            env=full_env,
            cwd=empty,
            timeout=timeout,
        )


class RunningDaemon:
    """A `stagewise ...` subprocess (`command`, the installed console script by default, run
    from the temporary folder) whose stdout/stderr lines are collected as they come."""

    def __init__(
        self, args: list[str], env: dict[str, str], command: tuple[str, ...] = (CONSOLE_SCRIPT,)
    ) -> None:
        import threading

        self.proc = subprocess.Popen(
            [*command, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=tempfile.gettempdir(),
        )
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.stdout), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self.stderr), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream, lines: list[str]) -> None:
        for line in stream:
            lines.append(line.rstrip("\n"))

    def events(self) -> list[dict[str, Any]]:
        """The JSON log events on stderr so far (lines that are not JSON are skipped)."""
        import json

        found = []
        for line in list(self.stderr):
            try:
                found.append(json.loads(line))
            except ValueError:
                continue
        return found

    def wait_for_event(self, event: str, timeout: float = 15, after: int = 0) -> dict[str, Any]:
        """The first log event named `event` (from the `after`-th on), waiting up to `timeout`."""
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [e for e in self.events()[after:] if e.get("event") == event]
            if found:
                return found[0]
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"no {event!r} event; stderr:\n" + "\n".join(self.stderr[-30:]))

    def finish(self, timeout: float = 15) -> int:
        """Wait for the exit (killing it past `timeout`); returns the exit code."""
        import subprocess

        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
            raise
        for reader in self._readers:
            reader.join(timeout=5)
        return code


def wait_for_fires(standin: Any, n: int = 3, timeout: float = 20) -> None:
    """Wait until a daemon has asked `standin` (tests/standin.py) for prices `n` more times:
    `n` more fires of a watch job (each reads the prices), or of jobs that run."""
    import time

    path = "/api/v3/ticker/24hr"
    goal = standin.count(path) + n
    deadline = time.monotonic() + timeout
    while standin.count(path) < goal:
        assert time.monotonic() < deadline, f"fewer than {n} more fires in {timeout} s"
        time.sleep(0.05)


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Fail the block with TimeoutError if it runs longer than `seconds` of real time (SIGALRM:
    main thread only). A loop that stops advancing then fails its test instead of hanging."""
    import signal

    def expire(_signum: int, _frame: object) -> None:
        raise TimeoutError(f"took longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# --- configs and plans of a test's own --------------------------------------------------------


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """`base` with `override` laid over it, nested tables merged; a value of None deletes."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def plan_stage(
    stage_id: str,
    *,
    number: int = 1,
    min_age: int = 0,
    max_age: int | None = None,
    sleeves: dict[str, float] | None = None,
    crypto_share_pct: tuple[float, float] = (0, 100),
    portfolio_rebalance: str = "quarterly",
    profit_milestones_pct: tuple[float, ...] = (),
    withdrawal_pct: tuple[float, float] = (0, 0),
    monthly: tuple[float, float] = (0, 100_000),
    yearly_increase_pct: float = 0,
) -> dict[str, Any]:
    """One stage as stages.toml holds it; `sleeves` maps an index name to its weight (percent).

    The defaults make a stage that stays out of the way: crypto band 0-100 %, no profit
    milestones, no withdrawals, no de-risking, no yearly contribution increase."""
    sleeves = sleeves or {"basket": 100}
    stage: dict[str, Any] = {
        "id": stage_id,
        "name": stage_id.replace("_", " ").title(),
        "number": number,
        "min_age": min_age,
        "crypto_share_pct": {"min": crypto_share_pct[0], "max": crypto_share_pct[1]},
        "portfolio_rebalance": portfolio_rebalance,
        "emergency_fund_months": {"min": 0, "max": 0},
        "profit_milestones_pct": list(profit_milestones_pct),
        "withdrawal_pct": {"min": withdrawal_pct[0], "max": withdrawal_pct[1]},
        "derisk_pct_per_year": {"min": 0, "max": 0},
        "contribution": {
            "monthly": {"min": monthly[0], "max": monthly[1]},
            "yearly_increase_pct": yearly_increase_pct,
            "bonus_share_pct": {"min": 0, "max": 0},
            "portfolio_goal": {"min": 0, "max": 0, "by_age": 99},
        },
        "sleeve": [
            {"name": name, "weight_pct": weight, "indices": [name]}
            for name, weight in sleeves.items()
        ],
    }
    if max_age is not None:
        stage["max_age"] = max_age
    return stage


def write_plan_files(
    folder: Path,
    indices: Mapping[str, tuple[str, dict[str, float]] | dict[str, Any]],
    stages: list[dict[str, Any]] | None = None,
    transition_months: tuple[int, int] = (12, 24),
) -> dict[str, Any]:
    """Write stages.toml and indices.toml into `folder` (see `write_plan`); returns the config
    overrides naming them. An index is (cadence, constituents), a fixed basket, or its whole
    table as indices.toml holds it (a rule: `cadence`, `universe`, `select`, ...; `name`
    defaults to its key)."""
    folder.mkdir(parents=True, exist_ok=True)
    stages_file = {
        "plan": {
            "transition_months_min": transition_months[0],
            "transition_months_max": transition_months[1],
        },
        "emergency_rule": {},
        "stage": stages or [plan_stage("only")],
    }
    indices_file = {
        "index": {
            name: {"name": name, **index}
            if isinstance(index, dict)
            else {"name": name, "cadence": index[0], "constituents": index[1]}
            for name, index in indices.items()
        }
    }
    (folder / "stages.toml").write_text(tomli_w.dumps(stages_file))
    (folder / "indices.toml").write_text(tomli_w.dumps(indices_file))
    return {
        "plan": {
            "stages": str(folder / "stages.toml"),
            "indices": str(folder / "indices.toml"),
        }
    }


def write_config_file(folder: Path, overrides: dict[str, Any] | None = None) -> Path:
    """What `write_config` does, into any folder (for module-scoped fixtures)."""
    data = tomllib.loads(EXAMPLE.read_text())
    data["plan"]["stages"] = str(REPO / "config" / "stages.toml")
    data["plan"]["indices"] = str(REPO / "config" / "indices.toml")
    data["state"]["path"] = str(folder / "state" / "stagewise.db")
    data = deep_merge(data, overrides or {})
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.toml"
    path.write_text(tomli_w.dumps(data))
    return path


# --- the planner's plain data ------------------------------------------------------------------

QUOTE = "USDT"
TAKEN_AT = datetime(2026, 6, 1, 9, tzinfo=UTC)


@cache
def example_config() -> Config:
    return load_config(EXAMPLE)


def stage(stage_id: str = "career_builder", milestones: list[float] | None = None) -> Stage:
    found = next(s for s in example_config().plan.stages if s.id == stage_id)
    if milestones is not None:
        found = found.model_copy(update={"profit_milestones_pct": milestones})
    return found


def targets(
    weights: Mapping[str, float],
    *,
    cash: float = 0.0,
    band: tuple[float, float] = (0.15, 0.25),
    milestones: list[float] | None = None,
) -> Targets:
    """Targets by hand: `weights` must sum to 1 - cash."""
    assert math.isclose(sum(weights.values()) + cash, 1.0)
    return Targets(
        age=35,
        stage=stage(milestones=milestones),
        glide=None,
        crypto_share=sum(band) / 2,
        crypto_band=band,
        sleeves={},
        weights=dict(weights),
        cash=cash,
    )


def market(
    asset: str,
    step: float = 0.01,
    min_notional: float = 0.0,
    min_amount: float = 0.0,
    fee: float = 0.001,
) -> Market:
    return Market(f"{asset}/{QUOTE}", asset, QUOTE, step, min_amount, min_notional, fee)


def snapshot(
    balances: Mapping[str, float],
    prices: Mapping[str, float],
    markets: Mapping[str, Market] | None = None,
    **rules: float,
) -> Snapshot:
    """A snapshot; every priced asset gets a market with `rules` unless `markets` is given."""
    if markets is None:
        markets = {a: market(a, **rules) for a in prices}
    return Snapshot(TAKEN_AT, QUOTE, dict(balances), dict(prices), dict(markets))


POLICY = Policy(band_abs=0.05, band_rel=0.25, max_order_share=0.25, fee_rate=0.001)


def spend(plan: Plan) -> float:
    """Quote money the plan's buys cost, fees included."""
    return sum(o.notional + o.fee for o in plan.orders if o.side == "buy")


def received(plan: Plan) -> float:
    """Quote money the plan's sells bring, after fees."""
    return sum(o.notional - o.fee for o in plan.orders if o.side == "sell")


# --- the bt reference (pmorissette/bt: the quarterly-rebalance cross-check) ----------------

WEIGHTS = {"X": 50, "Y": 30, "Z": 20}
FIRST_PRICES = {"X": 30_000.0, "Y": 2_000.0, "Z": 1.5}
START, END = date(2021, 1, 1), date(2024, 1, 1)  # [START, END): three years of days
FIRST = START - timedelta(days=1)  # the data's first day: the close our first job sees
CAPITAL = 100_000.0
TOLERANCE = 1e-4  # 0.01 %

# Only the quarterly rebalance trades, all the way back to target.
# Every job stays out of the way except DCA: no drift watch, bands so wide no weight can leave
# them, no crypto-share check (no outside investments), no seed, no yearly increase; a fee of
# 0.1 % and no slippage.
DCA_ONLY: dict[str, Any] = {
    "investor": {
        "timezone": "UTC",
        "outside_investments": 0,
        "monthly_contribution": 1000,
        "contribution_start": None,
    },
    "paper": {"initial_balances": None, "fee_rate": 0.001, "slippage": 0},
    "schedule": {"drift_enabled": False, "dca_day": 1, "dca_hour": 9},
    "policy": {"band_abs_pct": 100, "band_rel_pct": 1000},
}
NO_FEES: dict[str, Any] = {"paper": {"fee_rate": 0}}


QUARTERLY_ONLY: dict[str, Any] = {
    "investor": {
        "timezone": "UTC",
        "outside_investments": 0,  # no crypto-share scaling of the targets
        "monthly_contribution": 0,
        "contribution_start": None,
    },
    "paper": {"initial_balances": {"USDT": CAPITAL}, "fee_rate": 0, "slippage": 0},
    "schedule": {"drift_enabled": False, "rebalance_day": 1, "rebalance_hour": 10},
    "policy": {"band_abs_pct": 0.0001, "max_order_pct": 100, "rebalance_to": "target"},
}


def generated_closes(
    days: list[date], seed: int = 11, first: dict[str, float] = FIRST_PRICES
) -> dict[str, tuple[float, ...]]:
    """A seeded geometric random walk per asset (4 % daily volatility), 6 decimals."""
    rng = random.Random(seed)
    closes = {}
    for asset, price in first.items():
        column = []
        for _ in days:
            column.append(round(price, 6))
            price *= math.exp(rng.gauss(0.0003, 0.04))
        closes[asset] = tuple(column)
    return closes


def run_bt(
    closes: dict[str, tuple[float, ...]],
    days: list[date],
    weights: dict[str, float] = WEIGHTS,
    capital: float = CAPITAL,
):
    """bt's quarterly rebalance to `weights` (percent; the basket's by default) from
    `capital` in cash, at the close of the first date and of each quarter's last; returns the
    finished Backtest. Needs bt (the test extra)."""
    import bt
    import pandas as pd

    data = pd.DataFrame(closes, index=pd.DatetimeIndex(days))
    strategy = bt.Strategy(
        "quarterly",
        [
            bt.algos.RunQuarterly(run_on_end_of_period=True),
            bt.algos.SelectAll(),
            bt.algos.WeighSpecified(**{a: w / 100 for a, w in weights.items()}),
            bt.algos.Rebalance(),
        ],
    )
    test = bt.Backtest(
        strategy,
        data,
        initial_capital=capital,
        integer_positions=False,
        commissions=lambda quantity, price: 0.0,
        progress_bar=False,
    )
    bt.run(test)
    return test


# Compositions of the shipped rule indices (the fixed baskets they were before they became
# rules), for tests of the targets of a day on which every index holds something.
SHIPPED_COMPOSITIONS = {
    "momentum_trader": {"SOL": 30.0, "AVAX": 20.0, "SUI": 20.0, "INJ": 15.0, "NEAR": 15.0},
    "balanced_investor": {"BTC": 40.0, "ETH": 30.0, "SOL": 15.0, "LINK": 15.0},
    "ai_agents": {"FET": 40.0, "RENDER": 30.0, "TAO": 30.0},
    "sector_rotation": {"SOL": 25.0, "LINK": 25.0, "FET": 25.0, "AAVE": 25.0},
}


def shipped_index_assets() -> list[str]:
    """Every asset of config/indices.toml: the fixed baskets' and the rule universes'."""
    from stagewise.stages import read_toml

    indices = read_toml(REPO / "config" / "indices.toml", "indices")["index"]
    return sorted({a for i in indices.values() for a in i.get("constituents") or i["universe"]})


# -- test oracles: what the tests check the product against (not the product's own code) --


@dataclass(frozen=True, slots=True)
class Reconciliation:
    """How a run of entries changed the account's value at fixed prices, explained.

    change: value of all entries at `prices` (= value after - value before).
    deposits / withdrawals: value of money put in (seeds included) and taken out.
    fees: fees paid; slippage: the cost of filling worse than `prices`.
    """

    change: float
    deposits: float
    withdrawals: float
    fees: float
    slippage: float

    @property
    def unexplained(self) -> float:
        """What the flows do not explain; zero up to float noise on a sound ledger."""
        return self.change - (self.deposits - self.withdrawals - self.fees - self.slippage)


def reconcile(entries: Iterable[LedgerEntry], prices: Mapping[str, float]) -> Reconciliation:
    """Explain the value change of `entries` at unchanged `prices` (the quote priced 1).

    On a sound ledger: value after = value before + deposits - withdrawals - fees - slippage.
    """
    change = deposits = withdrawals = fees = slip = 0.0
    for e in entries:
        if e.asset not in prices:
            raise ValueError(f"reconcile: no price for {e.asset}")
        value = e.amount * prices[e.asset]
        change += value
        if e.kind in ("seed", "deposit"):
            deposits += value
        elif e.kind == "withdrawal":
            withdrawals -= value
        elif e.kind == "fee":
            fees -= value
        elif e.price is not None:  # the base side of a fill: paid above / got below market
            slip += e.amount * (e.price - prices[e.asset])
    return Reconciliation(change, deposits, withdrawals, fees, slip)


def on_step(amount: float, step: float) -> bool:
    """True when `amount` is a whole number of `step`, within float noise."""
    if step <= 0:
        return True
    units = amount / step
    return abs(units - round(units)) <= 1e-6 * max(1.0, abs(units))


def from_closes(closes: Mapping[str, Sequence[tuple[int, float]]], source: str) -> PriceHistory:
    """A history from per-asset (timestamp ms, close) rows (no volumes): see from_candles."""
    return from_candles({a: [Candle(t, c) for t, c in rows] for a, rows in closes.items()}, source)
