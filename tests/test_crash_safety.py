"""Crash safety: `stagewise once` in paper mode SIGKILLed at random moments, over and over.

After every kill the state file must be sound: SQLite's integrity, every run whole (its
orders and their ledger entries together, or none of it), the paper ledger explaining the
account's value to the cent, no period twice; and re-running the killed period runs it at
most once."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest
import structlog
from support import reconcile

from stagewise.store import Store

CHAINS = 2  # independent state files, their processes killed side by side
STEPS = 12  # one period per month of 2025 in each chain
BUDGET_SECONDS = 30  # no new step starts after this
MIN_STEPS = 5
SEED = 20270101
# Kill moments, counted from the process's `markets_loaded` log line (it has imported
# everything and is about to seed and run: the run itself takes ~15 ms, then it exits).
KILL_AFTER_READY = (0.0, 0.05)
# Every fourth process is killed at a random moment from its start instead (0-1.5 s: mostly
# while still starting up).
KILL_FROM_START = (0.0, 1.5)


def job_and_time(step: int) -> tuple[str, str]:
    """Mostly monthly DCA; at each quarter's second month a quarterly rebalance."""
    month = step + 1
    if month % 3 == 2:
        return "rebalance", f"2025-{month:02d}-02T10:00"
    return "dca", f"2025-{month:02d}-01T09:00"


def period_of(job: str, at: str) -> str:
    if job == "dca":
        return f"dca:{at[:7]}"
    quarter = (int(at[5:7]) - 1) // 3 + 1
    return f"rebalance:portfolio:{at[:4]}-Q{quarter}"


def check_sound(db_path: Path, prices: dict[str, float]) -> dict[str, int]:
    """Assert every invariant of the state file; returns period -> run id."""
    store = Store.open(db_path)
    try:
        assert store.integrity_ok()
        q = store.conn.execute
        twice = q("SELECT period FROM runs GROUP BY period HAVING COUNT(*) > 1").fetchall()
        assert twice == []
        runs = {r["period"]: r for r in store.runs(limit=10_000)}
        for run in runs.values():
            orders = q("SELECT COUNT(*) FROM orders WHERE run_id = ?", [run["id"]]).fetchone()[0]
            kinds = dict(
                q(
                    "SELECT kind, COUNT(*) FROM ledger WHERE run_id = ? GROUP BY kind",
                    [run["id"]],
                ).fetchall()
            )
            if run["status"] != "ok":
                assert orders == 0 and kinds == {}, run
                continue
            # Each order fills with three entries: the asset, the quote, the fee.
            assert kinds.get("fill", 0) == 2 * orders and kinds.get("fee", 0) == orders, run
            assert kinds.get("deposit", 0) == (1 if run["job"] == "dca" else 0), run
            assert q("SELECT COUNT(*) FROM snapshots WHERE run_id = ?", [run["id"]]).fetchone()[0]
        loose = q("SELECT kind, COUNT(*) FROM ledger WHERE run_id IS NULL GROUP BY kind")
        assert dict(loose.fetchall()) in ({}, {"seed": 1})  # the seed, once, or not yet
        entries = store.ledger_entries()
        books = reconcile(entries, {**prices, "USDT": 1.0})
        assert books.unexplained == pytest.approx(0, abs=1e-6)
        balances = store.ledger_balances()
        assert all(amount > -1e-9 for amount in balances.values()), balances
        return {period: run["id"] for period, run in runs.items()}
    finally:
        store.close()


def rerun(config: Path, job: str, at: str) -> int:
    """`stagewise once JOB --at AT --record`, in-process (the real CLI entry point)."""
    from stagewise.cli import main

    saved = structlog.get_config()
    try:
        return main(["once", job, "--at", at, "--record", "--config", str(config)])
    finally:
        structlog.configure(**saved)


def test_sigkill_at_random_moments_never_leaves_a_partial_run(
    standin_config, plan_prices, spawn, tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    chains = []
    for n in range(CHAINS):
        state = tmp_path / f"chain{n}" / "stagewise.db"
        config = standin_config({"state": {"path": str(state)}}, name=f"chain{n}.toml")
        chains.append((config, state))

    began = time.monotonic()
    steps = killed = mid_run = 0
    for step in range(STEPS):
        if time.monotonic() - began > BUDGET_SECONDS:
            break
        job, at = job_and_time(step)
        key = period_of(job, at)
        running = []
        for config, _state in chains:
            from_start = (step * CHAINS + len(running)) % 4 == 3
            window = KILL_FROM_START if from_start else KILL_AFTER_READY
            daemon = spawn("once", job, "--at", at, "--record", "--config", str(config))
            running.append([daemon, from_start, rng.uniform(*window), time.monotonic(), None])
        deadline = time.monotonic() + 30
        while any(d.proc.poll() is None for d, *_ in running):
            assert time.monotonic() < deadline, "a `once` did not end"
            for entry in running:
                daemon, from_start, delay, started, ready = entry
                if daemon.proc.poll() is not None:
                    continue
                loaded = ready is None and not from_start and daemon.events()
                if loaded and any(e.get("event") == "markets_loaded" for e in loaded):
                    entry[4] = ready = time.monotonic()
                anchor = started if from_start else ready
                if anchor is not None and time.monotonic() - anchor >= delay:
                    daemon.proc.kill()
            time.sleep(0.002)

        for (config, state), (daemon, *_) in zip(chains, running, strict=True):
            code = daemon.finish(timeout=10)
            was_killed = code == -9
            killed += was_killed
            events = {e.get("event") for e in daemon.events()}
            if not state.exists():
                continue  # killed before it opened the state file
            before = check_sound(state, plan_prices)
            if was_killed and "markets_loaded" in events and key not in before:
                mid_run += 1
            if not was_killed:
                assert code == 0, daemon.stderr[-5:]
                assert key in before
            # Re-run the period: it runs if (and only if) the killed process had not recorded it.
            assert rerun(config, job, at) == 0
            after = check_sound(state, plan_prices)
            assert key in after
            if key in before:
                assert after == before  # nothing ran again
            # ... and runs nothing but the periods of this fire (a rebalance owns one per sleeve).
            suffix = key.rsplit(":", 1)[1]
            new = set(after) - set(before)
            assert all(p.startswith(f"{job}:") and p.endswith(f":{suffix}") for p in new), new
            assert rerun(config, job, at) == 0
            assert check_sound(state, plan_prices) == after  # and never a second time
        steps += 1

    assert steps >= MIN_STEPS
    assert killed >= steps  # most processes died by SIGKILL, not by finishing
    print(f"{steps} steps x {CHAINS} chains: {killed} killed, {mid_run} before their run was in")
