"""What goes in and what comes out by the investor's life: each stage's monthly contribution,
and retirement, which stops contributions and starts withdrawals.

Pure functions of the config and a day (no clock, no I/O), like the targets.

- **A stage's contribution**: `[investor.contributions]` gives it by stage id; a stage it does
  not name gets `investor.monthly_contribution` when the guide has that stage contribute (its
  monthly range goes above 0: stages 1-4), else nothing (the Retirees: "minimal or none").
- **Yearly increase**: on each anniversary of `investor.contribution_start` an amount rises
  by the yearly increase of the stage whose rules then apply: `monthly_contribution` on every
  anniversary, a stage's own amount on the anniversaries spent in that stage.
- **Retirement**: `investor.retirement_date`, or the birthday of `investor.retirement_age`;
  unset, the age bands decide (the first stage with withdrawals: 65 in the shipped plan). From
  that day, whatever the age band, the money follows the plan's retirement stage (the first
  with withdrawals): no contribution unless `[investor.contributions]` names that stage, and
  withdrawals at its rate (or `investor.withdrawal_pct`). Until that day there are no
  withdrawals. The age bands still choose everything else: the allocation, the crypto share
  band, the cadences, the profit milestones.
- **The guide's ranges** are what a stage starts with (Young Professionals start with 200-500
  and raise it 15 % a year): a stage whose starting amount is outside its range is a warning
  (`check-config`, the yearly re-assessment), never an error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from stagewise.money import QUOTE_EPSILON
from stagewise.settings import Config
from stagewise.stages import PercentBand, Stage
from stagewise.targets import age_on, birthday, stage_on


@dataclass(frozen=True, slots=True)
class Retirement:
    """When the investor retires (None: never, no stage of the plan has withdrawals), and
    what says so."""

    on: date | None
    source: str


@dataclass(frozen=True, slots=True)
class Contribution:
    """The monthly contribution of a day.

    stage: the stage whose contribution rules apply (once retired, the retirement stage).
    setting: the setting the amount comes from; None when the stage contributes nothing.
    """

    amount: float
    stage: Stage
    setting: str | None
    retired: bool


def retirement(config: Config) -> Retirement:
    """The retirement day: the investor's, else the start of the first stage with withdrawals."""
    inv = config.settings.investor
    if inv.retirement_date is not None:
        return Retirement(inv.retirement_date, "investor.retirement_date")
    if inv.retirement_age is not None:
        return Retirement(
            birthday(inv.birth_date, inv.retirement_age),
            f"investor.retirement_age {inv.retirement_age}",
        )
    stage = config.plan.retirement_stage()
    if stage is None:
        return Retirement(None, "no stage of the plan has withdrawals")
    return Retirement(
        birthday(inv.birth_date, stage.min_age), f"the age band of stage '{stage.id}'"
    )


def retired_on(config: Config, on: date) -> bool:
    day = retirement(config).on
    return day is not None and on >= day


def money_stage(config: Config, on: date) -> Stage:
    """The stage whose contribution and withdrawal rules apply on `on`: the age band's, or,
    retired in a stage without withdrawals (before its age band says so), the retirement
    stage's."""
    stage = stage_on(config.profile, on)
    if stage.withdrawal_pct.max > 0 or not retired_on(config, on):
        return stage
    retiree = config.plan.retirement_stage()
    assert retiree is not None  # retired implies one: settings refuse a retirement without
    return retiree


def contribution_on(config: Config, on: date) -> Contribution:
    """The monthly contribution of the month of `on` (see the module's rules)."""
    inv = config.settings.investor
    stage = money_stage(config, on)
    retired = retired_on(config, on)
    own = inv.contributions.get(stage.id)
    if own is None and stage.contribution.monthly.max <= 0:
        return Contribution(0.0, stage, None, retired)
    amount = inv.monthly_contribution if own is None else own
    start = inv.contribution_start
    if start is not None:
        for n in range(1, age_on(start, on) + 1):
            then = money_stage(config, birthday(start, n))
            if own is None or then.id == stage.id:
                amount *= 1 + then.contribution.yearly_increase_pct / 100
    setting = f"investor.contributions.{stage.id}" if own is not None else None
    return Contribution(amount, stage, setting or "investor.monthly_contribution", retired)


def monthly_contribution(config: Config, on: date) -> float:
    """The DCA amount of the month of `on`."""
    return contribution_on(config, on).amount


def why_nothing_goes_in(contribution: Contribution, config: Config) -> str:
    """Why a contribution of 0 is 0, for the DCA run that has nothing to invest."""
    stage = contribution.stage
    if contribution.setting == "investor.monthly_contribution":
        return "the monthly contribution is 0"
    if contribution.setting is not None:
        return f"the monthly contribution of stage '{stage.id}' ({contribution.setting}) is 0"
    if contribution.retired:
        r = retirement(config)
        why = f"retired since {r.on} ({r.source})"
    else:
        why = f"stage '{stage.id}' has no contributions in the guide"
    return f"{why}: no contribution unless [investor.contributions] gives {stage.id} one"


