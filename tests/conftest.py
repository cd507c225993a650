"""Shared pytest fixtures."""

from __future__ import annotations

import contextlib
import copy
import os
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from standin import StandinExchange

# --- the code under test is the installed package ---------------------------------------------

REPO = Path(__file__).resolve().parent.parent
# The source folder of each installed package (pyproject.toml's package-dir).
SOURCES = {
    "": REPO / "src" / "stagewise",
    "data": REPO / "config",
    "data/systemd": REPO / "systemd",
}


def _stale_installed_files() -> list[str]:
    """Source files whose installed copy differs or is missing. The tests import the
    installed `stagewise` (what users get: the wheel's files, not the checkout's), so a
    change must be installed before it is tested."""
    import stagewise

    installed = Path(stagewise.__file__).parent
    stale = []
    for sub, folder in SOURCES.items():
        for source in sorted(folder.glob("*" if sub.startswith("data") else "**/*.py")):
            if (
                not source.is_file()
                or source.name in (".gitkeep",)
                or "__pycache__" in source.parts
            ):
                continue
            copy = installed / sub / source.relative_to(folder)
            if not copy.is_file() or copy.read_bytes() != source.read_bytes():
                stale.append(str(source.relative_to(REPO)))
    return stale


def pytest_configure(config: pytest.Config) -> None:
    stale = _stale_installed_files()
    if stale:
        pytest.exit(
            "the installed stagewise is not this checkout's (differs: "
            + ", ".join(stale[:5])
            + (f" and {len(stale) - 5} more" if len(stale) > 5 else "")
            + "): reinstall it with `.venv/bin/pip install -q --no-deps .`",
            returncode=4,
        )


@pytest.fixture(autouse=True)
def _no_config_or_state_of_the_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test (and every CLI it starts) looks for the user's config and keeps its default
    state under its own tmp_path, never in the home folder of whoever runs the tests."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    monkeypatch.delenv("STAGEWISE_CONFIG", raising=False)


@pytest.fixture
def standin() -> Iterator[StandinExchange]:
    """A started local Binance-spot stand-in (see tests/standin.py); stopped afterwards."""
    with StandinExchange() as exchange:
        yield exchange


# --- configuration -------------------------------------------------------------------------

EXAMPLE = REPO / "config" / "example.toml"


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


@pytest.fixture
def write_config(tmp_path: Path):
    """Write the example config with overrides into tmp_path; returns the file's path.

    The plan files are the shipped ones and the state lives in tmp_path."""

    def write(overrides: dict[str, Any] | None = None, name: str = "config.toml") -> Path:
        data = tomllib.loads(EXAMPLE.read_text())
        data["plan"]["stages"] = str(REPO / "config" / "stages.toml")
        data["plan"]["indices"] = str(REPO / "config" / "indices.toml")
        data["state"]["path"] = str(tmp_path / "state" / "stagewise.db")
        data = deep_merge(data, overrides or {})
        path = tmp_path / name
        path.write_text(tomli_w.dumps(data))
        return path

    return write


@pytest.fixture
def make_config(write_config):
    """A loaded Config from the example with overrides."""
    from stagewise.settings import load_config

    def make(overrides: dict[str, Any] | None = None):
        return load_config(write_config(overrides))

    return make


# --- state ---------------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path):
    """A migrated Store on a real temporary SQLite file (WAL), closed afterwards."""
    from stagewise.store import Store

    opened = Store.open(tmp_path / "state" / "stagewise.db")
    yield opened
    opened.close()


# --- custom plans (stages and indices of a test's own) ---------------------------------------


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
    indices: dict[str, tuple[str, dict[str, float]]],
    stages: list[dict[str, Any]] | None = None,
    transition_months: tuple[int, int] = (12, 24),
) -> dict[str, Any]:
    """Write stages.toml and indices.toml into `folder` (see `write_plan`); returns the config
    overrides naming them."""
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
            name: {"name": name, "cadence": cadence, "constituents": constituents}
            for name, (cadence, constituents) in indices.items()
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


@pytest.fixture
def write_plan(tmp_path: Path):
    """Write a plan of the test's own (stages.toml, indices.toml) into tmp_path/plan.

    `indices` maps an index name to (cadence, {asset: weight percent}); `stages` is a list of
    `plan_stage(...)` dicts (youngest first; defaults to one stage holding 'basket' for every
    age). Returns the config overrides that point `write_config` at the files."""

    def write(
        indices: dict[str, tuple[str, dict[str, float]]],
        stages: list[dict[str, Any]] | None = None,
        transition_months: tuple[int, int] = (12, 24),
    ) -> dict[str, Any]:
        return write_plan_files(tmp_path / "plan", indices, stages, transition_months)

    return write


