"""Holdings files: read and checked naming the file and the line, priced at each
reconstitution, re-read so that a provider's change is taken (and logged) at the next."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import tomli_w
from structlog.testing import capture_logs
from support import plan_stage, run_cli

from stagewise.composition import from_holdings
from stagewise.errors import ConfigError
from stagewise.history import PriceHistory
from stagewise.holdings_files import read_holdings
from stagewise.reconstitution import HistoryData, Reconstitutions
from stagewise.settings import load_config
from stagewise.store import Store

DAYS = tuple(date(2027, 1, 1) + timedelta(days=i) for i in range(40))
MOMENT = datetime(2027, 1, 31, 0, 0, tzinfo=UTC)
HISTORY = PriceHistory(
    DAYS,
    {"BTC": (50_000.0,) * 40, "ETH": (3_000.0,) * 40, "SOL": (None,) * 35 + (100.0,) * 5},
    "prices.csv",
)


def test_a_json_file_is_read_in_its_order_with_each_assets_line(tmp_path: Path):
    path = tmp_path / "h.json"
    path.write_text('{\n  "BTC": 55,\n  "ETH": 30.5,\n  "SOL": 14.5\n}\n')
    holdings = read_holdings(path)
    assert list(holdings.weights.items()) == [("BTC", 55.0), ("ETH", 30.5), ("SOL", 14.5)]
    assert holdings.lines == {"BTC": 2, "ETH": 3, "SOL": 4}


def test_a_csv_file_skips_its_header_and_comments(tmp_path: Path):
    path = tmp_path / "h.csv"
    path.write_text("# from the provider, 1 Jan\nasset,weight\nBTC,60\n\nETH, 40\n")
    holdings = read_holdings(path)
    assert holdings.weights == {"BTC": 60.0, "ETH": 40.0}
    assert holdings.lines == {"BTC": 3, "ETH": 5}


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("h.json", '{"BTC": 60,\n "ETH": 30}', "h.json line 2: the weights sum to 90 %, not 100 %"),
        (
            "h.json",
            '{"BTC": 50,\n "BTC": 50}',
            "h.json line 2: BTC is listed twice (first on line 1)",
        ),
        ("h.json", '{"BTC": 60,\n "ETH": "40"}', "h.json line 2: ETH weight '40' is not a number"),
        ("h.json", '{"BTC": 60,\n "ETH": 40,,}', "h.json line 2: not valid JSON"),
        ("h.json", '["BTC", 100]', "h.json line 1: expected one JSON object"),
        ("h.json", '{"btc": 100}', "h.json line 1: 'btc' is not an exchange code"),
        ("h.json", '{"BTC": 120, "ETH": -20}', "BTC weight 120 must be above 0, at most 100"),
        ("h.csv", "BTC,60\nETH,40,x\n", "h.csv line 2: expected asset,weight, got 3 cells"),
        ("h.csv", 'BTC,60\nETH,"39,5"\n', "h.csv line 2: ETH weight '39,5' is not a number"),
        ("h.csv", "# nothing yet\n", "h.csv line 1: no holdings"),
    ],
)
def test_a_bad_file_is_an_error_naming_the_file_and_line(tmp_path: Path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError, match="^" + str(tmp_path).replace("\\", "\\\\")) as raised:
        read_holdings(path)
    assert message in str(raised.value)


def test_every_asset_must_be_priced_at_the_reconstitution(tmp_path: Path):
    path = tmp_path / "h.json"
    path.write_text('{"BTC": 50,\n "ETH": 30,\n "SOL": 20}')
    with pytest.raises(ConfigError) as raised:
        from_holdings("fund", read_holdings(path), HISTORY, MOMENT)  # SOL from day 35 on
    assert str(raised.value) == (
        f"{path} line 3: SOL has no price on 2027-01-30 (no close known): every asset of a "
        "holdings file must be priced"
    )
    later = from_holdings("fund", read_holdings(path), HISTORY, datetime(2027, 2, 6, tzinfo=UTC))
    assert later.weights == {"BTC": 50.0, "ETH": 30.0, "SOL": 20.0}


def holdings_config(write_plan, write_config, source: str, folder: Path) -> Path:
    overrides = write_plan(
        {"fund": ("weekly", {"BTC": 100})}, stages=[plan_stage("only", sleeves={"fund": 100})]
    )
    index = {"name": "Provider Fund", "cadence": "weekly", "source": source}
    Path(overrides["plan"]["indices"]).write_text(tomli_w.dumps({"index": {"fund": index}}))
    return write_config(overrides)


def test_the_file_is_re_read_at_each_reconstitution_and_its_changes_logged(
    write_plan, write_config, tmp_path: Path
):
    plan = tmp_path / "plan"
    (plan / "holdings.json").parent.mkdir(parents=True, exist_ok=True)
    (plan / "holdings.json").write_text('{"BTC": 60, "ETH": 40}')
    # A relative source is the indices file's folder's.
    config = load_config(holdings_config(write_plan, write_config, "holdings.json", plan))
    assert config.plan.indices["fund"].source == plan / "holdings.json"
    store = Store.open_memory()
    made = Reconstitutions(config, store, HistoryData(HISTORY, "USDT"))
    assert made.current(["fund"], MOMENT, "rebalance:fund:2027-W04", due="fund") == {
        "fund": {"BTC": 60.0, "ETH": 40.0}
    }
    (plan / "holdings.json").write_text('{"BTC": 70, "SOL": 30}')
    later = datetime(2027, 2, 7, tzinfo=UTC)
    with capture_logs() as logs:
        weights = made.current(["fund"], later, "rebalance:fund:2027-W05", due="fund")
    assert weights == {"fund": {"BTC": 70.0, "SOL": 30.0}}
    assert made.left("fund") == {"ETH": "ETH left Provider Fund: no longer in holdings.json"}
    changed = [e for e in logs if e["event"] == "holdings_changed"]
    assert changed == [
        {
            "event": "holdings_changed",
            "log_level": "info",
            "index": "fund",
            "source": str(plan / "holdings.json"),
            "entered": ["SOL"],
            "left": ["ETH"],
            "reweighted": {"BTC": [60.0, 70.0]},
        }
    ]
    event = store.events(kind="reconstituted", limit=1)[0]["data"]
    assert (event["entered"], event["left"], event["reweighted"]) == (
        ["SOL"],
        ["ETH"],
        {"BTC": [60.0, 70.0]},
    )
    assert event["source"] == str(plan / "holdings.json")
    store.close()


def test_a_bad_file_fails_only_its_own_rebalance(write_plan, write_config, tmp_path: Path):
    plan = tmp_path / "plan"
    plan.mkdir(parents=True, exist_ok=True)
    (plan / "holdings.json").write_text('{"BTC": 100}')
    config = load_config(holdings_config(write_plan, write_config, "holdings.json", plan))
    store = Store.open_memory()
    made = Reconstitutions(config, store, HistoryData(HISTORY, "USDT"))
    made.current(["fund"], MOMENT, "rebalance:fund:2027-W04", due="fund")
    (plan / "holdings.json").write_text('{"BTC": 90}')
    later = datetime(2027, 2, 7, tzinfo=UTC)
    with pytest.raises(ConfigError, match="holdings.json line 1: the weights sum to 90 %"):
        made.current(["fund"], later, "rebalance:fund:2027-W05", due="fund")
    # Another run (a DCA) keeps the last composition.
    assert made.current(["fund"], later, "dca:2027-02") == {"fund": {"BTC": 100.0}}
    store.close()


def test_check_config_names_a_bad_holdings_file(write_plan, write_config, tmp_path: Path):
    plan = tmp_path / "plan"
    plan.mkdir(parents=True, exist_ok=True)
    (plan / "holdings.csv").write_text("asset,weight\nBTC,50\nETH,40\n")
    path = holdings_config(write_plan, write_config, "holdings.csv", plan)
    result = run_cli("--config", str(path), "check-config")
    assert result.returncode == 78
    assert (
        f"index.fund.source: {plan / 'holdings.csv'} line 3: the weights sum to 90 %, not 100 %"
    ) in result.stderr
    assert "Traceback" not in result.stderr
