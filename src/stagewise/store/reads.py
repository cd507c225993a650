"""Reads the jobs repeat on every run (plan state, paper balances, pending windfalls), kept
until the file changes: by the store (each of its writes drops them) or by another connection
(SQLite's `PRAGMA data_version` moves)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any


class Reads:
    """The kept reads of one connection, by name."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.private = False  # True: no other connection can write (a store in memory)
        self._kept: dict[str, Any] = {}
        self._version: int | None = None

    def get(self, key: str, load: Callable[[], Any]) -> Any:
        """The kept read `key`, `load`ed first if it is not kept or the file has changed."""
        self.check()
        if key not in self._kept:
            self._kept[key] = load()
        return self._kept[key]

    def check(self) -> None:
        """Drop every kept read if another connection has written since they were made."""
        if self.private:
            return
        version = self.conn.execute("PRAGMA data_version").fetchone()[0]
        if version != self._version:
            self._kept.clear()
            self._version = version

    def clear(self) -> None:
        """Drop every kept read (after each of the store's own writes)."""
        self._kept.clear()
