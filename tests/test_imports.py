"""The boundaries of the package, each checked in a fresh interpreter: what the daemon keeps in
memory, what the pure core and the jobs may load, that no module imports one that imports it
back, and that nothing below the edges reads the clock.

Memory at start is a goal (bench/bench_daemon.py: at most 1.3x a bare `import ccxt`, in the
service install: a fresh venv, `pip install .`, no extras). The store runs on sqlite-utils,
which brings click, pluggy and dateutil, and imports pandas and numpy whenever they are
installed (the test extra installs them, through bt: about +44 MiB; the service install has
neither). These modules were found to cost it and none of them is needed to run the jobs:
pandas and numpy (hidden from the probe, as the service install would not find them: the
daemon must start without them), the table printer, the plotting extra. Notifications (our
outbox and messages, and the notify extra's Apprise: +14 MiB once its plugins load) are
imported only when targets are configured; Datasette (the view extra) only by `stagewise
view`.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

NOT_FOR_THE_DAEMON = ("pandas", "numpy", "tabulate", "matplotlib")
NOT_WITHOUT_TARGETS = ("apprise", "datasette", "yaml", "stagewise.outbox", "stagewise.messages")

# None in sys.modules: importing the module raises ImportError, as when it is not installed.
HIDE_TEST_ONLY = "import sys; sys.modules.update(dict.fromkeys(('pandas', 'numpy')))"

LOAD_THE_DAEMON = (
    HIDE_TEST_ONLY
    + """
