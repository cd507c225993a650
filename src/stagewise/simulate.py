"""Paper-trade a plan over price history with the daemon's own jobs on a simulated clock.

The same `Jobs`, the same schedules (`fire_times`), a paper account in a separate database,
and the investor aging through stages and glide paths. Prices are daily or coarser, so the
hourly drift watch runs once a day (its other checks of a day would see the same prices).
The database is marked as a simulation's, and a simulation replaces no other file.

Point in time: a job sees only the closes known at its moment (`history.HistoryMarkets`); an
asset without a known price yet is left out of the targets until it lists (`listings`).
Windfalls and emergency pauses of the plan are announced at their dates through the store's
calls that `stagewise windfall`, `pause` and `resume` make live; a change of the value held
outside crypto is an edited config reloaded, as the daemon reloads one: a new Jobs.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from stagewise.churn import Churn, churn
from stagewise.composition import history_days, require_volumes
from stagewise.errors import OutputRefused, UsageError
from stagewise.guidance import simulation_notes
from stagewise.history import HistoryMarkets, PriceHistory
from stagewise.jobs import Jobs
from stagewise.listings import RULE as LISTING_RULE
from stagewise.listings import ListedTargets
from stagewise.paper import PaperAccount
from stagewise.performance import Figures, figures
from stagewise.plan_events import (
    Announcement,
    PlanEvent,
    announcements,
    check_events,
    first_day,
    note,
    outside_values,
)
from stagewise.schedules import Schedule, fire_times, schedules
from stagewise.settings import Config
from stagewise.store import Contents, StateError, Store, same_file
from stagewise.targets import TargetsOn, add_months, birthday, targets_on


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
    figures: Figures  # money, costs, returns, drawdowns, turnover, the value of every day
    proposals_by_job: dict[str, int]
    runs_by_status: dict[str, int]
    runs_by_job: dict[str, int]  # the runs recorded (a watch job records only when it acts)
    stages: list[StageSpan]
    churn: Churn  # how often and how small it proposed, what that cost
    prices: str = ""  # where the prices came from, and the days of its dates
    notes: list[str] = field(default_factory=list)  # assets listed later, plan events
    db_path: Path | None = None
    # Per rule index: its reconstitutions, the assets that entered and left after the
    # first, and the last composition (when, and its weights).
    rule_indices: dict[str, dict[str, Any]] = field(default_factory=dict)

    # The figures most readers want, by name.
    @property
    def seed_value(self) -> float:
        return self.figures.seed_value

    @property
    def contributions(self) -> float:
        return self.figures.contributions

    @property
    def withdrawals(self) -> float:
        return self.figures.withdrawals

    @property
    def profit_moved_out(self) -> float:
        return self.figures.profit_moved_out

    @property
    def final_value(self) -> float:
        return self.figures.final_value

    @property
    def fees(self) -> float:
        return self.figures.fees

    @property
    def max_drawdown(self) -> float:
        return self.figures.max_drawdown

    @property
    def series(self) -> list[tuple[date, float, float]]:
        """(day, value, money put in so far) of every day with a close or a payment."""
        return [(d.day, d.value, d.invested) for d in self.figures.days]

    @property
    def allocation(self) -> list[tuple[date, dict[str, float]]]:
        """The value of each holding on the first such day of each month."""
        return self.figures.allocation

    @property
    def gain(self) -> float:
        """Final value less everything put in, plus everything taken out (withdrawals and
        profit moved out)."""
        f = self.figures
        return f.final_value - f.seed_value - f.contributions + f.withdrawals + f.profit_moved_out


def default_db_path(config: Config) -> Path:
    """Where a simulation's database goes unless told: simulation.db beside the state file."""
    return config.state_path.with_name("simulation.db")


def check_output(config: Config, db_path: Path) -> None:
    """Refuse (OutputRefused) a `db_path` a simulation may not replace, reading it only: the
    configured state file, a folder, anything but a simulation database of stagewise's (or
    one with runs of another mode than a simulation's)."""
    if same_file(db_path, config.state_path):
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
    {"ledger_seeded", "glide_step", "reassessed", "stage_changed", "job_failing", "reconstituted"}
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
        store = Store.read(path)  # read where it is (a copy of it costs more than the run)
    except StateError:
        try:
            # An older version's: recognised from a copy in memory, migrated there (the file
            # is only read).
            store = Store.copy(path)
        except StateError:
            return "not a stagewise database"
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


def simulation_config(config: Config, db_path: Path | None) -> Config:
    """The config in paper mode with its state in `db_path` (never the daemon's own file;
    None: in memory only)."""
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


def default_start(config: Config, history: PriceHistory) -> date:
    """The first day a simulation over `history` starts unless told: the first a close is
    known, or with rule indices the first each has the days of closes it reads (before it,
    a rule index could not be composed: its rebalance would fail, its share held as cash)."""
    indices = config.plan.indices
    rows = max((history_days(indices[name]) for name in config.plan.rule_indices()), default=1)
    # A history shorter than that: its first day (the rules then say what they lack).
    return history.first_start(config.tz, rows if rows <= len(history.days) else 1)


