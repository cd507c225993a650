"""What the API key may do, as the exchange last reported it, kept in the state.

A read-only account needs a key that can only read. Each exchange check (every daemon start,
every `stagewise once`) asks the exchange; a key that can trade or withdraw is recorded as a
`key_can_trade` event, warned about at every check, and shown by `status`, until a check finds
the key read-only (a `key_read_only` event). Only changes are recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import structlog

if TYPE_CHECKING:
    from stagewise.store import Store

log = structlog.get_logger()

CAN_TRADE = "key_can_trade"
READ_ONLY = "key_read_only"
ADVICE = "stagewise only reads; create a key with reading rights only"


@dataclass(frozen=True, slots=True)
class KeyPermissions:
    """What the exchange says the API key may do."""

    read: bool
    trade: bool
    withdraw: bool


def on_record(store: Store) -> dict[str, Any] | None:
    """The key's rights as last recorded: {at, exchange, trade, withdraw, read_only}, or None
    when no check ever found a key that can trade."""
    found = [e for kind in (CAN_TRADE, READ_ONLY) for e in store.events(kind=kind, limit=1)]
    if not found:
        return None
    last = max(found, key=lambda e: e["id"])  # the newest recorded, whatever the clocks
    data = last["data"]
    return {
        "at": last["at"],
        "exchange": data.get("exchange"),
        "trade": bool(data.get("trade")),
        "withdraw": bool(data.get("withdraw")),
        "read_only": last["kind"] == READ_ONLY,
    }


def record(store: Store, exchange: str, rights: KeyPermissions | None, now: datetime) -> None:
    """Keep what a check found (`rights`, None when the exchange could not tell) if it changed;
    when the check could not tell, repeat the warning of a key on record as able to trade."""
    last = on_record(store)
    if rights is None:
        if last is not None and not last["read_only"]:
            log.warning(
                "api_key_not_read_only",
                exchange=exchange,
                trade=last["trade"],
                withdraw=last["withdraw"],
                reported_at=last["at"].isoformat(),
                advice=ADVICE,
            )
        return
    if rights.trade or rights.withdraw:
        reported = (rights.trade, rights.withdraw)
        if last is None or last["read_only"] or (last["trade"], last["withdraw"]) != reported:
            data = {"exchange": exchange, "trade": rights.trade, "withdraw": rights.withdraw}
            store.add_event(CAN_TRADE, now, data)
    elif last is not None and not last["read_only"]:
        store.add_event(READ_ONLY, now, {"exchange": exchange})
