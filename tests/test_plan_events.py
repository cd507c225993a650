"""Plan events in a simulation: `--events FILE` (CSV or TOML) and the `--windfall`/`--pause`
flags, one event list applied at their dates through the live calls; the value series the
simulation database holds (simulation_days), which the chart reads; profit moved out, a
figure apart from withdrawals.

Small plans of the test's own (one index, bands so wide nothing rebalances, no drift watch,
no fee) over hand-made prices, checked against arithmetic written out here; the real CLI as
a subprocess for the files' errors and exit codes.
"""

from __future__ import annotations

import json
import math
import sqlite3
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from support import DCA_ONLY, NO_FEES, deep_merge, plan_stage

from stagewise.errors import EventsFileError, InputMissing, UsageError
from stagewise.event_files import load_events
from stagewise.history import PriceHistory
from stagewise.plan_events import Origin, OutsideValue, Pause, Windfall
from stagewise.returns import max_drawdown, time_weighted
from stagewise.settings import load_config
from stagewise.simulate import simulate
from stagewise.store import Store

QUIET = deep_merge(DCA_ONLY, NO_FEES)


@pytest.fixture
def config_of(write_plan, write_config):
    """A loaded config: one index 'basket' holding A, only DCA trading (and `stages`)."""

    def make(stages=None, **overrides):
        plan = write_plan({"basket": ("quarterly", {"A": 100})}, stages)
        return load_config(write_config(deep_merge(deep_merge(QUIET, plan), overrides)))

    return make


def flat(first: date, last: date, price: float = 100.0) -> PriceHistory:
    """A at `price` on every day from `first` to `last`."""
    days = tuple(first + timedelta(days=i) for i in range((last - first).days + 1))
    return PriceHistory(days, {"A": tuple(price for _ in days)}, "hand")


def ledger(db: Path) -> list:
    store = Store.open(db)
    try:
        return store.ledger_entries()
    finally:
        store.close()


def day_rows(db: Path) -> list[sqlite3.Row]:
    """The simulation_days table, read as any SQLite tool reads it."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute("SELECT * FROM simulation_days ORDER BY day").fetchall()
    finally:
        conn.close()


EVENTS_CSV = """\
date,kind,amount,reason
# a bonus, invested by the next job
2030-01-15,windfall,5000,
2030-03-01,pause,,lost my job
2030-05-01,resume
"""

EVENTS_TOML = """\
[[event]]
date = 2030-01-15
kind = "windfall"
amount = 5000

[[event]]
date = "2030-03-01"
kind = "pause"
reason = "lost my job"

