"""`stagewise simulate --windows`: the sweep from the installed command line.

A window of the sweep equals `simulate --start --end` of its span; variants side by side;
--json and --db hold every window; bad input is refused before anything runs (exit 2 or 78,
nothing written); the progress bar only on a terminal; Ctrl-C stops the workers and writes
nothing; a Dask LocalCluster on 127.0.0.1 gives the same windows as local processes.
"""

from __future__ import annotations

import json
import os
import pty
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from support import CONSOLE_SCRIPT

FIGURES = (
    "seed_value",
    "contributions",
    "withdrawals",
    "profit_moved_out",
    "final_value",
    "gain",
    "fees",
    "slippage",
    "trading_costs",
    "money_weighted_return",
    "time_weighted_return",
    "max_drawdown",
)


@pytest.fixture
def sweep(cli, write_config):
    """`stagewise --config C simulate ARGS`: C the example config (born 15 Jun 1987; state
    in tmp_path), over the shipped sample."""
    config = write_config()

    def run(*args: str, config: Path = config, **kwargs) -> subprocess.CompletedProcess[str]:
        return cli("--config", str(config), "simulate", *args, **kwargs)

    return run


def sweep_json(sweep, *args: str, **kwargs) -> dict:
    result = sweep("--json", *args, **kwargs)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no progress, no warnings of every window
    return json.loads(result.stdout)


@pytest.fixture
def stage_change(write_config) -> Path:
    """The example config, born 15 Jun 1995: 31 (Young Professional -> Career Builder) on
    15 Jun 2026, inside the sample."""
    return write_config({"investor": {"birth_date": "1995-06-15"}}, name="stage-change.toml")


def test_a_window_equals_simulate_of_its_span(cli, sweep, stage_change, tmp_path):
    args = ("--windows", "9m", "--step", "6m", "--start", "2025-07-01", "-j", "2")
    swept = sweep_json(sweep, *args, config=stage_change)
    assert [(w["start"], w["end"]) for w in swept["windows"]] == [
        ("2025-07-01", "2026-04-01"),
        ("2026-01-01", "2026-10-01"),
    ]
    for window in swept["windows"]:
        plain = cli(
            "--config",
            str(stage_change),
            "simulate",
            "--json",
            "--start",
            window["start"],
            "--end",
            window["end"],
            "--db",
            str(tmp_path / f"{window['start']}.db"),
        )
        assert plain.returncode == 0, plain.stderr
        report = json.loads(plain.stdout)
        assert {k: window[k] for k in FIGURES} == {k: report[k] for k in FIGURES}
    # The second window is the one across the stage change.
    assert [s["stage"] for s in report["stages"]] == ["young_professional", "career_builder"]


def test_the_report_of_a_sweep_and_its_goal(sweep, tmp_path):
    result = sweep("--windows", "12m", "--step", "18m", "--goal", "25000")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith(
        "sweep: 3 windows of 12m, one starting every 18m from 2023-01-01 to 2026-01-01 "
        "(the last ends 2026-12-31); paper accounts, never an order"
    )
    assert "the shipped sample: GENERATED prices, not a market" in out
    assert "the investor at the age its start gives" in out
    swept = sweep_json(sweep, "--windows", "12m", "--step", "18m", "--goal", "25000")
    (variant,) = swept["variants"]
    finals = sorted(w["final_value"] for w in swept["windows"])
    reached = sum(f >= 25000 for f in finals)
    assert variant["final_value"]["median"] == finals[1]
    assert (variant["final_value"]["min"], variant["final_value"]["max"]) == (finals[0], finals[2])
    assert variant["reaching_goal"] == round(reached / 3, 4)
    assert [w["reached_goal"] for w in swept["windows"]] == [
        w["final_value"] >= 25000 for w in swept["windows"]
    ]
    worst = min(swept["windows"], key=lambda w: w["final_value"])
    for line in (
        f"median {finals[1]:,.2f} USDT",
        f"worst          {finals[0]:,.2f} USDT, the window from {worst['start']}",
        f"goal           {reached} of 3 windows",
        "contributions  24,000.00 USDT in every window",
        "every window: --json, or --db FILE (an SQLite table)",
    ):
        assert line in out


def test_variants_side_by_side(sweep):
    args = ("--windows", "6m", "--step", "12m", "--vary", "investor.monthly_contribution=500,1000")
    result = sweep(*args, "--vary", "policy.rebalance_to=target,band")
    assert result.returncode == 0, result.stderr
    header, rule, *rows = result.stdout.split("\n\n")[1].splitlines()
    assert header.split()[:3] == ["investor.monthly_contribution", "policy.rebalance_to", "median"]
    assert [row.split()[:2] for row in rows] == [
        ["500", "target"],
        ["500", "band"],
        ["1000", "target"],
        ["1000", "band"],
    ]
    swept = sweep_json(sweep, *args)
    assert [v["variant"] for v in swept["variants"]] == [
        "investor.monthly_contribution=500",
        "investor.monthly_contribution=1000",
    ]
    paid = {
        (w["settings"]["investor.monthly_contribution"], w["contributions"])
        for w in swept["windows"]
    }
    assert paid == {("500", 3000.0), ("1000", 6000.0)}
    assert len(swept["windows"]) == 2 * 4  # 4 windows of 6 months a year apart in 4 years


