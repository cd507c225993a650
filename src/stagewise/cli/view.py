"""`stagewise view`: the state in a browser, through Datasette (`pip install
'stagewise[view]'`), on 127.0.0.1 and read-only, with the shipped table descriptions and
canned queries (config/datasette.yml). No web code of ours: Datasette serves it all.

Read-only the way Datasette opens a file it is not told is immutable: an SQLite connection in
`mode=ro`, which can write nothing and still sees each run the daemon commits. (`--immutable`
would promise SQLite that the file never changes: the daemon's newest runs, still in the WAL,
would not show, and a page could read a half-checkpointed file.)
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stagewise import shipped
from stagewise.cli.arguments import given_db, load, port_number
from stagewise.cli.output import EX_OK, EX_UNAVAILABLE
from stagewise.errors import InputMissing

SHIPPED_DATABASE = "stagewise"  # the key config/datasette.yml describes (stagewise.db)
HOST = "127.0.0.1"


def add_view_command(command: Callable[..., argparse.ArgumentParser]) -> None:
    p = command(
        "view",
        cmd_view,
        "the state in a browser: Datasette on 127.0.0.1, read-only, with canned queries",
    )
    p.add_argument("--port", type=port_number, default=8001, help="the port on 127.0.0.1 (8001)")
    p.add_argument("--db", type=Path, metavar="PATH", help="another state file to view")


def metadata_for(database: str) -> dict[str, Any]:
    """The shipped metadata, describing the database Datasette names `database` (the state
    file's name without its suffix)."""
    import yaml  # Datasette's own dependency: there whenever Datasette is

    data = yaml.safe_load(shipped.text(shipped.DATASETTE))
    databases = data["databases"]
    databases[database] = databases.pop(SHIPPED_DATABASE)
    return data


def cmd_view(args: argparse.Namespace) -> int:
    config = load(args)
    path = config.state_path if args.db is None else given_db(args.db)
    if not path.is_file():
        raise InputMissing(f"no state file at {path} yet (nothing has run with this config)")
    path = path.resolve()
    from stagewise.store import Store  # not at the parser's start: every command builds it

    Store.read(path).close()  # a state file of this version, or the reason it is not
    try:
        from datasette.cli import cli as datasette
    except ImportError:
        print(
            "stagewise: the view needs Datasette: pip install 'stagewise[view]'",
            file=sys.stderr,
        )
        return EX_UNAVAILABLE
    taken = _port_taken(args.port)
    if taken is not None:
        print(
            f"stagewise: port {args.port} on {HOST} is not free ({taken}): choose another "
            "with --port",
            file=sys.stderr,
        )
        return EX_UNAVAILABLE
    with tempfile.TemporaryDirectory(prefix="stagewise-view-") as folder:
        metadata = Path(folder) / "metadata.json"
        metadata.write_text(json.dumps(metadata_for(path.stem)), encoding="utf-8")
        print(f"stagewise: {path} read-only at http://{HOST}:{args.port}/ (Ctrl-C stops)")
        sys.stdout.flush()
        datasette.main(
            args=[
                "serve",
                str(path),
                "--metadata",
                str(metadata),
                "--host",
                HOST,
                "--port",
                str(args.port),
            ],
            prog_name="datasette",
            standalone_mode=False,
        )
    return EX_OK


def _port_taken(port: int) -> str | None:
    """Why `port` on HOST cannot be listened on now (None: it can), found before the
    "read-only at" line is printed (Datasette would refuse only after it, with exit 3). The
    probe binds as the server does (SO_REUSEADDR), so a port left in TIME_WAIT is free."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError as e:
            return e.strerror or str(e)
    return None