def plan_assets(config: Config, start: date, end: date) -> set[str]:
    """Every asset the targets hold at any month of [start, end)."""
    assets: set[str] = set()
    targets = TargetsOn(config.profile)
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
    db_path: Path | None,
    *,
    min_notional: float = 5.0,
    events: Sequence[PlanEvent] = (),
    strict_history: bool = False,
    progress: Callable[[float], None] | None = None,
) -> SimulationResult:
    """Run every schedule of `config` from `start` to `end` over `history`, with the plan
    `events` at their dates; a fresh paper account keeps the ledger and every proposal, in
    memory while it runs, then written to `db_path` (replacing the last simulation there) in
    one step: the file is a whole simulation or the old file. Raises OutputRefused, before
    anything runs, for a `db_path` that is not a simulation's database (see `check_output`).
    `db_path` None: the database is kept nowhere (a sweep's window: its figures are all).
    `strict_history`: refuse an asset not priced when the simulation starts, instead of
    leaving it out of the targets until it lists."""
    if end <= start:
        raise UsageError(f"the simulation must end after it starts ({start} .. {end})")
    birth = config.settings.investor.birth_date
    if start < birth:
        raise UsageError(
            f"the simulation starts on {start}, before the investor's birth date {birth}"
        )
    check_events(events, start, end)
    if db_path is not None:
        check_output(config, db_path)
    sim = simulation_config(config, db_path)
    assets = plan_assets(sim, start, end)
    history.require(assets, start, end, sim.tz, strict=strict_history)
    require_volumes(sim.plan.indices, history)
    store = Store.open_memory()
    try:
        markets = HistoryMarkets(history, sim.quote, tz=sim.tz, min_notional=min_notional)
        paper = sim.settings.paper
        account = PaperAccount(store, markets, sim.quote, fee_rate=paper.fee_rate)
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

        def reload(outside_value: float) -> Jobs:  # the config edited, as the daemon reloads it
            return _jobs(with_outside_value(sim, outside_value), store, account, history)

        jobs = _jobs(sim, store, account, history)
        _drive(
            jobs, reload, sim, start_at, end_at, announcements(events, sim.tz, sim.quote), progress
        )
        outside = outside_values(sim.settings.investor.outside_investments, events)
        result = _result(sim, store, history, start, end, db_path, outside)
        result.notes.extend(_notes(history, assets, start, end, sim, events))
        result.notes.extend(_guide_notes(result, sim))
        if db_path is not None:
            store.record_days(result.figures.days)  # the value series, to chart
            check_output(config, db_path)  # again: a file may have appeared there meanwhile
            store.save(db_path, durable=False)  # whole or absent; not synced: it can be re-run
        return result
    finally:
        store.close()


def _jobs(config: Config, store: Store, account: PaperAccount, history: PriceHistory) -> Jobs:
    jobs = Jobs(config, store, account, history=history)
    # The jobs plan with the listed assets only (their targets are the one seam for it).
    jobs.targets = ListedTargets(jobs.targets, history, config.tz)  # type: ignore[assignment]
    return jobs


def with_outside_value(config: Config, outside_value: float) -> Config:
    """`config` with `investor.outside_investments` set to `outside_value`."""
    s = config.settings
    investor = s.investor.model_copy(update={"outside_investments": outside_value})
    settings = s.model_copy(update={"investor": investor})
    return Config(settings=settings, plan=config.plan, path=config.path)


def _at(day: date, config: Config) -> datetime:
    return datetime.combine(day, time(0), tzinfo=config.tz).astimezone(UTC)


def _drive(
    jobs: Jobs,
    reload: Callable[[float], Jobs],
    config: Config,
    start_at: datetime,
    end_at: datetime,
    announcements: list[Announcement],
    progress: Callable[[float], None] | None,
) -> None:
    span = (end_at - start_at).total_seconds()
    last_report = start_at
    first, last = start_at.date(), end_at.date()
    plan = [daily(s) for s in schedules(config) if jobs.may_act(s, first, last)]
    waiting = iter(announcements)
    due = next(waiting, None)
    for when, sched in fire_times(plan, start_at, end_at):
        while due is not None and due.at <= when:  # announced before this job runs
            if due.record is not None:
                due.record(jobs.store)
            if due.outside_value is not None:
                jobs = reload(due.outside_value)
            due = next(waiting, None)
        jobs.fire(sched, when, when)
        if progress and when - last_report > timedelta(days=7):
            progress((when - start_at).total_seconds() / span)
            last_report = when
    if progress:
        progress(1.0)


def daily(sched: Schedule) -> Schedule:
    """`sched` on daily prices: the hourly drift watch checks once a day, at the first hour
    (its other 23 checks of a day would see the same prices)."""
    return dataclasses.replace(sched, hour=0) if sched.hour is None else sched


