"""Shared pytest fixtures."""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from standin import StandinExchange


@pytest.fixture
def standin() -> Iterator[StandinExchange]:
    """A started local Binance-spot stand-in (see tests/standin.py); stopped afterwards."""
    with StandinExchange() as exchange:
        yield exchange


# --- configuration -------------------------------------------------------------------------

REPO = Path(__file__).resolve().parent.parent
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
    from daemon.settings import load_config

    def make(overrides: dict[str, Any] | None = None):
        return load_config(write_config(overrides))

    return make


# --- state ---------------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path):
    """A migrated Store on a real temporary SQLite file (WAL), closed afterwards."""
    from daemon.store import Store

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


@pytest.fixture
def cli():
    """Run `python -m daemon ARGS...` (the `stagewise` command) as a subprocess from the repo,
    without any STAGEWISE_ variable of the caller's environment; returns the finished process.
    """
    import os
    import subprocess
    import sys

    def run(
        *args: str, env: dict[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("STAGEWISE_")}
        full_env.update(env or {})
        return subprocess.run(
            [sys.executable, "-m", "daemon", *args],
            capture_output=True,
            text=True,
            env=full_env,
            cwd=REPO,
            timeout=timeout,
        )

    return run
