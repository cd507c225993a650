"""The investor's configuration: a TOML file read by pydantic-settings, environment on top.

`load_config(path)` returns a `Config`: the validated settings plus the plan data they point
at. Environment variables override the file (`STAGEWISE_` prefix, `__` between levels, e.g.
`STAGEWISE_INVESTOR__MONTHLY_CONTRIBUTION=500`). API keys are read from the environment only
and are `SecretStr`, which never prints its value. A STAGEWISE_ variable that names no setting
is an error, as a misspelt key in the file is, and an invalid value names its variable.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from stagewise import shipped
from stagewise.environment import CONFIG_ENV, ENV_PREFIX, invalid, setting_variables
from stagewise.errors import ConfigError
from stagewise.money import MAX_MONEY
from stagewise.planner.model import Policy
from stagewise.stages import PlanData, load_plan, read_toml
from stagewise.targets import Profile

# The system-wide install (the systemd unit's ConfigurationDirectory= and StateDirectory=).
SYSTEM_CONFIG = Path("/etc/stagewise/config.toml")
SYSTEM_STATE = Path("/var/lib/stagewise/stagewise.db")
STATE_FILE = "stagewise.db"
SECRET_FIELDS = ("api_key", "secret", "password")
# The credentials ccxt takes in its constructor config (`Exchange.requiredCredentials`), each
# also under its snake_case name (ccxt copies `api_key` to `apiKey`): never in the config file,
# which is world-readable. Compared lower-case without underscores.
CCXT_CREDENTIALS = {
    "apikey": "api_key",
    "secret": "secret",
    "password": "password",
    "uid": None,
    "accountid": None,
    "login": None,
    "twofa": None,
    "privatekey": None,
    "walletaddress": None,
    "token": None,
}
# The values of systemd/stagewise.env.example all start so: a copied file never edited.
PLACEHOLDER_PREFIX = "replace-with-"

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
Money = Annotated[float, Field(ge=0, le=MAX_MONEY, allow_inf_nan=False)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InvestorSettings(Section):
    """Who the plan is for, and the figures only the investor knows."""

    birth_date: date
    timezone: str = "UTC"
    outside_investments: float = Field(default=0, ge=0, allow_inf_nan=False)
    monthly_contribution: float = Field(default=0, ge=0, allow_inf_nan=False)
    # By stage id, the monthly amount of that stage instead of monthly_contribution
    # (stagewise.contributions); checked against the plan's stage ids on load.
    contributions: dict[str, Money] = {}
    contribution_start: date | None = None
    retirement_date: date | None = None
    retirement_age: int | None = Field(default=None, ge=0, le=130)
    crypto_share_point: float = Field(default=0.5, ge=0, le=1)
    derisk_pct_per_year: float | None = Field(default=None, ge=0, le=100)
    withdrawal_pct: float | None = Field(default=None, ge=0, le=100)
    bonus_share_pct: float | None = Field(default=None, ge=0, le=100)

    @field_validator("timezone")
    @classmethod
    def _iana(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"'{value}' is not an IANA time zone (e.g. Europe/Berlin, America/New_York)"
            ) from None
        return value

    @field_validator("birth_date")
    @classmethod
    def _plausible(cls, value: date) -> date:
        if not date(1900, 1, 1) <= value <= date(2100, 1, 1):
            raise ValueError(f"{value} is not a plausible birth date")
        # The one clock read of the settings: no stage covers an age below 0, so every command
        # would fail on such a date. Today where the day is furthest on (UTC+14): no investor's
        # today is later.
        latest = (datetime.now(UTC) + timedelta(hours=14)).date()
        if value > latest:
            raise ValueError(f"{value} is in the future")
        return value

    @field_validator("contribution_start", "retirement_date")
    @classmethod
    def _after_birth(cls, value: date | None, info: ValidationInfo) -> date | None:
        birth = info.data.get("birth_date")
        if value is not None and birth is not None and value < birth:
            raise ValueError(f"{value} is before the birth date {birth}")
        return value

    @field_validator("retirement_age")
    @classmethod
    def _one_retirement(cls, value: int | None, info: ValidationInfo) -> int | None:
        given = info.data.get("retirement_date")
        if value is not None and given is not None:
            raise ValueError(f"{value} and retirement_date {given} are both set: give one of them")
        return value


class ExchangeSettings(Section):
    """Which exchange, how, and in which quote currency. Keys: environment only."""

    id: str = Field(default="binance", pattern=r"^[a-z0-9_]+$")
    mode: Literal["paper", "read-only"] = "paper"
    quote: str = Field(default="USDT", pattern=r"^[A-Z0-9]{2,10}$")
    ccxt: dict[str, Any] = {}
    timeout_ms: int = Field(default=10_000, ge=100, le=300_000)
    markets_refresh_hours: float = Field(default=24, gt=0, le=24 * 30)
    retry_attempts: int = Field(default=5, ge=1, le=20)
    retry_max_seconds: float = Field(default=60, gt=0, le=3600)
    retry_initial_seconds: float = Field(default=1.0, gt=0, le=60)
    api_key: SecretStr | None = None
    secret: SecretStr | None = None
    password: SecretStr | None = None

    def missing_keys(self) -> str | None:
        """Why the account cannot be read, or None. Checked by what reads the account (`run`,
        `once`, `check-config`), not on load: `status` or `proposals` read only the state
        file and need no secret."""
        if self.mode != "read-only":
            return None
        if self.api_key is None or self.secret is None:
            return (
                "exchange: read-only mode reads a real account and needs a read-only API key: "
                "set STAGEWISE_EXCHANGE__API_KEY and STAGEWISE_EXCHANGE__SECRET in the environment"
            )
        placeholders = self.placeholders()
        if placeholders:
            return (
                f"exchange: {' and '.join(placeholders)} "
                f"{'holds' if len(placeholders) == 1 else 'hold'} the placeholder from "
                "stagewise.env.example, not a key: put your read-only API key and secret there"
            )
        return None

    def placeholders(self) -> list[str]:
        """The key variables still holding stagewise.env.example's placeholder."""
        return [
            f"{ENV_PREFIX}EXCHANGE__{name.upper()}"
            for name in SECRET_FIELDS
            if (value := getattr(self, name)) is not None
            and value.get_secret_value().strip().startswith(PLACEHOLDER_PREFIX)
        ]

    def key_status(self) -> Literal["set", "not set", "placeholder"]:
        """What `check-config` says of the API key."""
        if self.api_key is None:
            return "not set"
        return "placeholder" if self.placeholders() else "set"


