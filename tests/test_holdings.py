"""The account against its targets (what `status` shows): weights, the targets the planner
pursues, drift. Plain data in: no fixtures needed."""

from __future__ import annotations

import dataclasses

import pytest
from support import POLICY, QUOTE, targets

from stagewise.holdings import Holding, holdings, priced


def row(amount: float, price: float | None) -> dict[str, float | None]:
    return {"amount": amount, "price": price, "value": None if price is None else amount * price}


def test_each_asset_held_or_targeted_has_its_weight_target_and_drift() -> None:
    rows = {"A": row(6, 100.0), "B": row(1, 200.0), QUOTE: row(200, 1.0), "DUST": row(5, None)}
    shown = holdings(rows, targets({"A": 0.5, "B": 0.3, "C": 0.1}, cash=0.1), POLICY, QUOTE)
    assert shown == [
        Holding("A", 6, 600.0, pytest.approx(0.6), 0.5, pytest.approx(0.1)),
        Holding("B", 1, 200.0, pytest.approx(0.2), 0.3, pytest.approx(-0.1)),
        Holding("C", 0.0, 0.0, 0.0, 0.1, -0.1),  # targeted, not held
        Holding("DUST", 5, None, 0.0, 0.0, 0.0),  # held without a price: no value, no weight
        Holding(QUOTE, 200, 200.0, pytest.approx(0.2), pytest.approx(0.1), pytest.approx(0.1)),
    ]


def test_the_targets_are_scaled_down_to_the_crypto_share_of_the_whole_portfolio() -> None:
    """1,000 on the account and 9,000 outside: a 5 % crypto target is 500, half the account;
    the plan's weights are halved and the quote currency holds the rest."""
    policy = dataclasses.replace(POLICY, outside_value=9_000.0)
    plan = targets({"A": 0.6, "B": 0.4}, band=(0.05, 0.05))
    shown = {h.asset: h for h in holdings({QUOTE: row(1_000, 1.0)}, plan, policy, QUOTE)}
    assert shown["A"].target == pytest.approx(0.3) and shown["B"].target == pytest.approx(0.2)
    assert shown[QUOTE].target == pytest.approx(0.5)
    assert shown[QUOTE].drift == pytest.approx(0.5)


def test_an_empty_account_has_no_weights() -> None:
    shown = holdings({}, targets({"A": 1.0}), POLICY, QUOTE)
    assert shown == [Holding("A", 0.0, 0.0, 0.0, 1.0, -1.0)]


def test_ledger_balances_are_priced_at_the_snapshots_prices() -> None:
    snapshot_rows = {"A": row(1, 100.0), QUOTE: row(50, 1.0)}
    balances = {"A": 2.0, QUOTE: 10.0, "NEW": 3.0}
    assert priced(balances, snapshot_rows, QUOTE) == {
        "A": row(2.0, 100.0),
        QUOTE: row(10.0, 1.0),
        "NEW": row(3.0, None),  # bought since, not in the snapshot: unpriced
    }
