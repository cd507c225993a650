"""Paper-trade a plan over price history with the daemon's own jobs on a simulated clock.

The same `Jobs`, the same schedules (`fire_times`), a paper account in a separate database,
and the investor aging through stages and glide paths. Prices are daily or coarser, so the
hourly drift watch runs once a day (its other checks of a day would see the same prices).
The database is marked as a simulation's, and a simulation replaces no other file.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from stagewise.churn import Churn, churn
from stagewise.contributions import retired_on
from stagewise.errors import OutputRefused, UsageError
from stagewise.history import HistoryMarkets, PriceHistory
from stagewise.jobs import Jobs
from stagewise.paper import PaperAccount
from stagewise.scheduler import Schedule, fire_times, schedules
from stagewise.settings import Config
from stagewise.store import Contents, StateError, Store
from stagewise.targets import TargetsOn, add_months, age_on, birthday, glide_paths, targets_on


@dataclass(frozen=True)
class StageSpan:
    """A stretch of the simulation spent in one stage (or one glide path)."""

    starts: date
    stage: str
    glide: str | None


@dataclass(frozen=True)
class SimulationResult:
    """What a simulation did: money in and out, value, risk, costs, activity."""

    start: date
    end: date
    seed_value: float
    contributions: float
    withdrawals: float
    final_value: float
    fees: float
    turnover: float
    max_drawdown: float
    proposals_by_job: dict[str, int]
    runs_by_status: dict[str, int]
    runs_by_job: dict[str, int]  # the runs recorded (a watch job records only when it acts)
    stages: list[StageSpan]
    churn: Churn  # how often and how small it proposed, what that cost
    series: list[tuple[date, float, float]] = field(repr=False)  # day, value, invested so far
    # The value of each holding on the first price day of each month.
    allocation: list[tuple[date, dict[str, float]]] = field(default_factory=list, repr=False)
    db_path: Path | None = None

    @property
    def gain(self) -> float:
        """Final value less everything put in, plus everything taken out."""
        return self.final_value - self.seed_value - self.contributions + self.withdrawals


def default_db_path(config: Config) -> Path:
    """Where a simulation's database goes unless told: simulation.db beside the state file."""
    return config.settings.state.path.with_name("simulation.db")


def check_output(config: Config, db_path: Path) -> None:
    """Refuse (OutputRefused) a `db_path` a simulation may not replace, reading it only: the
    configured state file, a folder, anything but a simulation database of stagewise's (or
    one with runs of another mode than a simulation's)."""
    state = config.settings.state.path
    if db_path.resolve() == state.resolve() or (
        db_path.exists() and state.exists() and db_path.samefile(state)
    ):
        raise OutputRefused(
            f"the simulation database {db_path} is the daemon's own state file (state.path): "
            "left as it is; choose another"
        )
    if not db_path.exists():
        return
    why = _not_a_simulation(db_path, legacy=db_path.resolve() == default_db_path(config).resolve())
    if why:
        raise OutputRefused(
            f"{db_path} is not a simulation database ({why}): a simulation does not replace "
            "it, and it is left as it is; choose another database (or remove the file yourself)"
        )


# What only the jobs of a simulation write: a live file also holds the daemon's events (a
# start, a reload), a person's (a pause, a windfall) or read-only runs.
_SIMULATION_EVENTS = frozenset(
    {"ledger_seeded", "glide_step", "reassessed", "stage_changed", "job_failing"}
)


def _not_a_simulation(path: Path, *, legacy: bool) -> str | None:
    """Why the existing `path` is not a simulation's database; None when it is. `legacy`:
    also take for one a file from before simulations were marked (at the default place) that
    holds only what a simulation writes."""
    if not path.is_file():
        return "not a file"
    if path.stat().st_size == 0:
        return "an empty file"
    try:
        store = Store.read(path)
    except StateError:
        return "not a stagewise database this version reads"
    try:
        held = store.contents()
    finally:
        store.close()
    if held.run_modes - {PaperAccount.mode}:
        return f"it holds {', '.join(sorted(held.run_modes - {PaperAccount.mode}))} runs"
    if held.simulation or (legacy and _old_simulation(held)):
        return None
    return "a stagewise state file no simulation wrote"


def _old_simulation(held: Contents) -> bool:
    return held.windfalls == 0 and held.event_kinds <= _SIMULATION_EVENTS


def simulation_config(config: Config, db_path: Path) -> Config:
    """The config in paper mode with its state in `db_path` (never the daemon's own file)."""
    s = config.settings
    settings = s.model_copy(
        update={
            "exchange": s.exchange.model_copy(
                update={"mode": "paper", "api_key": None, "secret": None, "password": None}
            ),
            "state": s.state.model_copy(update={"path": db_path}),
        }
    )
    return Config(settings=settings, plan=config.plan, path=config.path)


