"""The daemon's jobs: thin compositions of snapshot -> targets -> plan -> record -> log.

Each run is a `Run` value (job, period, scope, the time it was scheduled for and `now`), made
by one small callable per job; nothing here reads the clock.
The account decides what a plan does to money: a paper account deposits and fills, a
read-only account only reads. Every run is recorded whole, in one transaction, under its
period key; a period that is already recorded does not run again.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

import structlog

from stagewise.contributions import (
    bonus_share_pct,
    contribution_on,
    outside_range,
    retirement,
    starting_contribution,
    why_nothing_comes_out,
    why_nothing_goes_in,
    withdrawal_rate,
)
from stagewise.errors import StagewiseError
from stagewise.guidance import goal_of
from stagewise.history import PriceHistory
from stagewise.ledger import LedgerEntry
from stagewise.listings import listed_only, unlisted_note
from stagewise.money import MAX_MONEY
from stagewise.periods import Job, period_key
from stagewise.planner import (
    plan_dca,
    plan_drift,
    plan_profit,
    plan_rebalance,
    plan_windfall,
    plan_withdraw,
)
from stagewise.planner.fills import apply, state_seen
from stagewise.planner.model import Order, Plan, PlanState, Policy
from stagewise.reconstitution import HistoryData, IndexData, Reconstitutions
from stagewise.schedules import Schedule
from stagewise.settings import Config
from stagewise.snapshot import Snapshot
from stagewise.store import DuplicatePeriod, RunRecord, RunStatus, StateError, Store
from stagewise.targets import Targets, TargetsOn, age_on, glide_paths, stage_on

log = structlog.get_logger()

# After this many failed runs in a row of one job, an error-level event is raised.
FAILURES_BEFORE_ALARM = 3


class Account(Protocol):
    """What a job needs of an account; read-only and paper implement it."""

    mode: str
    allow_deposit: bool
    settles: bool  # a plan moves the account (paper) or is only proposed (read-only)

    def snapshot(
        self, assets: Collection[str], now: datetime, *, pending: Sequence[LedgerEntry] = ()
    ) -> Snapshot: ...

    def deposit(self, amount: float, now: datetime, note: str) -> list[LedgerEntry]: ...

    def settle(self, plan: Plan, snapshot: Snapshot, now: datetime) -> list[LedgerEntry]: ...


@dataclass(frozen=True, slots=True)
class Run:
    """One run being made: its job and period key, the sleeve a per-index rebalance trades
    (`scope`), the moment it was scheduled for and the moment it decides at (`now`)."""

    job: Job
    period: str
    scheduled_at: datetime
    now: datetime
    scope: str | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one run did."""

    job: Job
    period: str
    status: str
    orders: int = 0
    error: str | None = None