[[event]]
date = 2030-05-01
kind = "resume"
"""


# --- a windfall and a pause from a file, to the cent ------------------------------------------


@pytest.mark.parametrize(("name", "text"), [("ev.csv", EVENTS_CSV), ("ev.toml", EVENTS_TOML)])
def test_a_windfall_and_a_pause_from_an_events_file_are_applied_at_their_dates(
    config_of, tmp_path, name, text
):
    """1,000 a month into A at 100, half of a bonus invested. The 5,000 windfall announced
    on 15 January is invested by the next job (1 February, before its DCA): 2,500, 25 units.
    The pause from 1 March, resumed on 1 May, stops the March and April contributions; May's
    is made. Contributions 1,000 x 3 + 2,500 = 5,500; 55 units at 100 = 5,500."""
    path = tmp_path / name
    path.write_text(text)
    events = load_events(path)
    assert events == [
        Windfall(date(2030, 1, 15), 5000.0, Origin(str(path), 3 if name == "ev.csv" else 1)),
        Pause(
            date(2030, 3, 1),
            date(2030, 5, 1),
            "lost my job",
            Origin(str(path), 4 if name == "ev.csv" else 6),
        ),
    ]
    config = config_of(investor={"bonus_share_pct": 50})
    db = tmp_path / "sim.db"
    result = simulate(
        config,
        flat(date(2029, 12, 31), date(2030, 5, 31)),
        date(2030, 1, 1),
        date(2030, 6, 1),
        db,
        events=events,
    )
    entries = ledger(db)
    deposits = [(e.at.date(), e.amount, e.note) for e in entries if e.kind == "deposit"]
    assert deposits == [
        (date(2030, 1, 1), 1000.0, "dca:2030-01"),
        (date(2030, 2, 1), 2500.0, "windfall:1"),
        (date(2030, 2, 1), 1000.0, "dca:2030-02"),
        (date(2030, 5, 1), 1000.0, "dca:2030-05"),
    ]
    bought = [(e.at.date(), e.amount) for e in entries if e.kind == "fill" and e.asset == "A"]
    assert bought == [
        (date(2030, 1, 1), 10.0),
        (date(2030, 2, 1), 25.0),
        (date(2030, 2, 1), 10.0),
        (date(2030, 5, 1), 10.0),
    ]
    assert result.contributions == 5500.0 and result.figures.windfalls == 2500.0
    assert result.final_value == pytest.approx(5500.0)
    assert result.notes[1] == (
        "the pause 2030-03-01 .. 2030-05-01 (lost my job): paused from 2030-03-01, resumed "
        "on 2030-05-01"
    )


def test_a_pause_never_resumed_lasts_to_the_end(config_of, tmp_path):
    path = tmp_path / "ev.csv"
    path.write_text("date,kind,reason\n2030-02-15,pause,bills\n")
    db = tmp_path / "sim.db"
    result = simulate(
        config_of(),
        flat(date(2029, 12, 31), date(2030, 4, 30)),
        date(2030, 1, 1),
        date(2030, 5, 1),
        db,
        events=load_events(path),
    )
    assert result.contributions == 2 * 1000.0  # January's and February's; none after
    assert result.notes == [
        "the pause from 2030-02-15 (bills): paused from 2030-02-15, not resumed in the period"
    ]


def test_the_flags_and_an_events_file_make_the_same_simulation(cli, tmp_path):
    """`--windfall` and `--pause` are events of the same list as a file's: the same report."""
    span = ("simulate", "--start", "2026-01-01", "--end", "2026-05-01", "--json")
    flags = ("--windfall", "2026-01-10:10000", "--pause", "2026-02-01:2026-04-01:lost my job")
    by_flags = cli(*span, *flags, "--db", str(tmp_path / "a.db"))
    path = tmp_path / "events.csv"
    path.write_text(
        "date,kind,amount,reason\n2026-01-10,windfall,10000,\n"
        "2026-02-01,pause,,lost my job\n2026-04-01,resume,,\n"
    )
    by_file = cli(*span, "--events", str(path), "--db", str(tmp_path / "b.db"))
    assert by_flags.returncode == by_file.returncode == 0, by_file.stderr
    flagged, filed = json.loads(by_flags.stdout), json.loads(by_file.stdout)
    assert flagged.pop("database") != filed.pop("database")
    assert flagged == filed
    assert filed["windfalls"] > 0 and "(lost my job)" in filed["notes"][1]


# --- the value held outside crypto --------------------------------------------------------------