class PaperSettings(Section):
    """The simulated account of paper mode: its seed and the costs assumed for fills."""

    initial_balances: dict[str, float] = {}
    fee_rate: float = Field(default=0.001, ge=0, le=0.05)
    slippage: float = Field(default=0.0005, ge=0, le=0.05)

    @field_validator("initial_balances")
    @classmethod
    def _non_negative(cls, value: dict[str, float]) -> dict[str, float]:
        for asset, amount in value.items():
            if not (amount >= 0) or amount == float("inf"):
                raise ValueError(f"{asset}: balance must be a non-negative number, not {amount}")
        return value


class ScheduleSettings(Section):
    """When the jobs fire, in the investor's time zone."""

    dca_day: int = Field(default=1, ge=1, le=28)
    dca_hour: int = Field(default=9, ge=0, le=23)
    rebalance_day: int = Field(default=2, ge=1, le=28)
    rebalance_weekday: Weekday = "mon"
    rebalance_hour: int = Field(default=10, ge=0, le=23)
    profit_hour: int = Field(default=18, ge=0, le=23)
    drift_minute: int = Field(default=30, ge=0, le=59)
    drift_enabled: bool = True
    withdraw_periods: Literal[1, 2, 4, 12] = 12
    withdraw_day: int = Field(default=15, ge=1, le=28)
    reassess_hour: int = Field(default=8, ge=0, le=23)
    grace_hours: float = Field(default=72, ge=0, le=24 * 60)

    @field_validator("withdraw_periods", mode="before")
    @classmethod
    def _number_from_text(cls, value: object) -> object:
        """The environment gives text: "4" is the number 4 (a choice of numbers takes no
        text otherwise)."""
        return int(value) if isinstance(value, str) and value.strip().isdigit() else value