class Jobs:
    """The jobs of one config, store and account."""

    def __init__(
        self,
        config: Config,
        store: Store,
        account: Account,
        clock: Callable[[], datetime] | None = None,
        history: PriceHistory | None = None,
        index_data: IndexData | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.account = account
        # When a run finished, for the record (the daemon's and the CLI's real clock). None
        # (a simulation): runs take no time, they finish at the `now` they were given.
        self.clock = clock
        self._unsettled: list[Plan] = []  # this fire's proposals the account does not show
        self.policy = config.policy(allow_deposit=account.allow_deposit)
        self.targets = TargetsOn(config.profile)  # the targets of a day (pure, so remembered)
        # The rule indices' compositions, chosen from `index_data` (live: the exchange's
        # candles) or `history` (a simulation's prices).
        if index_data is None and history is not None:
            index_data = HistoryData(history, config.quote, config.tz)
        self.compositions = Reconstitutions(config, store, index_data)
        self.tz = config.tz  # the investor's time zone (a Jobs lives as long as its config)
        # One small callable per scheduled job (a windfall is run by `windfall`).
        self._jobs: dict[Job, Callable[[Run, Targets, PlanState], Outcome]] = {
            "dca": self._dca,
            "rebalance": self._rebalance,
            "drift": self._drift,
            "profit": self._profit,
            "withdraw": self._withdraw,
            "reassess": self._reassess,
        }

    # -- what a trigger fires -----------------------------------------------------------

    def fire(self, schedule: Schedule, scheduled_at: datetime, now: datetime) -> list[Outcome]:
        """Run what `schedule` fires for at `scheduled_at` (each period at most once).

        The periods of one fire are planned in turn, each against the account the earlier
        ones leave: on a read-only account, whose balances do not move when a plan is
        proposed, as if the earlier proposals had been placed (a quarterly fire's sleeves
        and portfolio never sell one coin, or spend one cash, twice)."""
        self._unsettled = []
        outcomes = [self.windfall(w.id, w.amount, now) for w in self.store.pending_windfalls()]
        for key, scope in self.periods_for(schedule, scheduled_at):
            if self.store.has_period(key):
                log.debug("period_already_done", period=key)
                continue
            outcomes.append(self._run(Run(schedule.job, key, scheduled_at, now, scope)))
        return [o for o in outcomes if o is not None]

    def periods_for(
        self, schedule: Schedule, scheduled_at: datetime
    ) -> list[tuple[str, str | None]]:
        """The period keys (and sleeve scope) that a fire of `schedule` at `scheduled_at` owns."""
        local = scheduled_at.astimezone(self.tz)
        if schedule.job != "rebalance":
            return [(period_key(schedule.job, schedule.cadence, local), None)]
        targets = self.targets(local.date())
        keys: list[tuple[str, str | None]] = [
            (period_key("rebalance", schedule.cadence, local, index), index)
            for index, sleeve in targets.sleeves.items()
            if sleeve.cadence == schedule.cadence
        ]
        if targets.stage.portfolio_rebalance == schedule.cadence:
            keys.append((period_key("rebalance", schedule.cadence, local, "portfolio"), None))
        return keys

    def may_act(self, schedule: Schedule, first: date, last: date) -> bool:
        """False when, by these jobs' own rules, no fire of `schedule` from `first` to `last`
        can do anything but skip: profit-taking in stages without milestones (`_profit`),
        withdrawals before a retirement after `last` (`_withdraw`; retirement lasts), a
        rebalance cadence no sleeve and no stage of the span has (`periods_for`; a glide path
        overlapping the span holds both stages' sleeves). A simulation does not walk it."""
        profile = self.config.profile
        ages = range(age_on(profile.birth_date, first), age_on(profile.birth_date, last) + 1)
        stages = {s.id: s for s in map(profile.plan.stage_for_age, ages)}
        if schedule.job == "profit":
            return any(s.profit_milestones_pct for s in stages.values())
        if schedule.job == "withdraw":
            return withdrawal_rate(self.config, last) is not None
        if schedule.job != "rebalance":
            return True
        holding = dict(stages)
        for before, after, starts, ends in glide_paths(profile):
            if starts <= last and first < ends:
                holding |= {before.id: before, after.id: after}
        cadences = {s.portfolio_rebalance for s in stages.values()} | {
            profile.plan.indices[index].cadence
            for s in holding.values()
            for sleeve in s.sleeve
            for index in sleeve.indices
        }
        return schedule.cadence in cadences

    def record_failed(
        self, schedule: Schedule, scheduled_at: datetime, now: datetime, error: str
    ) -> list[Outcome]:
        """Record a failed attempt at every open period of a fire that could not start (the
        exchange's markets or the key check failed before any plan); the periods stay open."""
        return [
            self._failed(Run(schedule.job, key, scheduled_at, now), error)
            for key, _ in self.periods_for(schedule, scheduled_at)
            if not self.store.has_period(key)
        ]

    def failures(self, schedule: Schedule, scheduled_at: datetime) -> int:
        """The most failed attempts of any open period of the fire (0: nothing to retry)."""
        keys = self.periods_for(schedule, scheduled_at)
        return max((self.store.failed_attempts(k) for k, _ in keys), default=0)

    def done(self, schedule: Schedule, scheduled_at: datetime) -> bool:
        """True when every period a fire at `scheduled_at` owns is recorded."""
        return all(self.store.has_period(k) for k, _ in self.periods_for(schedule, scheduled_at))

    def record_missed(self, schedule: Schedule, scheduled_at: datetime, now: datetime) -> None:
        """Record the periods of a fire that happened while the daemon was down, as missed."""
        for key, _ in self.periods_for(schedule, scheduled_at):
            if not self.store.has_period(key):
                run = Run(schedule.job, key, scheduled_at, now)
                self._store_run(run, "missed", error="the daemon was down past the grace window")
                log.warning(
                    "period_missed",
                    job=schedule.job,
                    period=key,
                    scheduled_at=scheduled_at.isoformat(),
                )

    # -- one run -----------------------------------------------------------------------------

    def _run(self, run: Run) -> Outcome:
        # Bound for the run and reset after it: the tokens restore what was bound before
        # (the same as `bound_contextvars`, without copying the whole context on every run).
        bound = structlog.contextvars.bind_contextvars(job=run.job, period=run.period)
        try:
            targets = self._targets(self.local_date(run.now), run.now, run.period, run.scope)
            return self._jobs[run.job](run, targets, self.store.plan_state())
        except DuplicatePeriod:
            # Another process (`stagewise once` beside the daemon) recorded it first.
            log.info("period_already_done", period=run.period)
            return Outcome(run.job, run.period, "duplicate")
        except StagewiseError as e:
            return self._failed(run, str(e))
        finally:
            structlog.contextvars.reset_contextvars(**bound)

    def _dca(self, run: Run, targets: Targets, state: PlanState) -> Outcome:
        month = contribution_on(self.config, self.local_date(run.now))
        contribution = month.amount
        if contribution <= 0 and state.carry == 0 and not state.paused:
            # Nothing to invest: no need to ask the exchange (the glide is still noted).
            why = why_nothing_goes_in(month, self.config)
            reason = f"{why} and nothing is carried: nothing to invest"
            return self._skipped(run, reason, self._glide_events(targets))
        pending = [] if state.paused else self.account.deposit(contribution, run.now, run.period)
        snapshot, listed, left_out = self._read(targets, run.now, pending)
        plan = plan_dca(self._planned_on(snapshot), listed, self.policy, state, contribution)
        events = self._glide_events(targets)
        return self._record(run, plan, snapshot, pending, events=events, notes=left_out)

    def _rebalance(self, run: Run, targets: Targets, state: PlanState) -> Outcome:
        """A sleeve's rebalance (`run.scope`), or the whole portfolio's (no scope)."""
        snapshot, listed, left_out = self._read(targets, run.now)
        scoped = None if run.scope is None else self._scope(run.scope, listed)
        plan = plan_rebalance(self._planned_on(snapshot), listed, self.policy, state, scoped)
        if run.scope is not None:
            plan = self.compositions.explain(plan, run.scope)
        return self._record(run, plan, snapshot, notes=left_out)

    def _drift(self, run: Run, targets: Targets, state: PlanState) -> Outcome:
        return self._watch(run, targets, state, plan_drift)

    def _profit(self, run: Run, targets: Targets, state: PlanState) -> Outcome:
        if not targets.stage.profit_milestones_pct:
            return Outcome(run.job, run.period, "quiet")  # nothing to take: no exchange asked
        return self._watch(run, targets, state, plan_profit)

    def _watch(
        self,
        run: Run,
        targets: Targets,
        state: PlanState,
        check: Callable[[Snapshot, Targets, Policy, PlanState], Plan],
    ) -> Outcome:
        """A watch job: records a run only when it proposes or changes the carried state."""
        snapshot, listed, left_out = self._read(targets, run.now)
        plan = check(self._planned_on(snapshot), listed, self.policy, state)
        if not plan.orders and plan.state == state and plan.refused is None:
            log.debug("quiet", notes=plan.notes)  # e.g. a drift too small to be worth orders
            return Outcome(run.job, run.period, "quiet")
        return self._record(run, plan, snapshot, notes=left_out)

    def _withdraw(self, run: Run, targets: Targets, state: PlanState) -> Outcome:
        today = self.local_date(run.now)
        rate = withdrawal_rate(self.config, today)  # from the retirement day, whatever the age
        if rate is None:
            return self._skipped(run, why_nothing_comes_out(self.config, today))
        periods = self.config.settings.schedule.withdraw_periods
        snapshot, listed, left_out = self._read(targets, run.now)
        plan = plan_withdraw(
            self._planned_on(snapshot), listed, self.policy, state, rate, periods, today.year
        )
        return self._record(run, plan, snapshot, notes=left_out)

    def windfall(self, windfall_id: int, bonus: float, now: datetime) -> Outcome | None:
        """Invest the stage's share of a bonus announced with `stagewise windfall`."""
        run = Run("windfall", f"windfall:{windfall_id}", now, now)
        if self.store.has_period(run.period):
            return None
        with structlog.contextvars.bound_contextvars(job=run.job, period=run.period):
            try:
                _usable_bonus(windfall_id, bonus, self.config.quote)
                targets = self._targets(self.local_date(now), now, run.period)
                share = bonus_share_pct(self.config, targets.stage) / 100
                state = self.store.plan_state()
                invested = bonus * share
                pending = [] if state.paused else self.account.deposit(invested, now, run.period)
                snapshot, listed, left_out = self._read(targets, now, pending)
                plan = plan_windfall(
                    self._planned_on(snapshot), listed, self.policy, state, bonus, share
                )
                return self._record(
                    run, plan, snapshot, pending, consume=[windfall_id], notes=left_out
                )
            except DuplicatePeriod:
                return None
            except StagewiseError as e:
                # The windfall stays pending and is tried again at the next job; the failed
                # attempt is recorded under its period, which stays open.
                return self._failed(run, str(e))

    def _targets(self, today: date, now: datetime, key: str, due: str | None = None) -> Targets:
        """The targets of `today`, each rule index holding its composition (a new one for
        `due`, the index whose rebalance this is)."""
        targets = self.targets(today)
        rules = [i for i in targets.sleeves if self.config.plan.indices[i].is_rule]
        if not rules:
            return targets
        return self.targets(today, self.compositions.current(rules, now, key, due))

    def _scope(self, index: str, targets: Targets) -> list[str]:
        """The assets a sleeve's rebalance trades: its constituents, and those that just left."""
        fixed = self.config.plan.indices[index].constituents
        held = list(fixed) if fixed is not None else list(targets.members.get(index, {}))
        return [*held, *self.compositions.left(index)]

    def _glide_events(self, targets: Targets) -> list[tuple[str, dict]]:
        """A `glide_step` event when the glide path moved since the last one recorded."""
        glide = targets.glide
        if glide is None:
            return []
        last = self.store.events(kind="glide_step", limit=1)
        where = {
            "from": glide.from_stage,
            "to": glide.to_stage,
            "step": glide.step,
            "steps": glide.steps,
        }
        if last and all(last[0]["data"].get(k) == v for k, v in where.items()):
            return []
        return [("glide_step", where)]

    def _reassess(self, run: Run, targets: Targets, state: PlanState) -> Outcome:
        today = self.local_date(run.now)
        a_year_ago = date(today.year - 1, today.month, min(today.day, 28))
        before = stage_on(self.config.profile, a_year_ago)
        snapshot = self._snapshot(targets, run.now)
        month = contribution_on(self.config, today)
        retires = retirement(self.config).on
        goal, fund = goal_of(targets.stage), targets.stage.emergency_fund_months
        summary = {
            "age": targets.age,
            "stage": targets.stage.id,
            "previous_stage": before.id,
            "glide": None
            if targets.glide is None
            else f"{targets.glide.from_stage}->{targets.glide.to_stage} "
            f"step {targets.glide.step}/{targets.glide.steps}",
            "crypto_share_target": round(targets.crypto_share, 4),
            "monthly_contribution": round(month.amount, 2),
            "contribution_band": [
                month.stage.contribution.monthly.min,
                month.stage.contribution.monthly.max,
            ],
            "retirement_date": None if retires is None else retires.isoformat(),
            "retired": month.retired,
            "account_value": round(snapshot.total_value, 2),
            "portfolio_goal": {
                "min": goal.low,
                "max": goal.high,
                "by_age": goal.by_age,
                "progress": goal.progress(snapshot.total_value),
            },
            "emergency_fund_months": [fund.min, fund.max],
        }
        events: list[tuple[str, dict]] = [("reassessed", summary)]
        if before.id != targets.stage.id:
            events.append(("stage_changed", {"from": before.id, "to": targets.stage.id}))
        # "Annually: update contribution amounts": a stage starting outside the guide's range.
        start = starting_contribution(self.config, month.stage)
        warning = outside_range(start, self.config.quote)
        if warning is not None:
            outside = {"stage": start.stage.id, "starts_with": round(start.amount, 2)}
            events.append(("contribution_outside_range", {**outside, "warning": warning}))
        self._store_run(run, "ok", snapshot=snapshot, events=events)
        log.info("yearly_summary", **summary)
        if warning is not None:
            log.warning("contribution_outside_range", warning=warning)
        return Outcome(run.job, run.period, "ok")

    # -- shared steps ----------------------------------------------------------------------

    def _amounts_seen(self) -> dict[str, float] | None:
        """The amounts of the newest recorded snapshot (None: none is recorded yet)."""
        latest = self.store.latest_snapshot()
        return None if latest is None else {a: r["amount"] for a, r in latest[1].items()}

    def local_date(self, now: datetime) -> date:
        return now.astimezone(self.tz).date()

    def _snapshot(
        self, targets: Targets, now: datetime, pending: Sequence[LedgerEntry] = ()
    ) -> Snapshot:
        return self.account.snapshot(list(targets.weights), now, pending=pending)

    def _read(
        self, targets: Targets, now: datetime, pending: Sequence[LedgerEntry] = ()
    ) -> tuple[Snapshot, Targets, tuple[str, ...]]:
        """The account at `now`, the targets to plan with, and the plan's note on what they
        leave out: an asset the exchange has no market for (not listed yet, or delisted) is
        out of the targets, its weight given to the listed assets of its index, as a
        simulation leaves out one without a price yet (`listings`)."""
        snapshot = self._snapshot(targets, now, pending)
        unlisted = [a for a in targets.weights if a in snapshot.unpriced]
        if not unlisted:
            return snapshot, targets, ()
        listed = listed_only(targets, targets.weights.keys() - set(unlisted))
        return snapshot, listed, (unlisted_note(unlisted),)

    def _planned_on(self, snapshot: Snapshot) -> Snapshot:
        """What a plan starts from: the account as read (and recorded), after this fire's
        earlier proposals that the account does not show (read-only mode)."""
        for plan in self._unsettled:
            snapshot = apply(plan, snapshot)
        return snapshot

    def _record(
        self,
        run: Run,
        plan: Plan,
        snapshot: Snapshot,
        pending: Sequence[LedgerEntry] = (),
        consume: Sequence[int] = (),
        events: Sequence[tuple[str, dict]] = (),
        notes: Sequence[str] = (),
    ) -> Outcome:
        if notes:
            plan = dataclasses.replace(plan, notes=(*notes, *plan.notes))
        plan = self.compositions.annotate(plan)  # a rule index it could not compose
        if plan.refused is not None:
            # Nothing is deposited or filled for a plan that could not be made.
            return self._failed(run, plan.refused, snapshot)
        settled = self.account.settle(plan, snapshot, run.now)
        state = plan.state
        if not self.account.settles:
            # Read-only: the next period of this fire sees these proposals as placed; the
            # carried state follows the account, not the proposals.
            if plan.orders:
                self._unsettled.append(plan)
            # Profit proceeds stay set aside until the account shows them gone.
            state = state_seen(
                snapshot, self._amounts_seen(), self.store.plan_state(), state, plan.moved_out
            )
        self._store_run(
            run,
            "ok",
            plan=plan,
            state=state,
            snapshot=snapshot,
            ledger=[*pending, *settled],
            consume_windfalls=consume,
            events=events,
        )
        if log.is_enabled_for(logging.INFO):  # a simulation runs at warning: skip the fields
            _log_plan(plan)
        return Outcome(run.job, run.period, "ok", orders=len(plan.orders))

    def _store_run(self, run: Run, status: RunStatus, **recorded: Any) -> None:
        """One run, whole, in the store: started at `now`, finished when the clock says."""
        self.store.record_run(
            RunRecord(
                job=run.job,
                period=run.period,
                scheduled_at=run.scheduled_at,
                started_at=run.now,
                finished_at=max(run.now, self.clock()) if self.clock is not None else run.now,
                status=status,
                mode=self.account.mode,
                **recorded,
            )
        )

    def _skipped(self, run: Run, reason: str, events: Sequence[tuple[str, dict]] = ()) -> Outcome:
        self._store_run(run, "skipped", error=reason, events=events)
        log.info("run_finished", status="skipped", reason=reason)
        return Outcome(run.job, run.period, "skipped", error=reason)

    def _failed(self, run: Run, error: str, snapshot: Snapshot | None = None) -> Outcome:
        self._store_run(run, "failed", snapshot=snapshot, error=error)
        log.warning("run_failed", error=error)
        recent = [
            r["status"] for r in self.store.runs(job=run.job, limit=FAILURES_BEFORE_ALARM + 1)
        ]
        # Raised once, when the streak reaches the count (retries then go on failing quietly).
        streak = recent[:FAILURES_BEFORE_ALARM]
        if streak == ["failed"] * FAILURES_BEFORE_ALARM and recent[FAILURES_BEFORE_ALARM:] != [
            "failed"
        ]:
            self.store.add_event("job_failing", run.now, {"job": run.job, "last_error": error})
            log.error("job_failing_repeatedly", failures=FAILURES_BEFORE_ALARM, last_error=error)
        return Outcome(run.job, run.period, "failed", error=error)


def _usable_bonus(windfall_id: int, bonus: float, quote: str) -> None:
    """Refuse a windfall the arithmetic cannot take (an older stagewise stored 1e308 as given:
    its buys overflowed and crashed every job)."""
    if not 0 < bonus <= MAX_MONEY:  # NaN compares False
        raise StateError(
            f"windfall #{windfall_id} in the state file is {bonus!r} {quote}: not a usable "
            f"amount (positive, at most {MAX_MONEY:,.0f}); `stagewise windfall cancel "
            f"{windfall_id}` removes it"
        )


def _log_plan(plan: Plan) -> None:
    """One event per proposed order, skip and note, then the run's summary."""
    for order in plan.orders:
        log.info("proposal", **_order_fields(order))
    for skip in plan.skipped:
        log.info(
            "skipped",
            asset=skip.asset,
            rule=skip.rule,
            reason=skip.reason,
            notional=round(skip.notional, 2),
        )
    for note in plan.notes:
        log.info("note", text=note)
    log.info(
        "run_finished",
        status="ok",
        orders=len(plan.orders),
        skipped=len(plan.skipped),
        carry=round(plan.state.carry, 2),
        deposit_needed=round(plan.deposit_needed, 2),
        value=round(plan.summary.value, 2) if plan.summary else None,
    )


def _order_fields(order: Order) -> dict[str, Any]:
    return {
        "symbol": order.symbol,
        "side": order.side,
        "amount": order.amount,
        "price": order.price,
        "notional": round(order.notional, 2),
        "fee": round(order.fee, 4),
        "rule": order.rule,
        "reason": order.reason,
        "weight_before": round(order.weight_before, 6),
        "weight_after": round(order.weight_after, 6),
        "weight_target": round(order.weight_target, 6),
    }
