"""Where stagewise's files are: the config file to read (--config, $STAGEWISE_CONFIG, the
user's, the system's, else the shipped example) and the state file when the config names none.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from stagewise import shipped
from stagewise.environment import CONFIG_ENV

# The system-wide install (the systemd unit's ConfigurationDirectory= and StateDirectory=).
SYSTEM_CONFIG = Path("/etc/stagewise/config.toml")
SYSTEM_STATE = Path("/var/lib/stagewise/stagewise.db")
STATE_FILE = "stagewise.db"


@dataclass(frozen=True)
class ConfigSource:
    """Which config file to read, and why that one."""

    path: Path
    how: str  # "--config", "$STAGEWISE_CONFIG", "found", "example"
    looked_in: tuple[Path, ...] = ()

    @property
    def example(self) -> bool:
        return self.how == "example"


def config_places(environ: Mapping[str, str] | None = None) -> tuple[Path, ...]:
    """Where a config is looked for when none is named: the user's, then the system's."""
    env = os.environ if environ is None else environ
    home = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return (Path(home) / "stagewise" / "config.toml", SYSTEM_CONFIG)


def find_config(
    cli_path: str | Path | None, environ: Mapping[str, str] | None = None
) -> ConfigSource:
    """The config file to read: --config, else $STAGEWISE_CONFIG, else the first of
    `config_places` that exists, else the shipped example (`how == "example"`)."""
    env = os.environ if environ is None else environ
    if cli_path:
        return ConfigSource(Path(cli_path), "--config")
    if env.get(CONFIG_ENV):
        return ConfigSource(Path(env[CONFIG_ENV]), f"${CONFIG_ENV}")
    places = config_places(env)
    for place in places:
        if place.is_file():
            return ConfigSource(place, "found")
    return ConfigSource(shipped.path(shipped.EXAMPLE), "example", places)


def default_state_path(config: Path, environ: Mapping[str, str] | None = None) -> Path:
    """The state file when the config names none: the unit's StateDirectory (systemd sets
    $STATE_DIRECTORY); for the system config (/etc/stagewise) the same folder, so a person's
    `stagewise status` reads the daemon's file; otherwise $XDG_STATE_HOME/stagewise."""
    env = os.environ if environ is None else environ
    if env.get("STATE_DIRECTORY"):  # may list several folders, ':'-separated: the first
        return Path(env["STATE_DIRECTORY"].split(":")[0]) / STATE_FILE
    if config.resolve().parent == SYSTEM_CONFIG.parent:
        return SYSTEM_STATE
    home = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(home) / "stagewise" / STATE_FILE
