"""What a notification says: one message per run that proposes orders (or needs a deposit),
and one per event a person should hear of (a job failing again and again, an API key that can
trade, a stage change or the start and end of a glide path, the emergency pause).

Pure: recorded rows in, `Notice`s out; the title says what to do, the body is short enough
for a phone. Which of them are sent is the `[notify]` settings' choice (events, min_level).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from stagewise.keyrights import ADVICE, CAN_TRADE
from stagewise.money import amount_text
from stagewise.sections import NotifySettings
from stagewise.store.notices import Notice, Untold

LEVELS = ("info", "warning", "error")
JOB_NAMES = {
    "dca": "DCA",
    "rebalance": "rebalance",
    "drift": "drift-watch rebalance",
    "profit": "profit-taking",
    "withdraw": "withdrawal",
    "windfall": "windfall",
}
# Long reasons are cut here: a message is read on a phone.
REASON_WIDTH = 80


def notices_for(looked: Untold, settings: NotifySettings, quote: str, tz: ZoneInfo) -> list[Notice]:
    """The messages a look's runs and events call for, by the settings' events and level."""
    found = [run_notice(run, settings, quote, tz) for run in looked.runs]
    found += [event_notice(event) for event in looked.events]
    floor = LEVELS.index(settings.min_level)
    return [
        n
        for n in found
        if n is not None and n.kind in settings.events and LEVELS.index(n.level) >= floor
    ]


def label(period: str) -> str:
    """A period key as a person reads it: `dca:2027-01` -> `DCA 2027-01`."""
    job, _, rest = period.partition(":")
    if job == "windfall":
        return f"windfall #{rest}"
    return f"{JOB_NAMES.get(job, job)} {rest.replace(':', ' ')}".strip()


def run_notice(
    run: Mapping[str, Any], settings: NotifySettings, quote: str, tz: ZoneInfo
) -> Notice | None:
    """A run's message: its orders as a short table, the totals, the deposit it needs; None
    for a run that proposed nothing and needs no deposit."""
    orders: Sequence[Mapping[str, Any]] = run.get("orders") or []
    deposit = run.get("deposit_needed") or 0.0
    if run["status"] != "ok" or not (orders or deposit > 0):
        return None
    # A run that needs a deposit is a "deposit" message only where its orders would not
    # be told anyway (events without "proposals").
    kind = "proposals" if orders and "proposals" in settings.events else "deposit"
    if kind == "deposit" and deposit <= 0:
        return None
    paper = run["mode"] == "paper"
    what = label(run["period"])
    n = len(orders)
    if orders:
        title = f"{n} order{'s' if n != 1 else ''} proposed for {what}"
        title += " (paper account)" if paper else ": place them yourself"
    else:
        title = f"Deposit {deposit:,.2f} {quote} for {what}"
    when = run["finished_at"].astimezone(tz).strftime("%Y-%m-%d %H:%M")
    lines = [f"{run['period']}, {run['mode']} account, {when} ({tz.key})"]
    if orders:
        lines += order_table(orders[: settings.max_orders], quote)
        if n > settings.max_orders:
            lines.append(
                f"and {n - settings.max_orders} more: "
                f"`stagewise proposals --period {run['period']}`"
            )
        lines.append(totals(orders, quote))
    if deposit > 0:
        lines.append(
            f"Deposit needed: {deposit:,.2f} {quote} on the account before placing the buys "
            "(stagewise cannot move money)."
        )
    if not paper and orders:
        lines.append("stagewise never places an order: these are proposals.")
    return Notice(
        kind, "warning" if deposit > 0 else "info", title, "\n".join(lines), run_id=run["id"]
    )


def order_table(orders: Sequence[Mapping[str, Any]], quote: str) -> list[str]:
    """side, amount, symbol, notional, why: one aligned line each, under a header. What every
    reason shares (DCA's "DCA of 2,000.00 USDT: ", or the whole reason) is said once above."""
    reasons = [o["reason"] for o in orders]
    shared = _shared_reason(reasons)
    lines = [shared] if shared else []
    same = bool(shared) and shared == reasons[0]  # every order gives the same reason
    rows = [("side", "amount", "symbol", f"notional {quote}", "" if same else "why")]
    for o, reason in zip(orders, reasons, strict=True):
        why = "" if same else reason[len(shared) :].strip()
        if len(why) > REASON_WIDTH:
            why = why[: REASON_WIDTH - 1] + "…"
        rows.append(
            (o["side"], amount_text(o["amount"]), o["symbol"], f"{o['notional']:,.2f}", why)
        )
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return lines + [
        "  ".join(
            [r[0].ljust(widths[0]), r[1].rjust(widths[1]), r[2].ljust(widths[2])]
            + [r[3].rjust(widths[3]), r[4]]
        ).rstrip()
        for r in rows
    ]


def _shared_reason(reasons: Sequence[str]) -> str:
    """The reason every order gives, or the part before a ": " that they all begin with;
    "" when they share none (or there is one order)."""
    if len(reasons) < 2:
        return ""
    if len(set(reasons)) == 1:
        return reasons[0]
    common = os.path.commonprefix(list(reasons))
    cut = common.rfind(": ")
    return common[: cut + 1] if cut > 0 else ""


def totals(orders: Sequence[Mapping[str, Any]], quote: str) -> str:
    buys = sum(o["notional"] for o in orders if o["side"] == "buy")
    sells = sum(o["notional"] for o in orders if o["side"] == "sell")
    fees = sum(o["fee"] for o in orders)
    parts = [f"buys {buys:,.2f}" if buys else "", f"sells {sells:,.2f}" if sells else ""]
    return f"Total: {', '.join(p for p in parts if p)} {quote}; est. fees {fees:,.2f} {quote}"


def event_notice(event: Mapping[str, Any]) -> Notice | None:
    """An event's message, for the kinds a person should hear of (None for the others)."""
    tell = EVENT_MESSAGES.get(event["kind"])
    if tell is None:
        return None
    said = tell(event.get("data") or {})
    if said is None:
        return None
    kind, level, title, body = said
    return Notice(kind, level, title, body, event_id=event["id"])


Said = tuple[str, str, str, str] | None  # (kind, level, title, body)


def _failing(d: Mapping[str, Any]) -> Said:
    job = d.get("job", "a job")
    return (
        "failing",
        "error",
        f"The {JOB_NAMES.get(job, job)} job keeps failing: look at it",
        f"Its last error: {d.get('last_error', '(not recorded)')}\n"
        "Its period stays open and is retried; `stagewise status` shows the runs.",
    )


def _key_can_trade(d: Mapping[str, Any]) -> Said:
    rights = " and ".join(r for r in ("trade", "withdraw") if d.get(r)) or "trade"
    return (
        "key",
        "error",
        f"The API key can {rights}: replace it with a read-only key",
        f"{d.get('exchange', 'The exchange')} says the key stagewise uses can {rights}. {ADVICE}.",
    )


def _stage_changed(d: Mapping[str, Any]) -> Said:
    return (
        "stage",
        "info",
        f"New life stage: {d.get('to')}",
        f"The yearly re-assessment moved the plan from stage {d.get('from')} to {d.get('to')}. "
        "`stagewise stage` shows the targets.",
    )


def _glide_step(d: Mapping[str, Any]) -> Said:
    step, steps = d.get("step"), d.get("steps")
    if not isinstance(step, int) or not isinstance(steps, int):
        return None
    path = f"{d.get('from')} -> {d.get('to')}"
    if step == 0:
        return (
            "stage",
            "info",
            f"Glide path begins: {path}",
            f"The targets move from stage {d.get('from')}'s to {d.get('to')}'s in {steps} "
            "monthly steps. `stagewise stage` shows where they are.",
        )
    if step == steps - 1:
        return (
            "stage",
            "info",
            f"Glide path ends: {path}",
            f"This is the last of its {steps} monthly steps: from next month the targets are "
            f"stage {d.get('to')}'s own.",
        )
    return None


def _paused(d: Mapping[str, Any]) -> Said:
    return (
        "pause",
        "info",
        "Contributions paused (emergency rule)",
        f"Reason: {d.get('reason', '')}\nNothing is sold because of it; `stagewise resume` "
        "ends it.",
    )


def _resumed(d: Mapping[str, Any]) -> Said:
    return ("pause", "info", "Contributions resume", "The emergency pause has ended.")


EVENT_MESSAGES: dict[str, Callable[[Mapping[str, Any]], Said]] = {
    "job_failing": _failing,
    CAN_TRADE: _key_can_trade,
    "stage_changed": _stage_changed,
    "glide_step": _glide_step,
    "paused": _paused,
    "resumed": _resumed,
}