def test_the_db_holds_every_window_and_variant(sweep, tmp_path):
    db = tmp_path / "sweep.db"
    args = ("--windows", "12m", "--step", "18m", "--goal", "25000", "--db", str(db))
    result = sweep(*args, "--vary", "policy.band_abs_pct=3,5")
    assert result.returncode == 0, result.stderr
    assert f"every window: {db} (table windows" in result.stdout
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute(
            'SELECT "policy.band_abs_pct", start, "end", final_value, reached_goal, settings '
            "FROM windows ORDER BY 1, 2"
        ).fetchall()
        (details,) = conn.execute("SELECT details FROM sweep").fetchone()
    finally:
        conn.close()
    assert [(r[0], r[1], r[2]) for r in rows] == [
        (band, start, end)
        for band in ("3", "5")
        for start, end in (
            ("2023-01-01", "2024-01-01"),
            ("2024-07-01", "2025-07-01"),
            ("2026-01-01", "2027-01-01"),
        )
    ]
    assert all(r[4] == (r[3] >= 25000) for r in rows)
    assert json.loads(rows[0][5]) == {"policy.band_abs_pct": "3"}
    assert json.loads(details)["length"] == "12m" and json.loads(details)["goal"] == 25000
    # A second sweep replaces the file of the first, whole.
    again = sweep("--windows", "3m", "--step", "4y", "--db", str(db))
    assert again.returncode == 0, again.stderr
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT count(*) FROM windows").fetchone() == (1,)
    finally:
        conn.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.toml", "sweep.db"]


def test_the_db_is_never_another_file(cli, write_config, tmp_path):
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE mine (x)")
    conn.commit()
    conn.close()
    before = other.read_bytes()
    config = write_config()
    state = tmp_path / "state" / "stagewise.db"
    for target, why in ((other, "no sweep table"), (state, "the daemon's own state file")):
        if target == state:
            assert cli("--config", str(config), "pause", "--reason", "x").returncode == 0
        kept = target.read_bytes()
        result = cli("--config", str(config), "simulate", "--windows", "3m", "--db", str(target))
        assert result.returncode == 73, result.stderr
        assert why in result.stderr and "Traceback" not in result.stderr
        assert target.read_bytes() == kept
    assert other.read_bytes() == before


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--windows", "5y"], 2, "a 5y window is longer than the history"),
        (["--windows", "12m", "--step", "0m"], 2, "a step of nothing yields no next window"),
        (["--windows", "99999999999y"], 2, "'99999999999y' is longer than 200 years"),
        (["--windows", "12m", "--step", "9999999d"], 2, "'9999999d' is longer than 200 years"),
        (["--windows", "12"], 2, "'12' is not a length like 48m"),
        (["--windows", "12m", "--goal", "lots"], 2, "'lots' is not a number"),
        (["--windows", "12m", "-j", "0"], 2, "'0' must be at least 1"),
        (["--windows", "12m", "--start", "2030-01-01"], 2, "no window starts on 2030-01-01"),
        (["--windows", "12m", "--vary", "investor.crypto_share_point"], 2, "is not KEY=V1,V2"),
        (
            ["--windows", "12m", "--vary", "investor.crypto_share_point=0,2"],
            78,
            "investor.crypto_share_point: Input should be less than or equal to 1",
        ),
        (
            ["--windows", "12m", "--vary", "policy.rebalance_too=band"],
            78,
            "policy.rebalance_too: unknown key (did you mean 'rebalance_to'?)",
        ),
        (
            ["--windows", "12m", "--vary", "exchange.mode=read-only"],
            78,
            "not a setting a simulation reads",
        ),
        (["--windows", "12m", "--windfall", "2024-01-01:100"], 2, "not to every window"),
        # An events file would be ignored by every window: refused, never silently dropped.
        (["--windows", "12m", "--events", "events.csv"], 2, "not to every window"),
        (["--step", "1m"], 2, "--step is for a sweep: give --windows LENGTH with it"),
        (["--goal", "5"], 2, "--goal is for a sweep"),
        (
            ["--windows", "12m", "--cluster", "tcp://127.0.0.1:1", "-j", "2"],
            2,
            "with --cluster, give neither",
        ),
    ],
)
def test_bad_input_is_refused_and_nothing_is_written(sweep, tmp_path, args, code, message):
    db, chart = tmp_path / "sweep.db", tmp_path / "sweep.png"
    result = sweep(*args, "--db", str(db), "--chart", str(chart))
    assert result.returncode == code, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""
    # No database, chart or state (matplotlib keeps a cache of its own in XDG_CONFIG_HOME).
    assert {p.name for p in tmp_path.iterdir()} - {"xdg-config"} == {"config.toml"}


