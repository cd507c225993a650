"""The sections of the investor's configuration: one pydantic model per table of the file
([investor], [exchange], [paper], [schedule], [policy], [plan], [state], [notify], [log]),
each validating its own values. `stagewise.settings` puts them together (`Settings`).
"""

from __future__ import annotations

from contextvars import ContextVar
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator

from stagewise.environment import ENV_PREFIX
from stagewise.money import MAX_MONEY
from stagewise.stages import numbers_not_flags

SECRET_FIELDS = ("api_key", "secret", "password")
# The values of systemd/stagewise.env.example all start so: a copied file never edited.
PLACEHOLDER_PREFIX = "replace-with-"

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
Money = Annotated[float, Field(ge=0, le=MAX_MONEY, allow_inf_nan=False)]

# The latest birth date a config may give: today where the day is furthest on (UTC+14), set
# by `settings.load_config` while it validates, from the moment its caller (an edge, with the
# clock) passes; unset (None), a birth date is not compared with today. Pydantic-settings does
# not hand a validation context to the validators (pydantic/pydantic-settings#665).
LATEST_BIRTH_DATE: ContextVar[date | None] = ContextVar("latest_birth_date", default=None)


def latest_birth_date(now: datetime) -> date:
    """Today where the day is furthest on at `now` (UTC+14): no investor's today is later."""
    return (now.astimezone(UTC) + timedelta(hours=14)).date()


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    _numbers_not_flags = field_validator("*", mode="before")(classmethod(numbers_not_flags))


class InvestorSettings(Section):
    """Who the plan is for, and the figures only the investor knows."""

    birth_date: date
    timezone: str = "UTC"
    outside_investments: Money = 0
    monthly_contribution: Money = 0
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

    @field_validator("birth_date", "contribution_start", "retirement_date", mode="before")
    @classmethod
    def _written_as_a_date(cls, value: object) -> object:
        """A date as TOML writes one (1987-06-15) or as ISO text: not a number, which pydantic
        would read as seconds since 1970 (0 is 1970-01-01)."""
        if isinstance(value, bool):
            raise ValueError(f"{value!r} is not a date like 1987-06-15")
        if isinstance(value, int | float):
            raise ValueError(f"{value!r} is a number, not a date like 1987-06-15")
        if isinstance(value, str):
            try:
                return date.fromisoformat(value.strip())
            except ValueError:
                raise ValueError(f"'{value}' is not a date like 1987-06-15") from None
        return value

    @field_validator("birth_date")
    @classmethod
    def _plausible(cls, value: date) -> date:
        if not date(1900, 1, 1) <= value <= date(2100, 1, 1):
            raise ValueError(f"{value} is not a plausible birth date")
        # No stage covers an age below 0: every command would fail on such a date. Checked
        # here, before the dates that must come after it, so it is the error a person sees.
        latest = LATEST_BIRTH_DATE.get()
        if latest is not None and value > latest:
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
            if not (0 <= amount <= MAX_MONEY):  # NaN compares False
                raise ValueError(
                    f"{asset}: balance must be a number from 0 to {MAX_MONEY:g}, not {amount}"
                )
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
    # A live price this many times above (or below 1/this of) the account's last recorded one
    # of the asset, recorded within a month, is taken for a bad price (0: not checked).
    max_price_jump: float = Field(default=10, ge=0, le=1_000_000)


class PlanSettings(Section):
    """Where the plan data lives (unset: the shipped files) and how stage transitions glide."""

    stages: Path | None = None
    indices: Path | None = None
    transition_months: int = Field(default=24, ge=1, le=120)
    transition_anchor: Literal["end", "start"] = "end"


class StateSettings(Section):
    """The state file (unset: see `default_state_path`)."""

    path: Path | None = None

    @field_validator("path", mode="before")
    @classmethod
    def _named(cls, value: object) -> object:
        """An empty path would be the config's folder, which no command can use."""
        if isinstance(value, str) and not value.strip():
            raise ValueError("is empty: give the state file's path, or leave it out")
        return value


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