def test_an_outside_value_sets_the_whole_portfolios_crypto_share_from_its_day(config_of, tmp_path):
    """A at 100, 1,000 a month, crypto's target 50 % of the whole portfolio (the band 0-100 %,
    its midpoint). No outside value configured: the share is not measured, January buys 10.
    From 15 January 1,000 is held outside crypto (the config edited and reloaded):
      1 Feb  10 A + 1,000 cash = 2,000; crypto's goal 50 % x (2,000 + 1,000) = 1,500: buy 5,
             500 carried as cash
      1 Mar  15 A + 1,500 cash = 3,000; goal 50 % x 4,000 = 2,000: buy 5, 1,000 carried
    From 15 March nothing is held outside (0: not measured again):
      1 Apr  20 A + 2,000 cash: the 1,000 and the 1,000 carried buy 20."""
    path = tmp_path / "ev.toml"
    path.write_text(
        '[[event]]\ndate = 2030-01-15\nkind = "outside_value"\namount = 1000\n\n'
        '[[event]]\ndate = 2030-03-15\nkind = "outside_value"\namount = 0\n'
    )
    db = tmp_path / "sim.db"
    result = simulate(
        config_of(),
        flat(date(2029, 12, 31), date(2030, 4, 30)),
        date(2030, 1, 1),
        date(2030, 5, 1),
        db,
        events=load_events(path),
    )
    bought = [(e.at.date(), e.amount) for e in ledger(db) if e.kind == "fill" and e.asset == "A"]
    assert [d for d, _ in bought] == [date(2030, m, 1) for m in (1, 2, 3, 4)]
    assert [a for _, a in bought] == pytest.approx([10, 5, 5, 20])
    rows = {r["day"]: r for r in day_rows(db)}
    share = {day: (rows[day]["outside_value"], rows[day]["crypto_share"]) for day in rows}
    assert share["2030-01-14"] == (0.0, pytest.approx(1.0))  # 1,000 of 1,000
    assert share["2030-01-15"] == (1000.0, pytest.approx(0.5))  # 1,000 of 2,000
    assert share["2030-02-01"] == (1000.0, pytest.approx(0.5))  # 1,500 of 3,000
    assert share["2030-03-15"] == (0.0, pytest.approx(2 / 3))  # 2,000 of 3,000
    assert rows["2030-04-30"]["cash"] == pytest.approx(0.0, abs=1e-6)
    assert result.notes[0].startswith("the outside value of 1,000.00 from 2030-01-15: ")


