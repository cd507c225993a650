"""Shared pytest fixtures."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from standin import StandinExchange
from support import (
    CONSOLE_SCRIPT,
    EXAMPLE,
    REPO,
    SAMPLE_PRICES,
    RunningDaemon,
    deep_merge,
    run_cli,
    shipped_index_assets,
    write_plan_files,
)

# --- the code under test is the installed package ---------------------------------------------

# The source folder of each installed package (pyproject.toml's package-dir).
SOURCES = {
    "": REPO / "src" / "stagewise",
    "data": REPO / "config",
    "data/systemd": REPO / "systemd",
    "data/examples": REPO / "config" / "examples",
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


@pytest.fixture
def cli():
    """The real CLI as a subprocess (see `run_cli`)."""
    return run_cli


# --- jobs over price history, the daemon over the stand-in (scheduler/jobs/service tests) ------


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


@pytest.fixture
def spawn():
    """Start `stagewise ARGS...` (or `command ARGS...`) without waiting (env: the caller's
    minus STAGEWISE_ variables, plus `env`); processes still running at the end are killed."""
    import os

    started: list[RunningDaemon] = []

    def start(
        *args: str, env: dict[str, str] | None = None, command: tuple[str, ...] = (CONSOLE_SCRIPT,)
    ) -> RunningDaemon:
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("STAGEWISE_")}
        full_env.update(env or {})
        running = RunningDaemon(list(args), full_env, command)
        started.append(running)
        return running

    yield start
    for running in started:
        if running.proc.poll() is None:
            running.proc.kill()
            running.proc.wait(timeout=5)
