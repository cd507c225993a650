"""The return and risk figures investors compare plans by, on small series worked by hand:
XIRR (money-weighted), the time-weighted curve with payments in and out, drawdowns of the
value and of that curve, annualising."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from stagewise.returns import annualised, max_drawdown, time_weighted, xirr


def at(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, tzinfo=UTC)


# --- XIRR -----------------------------------------------------------------------------------


def test_xirr_of_one_year_is_the_simple_return():
    # -1000 now, +1100 in 365 days: 1000 * 1.1 = 1100, so r = 10 %.
    assert xirr([(at(2021, 1, 1), -1000.0), (at(2022, 1, 1), 1100.0)]) == pytest.approx(0.10)


def test_xirr_over_two_years_is_the_yearly_rate():
    # -1000, +1210 after 730 days (two years of 365): 1000 * 1.1 ** 2 = 1210, r = 10 %.
    assert xirr([(at(2021, 1, 1), -1000.0), (at(2023, 1, 1), 1210.0)]) == pytest.approx(0.10)


def test_xirr_of_contributions_weighs_each_by_its_time():
    # -1000 on 1 Jan 2021, -1000 on 1 Jan 2022, +2310 on 1 Jan 2023 (365 days apart):
    # at 10 %, 1000 * 1.1 ** 2 + 1000 * 1.1 = 1210 + 1100 = 2310: r = 10 %.
    flows = [(at(2021, 1, 1), -1000.0), (at(2022, 1, 1), -1000.0), (at(2023, 1, 1), 2310.0)]
    assert xirr(flows) == pytest.approx(0.10, abs=1e-9)


def test_xirr_agrees_with_the_spreadsheet_example():
    """The example of the XIRR function's documentation (Excel, LibreOffice): 37.34 %."""
    flows = [
        (at(2008, 1, 1), -10_000.0),
        (at(2008, 3, 1), 2_750.0),
        (at(2008, 10, 30), 4_250.0),
        (at(2009, 2, 15), 3_250.0),
        (at(2009, 4, 1), 2_750.0),
    ]
    assert xirr(flows) == pytest.approx(0.373362535, abs=1e-8)


def test_xirr_of_a_loss_is_negative():
    # -1000, +500 a year later: r = -50 %.
    assert xirr([(at(2021, 1, 1), -1000.0), (at(2022, 1, 1), 500.0)]) == pytest.approx(-0.5)


@pytest.mark.parametrize(
    "flows",
    [[], [(at(2021, 1, 1), -1000.0)], [(at(2021, 1, 1), 1000.0), (at(2022, 1, 1), 5.0)]],
    ids=["nothing", "only-paid-in", "nothing-paid-in"],
)
def test_xirr_without_money_in_and_out_is_none(flows):
    assert xirr(flows) is None


# --- time-weighted return and drawdowns --------------------------------------------------------


def test_time_weighted_curve_removes_the_payments():
    # (value at the day's end, money moved in that day):
    #   day 1: 100 paid in, worth 100:              1 * 100 / (0 + 100)    = 1.0
    #   day 2: worth 110:                           1.0 * 110 / 100        = 1.1
    #   day 3: 100 paid in, worth 200:              1.1 * 200 / (110 + 100) = 1.047619...
    #   day 4: 50 paid out, worth 180:              1.047619 * 180 / (200 - 50) = 1.257142...
    curve = time_weighted([(100.0, 100.0), (110.0, 0.0), (200.0, 100.0), (180.0, -50.0)])
    assert curve == pytest.approx([1.0, 1.1, 1.1 * 200 / 210, 1.1 * 200 / 210 * 180 / 150])


def test_a_step_with_nothing_invested_leaves_the_unit_alone():
    # Nothing held or paid in on day 1 (an empty account), then 100 paid in, worth 90.
    assert time_weighted([(0.0, 0.0), (90.0, 100.0)]) == pytest.approx([1.0, 0.9])


def test_contributions_hide_a_fall_the_time_weighted_drawdown_shows():
    """A DCA into a falling market: the value rises with each contribution, the portfolio
    loses 40 %. Price 100, 80, 60; 1,000 bought at each, no fees:
      day 1: 10 units, worth 1,000 (1,000 paid in)   unit 1.0
      day 2: worth 800                               unit 0.8
      day 3: 12.5 units more at 80: 22.5, worth 1,800 (1,000 paid in)   unit 0.8 * 1800/1800
      day 4: at 60, worth 1,350                      unit 0.8 * 1350 / 1800 = 0.6
    The value fell at most from 1,800 to 1,350 (25 %); the unit from 1.0 to 0.6 (40 %)."""
    days = [(1000.0, 1000.0), (800.0, 0.0), (1800.0, 1000.0), (1350.0, 0.0)]
    curve = time_weighted(days)
    assert curve == pytest.approx([1.0, 0.8, 0.8, 0.6])
    assert max_drawdown([v for v, _ in days]) == pytest.approx(0.25)
    assert max_drawdown(curve) == pytest.approx(0.40)


def test_max_drawdown_is_the_largest_fall_from_a_peak():
    assert max_drawdown([100, 120, 90, 130, 65, 70]) == pytest.approx(0.5)  # 130 -> 65
    assert max_drawdown([1, 2, 3]) == 0.0
    assert max_drawdown([]) == 0.0


def test_annualised_growth():
    assert annualised(1.21, 730) == pytest.approx(0.10)  # 1.1 ** 2 over two years of 365 days
    assert annualised(0.5, 365) == pytest.approx(-0.5)
    assert annualised(1.1, 0) is None
    assert annualised(0.0, 365) is None  # nothing left: no rate