def _result(
    config: Config,
    store: Store,
    history: PriceHistory,
    start: date,
    end: date,
    db_path: Path | None,
    outside: Sequence[tuple[date, float]],
) -> SimulationResult:
    span = (_at(start, config), _at(end, config))
    money = figures(store.ledger_entries(), history, config.quote, span, config.tz, outside)
    counts = store.counts()
    proposals, statuses, jobs = Counter[str](), Counter[str](), Counter[str]()
    for (job, _side), n in counts["orders"].items():
        proposals[job] += n
    for (job, status), n in counts["runs"].items():
        statuses[status] += n
        jobs[job] += n
    return SimulationResult(
        start=start,
        end=end,
        figures=money,
        proposals_by_job=dict(sorted(proposals.items())),
        runs_by_status=dict(sorted(statuses.items())),
        runs_by_job=dict(sorted(jobs.items())),
        stages=_stages(config, start, end),
        churn=churn(
            store.proposed_orders(),
            start=start,
            end=end,
            fees=money.fees,
            contributions=money.contributions,
        ),
        prices=f"{history.source} (its dates are days in {history.zone or config.tz})",
        db_path=db_path,
        rule_indices=_reconstitutions(config, store),
    )


def _reconstitutions(config: Config, store: Store) -> dict[str, dict[str, Any]]:
    """What the simulation's rule indices did, from their `reconstituted` events."""
    out: dict[str, dict[str, Any]] = {}
    for event in reversed(store.events(kind="reconstituted", limit=10**9)):  # oldest first
        data = event["data"]
        shown = out.get(data["index"])
        if shown is None:
            name = config.plan.indices[data["index"]].name
            shown = out[data["index"]] = {
                "name": name,
                "reconstitutions": 0,
                "entered": 0,
                "left": 0,
            }
        else:  # the first composition's assets did not enter a composition before
            shown["entered"] += len(data["entered"])
            shown["left"] += len(data["left"])
        shown["reconstitutions"] += 1
        shown["last"] = event["at"].astimezone(config.tz).date().isoformat()
        shown["weights"] = data["weights"]
    return dict(sorted(out.items()))


def _notes(
    history: PriceHistory,
    assets: set[str],
    start: date,
    end: date,
    config: Config,
    events: Sequence[PlanEvent],
) -> Iterator[str]:
    """What the report says besides its figures: the assets listed later, the events."""
    tz = config.tz
    known = history.known_index(_at(start, config), tz)
    late = []
    for asset in sorted(assets):
        first = history.first_priced(asset)
        if first is not None and (known is None or first > known):
            joins = history.known_at(first, tz).astimezone(tz)
            day = joins.date() if joins.time() == time(0) else joins.date() + timedelta(days=1)
            late.append(f"{asset} (first close {history.days[first]}, in the targets from {day})")
    if late:
        yield f"listed later: {', '.join(late)}; {LISTING_RULE}"
    skipped = _days_skipped(history, start, end)
    if skipped:
        yield skipped
    for e in sorted(events, key=first_day):
        yield note(e, end)


def _days_skipped(history: PriceHistory, start: date, end: date) -> str | None:
    """What the report says of the days of the span without a row of closes (a gap between
    rows, the days after the last one), which the jobs plan on an older close; None: none."""
    last_day = end - timedelta(days=1)
    first, last = history.index_on(start - timedelta(days=1)), history.index_on(last_day)
    if first is None or last is None:
        return None
    rows = history.days[first : last + 1]
    gaps = [(a, b) for a, b in zip(rows, rows[1:], strict=False) if (b - a).days > 1]
    after = (last_day - rows[-1]).days
    said = []
    if gaps:
        a, b = max(gaps, key=lambda gap: (gap[1] - gap[0]).days)  # the first of the longest
        count = "1 gap" if len(gaps) == 1 else f"{len(gaps)} gaps"
        said.append(
            f"{count} of more than a day between rows in the simulated span (the longest "
            f"{(b - a).days} days, {a} to {b})"
        )
    if after > 0:
        said.append(
            f"its last row ({rows[-1]}) is {after} day{'s' if after > 1 else ''} before the "
            f"last day simulated ({last_day})"
        )
    if not said:
        return None
    return (
        f"the price history skips days: {', and '.join(said)}; a job on a day without a close "
        "plans with the last close before it"
    )


def _guide_notes(result: SimulationResult, config: Config) -> list[str]:
    """The report's figures against the guide's for the stages the simulation spans."""
    plan, birth = config.plan, config.settings.investor.birth_date
    spanned = {s.stage for s in result.stages} | {
        g for s in result.stages if s.glide for g in s.glide.split("->")
    }
    stages = [s for s in plan.stages if s.id in spanned]
    goal_days = {s.id: birthday(birth, s.contribution.portfolio_goal.by_age) for s in stages}
    values = [(d.day, d.value) for d in result.figures.days]
    return simulation_notes(stages, values, goal_days, result.figures.max_drawdown, config.quote)


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
        t = targets_on(config.profile, day)
        glide = f"{t.glide.from_stage}->{t.glide.to_stage}" if t.glide else None
        if not spans or (spans[-1].stage, spans[-1].glide) != (t.stage.id, glide):
            spans.append(StageSpan(day, t.stage.id, glide))
    return spans
