"""A sweep (`stagewise.sweep`): the plan over every window of the history and every variant.

The windows a history holds; variants validated as the config is; each window's figures
equal to a plain `simulate` of its span (every job, across a stage change, with
withdrawals), run in local worker processes; a BTC-only DCA plan against arithmetic
written out here; the spread a person reads of the windows.
"""

from __future__ import annotations

import math
import statistics
from datetime import date, timedelta

import pytest
from support import DCA_ONLY, NO_FEES, deep_merge, plan_stage

from stagewise import shipped
from stagewise.errors import ConfigError, PriceHistoryError, UsageError
from stagewise.history import PriceHistory, load_csv
from stagewise.settings import load_config
from stagewise.simulate import simulate
from stagewise.spread import percentile, summaries
from stagewise.sweep import (
    Span,
    Sweep,
    Variant,
    Window,
    local_pool,
    parse_span,
    run,
    variants,
    windows,
)

CENT = 0.005


@pytest.fixture(scope="module")
def sample() -> PriceHistory:
    return load_csv(shipped.path(shipped.SAMPLE_PRICES))


def daily(first: date, last: date, price) -> PriceHistory:
    """A history of one asset, BTC, a close `price(k)` on the k-th day from `first`."""
    days = tuple(first + timedelta(days=k) for k in range((last - first).days + 1))
    return PriceHistory(days, {"BTC": tuple(price(k) for k in range(len(days)))}, "hand")


# --- which windows --------------------------------------------------------------------------


@pytest.fixture
def btc_plan(make_config, write_plan):
    """A config in UTC whose plan holds BTC alone in a fixed basket (no rule index: the
    windows start where the closes do)."""
    plan = write_plan({"basket": ("quarterly", {"BTC": 100})}, [plan_stage("only")])
    return make_config({**plan, "investor": {"timezone": "UTC"}})


def test_windows_step_through_the_history_and_end_by_its_end(btc_plan):
    config = btc_plan
    prices = daily(date(2020, 12, 31), date(2022, 12, 31), lambda k: 100.0)
    found = windows(prices, config, Span(12, "m"), Span(1, "m"))
    # The first day a close is known is 1 Jan 2021; the last window ends the day after the
    # last close, 1 Jan 2023.
    assert found[0] == Window(date(2021, 1, 1), date(2022, 1, 1))
    assert found[-1] == Window(date(2022, 1, 1), date(2023, 1, 1))
    assert len(found) == 13
    assert [w.start for w in windows(prices, config, Span(1, "y"), Span(3, "m"))] == [
        date(2021, 1, 1),
        date(2021, 4, 1),
        date(2021, 7, 1),
        date(2021, 10, 1),
        date(2022, 1, 1),
    ]
    # From a given day, stepped in days, within a given end.
    bounded = windows(
        prices, config, Span(90, "d"), Span(30, "d"), date(2021, 2, 15), date(2021, 9, 1)
    )
    assert [(w.start, w.end) for w in bounded] == [
        (date(2021, 2, 15), date(2021, 5, 16)),
        (date(2021, 3, 17), date(2021, 6, 15)),
        (date(2021, 4, 16), date(2021, 7, 15)),
        (date(2021, 5, 16), date(2021, 8, 14)),
    ]


def test_month_steps_from_the_31st_are_counted_from_the_first_start(btc_plan):
    config = btc_plan
    prices = daily(date(2021, 1, 30), date(2021, 12, 31), lambda k: 100.0)
    found = windows(prices, config, Span(1, "m"), Span(1, "m"))
    # 31 Jan, 28 Feb (the month's end), then 31 Mar again: never drifting to the 28th.
    assert [w.start for w in found[:3]] == [date(2021, 1, 31), date(2021, 2, 28), date(2021, 3, 31)]


def test_a_window_longer_than_the_history_is_refused(make_config, sample):
    config = make_config()
    with pytest.raises(UsageError, match="a 5y window is longer than the history") as e:
        windows(sample, config, Span(5, "y"), Span(1, "m"))
    assert "2023-01-01 .. 2027-12-31" in str(e.value) and "close of 2026-12-31" in str(e.value)
    # Exactly the history: one window.
    assert windows(sample, config, Span(48, "m"), Span(1, "m")) == [
        Window(date(2023, 1, 1), date(2027, 1, 1))
    ]


