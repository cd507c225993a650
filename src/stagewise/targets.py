"""Targets at a moment: the investor's stage, glide path position, crypto share and weights.

Pure functions of a `Profile` (the plan data and the investor's figures the targets depend on)
and a date: the daemon, the CLI and simulations agree on the targets of any day. No clock
reads, no I/O, no settings.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from stagewise.errors import UsageError
from stagewise.stages import IndexCadence, PlanData, Stage


@dataclass(frozen=True)
class Profile:
    """What the targets of a day depend on: the plan data and the investor's figures for it
    (`Config.profile` reads them from the settings)."""

    plan: PlanData
    birth_date: date
    crypto_share_point: float = 0.5  # where in a stage's band the investor aims (0 low, 1 high)
    derisk_pct_per_year: float | None = None  # None: each stage's own minimum
    cash_pct: float = 0.0  # of the crypto account kept in the quote currency
    transition_months: int = 24  # the glide path's monthly steps
    transition_anchor: Literal["end", "start"] = "end"  # the glide ends (or starts) on the birthday


@dataclass(frozen=True, slots=True)
class Glide:
    """A stage transition in progress: `step` of `steps` monthly steps to the next stage."""

    from_stage: str
    to_stage: str
    starts: date
    ends: date
    step: int
    steps: int

    @property
    def progress(self) -> float:
        return self.step / self.steps


@dataclass(frozen=True, slots=True)
class SleeveTarget:
    """One index of the portfolio: its weight in the crypto portfolio and its own cadence."""

    index: str
    name: str
    weight: float
    cadence: IndexCadence


@dataclass(frozen=True, slots=True)
class Targets:
    """What the portfolio should look like on a day (the same on every day of one age of the
    investor and one step of a glide path).

    crypto_share: target share of crypto in the whole investment portfolio (fraction).
    crypto_band: the stage's band for that share, blended on a glide path (fractions).
    sleeves: per index, its weight inside the crypto portfolio (they sum to 1 - cash).
    weights: per asset, its weight inside the crypto portfolio (they sum to 1 - cash).
    cash: share of the crypto account kept in the quote currency.
    members: per index, the part of each asset's weight that it holds (an asset in two
        indices is split between them); over every index they sum to `weights`.
    dca_only: the assets only bought (pure DCA): every index holding them has cadence
        "never", so no rebalance trades them back to their weights (an asset one rebalanced
        index also holds is rebalanced with it).
    """

    age: int
    stage: Stage
    glide: Glide | None
    crypto_share: float
    crypto_band: tuple[float, float]
    sleeves: Mapping[str, SleeveTarget]
    weights: Mapping[str, float]
    cash: float
    members: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    dca_only: frozenset[str] = frozenset()


def age_on(birth: date, on: date) -> int:
    """Age in whole years on `on`."""
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def birthday(birth: date, age: int) -> date:
    """The day the investor turns `age` (29 February falls on 28 February in common years)."""
    year = birth.year + age
    try:
        return birth.replace(year=year)
    except ValueError:
        return date(year, 2, 28)


def add_months(day: date, months: int) -> date:
    """`day` moved by whole calendar months, clamped to the month's end."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    for d in (day.day, 30, 29, 28):
        try:
            return date(year, month, d)
        except ValueError:
            continue
    raise AssertionError("unreachable")


def months_between(start: date, end: date) -> int:
    """Whole calendar months from `start` to `end` (0 when end < one month after start)."""
    months = (end.year - start.year) * 12 + end.month - start.month
    if add_months(start, months) > end:
        months -= 1
    return months


def stage_on(profile: Profile, on: date) -> Stage:
    """The investor's stage by age on `on` (a day before their birth has none)."""
    birth = profile.birth_date
    if on < birth:
        raise UsageError(f"{on} is before the investor's birth date {birth}: no stage covers it")
    return profile.plan.stage_for_age(age_on(birth, on))


def glide_paths(profile: Profile) -> list[tuple[Stage, Stage, date, date]]:
    """Every transition of the investor's life: (from stage, to stage, first day, end)."""
    steps = profile.transition_months
    paths = []
    for before, after in zip(profile.plan.stages, profile.plan.stages[1:], strict=False):
        boundary = birthday(profile.birth_date, after.min_age)
        starts = add_months(boundary, -steps) if profile.transition_anchor == "end" else boundary
        paths.append((before, after, starts, add_months(starts, steps)))
    return paths


def glide_on(
    profile: Profile, on: date, paths: list[tuple[Stage, Stage, date, date]] | None = None
) -> Glide | None:
    """The transition in progress on `on`, if any (the guide's transition protocol).
    `paths`: the profile's `glide_paths`, when the caller has them already."""
    steps = profile.transition_months
    for before, after, starts, ends in glide_paths(profile) if paths is None else paths:
        if starts <= on < ends:
            step = months_between(starts, on)
            return Glide(before.id, after.id, starts, ends, step, steps)
    return None


