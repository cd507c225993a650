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
