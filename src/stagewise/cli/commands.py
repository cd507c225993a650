"""The daemon's commands: run, once, status, proposals, pause/resume, windfall."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stagewise import keyrights, logs
from stagewise.cli.arguments import aware, config_source, load, read_store
from stagewise.cli.output import (
    EX_FAILURE,
    EX_OK,
    EX_USAGE,
    emit_json,
    money_json,
    pct,
    render_money,
    targets_json,
)
from stagewise.contributions import bonus_share_pct
from stagewise.errors import UsageError
from stagewise.holdings import holdings, priced
from stagewise.money import amount_text, price_text
from stagewise.periods import JOBS, Job
from stagewise.settings import Config
from stagewise.targets import targets_on

if TYPE_CHECKING:
    from stagewise.jobs import Outcome
    from stagewise.runtime import Runtime
    from stagewise.schedules import Schedule
    from stagewise.store import Store

# The exchange, store and scheduler modules (ccxt, SQLite, APScheduler) are imported by
# the commands that use them: `stagewise stage` or `--help` should not wait for ccxt. Likewise
# tabulate is imported by the functions that print tables: the daemon (`run`) prints none and
# should not keep it in memory.


def setup_logs(config: Config) -> None:
    ex = config.settings.exchange
    secrets = [s.get_secret_value() for s in (ex.api_key, ex.secret, ex.password) if s]
    urls = config.settings.notify.urls
    if urls is not None:  # the whole value and each URL in it (space- or comma-separated)
        text = urls.get_secret_value()
        secrets += [text, *(u for u in text.replace(",", " ").split() if len(u) > 3)]
    logs.configure(config.settings.log.level, config.settings.log.format, secrets=secrets)


def now_utc() -> datetime:
    return datetime.now(UTC)


def cmd_run(args: argparse.Namespace) -> int:
    from stagewise.service import Service

    config = load(args, writes=True)
    setup_logs(config)
    return Service(config_source(args).path, config).serve()


def cmd_once(args: argparse.Namespace) -> int:
    from stagewise.errors import StagewiseError
    from stagewise.runtime import open_runtime, seed_paper
    from stagewise.store import Store

    config = load(args, writes=True)
    setup_logs(config)
    now = now_utc()
    at = aware(args.at, config).astimezone(UTC) if args.at else None
    if args.record and at is None:
        print("stagewise: --record needs --at (the moment of the period to run)", file=sys.stderr)
        return EX_USAGE
    if args.record and at is not None and at > now:
        print(
            f"stagewise: --at {args.at.isoformat()} is in the future: a future period cannot "
            "be recorded (its prices are not known yet); without --record it is a dry run",
            file=sys.stderr,
        )
        return EX_USAGE
    dry = at is not None and not args.record
    sched = _schedule_for(config, args.job, at or now)
    if sched is None:  # only the drift watch can be switched off
        raise StagewiseError(
            f"the {args.job} job is switched off in the config "
            "(schedule.drift_enabled = false): nothing to run"
        )
    if dry:
        print(
            f"dry run as at {args.at.isoformat()}: the plan of that day with today's balances "
            "and prices; nothing is recorded (--record runs a past period for real)",
            file=sys.stderr,
        )
        runtime = open_runtime(config, store=Store.copy(config.state_path))
    else:
        runtime = open_runtime(config, clock=now_utc)
    # A dry run plans as at --at; a recorded run plans now, for the period of --at (as the
    # daemon catches up a missed period).
    scheduled_at, decide_at = (at, at) if dry and at is not None else (at or now, now)
    try:
        try:
            runtime.check_exchange(now)
            seed_paper(runtime, decide_at)
        except StagewiseError as e:
            if not dry:  # recorded like a scheduled run: a failed attempt, the period open
                runtime.jobs.record_failed(sched, scheduled_at, now, str(e))
            raise
        outcomes = runtime.jobs.fire(sched, scheduled_at, decide_at)
        return _report_once(args, runtime, sched, scheduled_at, outcomes)
    finally:
        runtime.close()


def _schedule_for(config: Config, job: Job, at: datetime) -> Schedule | None:
    """The schedule `once JOB` fires: the job's (a rebalance: the stage's portfolio cadence
    on the day of `at`); None when the config switches it off."""
    from stagewise.schedules import schedules

    stage = targets_on(config.profile, at.astimezone(config.tz).date()).stage
    return next(
        (
            s
            for s in schedules(config)
            if s.job == job and (job != "rebalance" or s.cadence == stage.portfolio_rebalance)
        ),
        None,
    )


def _report_once(
    args: argparse.Namespace,
    runtime: Runtime,
    sched: Schedule,
    scheduled_at: datetime,
    outcomes: list[Outcome],
) -> int:
    from tabulate import tabulate

    if not outcomes:
        keys = ", ".join(k for k, _ in runtime.jobs.periods_for(sched, scheduled_at))
        if args.json:  # no outcome: an empty list, the reason on stderr
            emit_json([])
        print(
            f"nothing to run: period {keys} is already recorded",
            file=sys.stderr if args.json else sys.stdout,
        )
        return EX_OK
    if args.json:
        emit_json(
            [
                {"period": o.period, "status": o.status, "orders": o.orders, "error": o.error}
                for o in outcomes
            ]
        )
    else:
        rows = [[o.period, o.status, o.orders, o.error or ""] for o in outcomes]
        print(tabulate(rows, headers=["period", "status", "orders", "note"]))
        periods = {o.period for o in outcomes}
        mine = [p for p in runtime.store.proposals() if p["period"] in periods]
        tz, quote = runtime.config.tz, runtime.config.quote
        if mine:
            print()
            print(render_proposals(mine, tz))
        newest: dict[str, dict[str, Any]] = {}
        for run in runtime.store.runs(limit=4 * len(outcomes) + 10):
            if run["period"] in periods:
                newest.setdefault(run["period"], run)
        said = render_run_notes(reversed(newest.values()), quote)
        if said:
            print()
            print(said)
    return EX_FAILURE if any(o.status == "failed" for o in outcomes) else EX_OK


def open_store(path: Path) -> Store:
    from stagewise.store import Store

    return Store.open(path)


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
    data["state"] = {"path": str(state_path), "exists": store is not None}
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


def cmd_proposals(args: argparse.Namespace) -> int:
    config = load(args)
    path = args.db or config.state_path
    if args.db is not None and not args.db.is_file():
        from stagewise.errors import InputMissing

        # A mistyped path must not read as "no proposals".
        raise InputMissing(f"no state file at {args.db}")
    store = read_store(path)
    rows = []
    if store is not None:
        try:
            since = aware(args.since, config) if args.since else None
            rows = store.proposals(since=since, job=args.job, period=args.period)[: args.limit]
        finally:
            store.close()
    if args.json:
        emit_json(rows)
    elif store is None:
        print(f"no proposals recorded: no state file at {path} yet (nothing has run)")
    elif not rows:
        print(f"no proposals recorded in {path}")
    else:
        print(render_proposals(rows, config.tz))
        runs = {r["run_id"]: r for r in reversed(rows)}
        said = render_run_notes(runs.values(), config.quote)
        if said:
            print()
            print(said)
    return EX_OK


def render_proposals(rows: list[dict[str, Any]], tz: tzinfo) -> str:
    """The proposed orders as a table: amounts exactly as proposed (on the market's step),
    prices with the digits that matter, the day in the investor's time zone."""
    from tabulate import tabulate

    table = [
        [
            r["finished_at"].astimezone(tz).date().isoformat(),
            r["period"],
            r["side"],
            amount_text(r["amount"]),
            r["symbol"],
            price_text(r["price"]),
            f"{r['notional']:,.2f}",
            f"{r['fee']:,.2f}",
            r["reason"],
        ]
        for r in rows
    ]
    headers = ["date", "period", "side", "amount", "symbol", "est. price", "notional", "fee"]
    return tabulate(table, headers=[*headers, "why"], disable_numparse=True)


def render_run_notes(runs: Iterable[dict[str, Any]], quote: str) -> str:
    """What runs said beside their orders: the deposit a read-only DCA needs, the notes."""
    lines = []
    for run in runs:
        deposit = run.get("deposit_needed") or 0
        if deposit > 0:
            lines.append(
                f"{run['period']}: deposit {deposit:,.2f} {quote} on the account before placing "
                "its buys (stagewise cannot move money)"
            )
        lines += [f"{run['period']}: {note}" for note in run.get("notes") or ()]
    return "\n".join(lines)


def cmd_pause(args: argparse.Namespace) -> int:
    config = load(args, writes=True)
    store = open_store(config.state_path)
    try:
        before = store.set_paused(True, args.reason, now_utc(), replace=args.replace)
    finally:
        store.close()
    if before is None:
        print(
            f"paused: contributions stop from the next job; nothing is sold because of it. "
            f"Reason: {args.reason}. The guide: use your emergency fund first. "
            "`stagewise resume` ends the pause when things are stable."
        )
    elif args.replace and args.reason != before.reason:
        print(
            f"still paused, since {minute(before.since, config)}; the reason is now: "
            f"{args.reason} (was: {before.reason})"
        )
    else:
        print(
            f"already paused, since {minute(before.since, config)}: {before.reason}. Nothing "
            f"changed (`--replace` gives the pause the new reason); `stagewise resume` ends it."
        )
    return EX_OK


def cmd_resume(args: argparse.Namespace) -> int:
    config = load(args, writes=True)
    path = config.state_path
    before = None
    if path.exists():  # no state file: never paused (and none is made to say so)
        store = open_store(path)
        try:
            before = store.set_paused(False, "", now_utc())
        finally:
            store.close()
    if before is None:
        print("not paused: nothing to resume, nothing recorded")
    else:
        print(
            f"resumed: the pause since {minute(before.since, config)} ({before.reason}) has "
            "ended; contributions restart at the next DCA run"
        )
    return EX_OK


def minute(at: datetime, config: Config) -> str:
    """A stored time as a person reads it: to the minute, in the investor's time zone."""
    return at.astimezone(config.tz).strftime("%Y-%m-%d %H:%M %Z")


def cmd_windfall(args: argparse.Namespace) -> int:
    """`windfall AMOUNT`, `windfall list` or `windfall cancel ID`."""
    if args.amount == "cancel":
        if args.id is None:
            raise UsageError("`windfall cancel` needs the windfall's id (`windfall list` shows it)")
        return windfall_cancel(args)
    if args.id is not None:
        name = "list" if args.amount == "list" else "AMOUNT"
        raise UsageError(f"`windfall {name}` takes no id (only `windfall cancel ID` does)")
    return windfall_list(args) if args.amount == "list" else windfall_announce(args)


def windfall_announce(args: argparse.Namespace) -> int:
    from stagewise.planner.windfall import bonus_ceiling

    config = load(args, writes=True)
    amount = args.amount
    now = now_utc()
    targets = targets_on(config.profile, now.astimezone(config.tz).date())
    share = bonus_share_pct(config, targets.stage)
    path = config.state_path
    store = open_store(path) if path.exists() else None  # a refused amount creates no file
    try:
        value = portfolio_value(store) if store is not None else None
        plausible(amount, bonus_ceiling(value), value, config.quote)
        if store is None:
            store = open_store(path)
        windfall_id = store.add_pending_windfall(amount, now)
    finally:
        if store is not None:
            store.close()
    print(
        f"windfall #{windfall_id} of {amount:,.2f} {config.quote} recorded: the "
        f"{targets.stage.name} stage invests {share:g} % of bonuses "
        f"({amount * share / 100:,.2f}) at the next job."
    )
    if share == 0:
        print("this stage invests no share of bonuses: nothing will be bought", file=sys.stderr)
    return EX_OK


def portfolio_value(store: Store) -> float | None:
    """The portfolio's value at the last recorded snapshot; None before the first."""
    latest = store.latest_snapshot()
    return None if latest is None else sum(a["value"] or 0 for a in latest[1].values())


def plausible(amount: float, ceiling: float, value: float | None, quote: str) -> None:
    """Refuse (UsageError) a bonus too small to be money or above `ceiling` (a typo)."""
    from stagewise.money import QUOTE_EPSILON
    from stagewise.planner.windfall import BONUS_CEILING, BONUS_PORTFOLIO_MULTIPLE

    if amount < QUOTE_EPSILON:
        raise UsageError(
            f"a windfall of {amount:g} {quote} is too small to invest: at least "
            f"{QUOTE_EPSILON:g} {quote}; nothing recorded"
        )
    if amount <= ceiling:
        return
    times = f"{BONUS_PORTFOLIO_MULTIPLE} times the portfolio's"
    if value is None:
        why = f"while no portfolio value is recorded (then {times} value, if larger)"
    else:
        why = (
            f"the larger of {BONUS_CEILING:,.2f} {quote} and {times} last recorded value "
            f"({value:,.2f} {quote})"
        )
    raise UsageError(
        f"a windfall of {shown_amount(amount)} {quote} is not plausible: at most "
        f"{ceiling:,.2f} {quote}, {why}; check the amount; nothing recorded"
    )


def shown_amount(amount: float) -> str:
    """A windfall's amount to read: 5,000.00 (and 1e+308 for what an older version took)."""
    return f"{amount:,.2f}" if amount < 1e15 else f"{amount:.3g}"


def windfall_list(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    config = load(args)
    path = config.state_path
    store = read_store(path)
    if store is None:
        print(f"no windfalls announced: no state file at {path} yet")
        return EX_OK
    try:
        windfalls = store.windfalls()
    finally:
        store.close()
    if not windfalls:
        print(f"no windfalls announced in {path}")
        return EX_OK
    rows = [
        [
            w.id,
            minute(w.at, config),
            shown_amount(w.amount),
            w.status,
            "" if w.settled_at is None else minute(w.settled_at, config),
            w.period or "",
        ]
        for w in windfalls
    ]
    print(
        tabulate(
            rows,
            headers=["id", "announced", f"amount ({config.quote})", "status", "settled", "run"],
            colalign=("right", "left", "right", "left", "left", "left"),
            disable_numparse=True,
        )
    )
    return EX_OK


def windfall_cancel(args: argparse.Namespace) -> int:
    config = load(args, writes=True)
    path = config.state_path
    if not path.exists():  # nothing announced: no file is made to say so
        raise UsageError(f"there is no windfall #{args.id}: no state file at {path} yet")
    store = open_store(path)
    try:
        cancelled = store.cancel_windfall(args.id, now_utc(), config.settings.exchange.mode)
    finally:
        store.close()
    print(
        f"windfall #{cancelled.id} of {cancelled.amount:,.2f} {config.quote} (announced "
        f"{minute(cancelled.at, config)}) cancelled: no job will invest it"
    )
    return EX_OK
