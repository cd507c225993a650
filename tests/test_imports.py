"""What the daemon keeps in memory: the modules `stagewise run` imports, in a fresh process.

Memory at start is a goal (bench/bench_daemon.py: at most 1.25x a bare `import ccxt`). These
modules were found to cost it: sqlite-utils (and, through it, pandas and numpy whenever they
are installed, as the test extra installs them: +44 MiB), the table printer, the plotting
extra. None of them is needed to run the jobs.
"""

from __future__ import annotations

import json
import subprocess
import sys

NOT_FOR_THE_DAEMON = ("sqlite_utils", "click", "pandas", "numpy", "tabulate", "matplotlib")

LOAD_THE_DAEMON = """
import json, sys
import stagewise.cli, stagewise.cli.commands, stagewise.service, stagewise.runtime, stagewise.jobs
import stagewise.store, stagewise.exchange, stagewise.scheduler, stagewise.paper
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules})))
"""


def loaded_by_the_daemon() -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", LOAD_THE_DAEMON], capture_output=True, text=True, check=True
    ).stdout
    return set(json.loads(out))


def test_the_daemon_loads_no_module_it_does_not_need() -> None:
    loaded = loaded_by_the_daemon()
    assert {"ccxt", "apscheduler", "structlog", "stagewise"} <= loaded  # the probe imports
    assert loaded.isdisjoint(NOT_FOR_THE_DAEMON), loaded & set(NOT_FOR_THE_DAEMON)
