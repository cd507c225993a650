"""Holdings files: indices someone else composes (a provider's published holdings), read as
asset -> weight (percent) from JSON or CSV at each reconstitution of the index.

JSON: one object, asset codes to weights::

    {"BTC": 55, "ETH": 30, "SOL": 15}

CSV: one `asset,weight` line per asset (a header line `asset,weight` and lines starting
with # are skipped)::

    asset,weight
    BTC,55
    ETH,30
    SOL,15

Weights are percent of the index, above 0, summing to 100 (within 0.01); every asset a
code like BTC, listed once. An error names the file and the line.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from stagewise.errors import ConfigError
from stagewise.money import WEIGHT_SUM_TOLERANCE_PCT


@dataclass(frozen=True)
class Holdings:
    """A holdings file as read: weights (percent) in file order, and each asset's line."""

    path: Path
    weights: Mapping[str, float]
    lines: Mapping[str, int]

    def where(self, asset: str) -> str:
        """ "path line N" of `asset`, for an error about it."""
        return f"{self.path} line {self.lines.get(asset, 1)}"


def read_holdings(path: Path) -> Holdings:
    """The holdings in `path` (JSON or CSV, by its suffix), checked (see the module's
    docstring). Raises ConfigError naming the file and the line."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(f"holdings file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"holdings file cannot be read: {path} ({e})") from None
    rows = _json_rows(path, text) if path.suffix.lower() == ".json" else _csv_rows(path, text)
    weights: dict[str, float] = {}
    lines: dict[str, int] = {}
    for line, asset, weight in rows:
        where = f"{path} line {line}"
        if not (asset.isalnum() and asset == asset.upper()):
            raise ConfigError(f"{where}: '{asset}' is not an exchange code like BTC")
        if asset in weights:
            raise ConfigError(f"{where}: {asset} is listed twice (first on line {lines[asset]})")
        if not (math.isfinite(weight) and 0 < weight <= 100):
            raise ConfigError(f"{where}: {asset} weight {weight:g} must be above 0, at most 100")
        weights[asset], lines[asset] = weight, line
    if not weights:
        raise ConfigError(f"{path} line 1: no holdings (asset -> weight percent)")
    total = sum(weights.values())
    if abs(total - 100) > WEIGHT_SUM_TOLERANCE_PCT:
        raise ConfigError(
            f"{path} line {max(lines.values())}: the weights sum to {total:g} %, not 100 %"
        )
    return Holdings(path, weights, lines)


def _json_rows(path: Path, text: str) -> list[tuple[int, str, float]]:
    def pairs(items: list[tuple[str, object]]) -> list[tuple[str, object]]:
        return items  # keeps a key given twice (a dict would keep only the last)

    try:
        data = json.loads(text, object_pairs_hook=pairs)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path} line {e.lineno}: not valid JSON ({e.msg})") from None
    if not isinstance(data, list) or not all(isinstance(p, tuple) for p in data):
        raise ConfigError(f"{path} line 1: expected one JSON object of asset -> weight")
    rows = []
    seen: dict[str, int] = {}
    for key, value in data:
        line = _key_line(text, key, seen.get(key, 0))
        seen[key] = seen.get(key, 0) + 1
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{path} line {line}: {key} weight {value!r} is not a number")
        rows.append((line, key, float(value)))
    return rows


def _key_line(text: str, key: str, nth: int) -> int:
    """The line of the `nth` occurrence of `key` as an object key in the JSON `text`."""
    found = list(re.finditer(rf'"{re.escape(key)}"\s*:', text))
    at = found[min(nth, len(found) - 1)].start() if found else 0
    return text.count("\n", 0, at) + 1


def _csv_rows(path: Path, text: str) -> list[tuple[int, str, float]]:
    rows: list[tuple[int, str, float]] = []
    reader = csv.reader(io.StringIO(text))
    for cells in reader:
        line = reader.line_num
        if not cells or not "".join(cells).strip() or cells[0].lstrip().startswith("#"):
            continue
        cells = [c.strip() for c in cells]
        if [c.lower() for c in cells] == ["asset", "weight"] and not rows:
            continue
        if len(cells) != 2:
            raise ConfigError(f"{path} line {line}: expected asset,weight, got {len(cells)} cells")
        try:
            weight = float(cells[1])
        except ValueError:
            comma = " (a decimal comma? write 12.5)" if "," in cells[1] else ""
            raise ConfigError(
                f"{path} line {line}: {cells[0]} weight '{cells[1]}' is not a number{comma}"
            ) from None
        rows.append((line, cells[0], weight))
    return rows
