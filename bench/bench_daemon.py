"""The running daemon's footprint: resident memory after start, and CPU while idle.

    python bench/bench_daemon.py [--idle-seconds 60]

Starts `stagewise run` (`python -m stagewise run`) as a subprocess in paper mode, against the
Binance stand-in of tests/standin.py started in this process (every asset of the shipped plan
has a market and a price), the way systemd would: a notify socket (NOTIFY_SOCKET) to learn
when it is READY, and the unit's watchdog (WatchdogSec=120s, so a ping every 60 s). The drift
watch's minute is put half an hour away so no job fires while it is measured.

- Memory: VmRSS from /proc/<pid>/status once READY, against a bare
  `python -c "import ccxt; time.sleep(...)"` on the same interpreter. Goal: at most 1.3x.
- Idle CPU: utime + stime from /proc/<pid>/stat over --idle-seconds (60) after READY, as a
  share of one core. Goal: under 0.5 %. Also counts requests to the stand-in meanwhile (0 is
  expected: nothing is due).

`--notify` configures a notification target (the notify extra's Apprise is then loaded; its
memory is measured, not held to the goal, which is for the daemon without extras).

The goal is for the service install (a fresh venv, `pip install .`, no extras). The store's
sqlite-utils imports pandas and numpy whenever they are installed, as the test extra (bt)
installs them: there the daemon holds about 44 MiB more (imports only, measured: 95.5 MiB
without them, 138.5 MiB with them, a bare `import ccxt` 76.5 MiB).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
from datetime import datetime
from pathlib import Path

import tomli_w

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from standin import StandinExchange  # noqa: E402
from support import deep_merge  # noqa: E402

MEMORY_GOAL = 1.3  # x the bare ccxt process (issue 16)
CPU_GOAL = 0.005  # of one core
WATCHDOG_USEC = 120_000_000  # systemd/stagewise.service: WatchdogSec=120s
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of `pid` in KiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return fields["VmRSS"], fields["VmHWM"]


def cpu_seconds(pid: int) -> float:
    """utime + stime of `pid` (all its threads) in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    after_name = stat[stat.rindex(")") + 2 :].split()
    return (int(after_name[11]) + int(after_name[12])) / CLOCK_TICKS  # fields 14 and 15


def plan_assets() -> list[str]:
    indices = tomllib.loads((ROOT / "config" / "indices.toml").read_text())["index"]
    return sorted({a for ix in indices.values() for a in ix.get("constituents") or ix["universe"]})


def write_config(folder: Path, standin: StandinExchange) -> Path:
    data = tomllib.loads((ROOT / "config" / "example.toml").read_text())
    away = (datetime.now().minute + 30) % 60  # the hourly drift watch fires far from now
    data = deep_merge(
        data,
        {
            "exchange": {"ccxt": standin.ccxt_config(), "retry_attempts": 2},
            "plan": {
                "stages": str(ROOT / "config" / "stages.toml"),
                "indices": str(ROOT / "config" / "indices.toml"),
            },
            "state": {"path": str(folder / "state" / "stagewise.db")},
            "schedule": {"drift_minute": away},
            "log": {"format": "json", "level": "info"},
        },
    )
    path = folder / "config.toml"
    path.write_text(tomli_w.dumps(data))
    return path


def wait_ready(sock: socket.socket, proc: subprocess.Popen, timeout: float) -> float:
    """Seconds until the daemon sent READY=1 (raises if it died or never did)."""
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"the daemon exited with {proc.returncode} before READY")
        try:
            message = sock.recv(4096).decode()
        except TimeoutError:
            continue
        if "READY=1" in message.splitlines():
            return time.monotonic() - began
    raise RuntimeError(f"no READY=1 within {timeout:g} s")


def bare_ccxt(seconds: float) -> tuple[int, int, float]:
    """(VmRSS, VmHWM, import seconds) of a bare interpreter that imported ccxt."""
    code = f"import ccxt, sys, time; print('ready', flush=True); time.sleep({seconds!r})"
    began = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        took = time.monotonic() - began
        time.sleep(0.5)
        rss, hwm = rss_kib(proc.pid)
    finally:
        proc.kill()
        proc.wait()
    return rss, hwm, took