def plan_assets(config: Config, start: date, end: date) -> set[str]:
    """Every asset the targets hold at any month of [start, end)."""
    assets: set[str] = set()
    targets = TargetsOn(config)
    day = start
    while day < end:
        assets |= targets(day).weights.keys()
        day = add_months(day, 1)
    return assets


def simulate(
    config: Config,
    history: PriceHistory,
    start: date,
    end: date,
    db_path: Path,
    *,
    min_notional: float = 5.0,
    progress: Callable[[float], None] | None = None,
) -> SimulationResult:
    """Run every schedule of `config` from `start` to `end` over `history`; a fresh paper
    account keeps the ledger and every proposal, in memory while it runs, then written to
    `db_path` (replacing the last simulation there) in one step: the file is a whole
    simulation or the old file. Raises OutputRefused, before anything runs, for a `db_path`
    that is not a simulation's database (see `check_output`)."""
    if end <= start:
        raise UsageError(f"the simulation must end after it starts ({start} .. {end})")
    birth = config.settings.investor.birth_date
    if start < birth:
        raise UsageError(
            f"the simulation starts on {start}, before the investor's birth date {birth}"
        )
    check_output(config, db_path)
    sim = simulation_config(config, db_path)
    history.require(plan_assets(sim, start, end), start, end)
    store = Store.open_memory()
    try:
        markets = HistoryMarkets(history, sim.quote, tz=sim.tz, min_notional=min_notional)
        paper = sim.settings.paper
        account = PaperAccount(store, markets, sim.quote, fee_rate=paper.fee_rate)
        jobs = Jobs(sim, store, account, history=history)
        start_at = _at(start, sim)
        end_at = _at(end, sim)
        store.mark_simulation(
            start_at,
            {
                "start": start.isoformat(),
                "end": end.isoformat(),
                "prices": history.source,
                "config": str(config.path),
            },
        )
        if paper.initial_balances:
            account.seed(paper.initial_balances, start_at)
        _drive(jobs, sim, start_at, end_at, progress)
        result = _result(sim, store, history, start, end, db_path)
        check_output(config, db_path)  # again: a file may have appeared there meanwhile
        store.save(db_path, durable=False)  # whole or absent; not synced: it can be re-run
        return result
    finally:
        store.close()


def _at(day: date, config: Config) -> datetime:
    return datetime.combine(day, time(0), tzinfo=config.tz).astimezone(UTC)


def _drive(
    jobs: Jobs,
    config: Config,
    start_at: datetime,
    end_at: datetime,
    progress: Callable[[float], None] | None,
) -> None:
    span = (end_at - start_at).total_seconds()
    last_report = start_at
    plan = [
        s for s in schedules(config, daily_prices=True) if _can_act(s, config, start_at, end_at)
    ]
    for when, sched in fire_times(plan, start_at, end_at):
        jobs.fire(sched, when, when)
        if progress and when - last_report > timedelta(days=7):
            progress((when - start_at).total_seconds() / span)
            last_report = when
    if progress:
        progress(1.0)


def _can_act(sched: Schedule, config: Config, start_at: datetime, end_at: datetime) -> bool:
    """False for a job no stage of the simulated span gives anything to do (profit-taking
    without milestones, withdrawals before retirement, a rebalance cadence no sleeve and no
    stage has): its trigger need not be walked. The stages are those of the ages in the span;
    for the sleeves, also both ends of a glide path overlapping it (it holds both's sleeves)."""
    birth = config.settings.investor.birth_date
    first, last = start_at.date(), end_at.date()
    ages = range(age_on(birth, first), age_on(birth, last) + 1)
    stages = {config.plan.stage_for_age(a).id: config.plan.stage_for_age(a) for a in ages}
    holding = dict(stages)
    for before, after, starts, ends in glide_paths(config):
        if starts <= last and first < ends:
            holding |= {before.id: before, after.id: after}
    if sched.job == "profit":
        return any(s.profit_milestones_pct for s in stages.values())
    if sched.job == "withdraw":
        return retired_on(config, last)  # retirement lasts: retired by the end, or never
    if sched.job == "rebalance":
        cadences = {s.portfolio_rebalance for s in stages.values()} | {
            config.plan.indices[index].cadence
            for s in holding.values()
            for sleeve in s.sleeve
            for index in sleeve.indices
        }
        return sched.cadence in cadences
    return True


