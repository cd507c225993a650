"""`stagewise run` with every schedule firing each second: the clock of the daemon tests.

    python tests/every_second.py run --config PATH

The real daemon (`stagewise.service.Service`, its logs set up as `stagewise run` sets them),
with the config's own schedules and period keys; only each schedule fires every second instead
of on its calendar, and a fire runs the period of the moment it fires (a period still runs
once). Nothing in the package knows of it: the service takes its schedules as an argument.
"""

from __future__ import annotations

import dataclasses
import sys
from datetime import datetime, timedelta
from pathlib import Path

from stagewise.cli.commands import setup_logs
from stagewise.schedules import Schedule, schedules
from stagewise.service import Service
from stagewise.settings import Config, load_config


@dataclasses.dataclass(frozen=True)
class EverySecond(Schedule):
    """A schedule that fires on every whole second; a fire is the period of its moment."""

    def next_from(self, moment: datetime) -> datetime | None:
        whole = moment.replace(microsecond=0)
        return whole if whole == moment else whole + timedelta(seconds=1)

    def latest(self, now: datetime) -> datetime | None:
        return now


def every_second(config: Config) -> list[Schedule]:
    return [
        EverySecond(**{f.name: getattr(s, f.name) for f in dataclasses.fields(s)})
        for s in schedules(config)
    ]


def main(argv: list[str]) -> int:
    path = Path(argv[argv.index("--config") + 1])
    config = load_config(path)
    setup_logs(config)
    return Service(path, config, plan=every_second).serve()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
