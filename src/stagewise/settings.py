"""The investor's configuration: a TOML file read by pydantic-settings, environment on top.

`load_config(path)` returns a `Config`: the validated settings plus the plan data they point
at. Environment variables override the file (`STAGEWISE_` prefix, `__` between levels, e.g.
`STAGEWISE_INVESTOR__MONTHLY_CONTRIBUTION=500`). API keys are read from the environment only
and are `SecretStr`, which never prints its value. A STAGEWISE_ variable that names no setting
is an error, as a misspelt key in the file is, and an invalid value names its variable.

The sections of the file (one model per table) are `stagewise.sections`; which file is read,
and where the state file goes, `stagewise.config_files`.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from stagewise import shipped
from stagewise.config_files import default_state_path
from stagewise.environment import ENV_PREFIX, invalid, setting_variables
from stagewise.errors import ConfigError
from stagewise.planner.model import Policy
from stagewise.sections import (
    LATEST_BIRTH_DATE,
    NOTIFY_URLS_ENV,
    SECRET_FIELDS,
    ExchangeSettings,
    InvestorSettings,
    LogSettings,
    NotifySettings,
    PaperSettings,
    PlanSettings,
    PolicySettings,
    ScheduleSettings,
    StateSettings,
    latest_birth_date,
)
from stagewise.stages import PlanData, load_plan, read_toml
from stagewise.targets import Profile

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


def load_config(path: Path, *, example: bool = False, now: datetime | None = None) -> Config:
    """Read, validate and resolve the config at `path` (and the plan files it names).
    Relative paths in it are relative to its folder; unset plan files are the shipped ones.
    `now`: the moment it is loaded (the edges pass their clock's): a birth date later than
    that day anywhere on Earth is refused; None: not compared with today."""
    data = read_toml(path, "config")
    _refuse_secrets_in_file(data, path)
    variables = setting_variables(os.environ, Settings)
    latest = LATEST_BIRTH_DATE.set(None if now is None else latest_birth_date(now))
    try:
        settings = Settings(**data)
    except ValidationError as e:
        raise invalid(str(path), e, Settings, variables) from None
    except SettingsError as e:  # e.g. a STAGEWISE_<SECTION> variable that is not JSON
        raise ConfigError(f"the environment: {_not_json(e, os.environ)}") from None
    finally:
        LATEST_BIRTH_DATE.reset(latest)
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


def _not_json(error: SettingsError, environ: Mapping[str, str]) -> str:
    """What pydantic-settings could not parse, by variable name (never its value: it may hold
    a key): a table or a list set from the environment is JSON."""
    found = re.search(r'field "(\w+)"', str(error))
    if found is None:
        return str(error)
    section = f"{ENV_PREFIX}{found[1].upper()}"
    given = sorted(k for k in environ if k == section or k.startswith(f"{section}__"))
    unreadable = [k for k in given if not _is_json(environ[k])] or given or [section]
    return (
        f"{' or '.join(unreadable)} is not JSON: a table or a list set from the environment "
        f"is written as JSON (e.g. {ENV_PREFIX}PAPER__INITIAL_BALANCES='{{\"USDT\": 1000}}'); "
        f"or one key by its own variable, {section}__<KEY>"
    )


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


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
