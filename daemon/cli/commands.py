"""The daemon's commands: run, once, status, proposals, pause/resume, windfall."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stagewise import logs
from stagewise.cli import (
    EX_FAILURE,
    EX_OK,
    aware,
    config_source,
    emit_json,
    load,
    pct,
    targets_json,
)
from stagewise.errors import StagewiseError
from stagewise.settings import Config
from stagewise.targets import targets_on

if TYPE_CHECKING:
    from stagewise.store import Store

# The exchange, store and scheduler modules (ccxt, SQLite, APScheduler) are imported by
# the commands that use them: `stagewise stage` or `--help` should not wait for ccxt. Likewise
# tabulate is imported by the functions that print tables: the daemon (`run`) prints none and
# should not keep it in memory.


def setup_logs(config: Config) -> None:
    ex = config.settings.exchange
    secrets = [s.get_secret_value() for s in (ex.api_key, ex.secret, ex.password) if s]
    logs.configure(config.settings.log.level, config.settings.log.format, secrets=secrets)


def now_utc() -> datetime:
    return datetime.now(UTC)


def cmd_run(args: argparse.Namespace) -> int:
    from stagewise.service import Service

    config = load(args, writes=True)
    setup_logs(config)
    return Service(config_source(args).path, config).serve()


def cmd_once(args: argparse.Namespace) -> int:
    from stagewise.runtime import open_runtime, seed_paper
    from stagewise.scheduler import schedules

    config = load(args, writes=True)
    setup_logs(config)
    now = aware(args.at, config).astimezone(UTC) if args.at else now_utc()
    stage = targets_on(config, now.astimezone(config.tz).date()).stage
    sched = next(
        (
            s
            for s in schedules(config)
            if s.job == args.job
            and (args.job != "rebalance" or s.cadence == stage.portfolio_rebalance)
        ),
        None,
    )
    if sched is None:  # only the drift watch can be switched off
        raise StagewiseError(
            f"the {args.job} job is switched off in the config "
            "(schedule.drift_enabled = false): nothing to run"
        )
    from tabulate import tabulate

    runtime = open_runtime(config)
    try:
        runtime.check_exchange(now)
        seed_paper(runtime, now)
        outcomes = runtime.jobs.fire(sched, now, now)
        if not outcomes:
            keys = ", ".join(k for k, _ in runtime.jobs.periods_for(sched, now))
            if args.json:  # no outcome: an empty list, the reason on stderr
                emit_json([])
            print(
                f"nothing to run: period {keys} is already recorded",
                file=sys.stderr if args.json else sys.stdout,
            )
            return EX_OK
        rows = [[o.period, o.status, o.orders, o.error or ""] for o in outcomes]
        if args.json:
            emit_json(
                [
                    {"period": o.period, "status": o.status, "orders": o.orders, "error": o.error}
                    for o in outcomes
                ]
            )
        else:
            print(tabulate(rows, headers=["period", "status", "orders", "note"]))
            periods = {o.period for o in outcomes}
            mine = [p for p in runtime.store.proposals() if p["period"] in periods]
            if mine:
                print()
                print(render_proposals(mine))
        return EX_FAILURE if any(o.status == "failed" for o in outcomes) else EX_OK
    finally:
        runtime.close()


def open_store(path: Path) -> Store:
    from stagewise.store import Store

    return Store.open(path)


def read_store(path: Path) -> Store | None:
    """The state file at `path`, read-only (a read command creates nothing); None when
    there is none yet."""
    from stagewise.store import Store

    return Store.read(path) if path.exists() else None


def cmd_status(args: argparse.Namespace) -> int:
    from stagewise.store import Store

    config = load(args)
    now = now_utc()
    state_path = config.settings.state.path
    store = read_store(state_path)
    try:
        data = status_data(config, store or Store.open_memory(), now)
    finally:
        if store is not None:
            store.close()
    data["state"] = {"path": str(state_path), "exists": store is not None}
    if args.json:
        emit_json(data)
    else:
        print(render_status(data))
    return EX_OK


def status_data(config: Config, store: Store, now: datetime) -> dict[str, Any]:
    """Everything `status` shows, from the store and the config alone (no network)."""
    from stagewise.scheduler import schedules

    targets = targets_on(config, now.astimezone(config.tz).date())
    state = store.plan_state()
    latest = store.latest_snapshot()
    holdings: list[dict[str, Any]] = []
    snapshot_at = None
    if latest is not None:
        snapshot_at, assets = latest
        total = sum(a["value"] or 0 for a in assets.values())
        for asset in sorted(set(assets) | set(targets.weights)):
            row = assets.get(asset, {"amount": 0.0, "price": None, "value": 0.0})
            weight = (row["value"] or 0) / total if total else 0.0
            target = targets.weights.get(asset, targets.cash if asset == config.quote else 0.0)
            holdings.append(
                {
                    "asset": asset,
                    "amount": row["amount"],
                    "value": row["value"],
                    "weight": weight,
                    "target": target,
                    "drift": weight - target,
                }
            )
    last_runs = {}
    for job in ("dca", "rebalance", "drift", "profit", "withdraw", "reassess", "windfall"):
        run = store.last_run(job)
        if run:
            last_runs[job] = {
                "period": run["period"],
                "status": run["status"],
                "at": run["finished_at"].isoformat(),
                "error": run["error"],
            }
    next_runs = {s.name: (s.next_after(now) or now).isoformat() for s in schedules(config)}
    return {
        "now": now.isoformat(),
        "mode": config.settings.exchange.mode,
        "targets": targets_json(targets),
        "paused": state.paused,
        "pause_reason": state.pause_reason,
        "carry": state.carry,
        "snapshot_at": snapshot_at.isoformat() if snapshot_at else None,
        "holdings": holdings,
        "last_runs": last_runs,
        "next_runs": next_runs,
        "pending_windfalls": [w.amount for w in store.pending_windfalls()],
    }


def render_status(d: dict[str, Any]) -> str:
    from tabulate import tabulate

    t = d["targets"]
    state = d["state"]
    lines = [
        f"state: {state['path']}"
        + ("" if state["exists"] else " (no file yet: nothing has run with this config)"),
        f"mode {d['mode']}; age {t['age']}, stage {t['stage']['name']}",
    ]
    if t["glide"]:
        g = t["glide"]
        lines.append(f"glide path {g['from']} -> {g['to']}: step {g['step']} of {g['steps']}")
    lines.append(
        f"crypto share target {pct(t['crypto_share'])} "
        f"(band {pct(t['crypto_band'][0])} .. {pct(t['crypto_band'][1])})"
    )
    if d["paused"]:
        lines.append(f"PAUSED (emergency rule): {d['pause_reason']} -- `stagewise resume` ends it")
    if d["carry"]:
        lines.append(f"carried DCA money: {d['carry']:.2f}")
    if d["pending_windfalls"]:
        lines.append(f"windfalls waiting for the next job: {d['pending_windfalls']}")
    lines.append("")
    if d["holdings"]:
        lines.append(f"holdings at the last snapshot ({d['snapshot_at']}):")
        rows = [
            [
                h["asset"],
                f"{h['amount']:.8g}",
                "" if h["value"] is None else f"{h['value']:.2f}",
                pct(h["weight"]),
                pct(h["target"]),
                f"{h['drift'] * 100:+.2f}",
            ]
            for h in d["holdings"]
        ]
        lines.append(
            tabulate(
                rows,
                headers=["asset", "amount", "value", "weight", "target", "drift pts"],
                disable_numparse=True,
            )
        )
    else:
        lines.append("no snapshot recorded yet (run `stagewise once dca` or start the daemon)")
    lines.append("")
    rows = [
        [job, r["period"], r["status"], r["at"], r["error"] or ""]
        for job, r in d["last_runs"].items()
    ]
    if rows:
        lines.append(tabulate(rows, headers=["job", "last period", "status", "at", "note"]))
        lines.append("")
    rows = sorted(d["next_runs"].items(), key=lambda kv: kv[1])
    lines.append(tabulate(rows, headers=["schedule", "next run"]))
    return "\n".join(lines)


def cmd_proposals(args: argparse.Namespace) -> int:
    config = load(args)
    path = args.db or config.settings.state.path
    if args.db is not None and not args.db.is_file():
        from stagewise.errors import InputMissing

        # A mistyped path must not read as "no proposals".
        raise InputMissing(f"no state file at {args.db}")
    store = read_store(path)
    rows = []
    if store is not None:
        try:
            since = aware(args.since, config) if args.since else None
            rows = store.proposals(since=since, job=args.job)[: args.limit]
        finally:
            store.close()
    if args.json:
        emit_json(rows)
    elif store is None:
        print(f"no proposals recorded: no state file at {path} yet (nothing has run)")
    elif not rows:
        print(f"no proposals recorded in {path}")
    else:
        print(render_proposals(rows))
    return EX_OK


def render_proposals(rows: list[dict[str, Any]]) -> str:
    from tabulate import tabulate

    table = [
        [
            r["period"],
            r["side"],
            f"{r['amount']:.8g}",
            r["symbol"],
            f"{r['price']:.8g}",
            f"{r['notional']:.2f}",
            f"{r['fee']:.2f}",
            r["reason"],
        ]
        for r in rows
    ]
    return tabulate(
        table,
        headers=["period", "side", "amount", "symbol", "est. price", "notional", "fee", "why"],
        disable_numparse=True,
    )


def cmd_pause(args: argparse.Namespace) -> int:
    config = load(args, writes=True)
    store = open_store(config.settings.state.path)
    try:
        store.set_paused(True, args.reason, now_utc())
    finally:
        store.close()
    print(
        f"paused: contributions stop from the next job; nothing is sold because of it. "
        f"Reason: {args.reason}. `stagewise resume` ends the pause."
    )
    return EX_OK


def cmd_resume(args: argparse.Namespace) -> int:
    config = load(args, writes=True)
    store = open_store(config.settings.state.path)
    try:
        was = store.plan_state().paused
        store.set_paused(False, "", now_utc())
    finally:
        store.close()
    print("resumed: contributions restart at the next DCA run" if was else "was not paused")
    return EX_OK


def cmd_windfall(args: argparse.Namespace) -> int:
    config = load(args, writes=True)
    now = now_utc()
    targets = targets_on(config, now.astimezone(config.tz).date())
    chosen = config.settings.investor.bonus_share_pct
    share = chosen if chosen is not None else targets.stage.contribution.bonus_share_pct.min
    store = open_store(config.settings.state.path)
    try:
        windfall_id = store.add_pending_windfall(args.amount, now)
    finally:
        store.close()
    print(
        f"windfall #{windfall_id} of {args.amount:.2f} recorded: the {targets.stage.name} stage "
        f"invests {share:g} % of bonuses ({args.amount * share / 100:.2f}) at the next job."
    )
    if share == 0:
        print("this stage invests no share of bonuses: nothing will be bought", file=sys.stderr)
    return EX_OK
