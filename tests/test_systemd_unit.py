"""The shipped unit file: valid for systemd, hardened, and wired for notify/watchdog/EX_CONFIG.

Runs the real `systemd-analyze` (works without systemd as PID 1: `verify` loads the unit
offline and `security --offline=yes` scores the file alone).
"""

from __future__ import annotations

import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parent.parent / "systemd" / "stagewise.service"
ENV_EXAMPLE = UNIT.with_name("stagewise.env.example")
MAX_EXPOSURE = 2.0

SYSTEMD_ANALYZE = shutil.which("systemd-analyze") or (
    "/usr/bin/systemd-analyze" if Path("/usr/bin/systemd-analyze").exists() else None
)
needs_systemd_analyze = pytest.mark.skipif(
    SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed"
)


def _directives(text: str) -> dict[str, list[str]]:
    """Every KEY=VALUE of the unit (all sections), values in file order."""
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        found.setdefault(key.strip(), []).append(value.strip())
    return found


def _analyze(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SYSTEMD_ANALYZE, *args], capture_output=True, text=True, timeout=60, check=False
    )


def _verifiable_copy(tmp_path: Path) -> Path:
    """The unit with ExecStart's binary swapped for a stub that exists.

    `verify` rejects an ExecStart binary that is not installed (/usr/local/bin/stagewise is
    not, in a checkout). `--root=` would need a whole unit tree (sysinit.target, /bin/kill...),
    so only that one path changes; its arguments and every other line are checked as shipped.
    """
    stub = tmp_path / "bin" / "stagewise"
    stub.parent.mkdir()
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(stub.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    text = UNIT.read_text()
    (exec_start,) = _directives(text)["ExecStart"]
    binary = exec_start.split()[0]
    copy = tmp_path / "unit" / UNIT.name  # same name: verify derives the unit name from it
    copy.parent.mkdir()
    copy.write_text(text.replace(f"ExecStart={binary}", f"ExecStart={stub}", 1))
    return copy


def test_unit_is_notify_with_watchdog_and_no_restart_on_bad_config():
    d = _directives(UNIT.read_text())
    assert d["Type"] == ["notify"]
    assert d["NotifyAccess"] == ["main"]
    assert d["WatchdogSec"] and d["WatchdogSec"][0] not in ("", "0", "infinity")
    assert d["Restart"] == ["on-failure"]
    assert "78" in d["RestartPreventExitStatus"][0].split()  # EX_CONFIG
    assert d["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert d["StateDirectory"] == ["stagewise"]
    # No override of the state file: the daemon and a person's CLI resolve it the same way
    # (test_the_daemon_and_a_person_resolve_one_state_file).
    assert not [e for e in d.get("Environment", []) if "STATE" in e]
    assert d["EnvironmentFile"] == ["-/etc/stagewise/stagewise.env"]
    assert "TimeoutStopSec" in d
    # --config belongs to the top-level parser: it must come before the command.
    assert d["ExecStart"] == ["/usr/local/bin/stagewise --config /etc/stagewise/config.toml run"]
    # The daemon must reach the exchange.
    families = d["RestrictAddressFamilies"][0].split()
    assert {"AF_INET", "AF_INET6", "AF_UNIX"} <= set(families)
    assert d.get("PrivateNetwork", ["no"]) == ["no"]


def test_the_daemon_and_a_person_resolve_one_state_file(tmp_path):
    """The unit runs `--config /etc/stagewise/config.toml` with $STATE_DIRECTORY set by its
    StateDirectory=; a person runs the same config without it: both get the same file."""
    from stagewise.config_files import SYSTEM_CONFIG, SYSTEM_STATE, default_state_path

    d = _directives(UNIT.read_text())
    config = Path(d["ExecStart"][0].split("--config ")[1].split()[0])
    assert config == SYSTEM_CONFIG
    state_dir = Path("/var/lib") / d["StateDirectory"][0]
    daemon = default_state_path(config, {"STATE_DIRECTORY": str(state_dir)})
    person = default_state_path(config, {"XDG_STATE_HOME": str(tmp_path)})
    assert daemon == person == SYSTEM_STATE
    # Anywhere else, a person's state is their own.
    mine = default_state_path(tmp_path / "config.toml", {"XDG_STATE_HOME": str(tmp_path)})
    assert mine == tmp_path / "stagewise" / "stagewise.db"


def test_env_example_names_the_api_key_variables():
    d = _directives(ENV_EXAMPLE.read_text())
    assert set(d) == {"STAGEWISE_EXCHANGE__API_KEY", "STAGEWISE_EXCHANGE__SECRET"}
    assert "chmod 600" in ENV_EXAMPLE.read_text()


@needs_systemd_analyze
def test_systemd_analyze_verify_is_silent(tmp_path):
    result = _analyze("verify", "--man=no", str(_verifiable_copy(tmp_path)))
    output = (result.stdout + result.stderr).strip()
    about_us = [line for line in output.splitlines() if "stagewise" in line]
    assert about_us == [], output
    assert result.returncode == 0, output


@needs_systemd_analyze
def test_security_exposure_is_at_most_2(tmp_path):
    result = _analyze("security", "--offline=yes", "--no-pager", str(UNIT))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    match = re.search(r"Overall exposure level for stagewise\.service:\s*([0-9.]+)", output)
    assert match, output
    assert float(match.group(1)) <= MAX_EXPOSURE, output
