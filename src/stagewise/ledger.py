"""The paper account's ledger: every change of a balance is a `LedgerEntry` (seed, deposit,
fill, fee, withdrawal); balances and average costs are derived from the entries, never stored
beside them. Filling a plan is a pure function (`fill_entries`). Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from stagewise.errors import SnapshotError
from stagewise.money import STEP_EPSILON, amount_text, price_text
from stagewise.planner.model import Plan
from stagewise.snapshot import Snapshot

LedgerKind = Literal["seed", "deposit", "fill", "withdrawal", "fee"]


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One signed change of one asset's balance on the paper account.

    amount: positive adds to the balance, negative takes from it.
    price: for fills of a base asset, the price paid or received per unit (slippage included);
        for seeds and deposits of a base asset, the unit cost basis if known; else None.
    A 'fee' entry is charged on the 'fill' of another asset just before it (see fill_entries).
    """

    at: datetime
    kind: LedgerKind
    asset: str
    amount: float
    price: float | None = None
    note: str = ""


@dataclass(frozen=True, slots=True)
class Position:
    """A balance and its average cost per unit (None when some units have no known cost)."""

    amount: float
    avg_cost: float | None


def fill_entries(plan: Plan, snapshot: Snapshot, *, at: datetime) -> list[LedgerEntry]:
    """The entries of filling every order of `plan` exactly as the plan estimated it.

    The estimate already holds the paper account's costs: its price is the snapshot price
    worsened by the policy's slippage, its fee the account's fee rate (the paper account's
    snapshot carries that rate). Filling the estimate keeps the ledger and the plan equal, so
    a plan that fits the cash never overdraws the account. Each order gives its entries in
    this order: the base asset's fill, the quote's fill, the quote's fee (none when the fee
    is 0: a market without fees, or a paper account set to none).
    """
    quote = snapshot.quote
    entries: list[LedgerEntry] = []
    for order in plan.orders:
        if not order.price > 0 or order.amount <= 0:
            raise SnapshotError(f"cannot fill {order.symbol}: price {order.price!r}")
        sign = 1.0 if order.side == "buy" else -1.0
        amount, price = amount_text(order.amount), price_text(order.price)
        note = f"{order.rule} {order.side} {amount} {order.symbol} @ {price}"
        entries += [
            LedgerEntry(at, "fill", order.base, sign * order.amount, order.price, note),
            LedgerEntry(at, "fill", quote, -sign * order.notional, None, note),
        ]
        if order.fee:
            entries.append(LedgerEntry(at, "fee", quote, -order.fee, None, note))
    return entries


def deposit_entry(asset: str, amount: float, at: datetime, note: str = "") -> LedgerEntry:
    """Money put on the account (DCA contribution, windfall)."""
    if not amount > 0:
        raise ValueError(f"a deposit must be positive, not {amount}")
    return LedgerEntry(at, "deposit", asset, amount, None, note)


def withdrawal_entry(asset: str, amount: float, at: datetime, note: str = "") -> LedgerEntry:
    """Money taken off the account (the withdrawal stage's payout); `amount` is positive."""
    if not amount > 0:
        raise ValueError(f"a withdrawal must be positive, not {amount}")
    return LedgerEntry(at, "withdrawal", asset, -amount, None, note)


def derive_positions(entries: Iterable[LedgerEntry]) -> dict[str, Position]:
    """Balance and average cost per asset, replaying `entries` in order.

    Buys and priced seeds/deposits add their cost, a buy's fee included (a 'fee' entry is
    charged on the priced 'fill' just before it); sells, withdrawals and fees take units out
    at the average cost, so it stays; a position that goes flat starts afresh. Units arriving
    without a price make the average unknown (None) until the position is flat again.
    """
    units: dict[str, float] = {}
    cost: dict[str, float | None] = {}
    bought: str | None = None  # the asset of the buy the next fee is charged on
    for e in entries:
        held = units.get(e.asset, 0.0)
        basis = cost.get(e.asset, 0.0)
        after = units[e.asset] = held + e.amount
        if e.amount > 0:
            known = e.price is not None and basis is not None
            cost[e.asset] = basis + e.amount * e.price if known else None  # type: ignore[operator]
        elif abs(after) <= STEP_EPSILON * max(abs(held), 1.0):
            cost[e.asset] = 0.0  # flat: the next units start a new average
        elif basis is not None and held > 0:
            cost[e.asset] = basis * after / held
        if e.kind == "fee" and bought is not None and bought != e.asset:
            paid = cost.get(bought)
            cost[bought] = None if paid is None else paid - e.amount  # fees are in the quote
        if e.kind == "fill" and e.price is not None:
            bought = e.asset if e.amount > 0 else None
        elif e.kind != "fill":  # the quote side of a fill keeps the pairing
            bought = None
    return {a: Position(units[a], _average(units[a], cost.get(a))) for a in units}


def _average(amount: float, cost: float | None) -> float | None:
    if cost is None:
        return None
    return cost / amount if amount > 0 else None