# --- bad files: refused naming the file, line and field --------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("date,kind,amount\n2026-01-10,bonus,500\n", "line 2, kind: 'bonus' is not a kind"),
        ("date,kind,amount\n2026-13-01,windfall,5\n", "line 2, date: '2026-13-01' is not a date"),
        ("date,kind,amount\n\n2026-01-10,windfall,5k\n", "line 3, amount: '5k' is not a number"),
        ("date,kind,amount\n2026-01-10,windfall,nan\n", "line 2, amount: 'nan' is not an amount"),
        ("date,kind,amount\n2026-01-10,windfall\n", "line 2, amount: a windfall needs its amount"),
        ("date,kind,amount\n2026-01-10,pause,5\n", "line 2, amount: a pause takes no amount"),
        ("date,kind,reason\n2026-01-10,pause,\n", "line 2, reason: a pause needs its reason"),
        (
            "date,kind,reason\n2026-01-10,pause,x\n2026-01-20,resume,back\n",
            "line 3, reason: a resume takes no reason (neither an amount nor a reason)",
        ),
        ("date,kind\n2026-01-10,resume\n", "line 2, kind: a resume with no pause before it"),
        (
            "date,kind,reason\n2026-01-05,pause,a\n2026-01-10,pause,b\n",
            "line 3, kind: a pause while the pause of line 2 (2026-01-05) is not resumed yet",
        ),
        (
            "date,kind,reason\n2026-01-05,pause,a\n2026-01-05,resume,\n",
            "line 3, date: the resume is on the day of its pause (line 2)",
        ),
        (
            "date,kind,amount\n2026-01-20,windfall,5\n2026-01-05,windfall,5\n",
            "line 3, date: 2026-01-05 is before 2026-01-20 (line 2): write the events in date",
        ),
        ("date;kind;amount\n2026-01-20;windfall;5\n", "line 1: the header must name"),
        ("date,kind,amount\n2026-01-20,windfall,1500,50\n", "line 2: 4 cells, the header names 3"),
    ],
    ids=[
        "kind",
        "date",
        "amount",
        "nan",
        "no-amount",
        "amount-on-pause",
        "no-reason",
        "reason-on-resume",
        "lone-resume",
        "pause-twice",
        "empty-pause",
        "order",
        "semicolons",
        "decimal-comma",
    ],
)
def test_a_bad_csv_events_file_is_refused_naming_line_and_field(tmp_path, text, message):
    path = tmp_path / "ev.csv"
    path.write_text(text)
    with pytest.raises(EventsFileError) as refused:
        load_events(path)
    assert str(refused.value).startswith(f"{path}, line ")
    assert message in str(refused.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[event]]\ndate = 2026-01-10\nkind = "windfall"\namout = 5\n', "line 1, amout: not a"),
        (
            '[[event]]\ndate = 2026-01-10\nkind = "windfall"\namount = 5\n\n'
            '[[event]]\ndate = 2026-01-10T09:00:00\nkind = "windfall"\namount = 5\n',
            "line 6, date: 2026-01-10 09:00:00 is a time, not a day",
        ),
        ('[[event]]\ndate = 2026-01-10\nkind = "windfall"\namount = "5k"\n', "line 1, amount:"),
        ('[[event]]\ndate = 2026-01-10\nkind = "windfall"\namount = true\n', "line 1, amount:"),
        ('[[event]]\nkind = "windfall"\namount = 5\n', "line 1, date: missing"),
        ('[[event]]\ndate = 2026-01-10\nkind = "windfall"\namount = \n', "not TOML: "),
        ("windfall = 5\n", "only [[event]] tables may be in an events file, not windfall"),
        ('event = [{date = 2026-01-10, kind = "resume"}]\n', "an [[event]] table of its own"),
    ],
    ids=[
        "unknown-key",
        "a-time",
        "text-amount",
        "bool-amount",
        "no-date",
        "syntax",
        "top",
        "inline",
    ],
)
def test_a_bad_toml_events_file_is_refused_naming_line_and_field(tmp_path, text, message):
    path = tmp_path / "ev.toml"
    path.write_text(text)
    with pytest.raises(EventsFileError) as refused:
        load_events(path)
    assert str(refused.value).startswith(str(path)) and message in str(refused.value)


def test_an_events_file_that_is_not_there_or_of_no_known_kind(tmp_path):
    with pytest.raises(InputMissing, match="no such file"):
        load_events(tmp_path / "none.csv")
    (tmp_path / "ev.txt").write_text("date,kind\n")
    with pytest.raises(UsageError, match="name a .csv or a .toml file"):
        load_events(tmp_path / "ev.txt")


def test_an_event_of_a_file_that_makes_no_sense_names_its_line(config_of, tmp_path):
    """Checked with the flags' events, in one place, but named by the file's line and field."""
    path = tmp_path / "ev.csv"
    path.write_text(
        "date,kind,amount\n2030-01-10,outside_value,-5\n"
        "2030-01-10,outside_value,7\n2030-09-01,windfall,5\n"
    )
    events = load_events(path)
    history = flat(date(2029, 12, 31), date(2030, 3, 31))
    for n, (event, message) in enumerate(
        [
            (events[0], "line 2, amount: the outside value of -5.00 from 2030-01-10: not an"),
            (events[2], "line 4, date: the windfall of 5.00 on 2030-09-01 is outside the"),
        ]
    ):
        with pytest.raises(EventsFileError, match=message):
            simulate(
                config_of(),
                history,
                date(2030, 1, 1),
                date(2030, 4, 1),
                tmp_path / "s.db",
                events=[event],
            )
        assert not (tmp_path / "s.db").exists(), n
    twice = [OutsideValue(date(2030, 1, 10), 5.0, Origin(str(path), 2)), events[1]]
    with pytest.raises(EventsFileError, match="line 3, date: .* a second outside value that"):
        simulate(
            config_of(),
            history,
            date(2030, 1, 1),
            date(2030, 4, 1),
            tmp_path / "s.db",
            events=twice,
        )


