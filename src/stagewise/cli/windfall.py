"""`stagewise windfall`: announce a bonus for the next job, list the windfalls, cancel one."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from stagewise.cli.arguments import load, read_store
from stagewise.cli.commands import minute, now_utc, open_store
from stagewise.cli.output import EX_OK
from stagewise.contributions import bonus_share_pct
from stagewise.errors import UsageError
from stagewise.targets import targets_on

if TYPE_CHECKING:
    from stagewise.store import Store

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
