"""The account against its targets, as `status` shows it: each asset's amount, value and weight
beside the target the planner pursues, and the drift between them. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from stagewise.planner import Policy
from stagewise.planner.rebalance import scaled_targets
from stagewise.targets import Targets

# A snapshot's row of one asset, as the store keeps it: amount, price and value (None: unpriced).
Row = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Holding:
    """One asset held or targeted: its weight in the account and the target pursued
    (fractions), the drift the difference; value None when the asset has no price."""

    asset: str
    amount: float
    value: float | None
    weight: float
    target: float
    drift: float


def holdings(
    rows: Mapping[str, Row], targets: Targets, policy: Policy, quote: str
) -> list[Holding]:
    """Every asset of `rows` (the last snapshot's) or of the targets, by name. The targets are
    the plan's weights scaled down to put crypto at its target share of the whole portfolio
    (what DCA and rebalancing pursue); the quote currency's target is the rest, the cash."""
    total = sum(row["value"] or 0 for row in rows.values())
    aims = scaled_targets(total, targets, policy)
    cash_aim = max(0.0, 1 - sum(aims.values()))
    out = []
    for asset in sorted(set(rows) | set(targets.weights)):
        row = rows.get(asset, {"amount": 0.0, "price": None, "value": 0.0})
        weight = (row["value"] or 0) / total if total else 0.0
        target = aims.get(asset, cash_aim if asset == quote else 0.0)
        out.append(Holding(asset, row["amount"], row["value"], weight, target, weight - target))
    return out


def priced(balances: Mapping[str, float], rows: Mapping[str, Row], quote: str) -> dict[str, Row]:
    """`balances` (the paper ledger's, after the last run's fills) as snapshot rows, priced at
    the prices of the snapshot `rows` (from before the fills); value None where unpriced."""
    out: dict[str, Row] = {}
    for asset, amount in balances.items():
        price = 1.0 if asset == quote else rows.get(asset, {}).get("price")
        out[asset] = {
            "amount": amount,
            "price": price,
            "value": None if price is None else amount * price,
        }
    return out