EX_USAGE, EX_DATAERR, EX_NOINPUT = 2, 65, 66


@pytest.mark.parametrize(
    ("name", "text", "code", "message"),
    [
        ("ev.csv", "date,kind,amount\n2026-01-10,bonus,5\n", EX_DATAERR, "line 2, kind: 'bonus'"),
        (
            "ev.csv",
            "date,kind,amount\n2027-01-10,windfall,5\n",
            EX_DATAERR,
            "line 2, date: the windfall of 5.00 on 2027-01-10 is outside the simulation",
        ),
        ("missing.csv", None, EX_NOINPUT, "missing.csv: no such file"),
        ("ev.json", "{}", EX_USAGE, "name a .csv or a .toml file"),
    ],
    ids=["parse", "check", "missing", "suffix"],
)
def test_a_bad_events_file_exits_with_the_readmes_code(cli, tmp_path, name, text, code, message):
    path = tmp_path / name
    if text is not None:
        path.write_text(text)
    db = tmp_path / "sim.db"
    span = ("simulate", "--start", "2026-01-01", "--end", "2026-02-01", "--proposals", "0")
    done = cli(*span, "--events", str(path), "--db", str(db))
    assert done.returncode == code, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
    assert done.stdout == "" and not db.exists()
    as_json = cli(*span, "--events", str(path), "--db", str(db), "--json")
    assert json.loads(as_json.stdout)["exit_code"] == code


# --- the value series in the database ---------------------------------------------------------