def test_a_bad_argument_with_json_is_answered_in_json(sweep):
    result = sweep("--windows", "5y", "--json")
    assert result.returncode == 2
    assert json.loads(result.stdout)["error"].startswith("a 5y window is longer than the history")


def test_the_chart_of_a_sweep(sweep, tmp_path):
    chart = tmp_path / "sweep.png"
    result = sweep("--windows", "6m", "--step", "12m", "--goal", "20000", "--chart", str(chart))
    assert result.returncode == 0, result.stderr
    assert chart.read_bytes()[:4] == b"\x89PNG" and f"chart: {chart}" in result.stdout


def test_a_sweeps_chart_never_replaces_its_database(sweep, tmp_path):
    """`--db` and `--chart` at one file: the chart had replaced the sweep's database."""
    both = tmp_path / "sweep.png"
    result = sweep("--windows", "6m", "--step", "12m", "--db", str(both), "--chart", str(both))
    assert result.returncode == 73, result.stderr
    assert f"--chart {both}: is the sweep's --db: left as it is" in result.stderr
    assert not both.exists() and result.stdout == ""


# --- progress, interruption ---------------------------------------------------------------


def run_on_a_terminal(*args: str) -> tuple[int, str]:
    """Run the CLI with its stderr on a pseudo-terminal; its exit code and what it wrote there."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [CONSOLE_SCRIPT, *args], stdout=subprocess.PIPE, stderr=follower, text=True
    )
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closed: the process ended
            break
        if not chunk:
            break
        seen += chunk
    proc.communicate(timeout=120)
    os.close(leader)
    return proc.returncode, seen.decode()


def test_progress_on_a_terminal_only(sweep, write_config):
    config = str(write_config())
    args = ("--config", config, "simulate", "--windows", "6m", "--step", "9m")
    code, shown = run_on_a_terminal(*args, "-j", "2")
    assert code == 0
    assert "sweeping [" in shown and "0/5 windows" in shown and "5/5 windows, done" in shown
    assert "left" in shown  # the time left, from the windows done
    code, shown = run_on_a_terminal(*args, "--json")
    assert code == 0 and "sweeping" not in shown
    piped = sweep("--windows", "6m", "--step", "9m")
    assert piped.returncode == 0 and "sweeping" not in piped.stderr


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def test_ctrl_c_stops_the_workers_and_writes_nothing(write_config, tmp_path):
    db = tmp_path / "out" / "sweep.db"
    db.parent.mkdir()
    # As from a terminal: its own process group, which Ctrl-C signals whole.
    proc = subprocess.Popen(
        [CONSOLE_SCRIPT, "--config", str(write_config()), "simulate", "--windows", "12m"]
        + ["-j", "2", "--db", str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        cwd=tmp_path,
    )
    deadline = time.monotonic() + 60
    while len(workers := children(proc.pid)) < 2 and proc.poll() is None:
        assert time.monotonic() < deadline, "no workers started"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "stagewise: interrupted" in err and "Traceback" not in err and out == ""
    assert list(db.parent.iterdir()) == []  # no database, whole or half
    for worker in workers:  # stopped, not orphaned
        assert (
            not Path(f"/proc/{worker}").exists()
            or "Z" in Path(f"/proc/{worker}/stat").read_text().split()[2]
        )


# --- beyond one machine ---------------------------------------------------------------------


def test_a_dask_cluster_runs_the_same_windows(sweep):
    distributed = pytest.importorskip("distributed")
    args = ("--windows", "6m", "--step", "12m", "--vary", "policy.rebalance_to=target,band")
    local = sweep_json(sweep, *args, "-j", "2")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        on_cluster = sweep_json(sweep, *args, "--cluster", cluster.scheduler_address)
        with distributed.Client(cluster) as client:  # the sweep's inputs were dropped
            plugins = client.run(lambda dask_worker: sorted(dask_worker.plugins))
    assert len(local["windows"]) == 2 * 4
    assert on_cluster["windows"] == local["windows"]
    assert all(not any("stagewise" in p for p in names) for names in plugins.values())


def test_without_dask_the_cluster_option_says_how_to_install_it(sweep, tmp_path):
    stub = tmp_path / "no-dask" / "distributed"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text("raise ImportError('No module named distributed')\n")
    env = {"PYTHONPATH": str(stub.parent)}
    result = sweep("--windows", "12m", "--cluster", "tcp://127.0.0.1:8786", env=env)
    assert result.returncode == 78
    assert "--cluster needs dask.distributed" in result.stderr
    assert "pip install 'stagewise[cluster]'" in result.stderr and "Traceback" not in result.stderr