class PolicySettings(Section):
    """How the planner trades: drift bands, how far to rebalance, safety caps."""

    band_abs_pct: float = Field(default=5, gt=0, le=100)
    band_rel_pct: float = Field(default=25, gt=0, le=1000)
    rebalance_to: Literal["target", "band"] = "target"
    drift_watch: Literal["sleeve", "asset"] = "sleeve"
    max_order_pct: float = Field(default=25, gt=0, le=100)
    min_order: float = Field(default=10, ge=0, le=1_000_000)
    min_rebalance_pct: float = Field(default=1, ge=0, le=100)
    milestone_sell_pct: float = Field(default=50, gt=0, le=100)
    profit_min_days: int = Field(default=90, ge=0, le=3_650)
    profit_min_value: float = Field(default=500, ge=0, le=1_000_000_000)
    cash_pct: float = Field(default=0, ge=0, lt=100)


class PlanSettings(Section):
    """Where the plan data lives (unset: the shipped files) and how stage transitions glide."""

    stages: Path | None = None
    indices: Path | None = None
    transition_months: int = Field(default=24, ge=1, le=120)
    transition_anchor: Literal["end", "start"] = "end"


class StateSettings(Section):
    """The state file (unset: see `default_state_path`)."""

    path: Path | None = None


NotifyEvent = Literal["proposals", "deposit", "failing", "key", "stage", "pause"]
NOTIFY_EVENTS: tuple[NotifyEvent, ...] = (
    "proposals",
    "deposit",
    "failing",
    "key",
    "stage",
    "pause",
)
NOTIFY_URLS_ENV = f"{ENV_PREFIX}NOTIFY__URLS"


class NotifySettings(Section):
    """Messages through Apprise (`pip install 'stagewise[notify]'`): which events, from which
    level, and how long a delivery may take. The target URLs carry tokens: they are read from
    the environment only (STAGEWISE_NOTIFY__URLS, one or more, separated by spaces or commas)
    and never printed; without them nothing is sent and Apprise is never imported."""

    events: tuple[NotifyEvent, ...] = NOTIFY_EVENTS
    min_level: Literal["info", "warning", "error"] = "info"
    timeout_seconds: float = Field(default=10, gt=0, le=120)
    attempts: int = Field(default=3, ge=1, le=10)
    max_orders: int = Field(default=10, ge=1, le=100)
    urls: SecretStr | None = None

    @property
    def configured(self) -> bool:
        """True when there is somewhere to send to."""
        return self.urls is not None and bool(self.urls.get_secret_value().strip())


