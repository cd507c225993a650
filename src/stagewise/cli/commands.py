"""The daemon's commands: run, once, proposals, pause/resume (status and windfall have their
own modules), and what they share: the clock, the logs, the store, the times and tables shown."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stagewise import logs
from stagewise.cli.arguments import aware, config_source, given_db, load, read_store
from stagewise.cli.output import EX_FAILURE, EX_OK, emit_json
from stagewise.money import amount_text, price_text
from stagewise.periods import Job
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
    from stagewise.errors import StagewiseError, UsageError
    from stagewise.runtime import open_runtime, seed_paper
    from stagewise.store import Store

    config = load(args, writes=True)
    setup_logs(config)
    now = now_utc()
    at = aware(args.at, config).astimezone(UTC) if args.at else None
    if args.record and at is None:
        raise UsageError("--record needs --at (the moment of the period to run)")
    if args.record and at is not None and at > now:
        raise UsageError(
            f"--at {args.at.isoformat()} is in the future: a future period cannot be recorded "
            "(its prices are not known yet); without --record it is a dry run"
        )
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

    return Store.open_state(path)


def cmd_proposals(args: argparse.Namespace) -> int:
    config = load(args)
    path = config.state_path if args.db is None else given_db(args.db)
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