@pytest.mark.parametrize(
    ("text", "span"), [("48m", Span(48, "m")), ("2Y", Span(2, "y")), (" 30d ", Span(30, "d"))]
)
def test_a_length_is_a_number_and_a_unit(text, span):
    assert parse_span(text) == span


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("48", "not a length like 48m"),
        ("m", "not a length"),
        ("4w", "not a length"),
        ("0m", "no length"),
    ],
)
def test_a_length_that_is_none_is_refused(text, message):
    with pytest.raises(ValueError, match=message):
        parse_span(text)


# --- variants ---------------------------------------------------------------------------------


def test_variants_are_every_combination_validated_as_the_config(make_config):
    config = make_config()
    found = variants(
        config,
        [("investor.crypto_share_point", ["0", "1"]), ("policy.rebalance_to", ["target", "band"])],
    )
    assert [v.label for v in found] == [
        "investor.crypto_share_point=0 policy.rebalance_to=target",
        "investor.crypto_share_point=0 policy.rebalance_to=band",
        "investor.crypto_share_point=1 policy.rebalance_to=target",
        "investor.crypto_share_point=1 policy.rebalance_to=band",
    ]
    settings = [(v.config.settings.investor, v.config.settings.policy) for v in found]
    assert [(i.crypto_share_point, p.rebalance_to) for i, p in settings] == [
        (0.0, "target"),
        (0.0, "band"),
        (1.0, "target"),
        (1.0, "band"),
    ]
    # Nothing else changed, and the config as it is without --vary.
    assert found[0].config.settings.investor.birth_date == config.settings.investor.birth_date
    assert variants(config, []) == [Variant(config)]


@pytest.mark.parametrize(
    ("vary", "message"),
    [
        (("investor.crypto_share_point", ["0.5", "2"]), "investor.crypto_share_point: Input"),
        (("investor.crypto_share_pont", ["1"]), "did you mean 'crypto_share_point'"),
        (("policy.rebalance_to", ["edge"]), "policy.rebalance_to: Input should be 'target'"),
        (("investor.contributions.nobody", ["100"]), "no stage 'nobody' in the plan"),
        (("exchange.id", ["kraken"]), "not a setting a simulation reads"),
        (("investor.birth_date.year", ["1990"]), "investor.birth_date: not a table"),
    ],
)
def test_a_bad_variant_is_a_config_error_naming_it(make_config, vary, message):
    key, values = vary
    with pytest.raises(ConfigError, match="--vary " + key) as e:
        variants(make_config(), [vary])
    assert message in str(e.value)
    assert key.split(".")[0] in str(e.value)


def test_a_key_varied_twice_is_a_bad_argument(make_config):
    with pytest.raises(UsageError, match="given twice"):
        variants(make_config(), [("policy.band_abs_pct", ["5"]), ("policy.band_abs_pct", ["3"])])


def test_a_variant_wins_over_the_environment(write_config, monkeypatch):
    monkeypatch.setenv("STAGEWISE_INVESTOR__MONTHLY_CONTRIBUTION", "700")
    config = load_config(write_config())
    assert config.settings.investor.monthly_contribution == 700
    (varied,) = variants(config, [("investor.monthly_contribution", ["900"])])
    assert varied.config.settings.investor.monthly_contribution == 900


# --- a window is a simulation of its span ------------------------------------------------------

BORN_FOR = {
    # The shipped example: every job; a glide to the next stage starts mid-2026.
    "every job": {},
    # 31 on 15 Jun 2026: Young Professional -> Career Builder inside the last window.
    "stage change": {"investor": {"birth_date": "1995-06-15"}},
    # Retired (73 in 2023) with 100,000 in the account: monthly withdrawals.
    "withdrawals": {
        "investor": {"birth_date": "1950-03-01"},
        "paper": {"initial_balances": {"USDT": 100_000}},
    },
}