def _result(
    config: Config, store: Store, history: PriceHistory, start: date, end: date, db_path: Path
) -> SimulationResult:
    entries = store.ledger_entries()
    quote = config.quote
    seed = sum(
        e.amount * (e.price if e.asset != quote and e.price else 1.0)
        for e in entries
        if e.kind == "seed"
    )
    contributions = sum(e.amount for e in entries if e.kind == "deposit")
    withdrawals = -sum(e.amount for e in entries if e.kind == "withdrawal")
    fees = -sum(e.amount for e in entries if e.kind == "fee")
    traded = sum(abs(e.amount) for e in entries if e.kind == "fill" and e.asset == quote)
    series, allocation = _series(entries, history, quote, start, end, config)
    values = [v for _, v, _ in series]
    average = sum(values) / len(values) if values else 0.0
    counts = store.counts()
    proposals, statuses, jobs = Counter(), Counter(), Counter()
    for (job, _side), n in counts["orders"].items():
        proposals[job] += n
    for (job, status), n in counts["runs"].items():
        statuses[status] += n
        jobs[job] += n
    return SimulationResult(
        start=start,
        end=end,
        seed_value=seed,
        contributions=contributions,
        withdrawals=withdrawals,
        final_value=values[-1] if values else seed,
        fees=fees,
        turnover=traded / average if average else 0.0,
        max_drawdown=_max_drawdown(values),
        proposals_by_job=dict(sorted(proposals.items())),
        runs_by_status=dict(sorted(statuses.items())),
        runs_by_job=dict(sorted(jobs.items())),
        stages=_stages(config, start, end),
        churn=churn(
            store.proposed_orders(), start=start, end=end, fees=fees, contributions=contributions
        ),
        series=series,
        allocation=allocation,
        db_path=db_path,
    )


def _series(entries, history, quote, start, end, config):
    """Account value and money put in so far at each price day's close in [start, end), and
    the value of each holding on the first price day of each month."""
    tz = config.tz
    # Each entry counts from the local day it was made on (a day's close comes after it).
    local_day = {at: at.astimezone(tz).date() for at in {e.at for e in entries}}  # per run
    dated = sorted(((local_day[e.at], e.at, e) for e in entries), key=lambda x: x[1])
    balances: dict[str, float] = {}
    invested = 0.0
    i = 0
    out: list[tuple[date, float, float]] = []
    allocation: list[tuple[date, dict[str, float]]] = []
    closes = history.closes
    held: list[tuple[float, tuple[float | None, ...]]] = []  # amount, closes of each holding
    month = 0
    first = bisect.bisect_left(history.days, start)
    last = bisect.bisect_left(history.days, end)
    for n in range(first, last):
        day = history.days[n]
        if i < len(dated) and dated[i][0] <= day:
            while i < len(dated) and dated[i][0] <= day:
                e = dated[i][2]
                balances[e.asset] = balances.get(e.asset, 0.0) + e.amount
                if e.kind == "deposit":
                    invested += e.amount
                elif e.kind == "seed":
                    invested += e.amount * (e.price if e.asset != quote and e.price else 1.0)
                i += 1
            held = [(amount, closes[a]) for a, amount in balances.items() if a != quote]
        value = balances.get(quote, 0.0)
        for amount, column in held:
            value += amount * (column[n] or 0.0)
        out.append((day, value, invested))
        if day.year * 12 + day.month != month:  # the first price day of a month
            month = day.year * 12 + day.month
            allocation.append(
                (
                    day,
                    {
                        a: amount * (1.0 if a == quote else (closes[a][n] or 0.0))
                        for a, amount in balances.items()
                    },
                )
            )
    return out, allocation


def _max_drawdown(values: list[float]) -> float:
    """The largest fall from a peak, as a fraction of the peak (contributions included)."""
    peak, worst = 0.0, 0.0
    for v in values:
        if v > peak:
            peak = v
        elif peak > 0 and (peak - v) / peak > worst:
            worst = (peak - v) / peak
    return worst


def _stages(config: Config, start: date, end: date) -> list[StageSpan]:
    """Each stretch of one stage or one glide path, from the day it begins."""
    birth = config.settings.investor.birth_date
    months = config.settings.plan.transition_months
    days = {start}
    for stage in config.plan.stages[1:]:
        boundary = birthday(birth, stage.min_age)
        days |= {boundary, add_months(boundary, -months), add_months(boundary, months)}
    spans: list[StageSpan] = []
    for day in sorted(d for d in days if start <= d < end):
        t = targets_on(config, day)
        glide = f"{t.glide.from_stage}->{t.glide.to_stage}" if t.glide else None
        if not spans or (spans[-1].stage, spans[-1].glide) != (t.stage.id, glide):
            spans.append(StageSpan(day, t.stage.id, glide))
    return spans
