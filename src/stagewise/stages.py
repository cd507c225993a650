"""The plan as data: the five life stages and the index baskets, loaded from TOML and validated.

Frozen pydantic models; nothing here reads the clock or touches the exchange.
"""

from __future__ import annotations

import tomllib
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from stagewise.errors import ConfigError
from stagewise.money import WEIGHT_SUM_TOLERANCE_PCT

Cadence = Literal["weekly", "monthly", "quarterly", "annual"]
# An index's own rebalance cadence; "never": the index is only bought (pure DCA), no rebalance
# trades it back to its weights (targets.Targets.dca_only).
IndexCadence = Literal["weekly", "monthly", "quarterly", "annual", "never"]
Percent = Field(ge=0, le=100)


def numbers_not_flags(model: type[BaseModel], value: object, info: ValidationInfo) -> object:
    """`value` unless it is true or false given for a number (or among a table's or a list's
    numbers), which pydantic alone reads as 1 or 0: `monthly_contribution = true` would invest
    1.00 a month. For a `field_validator("*", mode="before")` of a model's base class."""
    annotation = None if info.field_name is None else model.model_fields[info.field_name].annotation
    if not _takes_numbers(annotation) or _admits_flags(annotation):
        return value  # (a text field refuses true/false itself, as a text)
    if isinstance(value, bool):
        raise ValueError(f"{_toml(value)} is a yes/no value, not a number")
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, bool):
                raise ValueError(f"{key} = {_toml(item)} is a yes/no value, not a number")
    if isinstance(value, list):
        for n, item in enumerate(value, 1):
            if isinstance(item, bool):
                raise ValueError(f"{_toml(item)} (item {n}) is a yes/no value, not a number")
    return value


def _takes_numbers(annotation: object) -> bool:
    """True when a field's type holds numbers somewhere (int, float, a table or list of them)."""
    if annotation is int or annotation is float:
        return True
    return any(_takes_numbers(a) for a in typing.get_args(annotation))


def _admits_flags(annotation: object) -> bool:
    """True when a field's type takes true/false somewhere (bool, Any, a nested model, a
    Literal of true or false)."""
    if annotation is bool or annotation is Any or isinstance(annotation, bool):
        return True
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    return any(_admits_flags(a) for a in typing.get_args(annotation))


def _toml(flag: bool) -> str:
    return "true" if flag else "false"


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    _numbers_not_flags = field_validator("*", mode="before")(classmethod(numbers_not_flags))


