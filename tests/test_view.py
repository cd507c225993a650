"""`stagewise view`: Datasette on 127.0.0.1, read-only, against the state file, with the
shipped table descriptions and canned queries (config/datasette.yml): each query's JSON is
read over HTTP from a real Datasette on a free loopback port."""

from __future__ import annotations

import hashlib
import json
import signal
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from stagewise.settings import load_config

QUERIES = (
    "last_run_proposals",
    "period_proposals",
    "holdings_vs_targets",
    "runs_by_status",
    "failures",
    "paper_ledger",
    "notifications_sent",
    "index_compositions",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str) -> object:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.loads(answer.read())


def wait_until_served(base: str, daemon, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert daemon.proc.poll() is None, "\n".join(daemon.stderr[-20:])
        try:
            get(f"{base}/-/versions.json")
            return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)
    raise AssertionError("Datasette did not answer")


@pytest.fixture
def viewed_state(standin_config, cli, tmp_path: Path) -> tuple[Path, Path]:
    """A config whose state file (mine.db: Datasette names its database 'mine') holds a paper
    DCA and a rebalance with their orders, snapshots and ledger."""
    config = standin_config({"state": {"path": str(tmp_path / "state" / "mine.db")}})
    for job in ("dca", "rebalance"):
        done = cli("once", job, "--config", str(config))
        assert done.returncode == 0, done.stderr
    return config, load_config(config).settings.state.path


def test_view_serves_every_canned_query_read_only(viewed_state, spawn) -> None:
    config, db_path = viewed_state
    assert db_path.name == "mine.db"
    before = hashlib.sha256(db_path.read_bytes()).hexdigest()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    daemon = spawn("view", "--port", str(port), "--config", str(config))
    wait_until_served(base, daemon)
    meta = get(f"{base}/mine.json")
    period = get(f"{base}/mine/last_run_proposals.json?_shape=array")[0]["period"]
    answers = {q: get(f"{base}/mine/{q}.json?_shape=array&period={period}") for q in QUERIES}
    described = get(f"{base}/-/metadata.json")["databases"]["mine"]
    daemon.proc.send_signal(signal.SIGINT)
    assert daemon.finish(timeout=10) in (0, 130)

    assert set(QUERIES) <= {q["name"] for q in meta["queries"]}
    assert {"runs", "orders", "notifications"} <= set(described["tables"])
    assert described["tables"]["orders"]["description"].startswith("The orders each run")
    last = answers["last_run_proposals"]
    assert last and {r["period"] for r in last} == {period}
    assert period.startswith("rebalance:")  # the newest run with orders
    assert {r["period"] for r in answers["period_proposals"]} == {period}
    held = answers["holdings_vs_targets"]
    assert held and {"asset", "weight_pct", "target_pct", "drift_pts"} <= set(held[0])
    assert sum(r["weight_pct"] for r in held) == pytest.approx(100, abs=0.1)
    assert all(r["target_pct"] is not None and r["drift_pts"] is not None for r in held)
    assert sum(r["target_pct"] for r in held) == pytest.approx(100, abs=0.5)
    statuses = {(r["job"], r["status"]): r["runs"] for r in answers["runs_by_status"]}
    assert statuses[("dca", "ok")] == 1 and statuses[("rebalance", "ok")] >= 1
    assert answers["failures"] == []
    kinds = {r["kind"] for r in answers["paper_ledger"]}
    assert {"seed", "deposit", "fill"} <= kinds
    assert answers["notifications_sent"] == []
    assert hashlib.sha256(db_path.read_bytes()).hexdigest() == before  # nothing written
    assert any(f"{db_path} read-only at {base}/" in line for line in daemon.stdout)


def test_view_without_a_state_file_says_so(write_config, cli) -> None:
    done = cli("view", "--config", str(write_config()))
    assert done.returncode == 66
    assert "no state file at" in done.stderr and "Traceback" not in done.stderr


def test_view_on_a_port_in_use_says_so_before_it_claims_to_serve(viewed_state, cli) -> None:
    config, db_path = viewed_state
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = cli("view", "--config", str(config), "--port", str(port))
    assert done.returncode == 69, done.stderr
    assert done.stderr == (
        f"stagewise: port {port} on 127.0.0.1 is not free (Address already in use): "
        "choose another with --port\n"
    )
    assert "read-only at" not in done.stdout