@pytest.mark.parametrize("case", list(BORN_FOR))
def test_each_window_equals_a_plain_simulation_of_its_span_to_the_cent(
    write_config, sample, tmp_path, case
):
    config = load_config(write_config(BORN_FOR[case]))
    spans = windows(sample, config, Span(12, "m"), Span(6, "m"), date(2025, 1, 1))
    assert len(spans) == 3
    sweep = Sweep((Variant(config),), tuple(spans), sample)
    with local_pool(sweep, 2) as pool:
        results = run(sweep, pool)
    assert [(r.start, r.end) for r in results] == [(w.start, w.end) for w in spans]
    plain = [simulate(config, sample, w.start, w.end, tmp_path / f"{w.start}.db") for w in spans]
    for got, want in zip(results, plain, strict=True):
        f = want.figures
        assert got.final_value == pytest.approx(f.final_value, abs=CENT)
        assert (got.seed_value, got.contributions, got.withdrawals) == (
            f.seed_value,
            f.contributions,
            f.withdrawals,
        )
        assert (got.fees, got.slippage, got.max_drawdown) == (f.fees, f.slippage, f.max_drawdown)
        assert (got.money_weighted, got.time_weighted) == (f.money_weighted, f.time_weighted)
        assert got.final_value == f.final_value  # the same code: not only to the cent
        assert got.runs == sum(want.runs_by_status.values())
        assert got.failed_runs == 0
        assert got.path[-1] == f.final_value and len(got.path) == 12
    if case == "stage change":
        assert [s.stage for s in plain[-1].stages] == ["young_professional", "career_builder"]
    if case == "withdrawals":
        assert all(r.withdrawals > 500 for r in results)  # 3 % a year of the crypto held


def test_serial_and_parallel_sweeps_give_the_same_windows(make_config, sample):
    config = make_config()
    sweep = Sweep(
        tuple(variants(config, [("policy.rebalance_to", ["target", "band"])])),
        tuple(windows(sample, config, Span(6, "m"), Span(9, "m"), date(2025, 1, 1))),
        sample,
    )
    done = []
    serial = run(sweep, None, lambda n, total: done.append((n, total)))
    assert done == [(n, 6) for n in range(1, 7)]  # 3 windows x 2 variants
    with local_pool(sweep, 2) as pool:
        assert run(sweep, pool) == serial
    assert [(r.variant, r.start) for r in serial] == [
        (v, d) for v in (0, 1) for d in (date(2025, 1, 1), date(2025, 10, 1), date(2026, 7, 1))
    ]


def test_a_window_that_fails_names_itself_and_stops_the_sweep(make_config, sample):
    config = make_config()
    # BTC is not priced until 2025-06-01 in this copy of the sample: the first window is
    # refused (an asset never priced in it, under --strict-history a coin without a price
    # when it starts).
    cut = sample.days.index(date(2025, 6, 1))
    closes = dict(sample.closes)
    closes["BTC"] = (None,) * cut + sample.closes["BTC"][cut:]
    history = PriceHistory(sample.days, closes, "cut")
    spans = windows(history, config, Span(6, "m"), Span(6, "m"), date(2025, 1, 1))
    sweep = Sweep((Variant(config),), tuple(spans), history, strict_history=True)
    failed = r"the window 2025-01-01 \.\. 2025-06-30: cut: BTC"
    with pytest.raises(PriceHistoryError, match=failed), local_pool(sweep, 2) as pool:
        run(sweep, pool)


# --- an independent check: BTC-only DCA -----------------------------------------------------

# A plan that only buys: one index of BTC, no fee, no slippage, no drift watch, bands no weight
# can leave, no crypto-share check (no outside investments), no seed, no yearly increase.
BTC_DCA = deep_merge(deep_merge(DCA_ONLY, NO_FEES), {"investor": {"birth_date": "1990-01-01"}})


def dca_by_hand(closes: dict[date, float], start: date, end: date) -> float:
    """The final value of 1,000 a month into BTC on the 1st of each month in [start, end).

    The DCA of the 1st at 09:00 buys at the last close known then: the close of the latest
    row dated before that day (daily rows: the day before, the last of the month before;
    rows dated the 1st of each month: the previous month's row, the 1st's own close being
    known only when that day ends). The amount is rounded down to the exchange's step, 1e-8
    BTC, and the cash left is carried into the next month's buy. The final value: the BTC at
    the last close known at the end (the row of the window's last day or before), plus the
    cash left."""
    dates = sorted(closes)

    def known_before(day: date) -> float:
        return closes[max(d for d in dates if d < day)]

    btc, cash = 0.0, 0.0
    day = date(start.year, start.month, 1)
    while day < end:
        if day >= start:
            cash += 1000.0
            price = known_before(day)
            bought = math.floor(cash / price * 1e8 + 1e-6) / 1e8
            btc += bought
            cash -= bought * price
        day = date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return btc * known_before(end) + cash


