"""Assets that list later: left out of the targets until their first close is known, their
weight spread over the listed assets of their index, or held as cash when none is."""

from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest
from support import plan_stage

from stagewise.history import PriceHistory
from stagewise.listings import ListedTargets, listed_only
from stagewise.settings import load_config
from stagewise.targets import TargetsOn, targets_on


@pytest.fixture
def config(write_plan, write_config):
    """Index 'large' {A 60, B 40} and 'small' {C 100}, half each; 10 % of the account cash."""
    plan = write_plan(
        {"large": ("quarterly", {"A": 60, "B": 40}), "small": ("quarterly", {"C": 100})},
        [plan_stage("only", sleeves={"large": 50, "small": 50})],
    )
    return load_config(write_config({**plan, "policy": {"cash_pct": 10}}))


def test_an_unlisted_asset_gives_its_weight_to_the_listed_assets_of_its_index(config):
    t = targets_on(config.profile, date(2030, 1, 1))
    assert t.weights == pytest.approx({"A": 0.27, "B": 0.18, "C": 0.45})  # 90 % invested
    without_b = listed_only(t, {"A", "C"})
    # B's 0.18 goes to A, the one listed asset of 'large': A 0.27 + 0.18 = 0.45.
    assert without_b.weights == pytest.approx({"A": 0.45, "C": 0.45})
    assert without_b.members == {"large": pytest.approx({"A": 0.45}), "small": {"C": 0.45}}
    assert without_b.cash == t.cash == pytest.approx(0.10)
    assert set(without_b.sleeves) == {"large", "small"}


def test_an_index_with_no_listed_asset_is_held_as_cash(config):
    t = targets_on(config.profile, date(2030, 1, 1))
    without_c = listed_only(t, {"A", "B"})
    assert without_c.weights == pytest.approx({"A": 0.27, "B": 0.18})
    assert without_c.cash == pytest.approx(0.10 + 0.45)
    assert set(without_c.sleeves) == set(without_c.members) == {"large"}
    assert sum(without_c.weights.values()) + without_c.cash == pytest.approx(1.0)


def test_the_targets_of_a_day_hold_the_assets_with_a_close_known_at_its_midnight(config):
    days = tuple(date(2030, 1, 1) + timedelta(days=i) for i in range(5))
    history = PriceHistory(
        days,
        {"A": (1.0,) * 5, "B": (None, None, 2.0, 2.0, 2.0), "C": (3.0,) * 5},
        "hand",
    )
    tz = ZoneInfo("Europe/Berlin")
    targets = ListedTargets(TargetsOn(config.profile), history, tz)
    # B's first close is that of 3 January, known from the midnight ending it.
    assert "B" not in targets(date(2030, 1, 3)).weights
    assert targets(date(2030, 1, 3)).weights == pytest.approx({"A": 0.45, "C": 0.45})
    full = targets(date(2030, 1, 4))
    assert full.weights == pytest.approx({"A": 0.27, "B": 0.18, "C": 0.45})
    assert full == targets_on(config.profile, date(2030, 1, 4))  # nothing left out: the plan's own


# --- live: an exchange that lists or delists a coin -------------------------------------------

KEYS = {"STAGEWISE_EXCHANGE__API_KEY": "k" * 16, "STAGEWISE_EXCHANGE__SECRET": "s" * 16}
NOT_LISTED = (
    "no market on the exchange for ETH (not listed yet, or delisted): left out of the targets "
    "until it is listed; its weight goes to the listed assets of its index"
)


@pytest.fixture
def live(standin, write_plan, write_config):
    """A read-only config against the stand-in, basket {BTC 60, ETH 40}, 2,000 a month, no
    outside investments; the stand-in lists BTC at 50,000 (ETH: as the test says)."""
    standin.add_market("BTC", step="0.00001", min_qty="0.00001")
    standin.set_price("BTC", 50_000)
    standin.set_balance("USDT", 0)
    plan = write_plan({"basket": ("quarterly", {"BTC": 60, "ETH": 40})})
    overrides = {
        **plan,
        "exchange": {"ccxt": standin.ccxt_config(), "retry_attempts": 2, "mode": "read-only"},
        "investor": {"outside_investments": 0, "monthly_contribution": 2000},
    }
    return write_config(overrides)


def run_notes(config) -> dict[str, list[str]]:
    """Each recorded run's notes, by period."""
    import json
    import sqlite3
    import tomllib

    state = tomllib.loads(config.read_text())["state"]["path"]
    conn = sqlite3.connect(f"file:{state}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT period, notes FROM runs WHERE status = 'ok'").fetchall()
    finally:
        conn.close()
    return {period: json.loads(notes) for period, notes in rows}


def proposed(cli, config) -> list[dict]:
    import json

    done = cli("--config", str(config), "proposals", "--json", env=KEYS)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_live_an_asset_the_exchange_does_not_list_is_left_out_with_a_reason(cli, live, standin):
    """ETH has no market: the DCA of 2,000 goes to BTC alone (its index's one listed asset:
    100 %), 2,000 / 1.001 = 1,998.00 notional, 0.03994 BTC at 50,025 (the ask), and the plan
    says why (was: the whole plan refused, "no usable price: ETH (missing)"). Once ETH is
    listed it is back in the targets: the rebalance buys it toward its 40 %."""
    done = cli("--config", str(live), "once", "dca", env=KEYS)
    assert done.returncode == 0, done.stderr
    (buy,) = proposed(cli, live)
    assert (buy["symbol"], buy["side"], buy["amount"]) == ("BTC/USDT", "buy", 0.03994)
    assert buy["weight_target"] == 1.0
    (notes,) = run_notes(live).values()
    assert any(n.startswith(NOT_LISTED) for n in notes), notes

    standin.add_market("ETH", step="0.0001", min_qty="0.0001")  # listed now
    standin.set_price("ETH", 2_000)
    standin.set_balance("BTC", 0.04)  # the buy placed: 2,000 of BTC, nothing of ETH
    done = cli("--config", str(live), "once", "rebalance", env=KEYS)
    assert done.returncode == 0, done.stderr
    rebalance = [p for p in proposed(cli, live) if p["period"].startswith("rebalance:basket")]
    assert {(p["side"], p["symbol"]) for p in rebalance} == {
        ("sell", "BTC/USDT"),
        ("buy", "ETH/USDT"),
    }
    said = [n for period, ns in run_notes(live).items() if "rebalance" in period for n in ns]
    assert said and not any(n.startswith(NOT_LISTED) for n in said)


def test_live_a_delisted_held_asset_is_reported_never_a_traceback(cli, live, standin):
    """ETH held (1), its market halted (delisted): every job plans without it, says so, and
    leaves the holding out of the account's value; `status` shows it."""
    standin.add_market("ETH", step="0.0001", min_qty="0.0001", status="BREAK")
    standin.set_price("ETH", 2_000)
    standin.set_balance("ETH", 1)
    standin.set_balance("BTC", 0.02)
    for job in ("dca", "rebalance"):
        done = cli("--config", str(live), "once", job, env=KEYS)
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr
    held = "ETH is held but has no price on the exchange: left out of the account's value"
    notes = run_notes(live)
    assert {p.split(":")[0] for p in notes} == {"dca", "rebalance"}
    for period, said in notes.items():
        assert any(n.startswith(NOT_LISTED) for n in said) and held in said, period
    assert all(p["symbol"] != "ETH/USDT" for p in proposed(cli, live))
    status = cli("--config", str(live), "status", env=KEYS)
    assert status.returncode == 0 and "Traceback" not in status.stderr
    assert held in status.stdout
