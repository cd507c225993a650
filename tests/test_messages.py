"""What a notification says (stagewise/messages.py): one message per proposing run, its orders as
a short table with the totals and the deposit, long runs cut; the events a person should
hear of; the settings' events and level choose which are sent. Pure: no fixtures."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from stagewise.messages import label, notices_for
from stagewise.sections import NotifySettings
from stagewise.store.notices import Untold

BERLIN = ZoneInfo("Europe/Berlin")
AT = datetime(2027, 1, 1, 8, 0, tzinfo=UTC)


def order(symbol: str = "BTC/USDT", side: str = "buy", notional: float = 350.0, **kw) -> dict:
    return {
        "symbol": symbol,
        "side": side,
        "amount": kw.get("amount", 0.00512),
        "notional": notional,
        "fee": kw.get("fee", notional * 0.001),
        "reason": kw.get("reason", "underweight: 12.30 % vs 20.00 % target"),
    }


def run(orders: list[dict], period: str = "dca:2027-01", **kw) -> dict:
    return {
        "id": kw.get("id", 7),
        "period": period,
        "job": period.split(":")[0],
        "status": kw.get("status", "ok"),
        "mode": kw.get("mode", "paper"),
        "finished_at": AT,
        "deposit_needed": kw.get("deposit_needed", 0.0),
        "orders": orders,
    }


def told(runs=(), happened=(), **settings) -> list:
    """The messages of a look at `runs` and `happened` (events) under `settings`."""
    looked = Untold(list(runs), list(happened), (0, 0), (len(runs), len(happened)))
    return notices_for(looked, NotifySettings(**settings), "USDT", BERLIN)


def test_a_proposing_run_is_one_message_whose_title_says_what_to_do() -> None:
    orders = [
        order("BTC/USDT"),
        order("ETH/USDT", notional=250.0, reason="underweight: 10.00 % vs 15.00 % target"),
        order("SOL/USDT", "sell", 80, reason="overweight: 9.00 % vs 5.00 % target"),
    ]
    (message,) = told([run(orders, mode="read-only")])
    assert message.title == "3 orders proposed for DCA 2027-01: place them yourself"
    assert message.run_id == 7 and message.kind == "proposals" and message.level == "info"
    lines = message.body.splitlines()
    assert lines[0] == "dca:2027-01, read-only account, 2027-01-01 09:00 (Europe/Berlin)"
    header, *rows = lines[1:5]
    assert header.split() == ["side", "amount", "symbol", "notional", "USDT", "why"]
    assert rows[0].split()[:4] == ["buy", "0.00512", "BTC/USDT", "350.00"]
    assert rows[2].split()[:4] == ["sell", "0.00512", "SOL/USDT", "80.00"]
    assert "underweight: 12.30 % vs 20.00 % target" in rows[0]
    # The table's columns line up: each symbol starts where the header's does.
    assert {r.index("/USDT") - 3 for r in rows} == {header.index("symbol")}
    assert "Total: buys 600.00, sells 80.00 USDT; est. fees 0.68 USDT" in lines
    assert lines[-1] == "stagewise never places an order: these are proposals."


def test_a_paper_run_says_so_and_one_order_is_singular() -> None:
    (message,) = told([run([order()], "rebalance:balanced_investor:2027-Q2")])
    assert (
        message.title == "1 order proposed for rebalance balanced_investor 2027-Q2 (paper account)"
    )
    assert "never places" not in message.body


def test_a_long_run_is_cut_with_the_command_that_shows_the_rest() -> None:
    orders = [order(f"C{i}/USDT", reason=f"gap {i}") for i in range(14)]
    (message,) = told([run(orders)], max_orders=10)
    lines = message.body.splitlines()
    assert sum(1 for line in lines if "/USDT" in line) == 10
    assert "and 4 more: `stagewise proposals --period dca:2027-01`" in lines
    assert "Total: buys 4,900.00 USDT; est. fees 4.90 USDT" in lines  # all 14 counted


def test_a_read_only_dca_that_needs_a_deposit_says_how_much_at_warning_level() -> None:
    (message,) = told([run([order()], mode="read-only", deposit_needed=250.0)])
    assert message.level == "warning"
    assert (
        "Deposit needed: 250.00 USDT on the account before placing the buys "
        "(stagewise cannot move money)."
    ) in message.body.splitlines()
    # Without the proposals event, the deposit is still told: as a deposit message.
    (deposit,) = told([run([order()], mode="read-only", deposit_needed=250.0)], events=["deposit"])
    assert deposit.kind == "deposit"


def test_runs_that_propose_nothing_failed_runs_and_unchosen_events_are_not_told() -> None:
    assert told([run([]), run([order()], status="failed"), run([order()], status="skipped")]) == []
    assert told([run([order()])], events=["failing"]) == []
    assert told([run([order()])], min_level="warning") == []  # proposals are info


def test_the_events_a_person_should_hear_of() -> None:
    events = [
        {"id": 1, "kind": "job_failing", "data": {"job": "dca", "last_error": "exchange down"}},
        {"id": 2, "kind": "key_can_trade", "data": {"exchange": "binance", "trade": True}},
        {"id": 3, "kind": "stage_changed", "data": {"from": "builder", "to": "accumulator"}},
        {"id": 4, "kind": "glide_step", "data": {"from": "a", "to": "b", "step": 0, "steps": 24}},
        {"id": 5, "kind": "glide_step", "data": {"from": "a", "to": "b", "step": 5, "steps": 24}},
        {"id": 6, "kind": "glide_step", "data": {"from": "a", "to": "b", "step": 23, "steps": 24}},
        {"id": 7, "kind": "paused", "data": {"reason": "lost my job"}},
        {"id": 8, "kind": "resumed", "data": {"reason": ""}},
        {"id": 9, "kind": "daemon_started", "data": {"mode": "paper"}},
    ]
    found = {n.event_id: n for n in told(happened=events)}
    assert sorted(found) == [1, 2, 3, 4, 6, 7, 8]  # not a middle glide step, not a start
    assert found[1].title == "The DCA job keeps failing: look at it"
    assert found[1].level == "error" and "exchange down" in found[1].body
    assert found[2].title == "The API key can trade: replace it with a read-only key"
    assert found[3].title == "New life stage: accumulator"
    assert found[4].title == "Glide path begins: a -> b"
    assert found[6].title == "Glide path ends: a -> b"
    assert found[7].title == "Contributions paused (emergency rule)"
    assert "lost my job" in found[7].body
    assert found[8].title == "Contributions resume"
    errors_only = told(happened=events, min_level="error")
    assert {n.event_id for n in errors_only} == {1, 2}


def test_period_labels_read_like_the_job() -> None:
    assert label("dca:2027-01") == "DCA 2027-01"
    assert label("drift:2027-01-05T10") == "drift-watch rebalance 2027-01-05T10"
    assert label("windfall:3") == "windfall #3"
    assert label("withdraw:2027-03") == "withdrawal 2027-03"


def test_what_every_reason_shares_is_said_once_above_the_table() -> None:
    dca = [
        order("BTC/USDT", reason="DCA of 2,000.00 USDT: BTC 0.0% vs target 39.7%: buy"),
        order("ETH/USDT", reason="DCA of 2,000.00 USDT: ETH 0.0% vs target 25.8%: buy"),
    ]
    (message,) = told([run(dca)])
    lines = message.body.splitlines()
    assert lines[1] == "DCA of 2,000.00 USDT:"
    assert lines[3].endswith("  BTC 0.0% vs target 39.7%: buy")
    same = [
        order("BTC/USDT", reason="crypto share low"),
        order("ETH/USDT", reason="crypto share low"),
    ]
    (message,) = told([run(same)])
    lines = message.body.splitlines()
    assert lines[1] == "crypto share low"
    assert lines[2].split() == ["side", "amount", "symbol", "notional", "USDT"]
    assert not lines[3].endswith("low")