def crypto_share_of(profile: Profile, stage: Stage, on: date) -> float:
    """The stage's crypto-share target (fraction): a point in its band, less yearly de-risking."""
    band = stage.crypto_share_pct
    pct = band.point(profile.crypto_share_point)
    if stage.derisk_pct_per_year.max > 0:
        per_year = (
            profile.derisk_pct_per_year
            if profile.derisk_pct_per_year is not None
            else stage.derisk_pct_per_year.min
        )
        years_in = max(0, age_on(profile.birth_date, on) - stage.min_age)
        pct -= per_year * years_in
    return min(max(pct, band.min), band.max) / 100


def index_weights(stage: Stage) -> dict[str, float]:
    """Weight of each index in the stage's crypto portfolio (fractions summing to 1)."""
    weights: dict[str, float] = {}
    for sleeve in stage.sleeve:
        part = sleeve.weight_pct / 100 / len(sleeve.indices)
        for name in sleeve.indices:
            weights[name] = weights.get(name, 0.0) + part
    return weights


# Per rule index, the weights (percent) of its latest reconstitution (stagewise.composition).
Compositions = Mapping[str, Mapping[str, float]]


def constituents_of(plan: PlanData, index: str, compositions: Compositions) -> Mapping[str, float]:
    """An index's weights (percent): a fixed basket's, or a rule index's last composition
    (a rule index not composed yet holds nothing: the jobs compose it before they plan)."""
    fixed = plan.indices[index].constituents
    return fixed if fixed is not None else compositions.get(index, {})


def targets_on(profile: Profile, on: date, compositions: Compositions | None = None) -> Targets:
    """The targets of `on`: the stage's, or a blend of two stages' on a glide path; a rule
    index holds its composition in `compositions`."""
    plan = profile.plan
    cash = profile.cash_pct / 100
    stage = stage_on(profile, on)
    glide = glide_on(profile, on)
    if glide is None:
        mix = {stage.id: 1.0}
    else:
        mix = {glide.from_stage: 1 - glide.progress, glide.to_stage: glide.progress}
    by_id = {s.id: s for s in plan.stages}
    share = sum(f * crypto_share_of(profile, by_id[s], on) for s, f in mix.items())
    low = sum(f * by_id[s].crypto_share_pct.min / 100 for s, f in mix.items())
    high = sum(f * by_id[s].crypto_share_pct.max / 100 for s, f in mix.items())
    per_index: dict[str, float] = {}
    for stage_id, f in mix.items():
        for name, w in index_weights(by_id[stage_id]).items():
            per_index[name] = per_index.get(name, 0.0) + f * w
    per_index = {k: v for k, v in per_index.items() if v > 0}
    sleeves = {
        name: SleeveTarget(
            index=name,
            name=plan.indices[name].name,
            weight=w * (1 - cash),
            cadence=plan.indices[name].cadence,
        )
        for name, w in sorted(per_index.items())
    }
    weights: dict[str, float] = {}
    members: dict[str, dict[str, float]] = {}
    for name, w in sorted(per_index.items()):
        held = members[name] = {}
        for asset, pct in sorted(constituents_of(plan, name, compositions or {}).items()):
            held[asset] = w * pct / 100 * (1 - cash)
            weights[asset] = weights.get(asset, 0.0) + held[asset]
    rebalanced = {
        asset for name in per_index if sleeves[name].cadence != "never" for asset in members[name]
    }
    return Targets(
        age=age_on(profile.birth_date, on),
        stage=stage,
        glide=glide,
        crypto_share=share,
        crypto_band=(low, high),
        sleeves=sleeves,
        weights=dict(sorted(weights.items())),
        cash=cash,
        members=members,
        dca_only=frozenset(weights) - rebalanced,
    )


@dataclass(frozen=True, slots=True)
class _Stretch:
    """The days whose targets are alike: one age of the investor, one step of a glide path
    (or none). Equal whatever `day`, the first of them asked, which computes them."""

    age: int
    step: tuple[str, int] | None
    day: date = field(compare=False)


class TargetsOn:
    """`targets_on` for one profile, remembered (functools.lru_cache): the targets of a day
    depend on the day only through the investor's age and the glide path's step, so the
    days that share both (and the compositions) share one computation."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self._birth = profile.birth_date
        self._paths = glide_paths(profile)  # pure in the profile, as every day's targets are
        self._of = functools.lru_cache(maxsize=64)(self._targets)

    def __call__(self, on: date, compositions: Compositions | None = None) -> Targets:
        glide = glide_on(self.profile, on, self._paths)
        step = None if glide is None else (glide.from_stage, glide.step)
        return self._of(_Stretch(age_on(self._birth, on), step, on), _frozen(compositions))

    def _targets(
        self, stretch: _Stretch, held: tuple[tuple[str, tuple[tuple[str, float], ...]], ...]
    ) -> Targets:
        compositions = {index: dict(weights) for index, weights in held}
        return targets_on(self.profile, stretch.day, compositions)


def _frozen(
    compositions: Compositions | None,
) -> tuple[tuple[str, tuple[tuple[str, float], ...]], ...]:
    """`compositions` as a key: equal compositions share one computation."""
    if not compositions:
        return ()
    return tuple((i, tuple(sorted(w.items()))) for i, w in sorted(compositions.items()))