def run_daemon(idle_seconds: float, notify: bool = False) -> dict[str, float]:
    """Start the daemon, wait for READY, measure, stop it."""
    with tempfile.TemporaryDirectory(prefix="bench-daemon-") as tmp, StandinExchange() as ex:
        folder = Path(tmp)
        assets = plan_assets()
        for i, asset in enumerate(assets):
            ex.add_market(asset, step="0.0001", min_qty="0.0001", min_notional="5")
            ex.set_price(asset, 10.0 + i)
        config = write_config(folder, ex)
        notify_path = folder / "notify.sock"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(str(notify_path))
        sock.settimeout(0.2)
        env = {k: v for k, v in os.environ.items() if not k.startswith("STAGEWISE_")}
        env |= {"NOTIFY_SOCKET": str(notify_path), "WATCHDOG_USEC": str(WATCHDOG_USEC)}
        if notify:  # a target no message reaches while idle (nothing is due)
            env["STAGEWISE_NOTIFY__URLS"] = "json://127.0.0.1:9/bench"
        log = (folder / "daemon.log").open("w")
        proc = subprocess.Popen(
            [sys.executable, "-m", "stagewise", "--config", str(config), "run"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            ready_s = wait_ready(sock, proc, timeout=90)
            time.sleep(0.5)  # let the scheduler thread settle
            rss, hwm = rss_kib(proc.pid)
            startup_cpu = cpu_seconds(proc.pid)
            ex.clear_requests()
            cpu_before, began = cpu_seconds(proc.pid), time.monotonic()
            time.sleep(idle_seconds)
            idle_cpu, idle_s = cpu_seconds(proc.pid) - cpu_before, time.monotonic() - began
            requests = len(ex.requests)
            pings = 0
            while True:
                try:
                    pings += sock.recv(4096).decode().splitlines().count("WATCHDOG=1")
                except TimeoutError:
                    break
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                code = proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                code = proc.wait()
            log.close()
            sock.close()
    return {
        "assets": len(assets),
        "ready_s": ready_s,
        "startup_cpu": startup_cpu,
        "rss": rss,
        "hwm": hwm,
        "idle_cpu": idle_cpu,
        "idle_s": idle_s,
        "requests": requests,
        "pings": pings,
        "exit": code,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--idle-seconds", type=float, default=60, help="how long to watch it idle (60)"
    )
    parser.add_argument(
        "--notify",
        action="store_true",
        help="with a notification target configured (the notify extra: Apprise is loaded)",
    )
    args = parser.parse_args(argv)

    base_rss, base_hwm, base_import = bare_ccxt(30)
    d = run_daemon(args.idle_seconds, notify=args.notify)
    ratio = d["rss"] / base_rss
    share = d["idle_cpu"] / d["idle_s"]
    print(
        f"stagewise run (paper mode, stand-in exchange, shipped plan of {d['assets']} assets"
        + (", notifications configured)" if args.notify else ")")
    )
    print(
        f"  ready after         {d['ready_s']:6.2f} s  (CPU {d['startup_cpu']:.2f} s to get there)"
    )
    print(
        f"  resident memory     {d['rss'] / 1024:6.1f} MiB (peak {d['hwm'] / 1024:.1f}) vs bare "
        f"`import ccxt` {base_rss / 1024:.1f} MiB (peak {base_hwm / 1024:.1f}, "
        f"import {base_import:.2f} s)"
    )
    verdict = "goal met" if ratio <= MEMORY_GOAL else "MISSED"
    print(f"  memory ratio        {ratio:6.2f}x   goal <= {MEMORY_GOAL:g}x: {verdict}")
    verdict = "goal met" if share < CPU_GOAL else "MISSED"
    print(
        f"  idle CPU            {d['idle_cpu'] * 1000:6.1f} ms over {d['idle_s']:.0f} s = "
        f"{share * 100:.3f} % of a core (1 tick = {1000 / CLOCK_TICKS:g} ms)   "
        f"goal < {CPU_GOAL * 100:g} %: {verdict}"
    )
    print(f"  while idle          {d['requests']} requests, {d['pings']} watchdog pings")
    print(f"  stopped on SIGTERM  exit {d['exit']}")
    return 0 if (ratio <= MEMORY_GOAL or args.notify) and share < CPU_GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
