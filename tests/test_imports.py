"""What the daemon keeps in memory: the modules `stagewise run` imports, in a fresh process.

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

NOT_FOR_THE_DAEMON = ("pandas", "numpy", "tabulate", "matplotlib")
NOT_WITHOUT_TARGETS = ("apprise", "datasette", "yaml", "stagewise.outbox", "stagewise.messages")

# None in sys.modules: importing the module raises ImportError, as when it is not installed.
HIDE_TEST_ONLY = "import sys; sys.modules.update(dict.fromkeys(('pandas', 'numpy')))"

LOAD_THE_DAEMON = (
    HIDE_TEST_ONLY
    + """
import json, sys
import stagewise.cli, stagewise.cli.commands, stagewise.service, stagewise.runtime, stagewise.jobs
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
