"""Price history for `simulate`: the wide CSV format, every bad input named by row and asset,
`require` naming what the plan needs and the history lacks, exchange closes aligned by day,
prices served in the investor's time zone, and the CLI's exit code 65 for bad data."""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from support import from_closes

from stagewise.errors import InputMissing, PriceHistoryError
from stagewise.history import (
    MAX_GAP_DAYS,
    Candle,
    HistoryMarkets,
    PriceHistory,
    from_candles,
    load_csv,
)

EX_DATAERR = 65
DAY_MS = 86_400_000
JAN_2020_MS = 1_577_836_800_000  # 2020-01-01T00:00:00Z


def write_csv(tmp_path: Path, text: str, name: str = "prices.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --- a good file ----------------------------------------------------------------------------


def test_csv_is_read_with_comments_blank_lines_spaces_and_late_listings(tmp_path):
    path = write_csv(
        tmp_path,
        "# generated for a test\n"
        "date, BTC ,ETH,SOL\n"
        "\n"
        "2020-01-01,7200.17,130.80,\n"
        "  # a comment between rows\n"
        "2020-01-02, 6985.47 ,127.41,\n"
        "2020-01-05,7000,128,0.95\n",
    )
    history = load_csv(path)
    assert history.days == (date(2020, 1, 1), date(2020, 1, 2), date(2020, 1, 5))
    assert history.closes == {
        "BTC": (7200.17, 6985.47, 7000.0),
        "ETH": (130.80, 127.41, 128.0),
        "SOL": (None, None, 0.95),  # empty before its first price: not listed yet
    }
    assert history.assets == ["BTC", "ETH", "SOL"]
    assert history.source == str(path)


def test_index_on_is_the_last_day_at_or_before(tmp_path):
    history = load_csv(write_csv(tmp_path, "date,BTC\n2020-01-01,1\n2020-01-03,3\n"))
    assert history.index_on(date(2019, 12, 31)) is None
    assert history.index_on(date(2020, 1, 1)) == 0
    assert history.index_on(date(2020, 1, 2)) == 0  # a day without a row holds the last close
    assert history.index_on(date(2020, 1, 3)) == 1
    assert history.index_on(date(2030, 1, 1)) == 1


def test_a_gap_of_exactly_the_maximum_is_accepted(tmp_path):
    last = date(2020, 1, 1) + timedelta(days=MAX_GAP_DAYS)
    history = load_csv(write_csv(tmp_path, f"date,BTC\n2020-01-01,1\n{last},2\n"))
    assert history.days[-1] == last


def test_the_shipped_sample_loads_and_covers_every_plan_asset():
    from stagewise import shipped
    from stagewise.settings import load_config

    history = load_csv(shipped.path(shipped.SAMPLE_PRICES))
    plan = load_config(shipped.path(shipped.EXAMPLE)).plan
    assert set(plan.assets()) <= set(history.assets)
    # 97 days before the demo's first (a warm-up for the rule indices: their longest reach is
    # 98 days of closes), so that its jobs of 1 January 2023 compose them.
    assert (history.days[0], history.days[-1]) == (date(2022, 9, 25), date(2026, 12, 31))
    assert history.first_start(ZoneInfo("Europe/Berlin")) == date(2022, 9, 26)
    assert history.first_start(ZoneInfo("Europe/Berlin"), rows=98) == date(2023, 1, 1)
    assert len(history.days) == (history.days[-1] - history.days[0]).days + 1  # every day


# --- every bad input names the file, the row and the asset -------------------------------------

BAD_FILES = [
    # (case, file text, fragments the message must hold)
    ("empty-file", "", ["the first line must be a header"]),
    ("only-comments", "# nothing\n\n", ["the first line must be a header"]),
    ("header-not-date", "day,BTC\n2020-01-01,1\n", ["the first line must be a header"]),
    ("header-without-assets", "date\n2020-01-01\n", ["the first line must be a header"]),
    ("duplicate-asset", "date,BTC,ETH,BTC\n2020-01-01,1,2,3\n", ["distinct codes", "'BTC'"]),
    ("lowercase-asset", "date,BTC,eth\n2020-01-01,1,2\n", ["distinct codes", "'eth'"]),
    ("asset-with-symbol", "date,BTC/USDT\n2020-01-01,1\n", ["distinct codes", "BTC/USDT"]),
    ("no-rows", "date,BTC\n", ["no price rows"]),
    ("bad-date", "date,BTC\n2020-01-01,1\n2020-13-01,2\n", ["row 3", "'2020-13-01' is not a date"]),
    ("not-iso-date", "date,BTC\n01/02/2020,1\n", ["row 2", "'01/02/2020' is not a date"]),
    (
        "same-date",
        "date,BTC\n2020-01-01,1\n2020-01-01,2\n",
        ["row 3", "2020-01-01 is not after 2020-01-01"],
    ),
    (
        "date-going-back",
        "date,BTC\n2020-01-02,1\n2020-01-03,1\n2020-01-01,2\n",
        ["row 4", "2020-01-01 is not after 2020-01-03"],
    ),
    (
        "gap-over-31-days",
        "date,BTC\n2020-01-01,1\n2020-02-02,2\n",
        ["row 3", "gap of 32 days after 2020-01-01", "at most 31"],
    ),
    ("not-a-number", "date,BTC,ETH\n2020-01-01,1,abc\n", ["row 2", "ETH", "'abc' is not a number"]),
    (
        "comma-decimal",
        'date,BTC,ETH\n2020-01-01,1,"2,5"\n',
        ["row 2", "ETH", "not a number", "a decimal comma"],
    ),
    (
        "thousands-separator",
        'date,BTC\n2020-01-01,"29,374.15"\n',
        ["row 2", "BTC", "not a number", "a thousands separator: write 29374.15"],
    ),
    (
        "comma-decimal-unquoted",
        "date,BTC,ETH\n2020-01-01,7200,17,130,8\n",
        ["row 2", "5 cells, expected 3", "decimal comma"],
    ),
    (
        "semicolons",
        "date;BTC;ETH\n2020-01-01;7200,17;130,8\n",
        ["the first line must be a header", "semicolon-separated", "commas between cells"],
    ),
    ("tabs", "date\tBTC\n2020-01-01\t7200.17\n", ["the first line must be a header", "tab-"]),
    (
        "price-too-small",
        "date,BTC\n2020-01-01,1\n2020-01-02,1e-300\n",
        ["row 3", "BTC", "1e-300 is outside any market's prices"],
    ),
    ("price-too-large", "date,BTC\n2020-01-01,1e300\n", ["row 2", "BTC", "1e300 is outside"]),
    (
        "zero",
        "date,BTC,ETH\n2020-01-01,1,2\n2020-01-02,0,2\n",
        ["row 3", "BTC", "must be positive"],
    ),
    ("negative", "date,BTC\n2020-01-01,-5\n", ["row 2", "BTC", "-5 must be positive"]),
    ("nan", "date,BTC\n2020-01-01,NaN\n", ["row 2", "BTC", "NaN is not a finite number"]),
    ("infinite", "date,BTC\n2020-01-01,inf\n", ["row 2", "BTC", "inf is not a finite number"]),
    (
        "gap-after-prices",
        "date,BTC,ETH\n2020-01-01,1,2\n2020-01-02,1,2\n2020-01-03,1, \n",
        ["row 4", "ETH has a gap"],
    ),
    ("too-few-cells", "date,BTC,ETH\n2020-01-01,1\n", ["row 2", "2 cells, expected 3"]),
    (
        "too-many-cells",
        "date,BTC\n2020-01-01,1\n2020-01-02,1,2\n",
        ["row 3", "3 cells, expected 2"],
    ),
]


@pytest.mark.parametrize(("case", "text", "fragments"), BAD_FILES, ids=[c[0] for c in BAD_FILES])
def test_bad_csv_is_a_price_history_error_naming_row_and_asset(tmp_path, case, text, fragments):
    path = write_csv(tmp_path, text)
    with pytest.raises(PriceHistoryError) as raised:
        load_csv(path)
    message = str(raised.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message, (case, message)


def test_missing_file_is_no_input(tmp_path):
    """As a missing --events file: EX_NOINPUT at the CLI, not a file of bad data."""
    with pytest.raises(InputMissing, match="^no price history file at .*nowhere.csv$"):
        load_csv(tmp_path / "nowhere.csv")


def test_a_folder_or_binary_file_is_a_price_history_error(tmp_path):
    with pytest.raises(PriceHistoryError, match="is a folder, not a price history file"):
        load_csv(tmp_path)
    binary = tmp_path / "prices.xlsx"
    binary.write_bytes(b"PK\x03\x04\xff\xfe\x00\x81")
    with pytest.raises(PriceHistoryError, match="cannot read price history .*prices.xlsx"):
        load_csv(binary)


@pytest.mark.parametrize("first_line", ["# exported from a spreadsheet\n", ""])
def test_a_csv_with_a_byte_order_mark_reads_as_without(tmp_path, first_line):
    """Excel's "CSV UTF-8" starts the file with a byte order mark: the first line is still
    a comment or the header."""
    text = first_line + "date,BTC,ETH\n2020-01-01,7200.17,130.8\n2020-01-02,6985.47,127.41\n"
    path = tmp_path / "excel.csv"
    path.write_text(text, encoding="utf-8-sig")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    history = load_csv(path)
    assert history.closes == {"BTC": (7200.17, 6985.47), "ETH": (130.8, 127.41)}
    assert history.days == (date(2020, 1, 1), date(2020, 1, 2))


def test_row_numbers_are_the_lines_of_the_file_even_below_comments(tmp_path):
    path = write_csv(tmp_path, "# a comment\n# another\ndate,BTC\n2020-01-01,1\n2020-01-02,x\n")
    with pytest.raises(PriceHistoryError, match="row 5"):  # the 5th line of the file
        load_csv(path)


# --- require: what the plan needs ------------------------------------------------------------

DAYS = tuple(date(2020, 1, 1) + timedelta(days=i) for i in range(10))
HISTORY = PriceHistory(
    DAYS,
    {"BTC": tuple(100.0 + i for i in range(10)), "SOL": (None, None, *[1.0] * 8)},
    "test.csv",
)


def test_require_passes_when_every_asset_has_a_close_known_in_the_period():
    HISTORY.require({"BTC"}, date(2020, 1, 2), date(2020, 1, 11))  # 1 Jan's close known
    HISTORY.require({"BTC", "SOL"}, date(2020, 1, 4), date(2020, 1, 6))  # SOL's first: 3 Jan
    # SOL lists later (its first close, of 3 January, is known on the 4th): it joins then.
    HISTORY.require({"BTC", "SOL"}, date(2020, 1, 2), date(2020, 1, 6))


def test_require_names_every_asset_absent_from_the_history():
    with pytest.raises(PriceHistoryError) as raised:
        HISTORY.require({"BTC", "DOT", "ADA"}, date(2020, 1, 2), date(2020, 1, 5))
    message = str(raised.value)
    assert "test.csv: no prices for ADA, DOT" in message
    assert "BTC" not in message.split("no prices for")[1].split("(")[0]


def test_require_names_an_asset_never_priced_in_the_period():
    # SOL's first close (3 January) is known from the 4th: a period ending on the 3rd never
    # sees it.
    with pytest.raises(PriceHistoryError, match="SOL has no price before 2020-01-03 .the plan"):
        HISTORY.require({"BTC", "SOL"}, date(2020, 1, 2), date(2020, 1, 4))
    never = PriceHistory(DAYS, {"BTC": HISTORY.closes["BTC"], "SUI": (None,) * 10}, "t.csv")
    with pytest.raises(PriceHistoryError, match="SUI has no price before 2020-01-10"):
        never.require({"BTC", "SUI"}, date(2020, 1, 2), date(2020, 1, 11))


def test_strict_history_names_an_asset_listed_after_the_start():
    with pytest.raises(
        PriceHistoryError, match="SOL has no price known when .* 2020-01-03 .listed"
    ):
        HISTORY.require({"BTC", "SOL"}, date(2020, 1, 3), date(2020, 1, 5), strict=True)
    HISTORY.require({"BTC", "SOL"}, date(2020, 1, 4), date(2020, 1, 5), strict=True)


def test_require_refuses_a_start_before_a_close_is_known():
    # The first close (1 January) is known from the midnight that ends 1 January.
    with pytest.raises(
        PriceHistoryError, match="history starts at 2020-01-01.* start on 2020-01-02 or later"
    ):
        HISTORY.require({"BTC"}, date(2020, 1, 1), date(2020, 1, 5))
    with pytest.raises(PriceHistoryError, match="history starts at 2020-01-01"):
        HISTORY.require({"BTC"}, date(2019, 12, 31), date(2020, 1, 5))


def test_an_exchange_history_is_known_from_utc_midnights_in_any_zone():
    history = from_closes({"BTC": [(JAN_2020_MS, 100.0), (JAN_2020_MS + DAY_MS, 101.0)]}, "x")
    # 1 January's candle closes at 00:00 UTC on the 2nd: 01:00 in Berlin, 19:00 on the 1st
    # in New York. The first whole day with it known: the 3rd in Berlin, the 2nd in New York.
    assert history.first_start(ZoneInfo("Europe/Berlin")) == date(2020, 1, 3)
    assert history.first_start(ZoneInfo("America/New_York")) == date(2020, 1, 2)
    assert history.first_start(UTC) == date(2020, 1, 2)


def test_require_allows_an_end_up_to_the_largest_gap_after_the_last_close():
    last = DAYS[-1]
    # [start, end) with end - 1 day at most MAX_GAP_DAYS after the last close: it holds.
    HISTORY.require({"BTC"}, DAYS[1], last + timedelta(days=MAX_GAP_DAYS + 1))
    with pytest.raises(PriceHistoryError, match="history ends at 2020-01-10, before"):
        HISTORY.require({"BTC"}, DAYS[1], last + timedelta(days=MAX_GAP_DAYS + 2))


def test_require_on_an_empty_history_says_so():
    empty = PriceHistory((), {}, "empty")
    with pytest.raises(PriceHistoryError, match="history starts at nothing"):
        empty.require({"BTC"}, date(2020, 1, 1), date(2020, 1, 2))


# --- exchange closes ---------------------------------------------------------------------------


def test_from_closes_aligns_days_and_holds_a_skipped_day():
    history = from_closes(
        {
            "BTC": [
                (JAN_2020_MS, 100.0),
                (JAN_2020_MS + DAY_MS, 101.0),
                (JAN_2020_MS + 3 * DAY_MS, 103.0),
            ],
            "SOL": [(JAN_2020_MS + DAY_MS, 1.0), (JAN_2020_MS + 2 * DAY_MS, 1.5)],
        },
        "binance daily closes",
    )
    assert history.days == tuple(date(2020, 1, 1) + timedelta(days=i) for i in range(4))
    assert history.closes["BTC"] == (100.0, 101.0, 101.0, 103.0)  # 3 Jan skipped: 2 Jan holds
    assert history.closes["SOL"] == (None, 1.0, 1.5, 1.5)  # not listed on 1 Jan
    assert history.source == "binance daily closes"


@pytest.mark.parametrize("close", [1e-300, 1e300, math.nan])
def test_from_closes_refuses_a_close_outside_any_markets_prices(close):
    with pytest.raises(PriceHistoryError, match="BTC close .* on 2020-01-02 is outside"):
        from_closes({"BTC": [(JAN_2020_MS, 100.0), (JAN_2020_MS + DAY_MS, close)]}, "binance")


# --- prices for the paper account ---------------------------------------------------------------


def test_history_markets_serve_the_last_close_known_at_the_moment():
    """Point in time: a CSV's day ends at the investor's midnight, and its close is known
    from then: during 2 January in Berlin, the close of 1 January, never the 2nd's."""
    markets = HistoryMarkets(HISTORY, "USDT", tz=ZoneInfo("Europe/Berlin"), min_notional=7.5)
    # 23:30 UTC on 1 January is 00:30 on 2 January in Berlin: 1 January has ended.
    prices, rules = markets.quotes(["BTC", "SOL", "XRP"], datetime(2020, 1, 1, 23, 30, tzinfo=UTC))
    assert prices == {"BTC": 100.0}  # SOL not listed yet, XRP not in the history
    assert rules["BTC"].symbol == "BTC/USDT"
    assert rules["BTC"].min_notional == 7.5
    # 22:30 UTC on 2 January is 23:30 in Berlin: the 2nd's close is not known yet.
    late, _ = markets.quotes(["BTC"], datetime(2020, 1, 2, 22, 30, tzinfo=UTC))
    assert late == {"BTC": 100.0}
    # 22:30 UTC on 1 January is 23:30 on the 1st in Berlin: no close is known yet.
    before, none = markets.quotes(["BTC"], datetime(2020, 1, 1, 22, 30, tzinfo=UTC))
    assert before == {} and none == {}


def test_history_markets_serve_exchange_closes_from_the_utc_midnight_after():
    history = from_closes(
        {"BTC": [(JAN_2020_MS, 100.0), (JAN_2020_MS + DAY_MS, 101.0)]}, "binance daily closes"
    )
    markets = HistoryMarkets(history, "USDT", tz=ZoneInfo("Europe/Berlin"))
    # 00:30 on 3 January in Berlin is 23:30 UTC on the 2nd: only the 1st's candle has closed.
    prices, _ = markets.quotes(["BTC"], datetime(2020, 1, 2, 23, 30, tzinfo=UTC))
    assert prices == {"BTC": 100.0}
    prices, _ = markets.quotes(["BTC"], datetime(2020, 1, 3, 0, 0, tzinfo=UTC))
    assert prices == {"BTC": 101.0}


def test_history_markets_serve_an_asset_from_the_day_after_its_first_close():
    """Priced from the day after its first close; its market listed from the start, as an
    exchange lists one (read only: no caller changes what the next one is given)."""
    markets = HistoryMarkets(HISTORY, "USDT", tz=UTC)
    for day, listed in [(1, set()), (2, {"BTC"}), (3, {"BTC"}), (4, {"BTC", "SOL"})]:
        prices, rules = markets.quotes(["BTC", "SOL"], datetime(2020, 1, day, 12, tzinfo=UTC))
        assert set(prices) == listed
        assert listed <= set(rules) == ({"BTC", "SOL"} if day > 1 else set())
        prices.clear()  # the caller's to keep: the next answer is whole
        with pytest.raises(TypeError):
            rules["SOL"] = None  # type: ignore[index]
        again, again_rules = markets.quotes(["BTC", "SOL"], datetime(2020, 1, day, 18, tzinfo=UTC))
        assert set(again) == listed and again_rules == rules


def test_history_markets_hold_the_last_close_after_the_history():
    markets = HistoryMarkets(HISTORY, "USDT", tz=UTC)
    prices, _ = markets.quotes(["BTC", "SOL"], datetime(2020, 2, 1, tzinfo=UTC))
    assert prices == {"BTC": 109.0, "SOL": 1.0}
    assert all(math.isfinite(p) for p in prices.values())


# --- the CLI --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("date,BTC\n2020-01-01,1\n2020-01-02,-1\n", "row 3: BTC price -1 must be positive"),
        ("date,BTC\n2020-01-01,1\n2020-01-02,1e-300\n", "row 3: BTC price 1e-300 is outside"),
        ("date,BTC\n2020-01-01,1\n2020-01-02,inf\n", "row 3: BTC price inf is not a finite"),
    ],
    ids=["negative-price", "tiny-price", "infinite-price"],
)
def test_cli_simulate_with_bad_prices_exits_65_with_the_message(
    cli, write_config, tmp_path, text, fragment
):
    bad = tmp_path / "bad.csv"
    bad.write_text(text)
    result = cli("--config", str(write_config()), "simulate", "--prices", str(bad))
    assert result.returncode == EX_DATAERR, result.stderr
    assert fragment in result.stderr and str(bad) in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stdout == ""


