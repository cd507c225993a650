"""`stagewise status`: holdings against targets, the stage and glide path, the pause, the
last and next runs, from the store and the config alone (no network)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING, Any

from stagewise import keyrights
from stagewise.cli.arguments import load, read_store
from stagewise.cli.commands import now_utc, render_run_notes
from stagewise.cli.output import EX_OK, emit_json, money_json, pct, render_money, targets_json
from stagewise.cli.windfall import shown_amount
from stagewise.holdings import holdings, priced
from stagewise.money import amount_text
from stagewise.periods import JOBS
from stagewise.settings import Config
from stagewise.targets import targets_on

if TYPE_CHECKING:
    from stagewise.store import Store

# As in cli/commands.py: the store and tabulate are imported by the functions that use them.

# What `status` says of a state path without a state, by whether a file is there.
NOTHING_YET = {
    False: "no file yet: nothing has run with this config",
    True: "nothing recorded yet: nothing has run with this config",
}


def cmd_status(args: argparse.Namespace) -> int:
    from stagewise.store import Store

    config = load(args)
    now = now_utc()
    state_path = config.state_path
    store = read_store(state_path)
    try:
        data = status_data(config, store or Store.open_memory(), now)
    finally:
        if store is not None:
            store.close()
    # exists: a state to read; file: a file at the path (one that holds nothing yet: no state)
    data["state"] = {
        "path": str(state_path),
        "exists": store is not None,
        "file": state_path.exists(),
    }
    if args.json:
        emit_json(data)
    else:
        print(render_status(data))
    return EX_OK


def status_data(config: Config, store: Store, now: datetime) -> dict[str, Any]:
    """Everything `status` shows, from the store and the config alone (no network)."""
    from stagewise.cli.indices import held_indices
    from stagewise.schedules import schedules

    day = now.astimezone(config.tz).date()
    recorded = store.compositions(at=now)
    targets = targets_on(config.profile, day, {i: c["weights"] for i, c in recorded.items()})
    state = store.plan_state()
    latest = store.latest_snapshot()
    rows: list[dict[str, Any]] = []
    snapshot_at = None
    if latest is not None:
        snapshot_at = latest[0]
        assets: Mapping[str, Mapping[str, Any]] = latest[1]
        if config.settings.exchange.mode == "paper":
            # The paper ledger holds the last run's fills; the snapshot is from before them.
            assets = priced(store.ledger_balances(), assets, config.quote)
        policy = config.policy(allow_deposit=False)
        rows = [asdict(h) for h in holdings(assets, targets, policy, config.quote)]
    last_runs = {}
    for job in JOBS:
        run = store.last_run(job)
        if run:
            last_runs[job] = {
                "period": run["period"],
                "status": run["status"],
                "at": run["finished_at"].isoformat(),
                "error": run["error"],
                "notes": run["notes"],
                "deposit_needed": run["deposit_needed"],
            }
    next_runs = {
        s.name: (s.next_after(now) or now).astimezone(config.tz).isoformat()
        for s in schedules(config)
    }
    pause = store.pause()
    key = keyrights.on_record(store)
    return {
        "now": now.isoformat(),
        "mode": config.settings.exchange.mode,
        "quote": config.quote,
        "targets": targets_json(targets, day),
        "indices": held_indices(config, targets.sleeves, recorded),
        **money_json(config, day),  # retirement, contribution, withdrawal_pct
        "paused": state.paused,
        "pause_reason": state.pause_reason,
        "paused_since": pause.since.astimezone(config.tz).isoformat() if pause else None,
        "carry": state.carry,
        "profit_to_move": state.profit_to_move,
        "snapshot_at": snapshot_at.isoformat() if snapshot_at else None,
        "holdings": rows,
        "last_runs": last_runs,
        "next_runs": next_runs,
        "pending_windfalls": [
            {"id": w.id, "at": w.at.astimezone(config.tz).isoformat(), "amount": w.amount}
            for w in store.pending_windfalls()
        ],
        "api_key": key and {**key, "at": key["at"].isoformat()},
        "notifications": store.notice_counts(),
    }


def render_status(d: dict[str, Any]) -> str:
    from tabulate import tabulate

    from stagewise.cli.indices import render_held

    t = d["targets"]
    state = d["state"]
    lines = [
        f"state: {state['path']}" + ("" if state["exists"] else f" ({NOTHING_YET[state['file']]})"),
        f"mode {d['mode']}; age {t['age']}, stage {t['stage']['name']}",
    ]
    if t["glide"]:
        g = t["glide"]
        lines.append(f"glide path {g['from']} -> {g['to']}: step {g['step']} of {g['steps']}")
    lines.append(
        f"crypto share target {pct(t['crypto_share'])} "
        f"(band {pct(t['crypto_band'][0])} .. {pct(t['crypto_band'][1])})"
    )
    lines += render_money(d, d["quote"])
    lines += render_held(d["indices"])
    if d["paused"]:
        since = f" (since {local_minute(d['paused_since'])})" if d["paused_since"] else ""
        lines.append(
            f"PAUSED (emergency rule): {d['pause_reason']}{since} -- `stagewise resume` ends it"
        )
    key = d["api_key"]
    if key and not key["read_only"]:
        rights = " and ".join(r for r in ("trade", "withdraw") if key[r])
        lines.append(
            f"WARNING: the API key can {rights} ({key['exchange']} said so at {key['at']}): "
            f"{keyrights.ADVICE}"
        )
    told = d["notifications"]
    if told["failed"] or told["interrupted"]:
        lines.append(
            f"notifications: {told['sent']} sent, {told['failed']} failed (last at "
            f"{told['last_failed_at'] or '-'}), {told['interrupted']} interrupted: see the "
            "`notification_failed` events in the log"
        )
    if d["carry"]:
        lines.append(f"carried DCA money: {d['carry']:.2f}")
    if d["profit_to_move"]:
        lines.append(
            f"proceeds to move off the account (profit taken, to your traditional investments; "
            f"withdrawals, to you): "
            f"{d['profit_to_move']:,.2f} {d['quote']} (set aside: not spent)"
        )
    if d["pending_windfalls"]:
        lines.append("")
        lines.append("windfalls waiting for the next job (`stagewise windfall cancel ID`):")
        rows = [
            [w["id"], local_minute(w["at"]), shown_amount(w["amount"])]
            for w in d["pending_windfalls"]
        ]
        lines.append(
            tabulate(
                rows,
                headers=["id", "announced", "amount"],
                colalign=("right", "left", "right"),
                disable_numparse=True,
            )
        )
    lines.append("")
    if d["holdings"]:
        if d["mode"] == "paper":
            lines.append(
                f"holdings (paper ledger, priced at the last snapshot {d['snapshot_at']}):"
            )
        else:
            lines.append(f"holdings at the last snapshot ({d['snapshot_at']}):")
        rows = [
            [
                h["asset"],
                amount_text(h["amount"]),
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
    said = render_run_notes(d["last_runs"].values(), d["quote"])
    if said:
        lines += ["what the last runs said:", said, ""]
    rows = sorted(d["next_runs"].items(), key=lambda kv: kv[1])
    lines.append(tabulate(rows, headers=["schedule", "next run"]))
    return "\n".join(lines)


def local_minute(text: str) -> str:
    """An ISO time as status and the windfall list show it: to the minute, in its own zone."""
    return datetime.fromisoformat(text).strftime("%Y-%m-%d %H:%M")