def test_the_value_series_rows_are_the_reports_figures(cli, tmp_path):
    """The demo with its profit-taking, read back from simulation_days: the last row is the
    final value and the money to date; the drawdowns and the time-weighted return computed
    from the rows are the report's."""
    db = tmp_path / "sim.db"
    done = cli(
        "simulate",
        "--start",
        "2026-01-01",
        "--end",
        "2026-12-01",
        "--json",
        "--db",
        str(db),
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    rows = day_rows(db)
    days = [date.fromisoformat(r["day"]) for r in rows]
    assert days[0] == date(2026, 1, 1) and days[-1] == date(2026, 11, 30)
    assert days == [date(2026, 1, 1) + timedelta(days=i) for i in range(len(days))]  # daily
    last = rows[-1]
    assert round(last["value"], 2) == report["final_value"]
    assert round(last["contributions"], 2) == report["contributions"]
    assert round(last["withdrawals"], 2) == report["withdrawals"] == 0.0
    assert round(last["profit_moved_out"], 2) == report["profit_moved_out"] > 0
    assert round(last["invested"] - last["contributions"], 2) == report["seed_value"]
    values = [r["value"] for r in rows]
    assert round(max_drawdown(values), 4) == report["max_drawdown"]
    curve = time_weighted([(r["value"], r["moved_in"]) for r in rows])
    assert round(max_drawdown(curve), 4) == report["max_drawdown_time_weighted"]
    yearly = curve[-1] ** (365 / (date(2026, 12, 1) - date(2026, 1, 1)).days) - 1
    assert round(yearly, 4) == report["time_weighted_return"]
    for r in rows:  # the example holds 400,000 outside crypto
        crypto = r["value"] - r["cash"]
        assert r["crypto_share"] == pytest.approx(crypto / (r["value"] + 400_000))


def test_the_chart_draws_the_value_series_of_the_database(config_of, tmp_path):
    pytest.importorskip("matplotlib")
    from stagewise import chart

    db = tmp_path / "sim.db"
    result = simulate(
        config_of(),
        flat(date(2029, 12, 31), date(2030, 2, 28)),
        date(2030, 1, 1),
        date(2030, 3, 1),
        db,
    )
    conn = sqlite3.connect(db)  # a row changed after the run: the chart shows the table's
    conn.execute("UPDATE simulation_days SET value = 123.0 WHERE day = '2030-01-20'")
    conn.commit()
    conn.close()
    plt = chart.pyplot()
    fig = chart.figure(plt, chart.value_series(result), result.allocation, "USDT")
    try:
        value_line, put_in_line = fig.axes[0].get_lines()
        values = list(value_line.get_ydata())
    finally:
        plt.close(fig)
    rows = day_rows(db)
    assert values == [r["value"] for r in rows] and values[19] == 123.0
    assert list(put_in_line.get_ydata()) == [r["invested"] for r in rows]
    out = tmp_path / "c.png"
    chart.draw(result, out, "USDT")
    assert out.read_bytes()[:4] == b"\x89PNG"


# --- profit moved out: its own figure, an outflow of the returns -------------------------------


def test_profit_moved_out_is_its_own_figure_and_an_outflow_of_the_returns(config_of, tmp_path):
    """10 A seeded at 100 (1,000) on 1 January; A at 160 from 1 May's close. The daily check
    of 2 May (its close known then) finds the 60 % gain past the 50 % milestone, held over
    90 days, and sells half the gain: 10 x 60 / 2 = 300, 1.875 A at 160, moved out of the
    account. Left: 8.125 A x 160 = 1,300 on 1 June.
      withdrawals 0, profit moved out 300, gain 1,300 - 1,000 + 300 = 600
      time-weighted: 1.0 until 30 April; 1 May 1,600 / 1,000 = 1.6; 2 May 1,300 /
      (1,600 - 300) = 1: 1.6 over the 151 days, 1.6 ** (365 / 151) - 1 a year
      money-weighted: the r where -1,000 (1 Jan) + 300 (2 May) + 1,300 (1 Jun) discount to 0."""
    stage = plan_stage("only", profit_milestones_pct=(50,))
    config = config_of(
        [stage],
        investor={"monthly_contribution": 0},
        paper={"initial_balances": {"A": 10, "USDT": 0}},
    )
    first, rise, last = date(2029, 12, 31), date(2030, 5, 1), date(2030, 5, 31)
    days = tuple(first + timedelta(days=i) for i in range((last - first).days + 1))
    prices = PriceHistory(days, {"A": tuple(100.0 if d < rise else 160.0 for d in days)}, "hand")
    db = tmp_path / "sim.db"
    start, end = date(2030, 1, 1), date(2030, 6, 1)
    result = simulate(config, prices, start, end, db)
    moved = [e for e in ledger(db) if e.kind == "withdrawal"]
    assert [(e.at.date(), e.amount) for e in moved] == [(date(2030, 5, 2), -300.0)]
    f = result.figures
    assert (f.seed_value, f.withdrawals, f.profit_moved_out) == (1000.0, 0.0, 300.0)
    assert f.final_value == pytest.approx(1300.0)
    assert result.gain == pytest.approx(600.0)
    assert f.time_weighted == pytest.approx(1.6 ** (365 / 151) - 1)
    assert f.max_drawdown_time_weighted == 0.0  # moving profit out is no fall
    flows = [
        (datetime(2030, 1, 1, tzinfo=UTC), -1000.0),
        (moved[0].at, 300.0),
        (datetime(2030, 6, 1, tzinfo=UTC), f.final_value),
    ]
    r = f.money_weighted
    npv = sum(a / (1 + r) ** ((t - flows[0][0]).total_seconds() / 86_400 / 365) for t, a in flows)
    assert npv == pytest.approx(0, abs=1e-6)
    assert 1.6 ** (365 / 151) - 1 < r < math.inf  # the 300 came back early: above the TWR
    rows = {r["day"]: r for r in day_rows(db)}
    assert (rows["2030-05-01"]["profit_moved_out"], rows["2030-05-02"]["profit_moved_out"]) == (
        0.0,
        300.0,
    )
    assert rows["2030-05-02"]["moved_in"] == -300.0 and rows["2030-05-31"]["withdrawals"] == 0
