"""The paper account: fills by hand-computed examples, derived balances and costs, reconciling."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support import reconcile

from stagewise.errors import SnapshotError
from stagewise.ledger import (
    LedgerEntry,
    Position,
    deposit_entry,
    derive_positions,
    fill_entries,
    withdrawal_entry,
)
from stagewise.paper import PaperAccount
from stagewise.planner.model import Order, Plan, PlanState
from stagewise.snapshot import Market, Snapshot
from stagewise.store import RunRecord, Store

T0 = datetime(2027, 1, 1, 9, 0, tzinfo=UTC)
PRICES = {"USDT": 1.0, "BTC": 50_000.0, "ETH": 2_000.0}


def order(
    base: str,
    side: str,
    amount: float,
    *,
    fee_rate: float = 0.0,
    slippage: float = 0.0,
    prices: dict[str, float] = PRICES,
) -> Order:
    """An order as the planner estimates it: the price worsened by slippage, the fee on it."""
    price = prices[base] * (1 + slippage if side == "buy" else 1 - slippage)
    return Order(
        symbol=f"{base}/USDT",
        base=base,
        side=side,  # type: ignore[arg-type]
        amount=amount,
        price=price,
        notional=amount * price,
        fee=amount * price * fee_rate,
        rule="rebalance",
        reason="back to target",
        weight_before=0.0,
        weight_after=0.0,
        weight_target=0.0,
    )


def plan(*orders: Order) -> Plan:
    return Plan("rebalance", tuple(orders), (), (), PlanState(), None)


def snapshot(balances: dict[str, float], prices: dict[str, float] = PRICES) -> Snapshot:
    return Snapshot(T0, "USDT", balances, prices, {})


def value(balances: dict[str, float], prices: dict[str, float] = PRICES) -> float:
    return sum(amount * prices[asset] for asset, amount in balances.items())


def apply(balances: dict[str, float], entries: Sequence[LedgerEntry]) -> dict[str, float]:
    after = dict(balances)
    for e in entries:
        after[e.asset] = after.get(e.asset, 0.0) + e.amount
    return after


# --- fills ---------------------------------------------------------------------------------


def test_fill_entries_by_hand() -> None:
    costs = {"fee_rate": 0.001, "slippage": 0.0005}
    entries = fill_entries(
        plan(order("BTC", "buy", 0.1, **costs), order("ETH", "sell", 2.0, **costs)),
        snapshot({"USDT": 10_000.0, "ETH": 5.0}),
        at=T0,
    )
    # buy 0.1 BTC:  50_000 * 1.0005 = 50_025 per BTC; 0.1 * 50_025 = 5_002.5; fee 5.0025
    # sell 2 ETH:    2_000 * 0.9995 =  1_999 per ETH; 2 * 1_999   = 3_998;    fee 3.998
    got = [(e.kind, e.asset, e.amount, e.price) for e in entries]
    want = [
        ("fill", "BTC", 0.1, 50_025.0),
        ("fill", "USDT", -5_002.5, None),
        ("fee", "USDT", -5.0025, None),
        ("fill", "ETH", -2.0, 1_999.0),
        ("fill", "USDT", 3_998.0, None),
        ("fee", "USDT", -3.998, None),
    ]
    assert [(k, a, p) for k, a, _, p in got] == [(k, a, p) for k, a, _, p in want]
    assert [x for _, _, x, _ in got] == pytest.approx([x for _, _, x, _ in want], rel=1e-12)
    assert all(e.at == T0 for e in entries)
    assert "rebalance buy 0.1 BTC/USDT" in entries[0].note
    # cash: 10_000 - 5_002.5 - 5.0025 + 3_998 - 3.998 = 8_986.4995
    after = apply({"USDT": 10_000.0, "ETH": 5.0}, entries)
    assert after == pytest.approx({"USDT": 8_986.4995, "ETH": 3.0, "BTC": 0.1})


def test_an_order_without_a_price_cannot_fill() -> None:
    with pytest.raises(SnapshotError, match="SOL"):
        fill_entries(
            plan(Order("SOL/USDT", "SOL", "buy", 1, 0.0, 0.0, 0, "dca", "", 0, 0, 0)),
            snapshot({"USDT": 1_000.0}),
            at=T0,
        )


def test_deposits_and_withdrawals_are_signed() -> None:
    assert deposit_entry("USDT", 500.0, T0).amount == 500.0
    assert withdrawal_entry("USDT", 300.0, T0).amount == -300.0
    with pytest.raises(ValueError):
        deposit_entry("USDT", -5.0, T0)
    with pytest.raises(ValueError):
        withdrawal_entry("USDT", 0.0, T0)


# --- value reconciles ----------------------------------------------------------------------


def test_value_after_is_value_before_plus_deposits_minus_fees_and_slippage() -> None:
    before = {"USDT": 2_000.0, "ETH": 5.0}  # 2_000 + 5 * 2_000 = 12_000
    deposit = deposit_entry("USDT", 5_000.0, T0)
    costs = {"fee_rate": 0.001, "slippage": 0.0005}
    fills = fill_entries(
        plan(order("BTC", "buy", 0.1, **costs), order("ETH", "sell", 2.0, **costs)),
        snapshot(apply(before, [deposit])),
        at=T0,
    )
    after = apply(before, [deposit, *fills])

    flows = reconcile([deposit, *fills], PRICES)
    # fees 5.0025 + 3.998; slippage 0.1 * 25 (paid above) + 2 * 1 (got below) = 4.5
    assert flows.deposits == 5_000.0
    assert flows.fees == pytest.approx(9.0005)
    assert flows.slippage == pytest.approx(4.5)
    assert value(after) == pytest.approx(12_000 + 5_000 - 9.0005 - 4.5)
    assert value(after) - value(before) == pytest.approx(flows.change)
    assert flows.unexplained == pytest.approx(0.0, abs=1e-9)


def test_withdrawals_reconcile_too() -> None:
    entries = [withdrawal_entry("USDT", 1_200.0, T0)]
    flows = reconcile(entries, PRICES)
    assert (flows.withdrawals, flows.change, flows.unexplained) == (1_200.0, -1_200.0, 0.0)


def test_reconcile_needs_a_price_for_every_asset() -> None:
    with pytest.raises(ValueError, match="SOL"):
        reconcile([LedgerEntry(T0, "deposit", "SOL", 1.0)], PRICES)


trades = st.lists(
    st.tuples(
        st.sampled_from(["BTC", "ETH"]),
        st.sampled_from(["buy", "sell"]),
        st.floats(min_value=0.001, max_value=1.0),
    ),
    max_size=12,
)


@given(trades, st.floats(0, 0.01), st.floats(0, 0.02))
def test_derived_balances_equal_a_running_balance(trades, fee_rate, slippage) -> None:
    """Positions derived from entries match a balance kept by hand, trade by trade."""
    entries = [LedgerEntry(T0, "seed", "USDT", 100_000.0)]
    cash, units = 100_000.0, {"BTC": 0.0, "ETH": 0.0}
    for base, side, amount in trades:
        o = order(base, side, amount, fee_rate=fee_rate, slippage=slippage)
        entries += fill_entries(plan(o), snapshot({}), at=T0)
        sign = 1 if side == "buy" else -1
        # a buy costs price * (1 + s) * (1 + fee); a sell brings price * (1 - s) * (1 - fee)
        cash -= sign * amount * PRICES[base] * (1 + sign * slippage) * (1 + sign * fee_rate)
        units[base] += sign * amount

    positions = derive_positions(entries)
    assert positions["USDT"].amount == pytest.approx(cash, rel=1e-9)
    for base, held in units.items():
        assert positions.get(base, Position(0.0, None)).amount == pytest.approx(held, abs=1e-9)
    flows = reconcile(entries, PRICES)
    assert flows.unexplained == pytest.approx(0.0, abs=1e-6)


def test_an_order_without_a_fee_fills_without_a_fee_entry() -> None:
    """A market (or a paper account) charging no fee: the two fills, no entry of 0."""
    entries = fill_entries(
        plan(order("BTC", "buy", 0.1), order("ETH", "sell", 1.0)), snapshot({}), at=T0
    )
    assert [(e.kind, e.asset, e.amount) for e in entries] == [
        ("fill", "BTC", 0.1),
        ("fill", "USDT", -5_000.0),
        ("fill", "ETH", -1.0),
        ("fill", "USDT", 2_000.0),
    ]
    assert derive_positions(entries)["BTC"].avg_cost == pytest.approx(50_000.0)


# --- average cost --------------------------------------------------------------------------


def test_average_cost_after_two_buys_includes_fees_and_sells_keep_it() -> None:
    first = fill_entries(plan(order("BTC", "buy", 0.1, fee_rate=0.001)), snapshot({}), at=T0)
    dear = {**PRICES, "BTC": 60_000.0}
    dearer = snapshot({}, dear)
    second = fill_entries(
        plan(order("BTC", "buy", 0.1, fee_rate=0.001, prices=dear)), dearer, at=T0
    )
    # 0.1 * 50_000 + fee 5 = 5_005; 0.1 * 60_000 + fee 6 = 6_006; 11_011 / 0.2 = 55_055
    btc = derive_positions([*first, *second])["BTC"]
    assert btc.amount == pytest.approx(0.2)
    assert btc.avg_cost == pytest.approx(55_055.0)

    sell = fill_entries(
        plan(order("BTC", "sell", 0.05, fee_rate=0.001, prices=dear)), dearer, at=T0
    )
    btc = derive_positions([*first, *second, *sell])["BTC"]
    assert btc.amount == pytest.approx(0.15)
    assert btc.avg_cost == pytest.approx(55_055.0)
    assert derive_positions([*first, *second, *sell])["USDT"].avg_cost is None


def test_seed_price_is_the_basis_and_unpriced_units_make_it_unknown() -> None:
    seeded = [LedgerEntry(T0, "seed", "ETH", 2.0, 1_500.0), LedgerEntry(T0, "seed", "BTC", 1.0)]
    buy = fill_entries(plan(order("ETH", "buy", 2.0)), snapshot({}), at=T0)
    positions = derive_positions([*seeded, *buy])
    assert positions["ETH"].avg_cost == pytest.approx((2 * 1_500 + 2 * 2_000) / 4)
    assert positions["BTC"].avg_cost is None


def test_a_flat_position_starts_a_new_average() -> None:
    seeded = [LedgerEntry(T0, "seed", "BTC", 0.3)]  # no known basis
    out = fill_entries(plan(order("BTC", "sell", 0.3)), snapshot({}), at=T0)
    back = fill_entries(plan(order("BTC", "buy", 0.1)), snapshot({}), at=T0)
    assert derive_positions([*seeded, *out])["BTC"].avg_cost is None
    assert derive_positions([*seeded, *out, *back])["BTC"] == Position(
        pytest.approx(0.1), pytest.approx(50_000.0)
    )


# --- the account ---------------------------------------------------------------------------


class HistoryPrices:
    """A MarketSource over fixed prices (as `simulate` has from price history)."""

    def __init__(self, prices: dict[str, float]) -> None:
        self.prices = prices
        self.amount_step = 0.0001
        self.asked: list[tuple[list[str], datetime]] = []

    def quotes(self, assets, now):
        self.asked.append((list(assets), now))
        prices = {a: self.prices[a] for a in assets if a in self.prices}
        step = self.amount_step
        markets = {a: Market(f"{a}/USDT", a, "USDT", amount_step=step) for a in prices}
        return prices, markets


def test_the_account_sees_its_ledger_at_market_prices(store: Store) -> None:
    source = HistoryPrices({"BTC": 50_000.0, "ETH": 2_000.0})
    account = PaperAccount(store, source, "USDT", fee_rate=0.001)
    assert account.seed({"USDT": 1_000.0, "BTC": 0.02}, T0)
    assert not account.seed({"USDT": 1.0}, T0)

    deposit = deposit_entry("USDT", 500.0, T0, "dca contribution")
    snap = account.snapshot(["BTC", "ETH", "SOL"], T0, pending=[deposit])

    assert snap.balances == {"USDT": 1_500.0, "BTC": 0.02}
    assert snap.prices == {"USDT": 1.0, "BTC": 50_000.0, "ETH": 2_000.0}
    assert set(snap.markets) == {"BTC", "ETH"}
    assert snap.unpriced == ("SOL",)
    assert snap.total_value == pytest.approx(2_500.0)
    assert store.ledger_balances() == {"BTC": 0.02, "USDT": 1_000.0}  # pending is not stored
    assert derive_positions(store.ledger_entries())["BTC"] == Position(0.02, 50_000.0)


def test_the_account_charges_its_own_fee_on_the_markets_the_source_has_now(store: Store) -> None:
    source = HistoryPrices({"BTC": 50_000.0, "ETH": 2_000.0})
    account = PaperAccount(store, source, "USDT", fee_rate=0.002)
    first = account.snapshot(["BTC"], T0)
    assert first.markets == {"BTC": Market("BTC/USDT", "BTC", "USDT", 0.0001, fee_rate=0.002)}

    source.amount_step = 0.01  # the exchange changed a market's rules
    later = account.snapshot(["BTC", "ETH"], T0 + timedelta(hours=1))
    assert later.markets == {
        a: Market(f"{a}/USDT", a, "USDT", 0.01, fee_rate=0.002) for a in ("BTC", "ETH")
    }
    assert first.markets == {"BTC": Market("BTC/USDT", "BTC", "USDT", 0.0001, fee_rate=0.002)}


def test_a_paper_run_fills_its_plan_and_the_stored_ledger_agrees(store: Store) -> None:
    account = PaperAccount(store, HistoryPrices({"BTC": 50_000.0}), "USDT")
    account.seed({"USDT": 1_000.0}, T0)
    deposit = deposit_entry("USDT", 500.0, T0)
    snap = account.snapshot(["BTC"], T0, pending=[deposit])
    # As the planner estimates it with the account's costs (fee 0.1 %, slippage 0.05 %).
    proposal = plan(order("BTC", "buy", 0.02, fee_rate=0.001, slippage=0.0005))
    fills = account.fills(proposal, snap, T0)

    store.record_run(
        RunRecord(
            job="dca",
            period="dca:2027-01",
            scheduled_at=T0,
            started_at=T0,
            finished_at=T0 + timedelta(seconds=1),
            status="ok",
            mode="paper",
            plan=proposal,
            snapshot=snap,
            ledger=[deposit, *fills],
        )
    )

    # 0.02 BTC at 50_025 = 1_000.5 plus fee 1.0005: 1_500 - 1_001.5005 = 498.4995 USDT left
    assert store.ledger_balances() == pytest.approx({"USDT": 498.4995, "BTC": 0.02})
    derived = {a: p.amount for a, p in derive_positions(store.ledger_entries()).items()}
    assert derived == pytest.approx(store.ledger_balances())
    assert derive_positions(store.ledger_entries())["BTC"].avg_cost == pytest.approx(
        1_001.5005 / 0.02
    )