class Band(Frozen):
    """A range of the guide, both ends included (e.g. 20-30 %)."""

    min: float = Field(ge=0)
    max: float = Field(ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> Band:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self

    def point(self, fraction: float) -> float:
        """The value `fraction` of the way from min (0) to max (1)."""
        return self.min + fraction * (self.max - self.min)


class PercentBand(Band):
    min: float = Percent
    max: float = Percent


class Goal(Band):
    by_age: int = Field(ge=0, le=130)


class ExpectedReturn(Frozen):
    min: float
    max: float
    when: str = ""


class Contribution(Frozen):
    """How much goes in: monthly range, yearly increase, share of bonuses, the stage's goal."""

    monthly: Band
    yearly_increase_pct: float = Percent
    bonus_share_pct: PercentBand
    portfolio_goal: Goal


class Sleeve(Frozen):
    """A part of a stage's crypto portfolio, held in one or more indices in equal parts."""

    name: str
    weight_pct: float = Field(gt=0, le=100)
    indices: list[str] = Field(min_length=1)
    alternatives: list[str] = []
    expected_return_pct: ExpectedReturn | None = None


class Stage(Frozen):
    """One life stage of the guide with every figure it gives."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str
    number: int = Field(ge=1)
    min_age: int = Field(ge=0, le=130)
    max_age: int | None = Field(default=None, ge=0, le=130)
    guide_ages: str = ""
    years_to_retirement: str = ""
    crypto_share_pct: PercentBand
    portfolio_rebalance: Cadence
    emergency_fund_months: Band
    max_drawdown_accepted_pct: float | None = Field(default=None, ge=0, le=100)
    profit_milestones_pct: list[float] = []
    withdrawal_pct: PercentBand
    derisk_pct_per_year: PercentBand
    contribution: Contribution
    sleeve: list[Sleeve] = Field(min_length=1)
    example: dict[str, int | float | str] = {}

    @model_validator(mode="after")
    def _consistent(self) -> Stage:
        if self.max_age is not None and self.max_age < self.min_age:
            raise ValueError(f"max_age ({self.max_age}) is below min_age ({self.min_age})")
        total = sum(s.weight_pct for s in self.sleeve)
        if abs(total - 100) > WEIGHT_SUM_TOLERANCE_PCT:
            raise ValueError(f"sleeve weights sum to {total:g} %, not 100 %")
        if any(m <= 0 for m in self.profit_milestones_pct):
            raise ValueError("profit milestones must be gains above 0 %")
        if self.profit_milestones_pct != sorted(set(self.profit_milestones_pct)):
            raise ValueError("profit milestones must be distinct and in ascending order")
        return self

    def covers(self, age: int) -> bool:
        return self.min_age <= age and (self.max_age is None or age <= self.max_age)


class TransitionExample(Frozen):
    from_age: int
    to_age: int
    yearly_shift_pct: float = Percent


class PlanRules(Frozen):
    """Cross-stage figures: the transition protocol's range of months."""

    transition_months_min: int = Field(ge=1, le=120)
    transition_months_max: int = Field(ge=1, le=120)
    transition_example: TransitionExample | None = None


class EmergencyRule(Frozen):
    """The guide's emergency rule: stop contributions, don't panic sell, resume when stable.

    stagewise implements the rule as the guide writes it (`stagewise pause` stops
    contributions and windfalls and sells nothing; `stagewise resume` ends it): another value
    is refused on load rather than stored and ignored."""

    stop_contributions: Literal[True] = True
    sell: Literal[False] = False
    use_emergency_fund_first: Literal[True] = True
    resume: Literal["on command"] = "on command"


class StagesFile(Frozen):
    plan: PlanRules
    emergency_rule: EmergencyRule
    stage: list[Stage] = Field(min_length=1)

    @model_validator(mode="after")
    def _contiguous(self) -> StagesFile:
        stages = self.stage
        if stages[0].min_age != 0:
            raise ValueError(f"the first stage must start at age 0, not {stages[0].min_age}")
        for before, after in zip(stages, stages[1:], strict=False):
            if before.max_age is None:
                raise ValueError(f"stage '{before.id}' has no max_age but is not the last stage")
            if after.min_age != before.max_age + 1:
                kind = "gap" if after.min_age > before.max_age + 1 else "overlap"
                raise ValueError(
                    f"age bands have a {kind} between '{before.id}' (to {before.max_age}) "
                    f"and '{after.id}' (from {after.min_age})"
                )
        if stages[-1].max_age is not None:
            raise ValueError(f"the last stage '{stages[-1].id}' must be open-ended (no max_age)")
        ids = [s.id for s in stages]
        if len(set(ids)) != len(ids):
            raise ValueError("stage ids must be unique")
        return self


class Select(Frozen):
    """A rule's selection: the top N of the universe by a ranking figure (momentum: the
    highest return; volume: the highest median daily quote volume; volatility: the lowest)."""

    top: int = Field(ge=1)
    by: Literal["momentum", "volatility", "volume"]
    lookback_days: int = Field(ge=2, le=3650)
    skip_days: int = Field(default=0, ge=0, le=365)


class Liquidity(Frozen):
    """A liquidity floor: an asset whose median daily quote volume over `days` is under
    `min_quote_volume` (quote currency) is left out of the universe."""

    min_quote_volume: float = Field(gt=0)
    days: int = Field(default=30, ge=1, le=365)


Weigh = Literal["equal", "volume", "inverse_volatility", "rank"]
# The fields only a rule index (one with a universe) may set.
RULE_FIELDS = frozenset(
    {
        "select",
        "weigh",
        "volatility_days",
        "volume_days",
        "max_weight_pct",
        "min_weight_pct",
        "exclude",
        "liquidity",
    }
)
KINDS = "give one of constituents (a fixed basket), universe (a rule) or source (a holdings file)"


class Index(Frozen):
    """An index: a fixed basket (constituents with weights, percent), a rule (a universe,
    a selection and a weighing, reconstituted at each rebalance) or a holdings file someone
    else composes (`source`, re-read at each reconstitution), with a rebalance cadence.

    `universe`: a list of assets, or "exchange": every asset trading against the quote
    currency, less the shipped exclusions (stablecoins, fiat, leveraged and wrapped tokens,
    `stagewise.universe`) and the index's own `exclude`."""

    name: str
    cadence: IndexCadence
    focus: str = ""
    constituents: dict[str, float] | None = Field(default=None, min_length=1)
    universe: list[str] | Literal["exchange"] | None = Field(default=None, min_length=1)
    source: Path | None = None
    exclude: list[str] = []
    liquidity: Liquidity | None = None
    select: Literal["all"] | Select = "all"
    weigh: Weigh = "equal"
    volatility_days: int = Field(default=30, ge=2, le=3650)
    volume_days: int = Field(default=30, ge=1, le=3650)
    max_weight_pct: float | None = Field(default=None, gt=0, le=100)
    min_weight_pct: float | None = Field(default=None, ge=0, lt=100)

    @property
    def is_rule(self) -> bool:
        """Composed at its reconstitutions (by a rule or from a holdings file), not fixed."""
        return self.universe is not None or self.source is not None

    @property
    def needs_volumes(self) -> bool:
        """True when choosing or weighing the index reads quote volumes."""
        by = None if self.select == "all" else self.select.by
        return by == "volume" or self.weigh == "volume" or self.liquidity is not None

    @model_validator(mode="after")
    def _weights(self) -> Index:
        kinds = [k for k in ("constituents", "universe", "source") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(KINDS + (f", not {' and '.join(kinds)}" if kinds else ""))
        if self.universe is not None:
            return self._rule()
        rule_fields = self.model_fields_set & RULE_FIELDS
        if rule_fields:
            raise ValueError(
                f"{', '.join(sorted(rule_fields))}: only for a rule index (one with a "
                "universe), not a " + ("holdings file" if self.source else "fixed basket")
            )
        if self.constituents is None:
            return self
        for asset, w in self.constituents.items():
            if not (0 < w <= 100):
                raise ValueError(
                    f"constituent {asset} weight {w:g} must be above 0 and at most 100"
                )
            _exchange_code(asset, "constituent")
        total = sum(self.constituents.values())
        if abs(total - 100) > WEIGHT_SUM_TOLERANCE_PCT:
            raise ValueError(f"constituent weights sum to {total:g} %, not 100 %")
        return self

    def _rule(self) -> Index:
        universe = self.universe if isinstance(self.universe, list) else None
        for asset in universe or []:
            _exchange_code(asset, "universe: asset")
        if universe is not None and len(set(universe)) != len(universe):
            raise ValueError("universe: an asset is listed twice")
        if self.exclude and universe is not None:
            raise ValueError('exclude: only for universe = "exchange" (a list is its own choice)')
        for asset in self.exclude:
            _exchange_code(asset, "exclude: asset")
        size = None if universe is None else len(universe)
        if self.select != "all":
            if size is not None and self.select.top > size:
                raise ValueError(
                    f"select.top: {self.select.top} is more than the universe's {size} assets"
                )
            size = self.select.top
        if self.weigh == "rank" and self.select == "all":
            raise ValueError(
                "weigh: 'rank' needs a ranking (select by momentum, volume or volatility)"
            )
        low, high = self.min_weight_pct, self.max_weight_pct
        if low is not None and high is not None and low > high:
            raise ValueError(f"min_weight_pct ({low:g}) is above max_weight_pct ({high:g})")
        if size is not None and high is not None and high * size < 100 - WEIGHT_SUM_TOLERANCE_PCT:
            raise ValueError(
                f"max_weight_pct: {size} assets at most {high:g} % each cannot make 100 %"
            )
        if size is not None and low is not None and low * size > 100 + WEIGHT_SUM_TOLERANCE_PCT:
            raise ValueError(
                f"min_weight_pct: {size} assets at least {low:g} % each make more than 100 %"
            )
        return self

    def assets(self) -> list[str]:
        """Every asset the index is known to hold or choose from: its constituents, or its
        rule's listed universe (none for an exchange universe or a holdings file: those are
        known at a reconstitution)."""
        if isinstance(self.universe, list):
            return sorted(self.universe)
        return sorted(self.constituents or {})


def _exchange_code(asset: str, what: str) -> None:
    if asset != asset.upper() or not asset.isalnum():
        raise ValueError(f"{what} '{asset}' must be an exchange code like BTC")


class IndicesFile(Frozen):
    index: dict[str, Index] = Field(min_length=1)


class PlanData(Frozen):
    """The whole plan: rules, emergency rule, stages (youngest first) and index baskets."""

    rules: PlanRules
    emergency_rule: EmergencyRule
    stages: tuple[Stage, ...]
    indices: Mapping[str, Index]

    def stage_for_age(self, age: int) -> Stage:
        for stage in self.stages:
            if stage.covers(age):
                return stage
        raise ValueError(f"no stage covers age {age}")  # unreachable: bands validated contiguous

    def next_stage(self, stage: Stage) -> Stage | None:
        i = self.stages.index(stage)
        return self.stages[i + 1] if i + 1 < len(self.stages) else None

    def retirement_stage(self) -> Stage | None:
        """The stage a retired investor's money follows: the first with withdrawals (the
        shipped plan: the Retirees), or None when no stage has any."""
        return next((s for s in self.stages if s.withdrawal_pct.max > 0), None)

    def assets(self) -> list[str]:
        """Every asset any index holds, sorted."""
        return sorted({a for ix in self.indices.values() for a in ix.assets()})

    def rule_indices(self) -> list[str]:
        """The indices chosen by rule (reconstituted from prices), sorted."""
        return sorted(name for name, ix in self.indices.items() if ix.is_rule)


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """The parsed TOML file, or a ConfigError naming the file and the problem. A byte order
    mark first (Notepad's "UTF-8") is read past; a pipe or a device is refused unread (it
    would be read forever)."""
    try:
        if path.exists() and not path.is_file() and not path.is_dir():
            raise ConfigError(f"{what} file {path} is not a regular file: name the TOML file")
        with path.open("rb") as f:
            return tomllib.loads(f.read().decode("utf-8-sig"))
    except FileNotFoundError:
        raise ConfigError(f"{what} file not found: {path}") from None
    except (PermissionError, IsADirectoryError) as e:
        raise ConfigError(f"{what} file cannot be read: {path} ({e.strerror})") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{what} file is not valid TOML: {path}: {e}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{what} file is not UTF-8 text: {path}: {e}") from None


def load_plan(stages_path: Path, indices_path: Path) -> PlanData:
    """Read and validate both plan files, and check that every index a stage names exists."""
    stages = _validate(StagesFile, read_toml(stages_path, "stages"), stages_path)
    indices = _validate(IndicesFile, read_toml(indices_path, "indices"), indices_path)
    problems = []
    for i, stage in enumerate(stages.stage):
        for j, sleeve in enumerate(stage.sleeve):
            for name in [*sleeve.indices, *sleeve.alternatives]:
                if name not in indices.index:
                    problems.append(
                        f"stage.{i}.sleeve.{j}.indices: index '{name}' (stage '{stage.id}') "
                        f"is not defined in {indices_path.name}"
                    )
    if problems:
        raise ConfigError(f"{stages_path}: invalid configuration", problems)
    return PlanData(
        rules=stages.plan,
        emergency_rule=stages.emergency_rule,
        stages=tuple(stages.stage),
        indices=_with_sources(indices.index, indices_path),
    )


def _with_sources(indices: Mapping[str, Index], indices_path: Path) -> dict[str, Index]:
    """The indices with each holdings file's path made absolute (relative to the indices
    file's folder) and the file read once: a file that cannot be used is a config error."""
    from stagewise.holdings_files import read_holdings

    out = dict(indices)
    problems = []
    for name, index in indices.items():
        if index.source is None:
            continue
        path = index.source.expanduser()
        path = path if path.is_absolute() else indices_path.parent / path
        out[name] = index.model_copy(update={"source": path})
        try:
            read_holdings(path)
        except ConfigError as e:
            problems.append(f"index.{name}.source: {e}")
    if problems:
        raise ConfigError(f"{indices_path}: invalid configuration", problems)
    return out


def _validate(model: type[Frozen], data: dict[str, Any], path: Path) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise ConfigError.from_validation(str(path), e, model) from None