def test_cli_simulate_names_plan_assets_missing_from_the_prices(cli, write_config, tmp_path):
    prices = write_csv(tmp_path, "date,BTC,ETH\n2020-01-01,7200,130\n2020-01-02,7100,129\n")
    result = cli("--config", str(write_config()), "simulate", "--prices", str(prices))
    assert result.returncode == EX_DATAERR, result.stderr
    assert "no prices for" in result.stderr and "SOL" in result.stderr
    assert "Traceback" not in result.stderr


def test_from_candles_holds_skipped_days_and_lets_a_stale_market_go():
    def at(day: int, close: float, volume: float | None = None) -> Candle:
        return Candle(JAN_2020_MS + day * DAY_MS, close, volume)

    history = from_candles(
        {
            "BTC": [at(0, 100.0, 5.0), at(2, 102.0, 7.0), at(5, 103.0, 9.0)],
            "OLD": [at(0, 1.0, 1.0)],  # no candle since: delisted
            "NEW": [at(d, 2.0, 3.0) for d in range(6)],
        },
        "binance daily candles",
        hold_days=2,
    )
    assert history.days == tuple(date(2020, 1, 1) + timedelta(days=i) for i in range(6))
    assert history.closes["BTC"] == (100.0, 100.0, 102.0, 102.0, 102.0, 103.0)
    assert history.volumes["BTC"] == (5.0, None, 7.0, None, None, 9.0)  # a held day: none
    assert history.closes["OLD"] == (1.0, 1.0, 1.0, None, None, None)  # 2 days, then gone
    assert from_candles({"OLD": [at(0, 1.0)], "NEW": [at(3, 2.0)]}, "x").closes["OLD"] == (
        1.0,
        1.0,
    )  # without hold_days (a simulation's download): the last close holds for good