# --- the real command line ---------------------------------------------------------------


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


# The command users run: the venv's console script, beside the interpreter running the tests.
CONSOLE_SCRIPT = str(Path(sys.executable).with_name("stagewise"))


@pytest.fixture
def cli():
    """The real CLI as a subprocess (see `run_cli`)."""
    return run_cli


# --- jobs over price history, the daemon over the stand-in (scheduler/jobs/service tests) ------

SAMPLE_PRICES = REPO / "config" / "sample-prices.csv"


@pytest.fixture(scope="session")
def history_2027():
    """The sample price file's four years (2023-2026) replayed as 2027-2030, day for day
    (2023 and 2027 share their calendar; 29 Feb 2024 becomes 29 Feb 2028)."""
    from stagewise.history import PriceHistory, load_csv

    sample = load_csv(SAMPLE_PRICES)
    days = tuple(d.replace(year=d.year + 4) for d in sample.days)
    return PriceHistory(days, sample.closes, f"{SAMPLE_PRICES.name}, replayed from 2027")


@pytest.fixture
def history_runtime(history_2027):
    """Open a config's paper runtime priced in-process from price history (no network);
    every runtime opened is closed afterwards."""
    from stagewise.history import HistoryMarkets
    from stagewise.runtime import open_runtime

    opened = []

    def open_(config, history=None):
        markets = HistoryMarkets(history or history_2027, config.quote, tz=config.tz)
        runtime = open_runtime(config, market_source=markets)
        opened.append(runtime)
        return runtime

    yield open_
    for runtime in opened:
        runtime.close()


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


@pytest.fixture(scope="session")
def plan_prices() -> dict[str, float]:
    """A fixed USDT price for every asset of config/indices.toml (the sample file's last closes)."""
    from stagewise.history import load_csv

    closes = load_csv(SAMPLE_PRICES).closes
    return {asset: closes[asset][-1] for asset in shipped_index_assets()}


@pytest.fixture
def plan_standin(standin, plan_prices):
    """The stand-in listing every asset of config/indices.toml against USDT at `plan_prices`,
    with daily candles up to yesterday (UTC) for the rule indices: the sample file's last
    120 closes of each, scaled to end at its price (the daemon composes them at its first job)."""
    from datetime import UTC, datetime, timedelta

    from stagewise.history import load_csv

    closes = load_csv(SAMPLE_PRICES).closes
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    for asset, price in plan_prices.items():
        standin.add_market(asset, step="0.00001", min_qty="0.00001", tick="0.0000001")
        column = [c for c in closes[asset][-120:] if c is not None]
        standin.serve_daily_closes(asset, [c * price / column[-1] for c in column], yesterday)
        standin.set_price(asset, price)
    return standin


@pytest.fixture
def standin_config(write_config, plan_standin):
    """`write_config` for the daemon against `plan_standin`: paper mode, JSON logs."""

    def write(overrides: dict[str, Any] | None = None, name: str = "config.toml") -> Path:
        base = {
            "exchange": {"ccxt": plan_standin.ccxt_config(), "retry_attempts": 2},
            "log": {"format": "json"},
        }
        return write_config(deep_merge(base, overrides or {}), name)

    return write


class RunningDaemon:
    """A `stagewise ...` subprocess (the installed console script, run from the temporary
    folder) whose stdout/stderr lines are collected as they come."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        import threading

        self.proc = subprocess.Popen(
            [CONSOLE_SCRIPT, *args],
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


@pytest.fixture
def spawn():
    """Start `python -m stagewise ARGS...` without waiting (env: the caller's minus STAGEWISE_
    variables, plus `env`); processes still running at the end are killed."""
    import os

    started: list[RunningDaemon] = []

    def start(*args: str, env: dict[str, str] | None = None) -> RunningDaemon:
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("STAGEWISE_")}
        full_env.update(env or {})
        running = RunningDaemon(list(args), full_env)
        started.append(running)
        return running

    yield start
    for running in started:
        if running.proc.poll() is None:
            running.proc.kill()
            running.proc.wait(timeout=5)


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