class LogSettings(Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


class Settings(BaseSettings):
    """The whole investor configuration (one TOML file; environment overrides)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
        case_sensitive=False,
    )

    investor: InvestorSettings
    exchange: ExchangeSettings = ExchangeSettings()
    paper: PaperSettings = PaperSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    policy: PolicySettings = PolicySettings()
    plan: PlanSettings = PlanSettings()
    state: StateSettings = StateSettings()
    log: LogSettings = LogSettings()
    notify: NotifySettings = NotifySettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The file's contents arrive as init arguments; the environment wins over them.
        return (env_settings, init_settings)


@dataclass(frozen=True)
class Config:
    """Validated settings, the plan data they name, and where they came from."""

    settings: Settings
    plan: PlanData
    path: Path
    # True when no config of the user's was found and the shipped example stands in for it
    # (read-only commands only: `find_config`).
    example: bool = False

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.settings.investor.timezone)

    @property
    def quote(self) -> str:
        return self.settings.exchange.quote

    @property
    def state_path(self) -> Path:
        """The state file (`load_config` resolves the setting: never unset here)."""
        path = self.settings.state.path
        assert path is not None, "a Config is made by load_config, which resolves state.path"
        return path

    @functools.cached_property
    def profile(self) -> Profile:
        """What the targets of a day depend on: the plan data and the investor's figures."""
        s = self.settings
        return Profile(
            plan=self.plan,
            birth_date=s.investor.birth_date,
            crypto_share_point=s.investor.crypto_share_point,
            derisk_pct_per_year=s.investor.derisk_pct_per_year,
            cash_pct=s.policy.cash_pct,
            transition_months=s.plan.transition_months,
            transition_anchor=s.plan.transition_anchor,
        )

    def policy(self, *, allow_deposit: bool) -> Policy:
        """The planner's Policy (percent here, fractions there). `allow_deposit`: read-only
        mode, where DCA/windfall money may not be on the account yet (paper mode deposits the
        contribution first: False)."""
        s = self.settings
        p = s.policy
        return Policy(
            band_abs=p.band_abs_pct / 100,
            band_rel=p.band_rel_pct / 100,
            rebalance_to=p.rebalance_to,
            drift_watch=p.drift_watch,
            max_order_share=p.max_order_pct / 100,
            min_order=p.min_order,
            min_rebalance_share=p.min_rebalance_pct / 100,
            milestone_sell_share=p.milestone_sell_pct / 100,
            profit_min_days=p.profit_min_days,
            profit_min_value=p.profit_min_value,
            fee_rate=s.paper.fee_rate,
            slippage=s.paper.slippage,
            outside_value=s.investor.outside_investments,
            allow_deposit=allow_deposit,
        )


@dataclass(frozen=True)
class ConfigSource:
    """Which config file to read, and why that one."""

    path: Path
    how: str  # "--config", "$STAGEWISE_CONFIG", "found", "example"
    looked_in: tuple[Path, ...] = ()

    @property
    def example(self) -> bool:
        return self.how == "example"


def config_places(environ: Mapping[str, str] | None = None) -> tuple[Path, ...]:
    """Where a config is looked for when none is named: the user's, then the system's."""
    env = os.environ if environ is None else environ
    home = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return (Path(home) / "stagewise" / "config.toml", SYSTEM_CONFIG)


def find_config(
    cli_path: str | Path | None, environ: Mapping[str, str] | None = None
) -> ConfigSource:
    """The config file to read: --config, else $STAGEWISE_CONFIG, else the first of
    `config_places` that exists, else the shipped example (`how == "example"`)."""
    env = os.environ if environ is None else environ
    if cli_path:
        return ConfigSource(Path(cli_path), "--config")
    if env.get(CONFIG_ENV):
        return ConfigSource(Path(env[CONFIG_ENV]), f"${CONFIG_ENV}")
    places = config_places(env)
    for place in places:
        if place.is_file():
            return ConfigSource(place, "found")
    return ConfigSource(shipped.path(shipped.EXAMPLE), "example", places)


def default_state_path(config: Path, environ: Mapping[str, str] | None = None) -> Path:
    """The state file when the config names none: the unit's StateDirectory (systemd sets
    $STATE_DIRECTORY); for the system config (/etc/stagewise) the same folder, so a person's
    `stagewise status` reads the daemon's file; otherwise $XDG_STATE_HOME/stagewise."""
    env = os.environ if environ is None else environ
    if env.get("STATE_DIRECTORY"):  # may list several folders, ':'-separated: the first
        return Path(env["STATE_DIRECTORY"].split(":")[0]) / STATE_FILE
    if config.resolve().parent == SYSTEM_CONFIG.parent:
        return SYSTEM_STATE
    home = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(home) / "stagewise" / STATE_FILE


def load_config(path: Path, *, example: bool = False) -> Config:
    """Read, validate and resolve the config at `path` (and the plan files it names).
    Relative paths in it are relative to its folder; unset plan files are the shipped ones."""
    data = read_toml(path, "config")
    _refuse_secrets_in_file(data, path)
    variables = setting_variables(os.environ, Settings)
    try:
        settings = Settings(**data)
    except ValidationError as e:
        raise invalid(str(path), e, Settings, variables) from None
    except SettingsError as e:  # e.g. a STAGEWISE_<SECTION> variable that is not JSON
        # The message names the field and the source, never the value (it may hold a key).
        raise ConfigError(f"the environment: {e}") from None
    _refuse_verbose(settings, data, path, variables)
    base = path.resolve().parent

    def beside(given: Path | None, default: Path) -> Path:
        return default if given is None else (base / given.expanduser()).resolve()

    settings = settings.model_copy(
        update={
            "plan": settings.plan.model_copy(
                update={
                    "stages": beside(settings.plan.stages, shipped.path(shipped.STAGES)),
                    "indices": beside(settings.plan.indices, shipped.path(shipped.INDICES)),
                }
            ),
            "state": settings.state.model_copy(
                update={"path": beside(settings.state.path, default_state_path(path))}
            ),
        }
    )
    assert settings.plan.stages is not None and settings.plan.indices is not None
    plan = load_plan(settings.plan.stages, settings.plan.indices)
    _check_against_plan(settings, plan, path)
    return Config(settings=settings, plan=plan, path=path.resolve(), example=example)


# The sections a simulation reads: what a variant of a sweep may change (`with_setting`).
SIMULATED_SECTIONS = ("investor", "paper", "schedule", "policy", "plan")


def with_setting(config: Config, key: str, value: str, source: str) -> Config:
    """`config` with the dotted setting `key` (e.g. "investor.crypto_share_point") set to
    `value`, text read as an environment variable's is, validated as the file is: a
    ConfigError from `source` (what asked, e.g. "--vary investor.crypto_share_point=2")
    naming the key. Plan files it names are read, relative to the config's folder."""
    parts = key.split(".")
    if parts[0] not in SIMULATED_SECTIONS or len(parts) < 2 or not all(parts):
        raise ConfigError(
            f"{source}: not a setting a simulation reads",
            [f"{key}: a dotted key of {', '.join(SIMULATED_SECTIONS)} (policy.band_abs_pct)"],
        )
    section, rest = parts[0], parts[1:]
    model = type(getattr(config.settings, section))
    data = getattr(config.settings, section).model_dump()
    node = data
    for i, part in enumerate(rest[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            where = ".".join(parts[: i + 2])
            raise ConfigError(f"{source}: invalid configuration", [f"{where}: not a table of keys"])
        node = child
    node[rest[-1]] = value
    try:
        # The section alone (the settings' own constructor would read the environment
        # again, and its value would win over the variant's).
        changed = model.model_validate(data)
    except ValidationError as e:
        problems = ConfigError.from_validation(source, e, model).problems
        raise ConfigError(
            f"{source}: invalid configuration", [f"{section}.{p}" for p in problems]
        ) from None
    settings = config.settings.model_copy(update={section: changed})
    plan = config.plan
    if key in ("plan.stages", "plan.indices"):
        base = config.path.parent
        stages = settings.plan.stages or shipped.path(shipped.STAGES)
        indices = settings.plan.indices or shipped.path(shipped.INDICES)
        given = {
            "stages": (base / stages.expanduser()).resolve(),
            "indices": (base / indices.expanduser()).resolve(),
        }
        settings = settings.model_copy(update={"plan": settings.plan.model_copy(update=given)})
        plan = load_plan(given["stages"], given["indices"])
    _check_against_plan(settings, plan, source)
    return Config(settings=settings, plan=plan, path=config.path, example=config.example)


def _refuse_secrets_in_file(data: dict[str, Any], path: Path) -> None:
    """Keys in the file, as our settings or through the ccxt table, and notification URLs
    (they carry tokens): refused, never echoed."""
    notify = data.get("notify")
    if isinstance(notify, dict) and "urls" in notify:
        raise ConfigError(
            f"{path}: notification URLs are read from the environment only, never from the "
            "config file",
            [
                f"notify.urls: remove it from the file and set {NOTIFY_URLS_ENV} in the "
                "environment (the systemd env file)"
            ],
        )
    exchange = data.get("exchange")
    if not isinstance(exchange, dict):
        return
    found: list[tuple[str, str | None]] = [
        (f"exchange.{k}", k) for k in SECRET_FIELDS if k in exchange
    ]
    ccxt = exchange.get("ccxt")
    if isinstance(ccxt, dict):
        for key in ccxt:
            normal = str(key).replace("_", "").lower()
            if normal in CCXT_CREDENTIALS:
                found.append((f"exchange.ccxt.{key}", CCXT_CREDENTIALS[normal]))
    if found:
        raise ConfigError(
            f"{path}: API keys are read from the environment only, never from the config file",
            [_where_keys_go(where, name) for where, name in found],
        )


def _where_keys_go(where: str, name: str | None) -> str:
    if name is None:
        return (
            f"{where}: remove it from the file: stagewise reads an account with an API key, "
            f"secret and password only, set in the environment ({ENV_PREFIX}EXCHANGE__API_KEY, "
            f"{ENV_PREFIX}EXCHANGE__SECRET, {ENV_PREFIX}EXCHANGE__PASSWORD)"
        )
    return (
        f"{where}: remove it from the file and set {ENV_PREFIX}EXCHANGE__{name.upper()} "
        "in the environment (the systemd env file)"
    )


def _refuse_verbose(
    settings: Settings, data: dict[str, Any], path: Path, variables: dict[tuple[str, ...], str]
) -> None:
    """ccxt's verbose mode prints every request with its headers, the API key among them, to
    stdout (the journal): a key would leak past every redaction of ours."""
    if not settings.exchange.ccxt.get("verbose"):
        return
    # The environment wins over the file: a variable setting it, if any, is the culprit.
    settings_it = [("exchange", "ccxt", "verbose"), ("exchange", "ccxt"), ("exchange",)]
    variable = next((variables[loc] for loc in settings_it if loc in variables), None)
    where = f"{variable} (exchange.ccxt.verbose)" if variable else "exchange.ccxt.verbose"
    raise ConfigError(
        f"{'the environment' if variable else path}: invalid configuration",
        [
            f"{where}: refused: ccxt's verbose mode prints every request and answer, the API "
            "key in the request headers included: remove it"
        ],
    )


def _check_against_plan(settings: Settings, plan: PlanData, path: Path | str) -> None:
    """Checks that need both the settings and the plan data."""
    problems = []
    rules = plan.rules
    months = settings.plan.transition_months
    if not rules.transition_months_min <= months <= rules.transition_months_max:
        problems.append(
            f"plan.transition_months: {months} is outside the plan's transition protocol "
            f"({rules.transition_months_min}-{rules.transition_months_max} months)"
        )
    quote = settings.exchange.quote
    if quote in plan.assets():
        problems.append(f"exchange.quote: {quote} is also a constituent of an index")
    derisk = settings.investor.derisk_pct_per_year
    if derisk is not None:
        for stage in plan.stages:
            band = stage.derisk_pct_per_year
            if band.max > 0 and not band.min <= derisk <= band.max:
                problems.append(
                    f"investor.derisk_pct_per_year: {derisk:g} is outside stage '{stage.id}' "
                    f"range {band.min:g}-{band.max:g} %"
                )
    problems += _contribution_problems(settings.investor, plan)
    for asset in settings.paper.initial_balances:
        if asset != quote and asset not in plan.assets():
            problems.append(
                f"paper.initial_balances.{asset}: not the quote currency nor in any index"
            )
    if problems:
        raise ConfigError(f"{path}: invalid configuration", problems)


def _contribution_problems(investor: InvestorSettings, plan: PlanData) -> list[str]:
    """Per-stage contributions name stages of the plan; a retirement needs a stage to retire
    into (one with withdrawals)."""
    ids = [stage.id for stage in plan.stages]
    problems = [
        f"investor.contributions.{name}: no stage '{name}' in the plan (stages: {', '.join(ids)})"
        for name in investor.contributions
        if name not in ids
    ]
    if plan.retirement_stage() is None:
        for name in ("retirement_date", "retirement_age"):
            if getattr(investor, name) is not None:
                problems.append(
                    f"investor.{name}: no stage of the plan has withdrawals (withdrawal_pct "
                    "above 0) for the years after retirement: give one a rate, as the shipped "
                    "Retirees have"
                )
    return problems