@pytest.mark.parametrize("rows", ["daily", "monthly"])
def test_btc_dca_windows_equal_the_arithmetic_written_out(write_plan, write_config, rows):
    plan = write_plan({"basket": ("quarterly", {"BTC": 100})}, [plan_stage("only")])
    config = load_config(write_config(deep_merge(BTC_DCA, plan)))
    if rows == "daily":  # a wave around 30,000, to the cent
        prices = daily(
            date(2020, 12, 31),
            date(2023, 12, 31),
            lambda k: round(30_000 + 12_000 * math.sin(k / 45) + 7.5 * k, 2),
        )
    else:  # a row on the 1st of each month
        months = [date(2020 + m // 12, m % 12 + 1, 1) for m in range(12, 49)]
        prices = PriceHistory(
            tuple(months),
            {"BTC": tuple(round(20_000 * 1.03**m * (1.2 if m % 5 else 0.8), 2) for m in range(37))},
            "monthly",
        )
    closes = dict(zip(prices.days, prices.closes["BTC"], strict=True))
    spans = windows(prices, config, Span(12, "m"), Span(1, "m"), date(2021, 1, 1))
    assert len(spans) == 25
    sweep = Sweep((Variant(config),), tuple(spans), prices, min_notional=0)
    with local_pool(sweep, 2) as pool:
        results = run(sweep, pool)
    for r in results:
        assert r.contributions == 12 * 1000.0 and r.fees == 0
        assert r.final_value == pytest.approx(dca_by_hand(closes, r.start, r.end), abs=CENT)


# --- what a person reads of the windows --------------------------------------------------------


def test_percentiles_interpolate_between_the_nearest_ranks():
    values = [float(v) for v in (7, 1, 3, 9, 5)]
    assert percentile(values, 0.5) == 5.0
    assert percentile(values, 0.1) == pytest.approx(1 + 0.4 * 2)  # rank 0.4 between 1 and 3
    assert percentile(values, 0.9) == pytest.approx(7 + 0.6 * 2)
    assert percentile([4.0], 0.1) == 4.0
    deciles = statistics.quantiles(range(73), n=10, method="inclusive")
    assert [percentile(list(range(73)), p / 10) for p in (1, 9)] == [deciles[0], deciles[8]]


def test_the_summary_of_a_variant(make_config, sample):
    config = make_config()
    sweep = Sweep(
        (Variant(config),),
        tuple(windows(sample, config, Span(6, "m"), Span(4, "m"), date(2024, 1, 1))),
        sample,
    )
    results = run(sweep)
    finals = [r.final_value for r in results]
    goal = statistics.median(finals)
    (s,) = summaries(sweep, results, goal)
    assert len(s.windows) == len(results) == 8
    assert s.median == goal
    assert s.worst.final_value == min(finals) and s.best.final_value == max(finals)
    assert s.worst.start == results[finals.index(min(finals))].start
    assert s.reaching_goal == sum(f >= goal for f in finals) / 8 == 4 / 8
    assert s.p10 <= s.median <= s.p90
    assert s.median_drawdown == statistics.median(r.max_drawdown for r in results)
    assert s.worst_drawdown.max_drawdown == max(r.max_drawdown for r in results)
    assert s.contributions == (12_000.0, 12_000.0, 12_000.0)  # 6 x 2,000 in every window
    assert summaries(sweep, results, None)[0].reaching_goal is None


def test_dask_is_imported_only_for_a_cluster():
    import json
    import subprocess
    import sys

    probe = (
        "import json, sys\n"
        "import stagewise.sweep, stagewise.spread\n"
        "import stagewise.cli.sweep, stagewise.cli.sweep_report\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout))
    assert "stagewise" in loaded and loaded.isdisjoint({"dask", "distributed", "matplotlib"})
