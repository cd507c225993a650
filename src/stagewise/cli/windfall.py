"""`stagewise windfall`: announce a bonus for the next job, list the windfalls, cancel one."""

from __future__ import annotations

import argparse
import sys

from stagewise.cli.arguments import load, read_store
from stagewise.cli.commands import minute, now_utc, open_store
from stagewise.cli.output import EX_OK
from stagewise.contributions import bonus_share_pct
from stagewise.errors import UsageError
from stagewise.planner.windfall import implausible, shown_amount
from stagewise.targets import targets_on

# As in cli/commands.py: the store and tabulate are imported by the functions that use them.


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

    config = load(args, writes=True)
    amount = args.amount
    now = now_utc()
    targets = targets_on(config.profile, now.astimezone(config.tz).date())
    share = bonus_share_pct(config, targets.stage)
    path = config.state_path
    store = open_store(path) if path.exists() else None  # a refused amount creates no file
    try:
        why = implausible(amount, store.portfolio_value() if store else None, config.quote)
        if why is not None:
            raise UsageError(f"{why}; check the amount; nothing recorded")
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
