"""A sweep's results as one SQLite file: the table `windows`, one row per window and variant
with its figures, and the table `sweep`, one row saying what was swept (which also marks
the file as a sweep's: the only kind of file a sweep replaces). Written whole at the end,
as a simulation's database is: the file holds a whole sweep, or the one before."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from stagewise.errors import OutputRefused
from stagewise.store.files import same_file, save_copy

WRITTEN_BY = "stagewise sweep"


def check_sweep_output(path: Path, state: Path) -> None:
    """Refuse (OutputRefused) a `path` a sweep may not replace: the daemon's state file
    `state`, a folder, or any file but a sweep's. Only reads it."""
    if same_file(path, state):
        raise OutputRefused(
            f"the sweep database {path} is the daemon's own state file (state.path): left as "
            "it is; choose another"
        )
    if not path.exists():
        return
    why = _not_a_sweep(path)
    if why:
        raise OutputRefused(
            f"{path} is not a sweep's database ({why}): a sweep does not replace it, and it "
            "is left as it is; choose another file (or remove it yourself)"
        )


def _not_a_sweep(path: Path) -> str | None:
    if not path.is_file():
        return "not a file"
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error:
        return "not an SQLite file"
    try:
        (by,) = conn.execute("SELECT written_by FROM sweep LIMIT 1").fetchone() or (None,)
    except sqlite3.Error:
        return "no sweep table"
    finally:
        conn.close()
    return None if by == WRITTEN_BY else "its sweep table is not stagewise's"


def save_sweep(
    path: Path,
    details: Mapping[str, Any],
    columns: Sequence[tuple[str, str]],
    rows: Sequence[Sequence[Any]],
) -> None:
    """Write the sweep `details` and its window `rows` (values under `columns`, (name, SQLite
    type) pairs) to `path`, replacing the sweep file there at once (not synced: it can be
    made again). OutputRefused when it cannot be written (nothing at `path` changed)."""
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute("CREATE TABLE sweep (written_by TEXT NOT NULL, details TEXT NOT NULL)")
        conn.execute("INSERT INTO sweep VALUES (?, ?)", (WRITTEN_BY, json.dumps(details)))
        names = ", ".join(f"{_quoted(name)} {kind}" for name, kind in columns)
        conn.execute(f"CREATE TABLE windows ({names})")
        marks = ", ".join("?" for _ in columns)
        conn.executemany(f"INSERT INTO windows VALUES ({marks})", rows)
        conn.commit()
        save_copy(Database(conn), path, durable=False)
    except (sqlite3.Error, OSError) as e:
        raise OutputRefused(f"cannot write the sweep database {path}: {e}") from e
    finally:
        conn.close()


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