import json, sys
import stagewise.cli, stagewise.cli.commands, stagewise.service, stagewise.runtime, stagewise.jobs
import stagewise.cli.status, stagewise.cli.windfall  # `build_parser` imports them too
import stagewise.store, stagewise.exchange, stagewise.scheduler, stagewise.paper
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules if sys.modules[m] is not None})))
"""
)


def loaded_by_the_daemon() -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", LOAD_THE_DAEMON], capture_output=True, text=True, check=True
    ).stdout
    return set(json.loads(out))


def test_the_daemon_loads_no_module_it_does_not_need() -> None:
    loaded = loaded_by_the_daemon()
    assert {"ccxt", "apscheduler", "structlog", "stagewise"} <= loaded  # the probe imports
    assert "sqlite_utils" in loaded  # the store's library
    assert loaded.isdisjoint(NOT_FOR_THE_DAEMON), loaded & set(NOT_FOR_THE_DAEMON)


LOAD_THE_DAEMON_AND_CLI = """
import json, sys
import stagewise.cli, stagewise.cli.commands, stagewise.service, stagewise.runtime, stagewise.jobs
import stagewise.cli.status, stagewise.cli.windfall  # `build_parser` imports them too
import stagewise.cli.notify, stagewise.cli.view
print(json.dumps(sorted(sys.modules)))
"""

OUTBOX_OF = """
import json, sys
from pathlib import Path
from stagewise.service import notifications
from stagewise.settings import load_config
outbox = notifications(load_config(Path(sys.argv[1])))
print(json.dumps([outbox is not None, "apprise" in sys.modules]))
"""


def test_without_notification_targets_nothing_of_the_notifications_is_loaded() -> None:
    out = subprocess.run(
        [sys.executable, "-c", LOAD_THE_DAEMON_AND_CLI], capture_output=True, text=True, check=True
    ).stdout
    loaded = set(json.loads(out))
    assert "stagewise.service" in loaded
    assert loaded.isdisjoint(NOT_WITHOUT_TARGETS), loaded & set(NOT_WITHOUT_TARGETS)


def test_apprise_is_imported_only_when_notification_targets_are_configured(
    write_config,
) -> None:
    import os

    config = str(write_config())
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAGEWISE_")}
    found = []
    for urls in (None, "json://127.0.0.1:9/hook"):
        run_env = env if urls is None else {**env, "STAGEWISE_NOTIFY__URLS": urls}
        out = subprocess.run(
            [sys.executable, "-c", OUTBOX_OF, config],
            capture_output=True,
            text=True,
            check=True,
            env=run_env,
        ).stdout
        found.append(json.loads(out))
    assert found == [[False, False], [True, True]]


# --- the pure core and the jobs ------------------------------------------------------------------

LOADED_BY = """
import json, sys
import {module}
print(json.dumps(sorted(sys.modules)))
"""

# The pure core (targets and planning rules: functions of plain data) loads none of the outside
# things; the jobs and the simulation are the same with or without the live scheduler.
PURE_CORE = ("stagewise.planner", "stagewise.targets", "stagewise.stages")
OUTSIDE_THINGS = (
    "pydantic_settings",
    "stagewise.settings",
    "stagewise.sections",
    "stagewise.config_files",
    "ccxt",
    "apscheduler",
    "structlog",
    "sqlite3",
    "stagewise.store",
)


def loaded_by(module: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", LOADED_BY.format(module=module)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(json.loads(out))


def roots(modules: set[str]) -> set[str]:
    """`modules` and every package above each (stagewise.store.store: stagewise.store too)."""
    return {".".join(m.split(".")[:n]) for m in modules for n in range(1, m.count(".") + 2)}


@pytest.mark.parametrize("module", PURE_CORE)
def test_the_pure_core_loads_no_settings_exchange_scheduler_log_or_store(module: str) -> None:
    loaded = roots(loaded_by(module))
    assert module in loaded
    assert loaded.isdisjoint(OUTSIDE_THINGS), sorted(loaded & set(OUTSIDE_THINGS))


@pytest.mark.parametrize("module", ["stagewise.jobs", "stagewise.simulate", "stagewise.schedules"])
def test_the_jobs_and_the_simulation_load_no_scheduler(module: str) -> None:
    loaded = roots(loaded_by(module))
    assert module in loaded
    assert "apscheduler" not in loaded and "stagewise.scheduler" not in loaded


def test_the_command_line_starts_without_the_store() -> None:
    """Every command builds the whole parser: what only some commands use (the state file, and
    sqlite-utils' pandas where it is installed) is imported by the command, not at start."""
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json, sys; from stagewise.cli import build_parser; build_parser(); "
            "print(json.dumps(sorted(sys.modules)))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    loaded = roots(set(json.loads(out)))
    assert loaded.isdisjoint({"stagewise.store", "sqlite_utils", "pandas"}), sorted(loaded)


# --- the package's own imports, read from its installed files ----------------------------------

IMPORTS_OF = """
import ast, json, pathlib, stagewise
CLOCK = {"datetime.now", "datetime.utcnow", "date.today", "time.time", "time.monotonic",
         "time.clock_gettime", "time.clock_gettime_ns"}
root = pathlib.Path(stagewise.__file__).parent
modules = {}
for path in sorted(root.rglob("*.py")):
    parts = ["stagewise", *path.relative_to(root).with_suffix("").parts]
    modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
found = {}
for name, path in modules.items():
    imported, clock = set(), []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            imported |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{name}: a relative import"
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                imported.add(sub if sub in modules else node.module)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            called = ast.unparse(node.func)
            if ".".join(called.split(".")[-2:]) in CLOCK:
                clock.append(f"{called}() line {node.lineno}")
    outside = sorted({i.split(".")[0] for i in imported} - {"stagewise"})
    found[name] = {"imports": sorted(imported & modules.keys()), "outside": outside, "clock": clock}
print(json.dumps(found))
"""


@pytest.fixture(scope="module")
def package() -> dict[str, dict[str, list[str]]]:
    """Per module of the installed package: the package modules it imports (anywhere in it:
    at the top, in a function, for type checking only), the outside packages it imports, and
    the clock reads it makes."""
    out = subprocess.run(
        [sys.executable, "-c", IMPORTS_OF], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out)


def cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """The groups of modules that import each other, directly or round a loop (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in graph[module]:
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            group = []
            while True:
                top = stack.pop()
                group.append(top)
                if top == module:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for module in graph:
        if module not in index:
            visit(module)
    return found


def test_no_module_imports_one_that_imports_it_back(package) -> None:
    graph = {name: [m for m in found["imports"] if m != name] for name, found in package.items()}
    assert len(graph) > 40 and graph["stagewise.jobs"]  # the whole package was read
    assert cycles(graph) == []


def test_the_cycle_check_finds_a_loop_round_three_modules() -> None:
    assert cycles({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}) == [["a", "b", "c"]]


# One module per outside thing: ccxt in the exchange adapter only (the Exchange, the ccxt client
# it wraps, the reading of that client's answers).
EXCHANGE_ADAPTER = {"stagewise.exchange", "stagewise.exchange_client", "stagewise.exchange_answers"}


def test_only_the_exchange_adapter_imports_ccxt(package) -> None:
    importers = {name for name, found in package.items() if "ccxt" in found["outside"]}
    assert importers == EXCHANGE_ADAPTER


# Where the clock is read: the edges, which pass `now` down (the CLI, the daemon's loop, the live
# scheduler), and systemd's monotonic clock for the notify protocol's MONOTONIC_USEC.
EDGES = ("stagewise.cli", "stagewise.service", "stagewise.scheduler", "stagewise.notify")
# Known, and left to its owner: the migrations' `applied_at` is sqlite-utils' bookkeeping.
KNOWN_CLOCK_READS: dict[str, int] = {}


def test_nothing_below_the_edges_reads_the_clock(package) -> None:
    reads = {
        name: found["clock"]
        for name, found in package.items()
        if found["clock"] and not name.startswith(EDGES)
    }
    assert {name: len(r) for name, r in reads.items()} == KNOWN_CLOCK_READS, reads
    assert any(found["clock"] for name, found in package.items() if name.startswith(EDGES))