def test_volumes_are_read_onto_the_days_of_the_prices(tmp_path):
    from stagewise.history import load_volumes

    prices = load_csv(write_csv(tmp_path, "date,BTC,ETH\n2020-01-01,1,2\n2020-01-02,1,2\n"))
    path = tmp_path / "volumes.csv"
    path.write_text("date,ETH\n# a comment\n2020-01-02,1500.5\n")
    history = load_volumes(path, prices)
    assert history.volumes == {"ETH": (None, 1500.5)}  # 1 January: not known
    assert history.closes == prices.closes
    for text, message in [
        ("date,ETH\n2020-01-02,-1\n", "row 2: ETH volume -1 must be 0 or more"),
        ("date,ETH\n2020-01-02,inf\n", "row 2: ETH volume inf is not a finite number"),
        ('date,ETH\n2020-01-02,"1,5"\n', "row 2: ETH volume '1,5' is not a number (a decimal"),
        ("date,ETH\n2020-01-02,1,5\n", "row 2: 3 cells, expected 2"),
        ("date,ETH\n2020-01-03,1\n", "row 2: 2020-01-03 is not a date of"),
        ("date,ETH\n2020-01-02,1\n2020-01-01,1\n", "row 3: 2020-01-01 is not after 2020-01-02"),
    ]:
        path.write_text(text)
        with pytest.raises(PriceHistoryError, match=re.escape(f"{path}: {message}")):
            load_volumes(path, prices)