def withdrawal_rate(config: Config, on: date) -> float | None:
    """The yearly withdrawal (a fraction of the account) on `on`; None before retirement."""
    if not retired_on(config, on):
        return None
    chosen = config.settings.investor.withdrawal_pct
    stage = money_stage(config, on)
    return (chosen if chosen is not None else stage.withdrawal_pct.point(0.5)) / 100


def why_nothing_comes_out(config: Config, on: date) -> str:
    """Why there is no withdrawal on `on` (before retirement)."""
    r = retirement(config)
    if r.on is None:
        return f"stage '{stage_on(config.profile, on).id}' has no withdrawals"
    return f"withdrawals start at retirement on {r.on} ({r.source})"


def bonus_share_pct(config: Config, stage: Stage) -> float:
    """Percent of a bonus (a windfall) invested in `stage`: the investor's choice
    (`investor.bonus_share_pct`), else the low end of the stage's range in the guide."""
    chosen = config.settings.investor.bonus_share_pct
    return chosen if chosen is not None else stage.contribution.bonus_share_pct.min


def stage_entry(config: Config, stage: Stage) -> date:
    """The first day `stage`'s contribution rules apply: its age band's first day, or for
    the retirement stage the retirement day when that comes first."""
    entry = birthday(config.settings.investor.birth_date, stage.min_age)
    day = retirement(config).on
    retiree = config.plan.retirement_stage()
    if day is not None and retiree is not None and stage.id == retiree.id:
        return min(entry, day)
    return entry


def starting_contribution(config: Config, stage: Stage) -> Contribution:
    """What `stage` starts with: its contribution on its first day (before its own yearly
    increases), the figure the guide's range is about."""
    return contribution_on(config, stage_entry(config, stage))


def outside_range(contribution: Contribution, quote: str) -> str | None:
    """A warning when `contribution` (a stage's starting one) is outside its stage's range
    in the guide; None inside it."""
    band = contribution.stage.contribution.monthly
    amount = contribution.amount
    if band.min - QUOTE_EPSILON <= amount <= band.max + QUOTE_EPSILON:
        return None
    side = "above" if amount > band.max else "below"
    setting = contribution.setting or f"investor.contributions.{contribution.stage.id}"
    return (
        f"{setting}: stage '{contribution.stage.id}' starts with {amount:,.2f} {quote} a "
        f"month, {side} the guide's {band.min:,.0f}-{band.max:,.0f}"
    )


def contribution_warnings(config: Config, today: date) -> list[str]:
    """`outside_range` for today's stage and every stage still to come (`check-config`)."""
    birth = config.settings.investor.birth_date
    changes = [birthday(birth, s.min_age) for s in config.plan.stages]
    day = retirement(config).on
    days = sorted({today, *(d for d in [*changes, day] if d is not None and d > today)})
    warnings, seen = [], set()
    for on in days:
        stage = money_stage(config, on)
        if stage.id in seen:
            continue
        seen.add(stage.id)
        warning = outside_range(starting_contribution(config, stage), config.quote)
        if warning is not None:
            warnings.append(warning)
    return warnings


# The investor's own percentages (config field, the stage's band of it, what it is of), each
# checked against the guide's range in the stages that use it (a band above 0); a de-risking
# outside the pre-retiree's range is refused on load (settings: the guide's protocol).
_CHOICES: tuple[tuple[str, Callable[[Stage], PercentBand], str], ...] = (
    ("withdrawal_pct", lambda s: s.withdrawal_pct, "a year"),
    ("bonus_share_pct", lambda s: s.contribution.bonus_share_pct, "of a bonus"),
)


def choice_warnings(config: Config, today: date) -> list[str]:
    """The investor's withdrawal rate and bonus share, where set, outside the guide's range
    of a stage still to come (today's included) that uses them (`check-config`): a figure
    meant as a percent but written as a fraction (0.04 for 4 %) is named so."""
    investor = config.settings.investor
    age = age_on(investor.birth_date, today)
    coming = [s for s in config.plan.stages if s.max_age is None or s.max_age >= age]
    warnings = []
    for name, band_of, per in _CHOICES:
        value = getattr(investor, name)
        if value is None:
            continue
        for stage in coming:
            band = band_of(stage)
            if band.max <= 0 or band.min - 1e-9 <= value <= band.max + 1e-9:
                continue
            side = "above" if value > band.max else "below"
            guide = f"{band.min:g}" if band.min == band.max else f"{band.min:g}-{band.max:g}"
            warning = (
                f"investor.{name}: {value:g} % {per}, {side} the guide's {guide} % for stage "
                f"'{stage.id}'"
            )
            if band.min <= value * 100 <= band.max:
                warning += (
                    f" (a percent: {value * 100:g} is {value * 100:g} %, {value:g} is {value:g} %)"
                )
            warnings.append(warning)
    return warnings
