"""The investor config and the plan data: what is accepted, what is refused and how."""

from __future__ import annotations

import json
import os
import tomllib
from datetime import UTC, date, datetime, timedelta

import pytest
import tomli_w
from support import REPO, run_cli

from stagewise.errors import ConfigError
from stagewise.settings import load_config

EX_CONFIG = 78

SECRET = "s3cr3t-KEY-do-not-print-9f8e7d"
NOW = datetime.now(UTC)  # what the CLI passes when it loads a config
NEXT_YEAR = (NOW.date() + timedelta(days=366)).isoformat()


def stages_with(tmp_path, change) -> str:
    data = tomllib.loads((REPO / "config" / "stages.toml").read_text())
    change(data)
    path = tmp_path / "stages.toml"
    path.write_text(tomli_w.dumps(data))
    return str(path)


def indices_with(tmp_path, change) -> str:
    data = tomllib.loads((REPO / "config" / "indices.toml").read_text())
    change(data)
    path = tmp_path / "indices.toml"
    path.write_text(tomli_w.dumps(data))
    return str(path)


def set_in(data, path, value):
    *parents, last = path
    for p in parents:
        data = data[p]
    data[last] = value


# (case id, overrides (or a function of tmp_path giving them), the field the message must name)
BAD_CONFIGS = [
    ("unknown-section", {"investr": {"x": 1}}, "investr: unknown key (did you mean 'investor'?)"),
    (
        "typo-nested",
        {"schedule": {"dca_dya": 3}},
        "schedule.dca_dya: unknown key (did you mean 'dca_day'?)",
    ),
    ("birth-date", {"investor": {"birth_date": "15.06.1987"}}, "investor.birth_date"),
    ("timezone", {"investor": {"timezone": "Mars/Olympus"}}, "investor.timezone"),
    ("negative-money", {"investor": {"monthly_contribution": -5}}, "investor.monthly_contribution"),
    (
        "nan-money",
        {"investor": {"outside_investments": float("nan")}},
        "investor.outside_investments",
    ),
    ("share-point", {"investor": {"crypto_share_point": 1.5}}, "investor.crypto_share_point"),
    ("dca-day", {"schedule": {"dca_day": 31}}, "schedule.dca_day"),
    ("dca-hour", {"schedule": {"dca_hour": 24}}, "schedule.dca_hour"),
    ("weekday", {"schedule": {"rebalance_weekday": "monday"}}, "schedule.rebalance_weekday"),
    ("mode", {"exchange": {"mode": "live"}}, "exchange.mode"),
    ("quote", {"exchange": {"quote": "usdt"}}, "exchange.quote"),
    ("key-in-file", {"exchange": {"api_key": "abc"}}, "exchange.api_key"),
    ("key-in-ccxt-table", {"exchange": {"ccxt": {"apiKey": "abc"}}}, "exchange.ccxt.apiKey"),
    (
        "ccxt-verbose",
        {"exchange": {"ccxt": {"verbose": True}}},
        "exchange.ccxt.verbose: refused: ccxt's verbose mode prints every request",
    ),
    (
        "birth-in-future",
        {"investor": {"birth_date": NEXT_YEAR}},
        f"investor.birth_date: {NEXT_YEAR} is in the future",
    ),
    (
        # pydantic alone reads a number as seconds since 1970: 0 would be 1970-01-01
        "birth-as-number",
        {"investor": {"birth_date": 0}},
        "investor.birth_date: 0 is a number, not a date like 1987-06-15",
    ),
    (
        "start-as-a-year",
        {"investor": {"contribution_start": "2020"}},
        "investor.contribution_start: '2020' is not a date like 1987-06-15",
    ),
    (
        "contribution-before-birth",
        {"investor": {"contribution_start": "1980-01-01"}},
        "investor.contribution_start: 1980-01-01 is before the birth date 1987-06-15",
    ),
    (
        "retirement-before-birth",
        {"investor": {"retirement_date": "1980-01-01"}},
        "investor.retirement_date: 1980-01-01 is before the birth date 1987-06-15",
    ),
    (
        "retirement-twice",
        {"investor": {"retirement_date": "2049-06-15", "retirement_age": 62}},
        "investor.retirement_age: 62 and retirement_date 2049-06-15 are both set: give one",
    ),
    ("retirement-age", {"investor": {"retirement_age": -1}}, "investor.retirement_age"),
    (
        "contribution-stage",
        {"investor": {"contributions": {"retirees": 100}}},
        "investor.contributions.retirees: no stage 'retirees' in the plan (stages: "
        "young_professional, career_builder",
    ),
    (
        "contribution-negative",
        {"investor": {"contributions": {"retiree": -100}}},
        "investor.contributions.retiree: Input should be greater than or equal to 0",
    ),
    # pydantic alone reads true as 1 and false as 0: `monthly_contribution = true` would
    # invest 1.00 USDT a month and pass check-config
    (
        "money-as-true",
        {"investor": {"monthly_contribution": True}},
        "investor.monthly_contribution: true is a yes/no value, not a number",
    ),
    (
        "whole-number-as-false",
        {"schedule": {"dca_day": False}},
        "schedule.dca_day: false is a yes/no value, not a number",
    ),
    (
        "stage-contribution-as-true",
        {"investor": {"contributions": {"retiree": True}}},
        "investor.contributions: retiree = true is a yes/no value, not a number",
    ),
    (
        "paper-balance-as-true",
        {"paper": {"initial_balances": {"USDT": True}}},
        "paper.initial_balances: USDT = true is a yes/no value, not a number",
    ),
    (
        "plan-weight-as-true",
        lambda t: {
            "plan": {
                "stages": stages_with(
                    t, lambda d: set_in(d, ["stage", 0, "sleeve", 0, "weight_pct"], True)
                )
            }
        },
        "stage.0.sleeve.0.weight_pct: true is a yes/no value, not a number",
    ),
    (
        "milestone-as-true",
        lambda t: {
            "plan": {
                "stages": stages_with(
                    t, lambda d: set_in(d, ["stage", 1, "profit_milestones_pct"], [True, 100])
                )
            }
        },
        "stage.1.profit_milestones_pct: true (item 1) is a yes/no value, not a number",
    ),
    (
        "index-weight-as-true",
        lambda t: {
            "plan": {
                "indices": indices_with(
                    t, lambda d: set_in(d, ["index", "defi", "constituents", "UNI"], True)
                )
            }
        },
        "index.defi.constituents: UNI = true is a yes/no value, not a number",
    ),
    # an empty path is the config's folder: check-config passed it, every command failed
    ("state-path-empty", {"state": {"path": ""}}, "state.path: is empty"),
    # no portfolio is that large (and 1e300 overflows the planner's arithmetic)
    (
        "money-too-large",
        {"investor": {"monthly_contribution": 1e300}},
        "investor.monthly_contribution: Input should be less than or equal to 1000000000000",
    ),
    (
        "balance-too-large",
        {"paper": {"initial_balances": {"USDT": 1e300}}},
        "paper.initial_balances: USDT: balance must be a number from 0 to 1e+12, not 1e+300",
    ),
    ("band", {"policy": {"band_abs_pct": 0}}, "policy.band_abs_pct"),
    ("rebalance-to", {"policy": {"rebalance_to": "halfway"}}, "policy.rebalance_to"),
    ("fee", {"paper": {"fee_rate": 0.5}}, "paper.fee_rate"),
    ("paper-balance", {"paper": {"initial_balances": {"USDT": -1}}}, "paper.initial_balances"),
    ("paper-asset", {"paper": {"initial_balances": {"DOGE": 1}}}, "paper.initial_balances.DOGE"),
    ("transition", {"plan": {"transition_months": 36}}, "plan.transition_months"),
    ("missing-investor", {"investor": None}, "investor: Field required"),
    (
        "sleeve-weights",
        lambda t: {
            "plan": {
                "stages": stages_with(
                    t, lambda d: set_in(d, ["stage", 0, "sleeve", 0, "weight_pct"], 55)
                )
            }
        },
        "stage.0: sleeve weights sum to 105 %",
    ),
    (
        "age-gap",
        lambda t: {
            "plan": {"stages": stages_with(t, lambda d: set_in(d, ["stage", 2, "min_age"], 42))}
        },
        "age bands have a gap between 'career_builder'",
    ),
    (
        "unknown-index",
        lambda t: {
            "plan": {
                "stages": stages_with(
                    t, lambda d: set_in(d, ["stage", 4, "sleeve", 1, "indices"], ["yield"])
                )
            }
        },
        "stage.4.sleeve.1.indices: index 'yield'",
    ),
    (
        "index-weights",
        lambda t: {
            "plan": {
                "indices": indices_with(
                    t, lambda d: set_in(d, ["index", "defi", "constituents", "UNI"], 30)
                )
            }
        },
        "index.defi: Value error, constituent weights sum to 95 %",
    ),
    (
        "cadence",
        lambda t: {
            "plan": {
                "indices": indices_with(
                    t, lambda d: set_in(d, ["index", "rwa", "cadence"], "daily")
                )
            }
        },
        "index.rwa.cadence: Input should be 'weekly', 'monthly', 'quarterly', 'annual' or 'never'",
    ),
    (
        "crypto-band",
        lambda t: {
            "plan": {
                "stages": stages_with(
                    t, lambda d: set_in(d, ["stage", 1, "crypto_share_pct"], {"min": 25, "max": 15})
                )
            }
        },
        "stage.1.crypto_share_pct: min (25.0) is greater than max (15.0)",
    ),
]


@pytest.mark.parametrize(
    ("case", "overrides", "named"), BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS]
)
def test_bad_config_is_refused_naming_the_field(write_config, tmp_path, case, overrides, named):
    if callable(overrides):
        overrides = overrides(tmp_path)
    path = write_config(overrides)
    with pytest.raises(ConfigError) as raised:
        load_config(path, now=NOW)
    assert named.replace("Value error, ", "") in str(raised.value)


@pytest.mark.parametrize(
    ("now", "birth", "refused"),
    [
        # Today somewhere on Earth: 10:00 UTC is already midnight past in UTC+14.
        (datetime(2026, 12, 2, 10, 0, tzinfo=UTC), date(2026, 12, 3), False),
        (datetime(2026, 12, 2, 10, 0, tzinfo=UTC), date(2026, 12, 4), True),
        (datetime(2026, 12, 2, 9, 59, tzinfo=UTC), date(2026, 12, 3), True),
    ],
)
def test_a_birth_date_is_in_the_future_after_today_where_the_day_is_furthest_on(
    write_config, now, birth, refused
):
    path = write_config({"investor": {"birth_date": birth.isoformat(), "contribution_start": None}})
    if refused:
        with pytest.raises(ConfigError, match=f"investor.birth_date: {birth} is in the future"):
            load_config(path, now=now)
    else:
        assert load_config(path, now=now).settings.investor.birth_date == birth


def test_there_are_at_least_fifteen_distinct_bad_configs():
    assert len({case for case, _, _ in BAD_CONFIGS}) >= 15


@pytest.mark.parametrize(
    "case",
    [
        "typo-nested",
        "timezone",
        "key-in-file",
        "key-in-ccxt-table",
        "ccxt-verbose",
        "birth-in-future",
        "sleeve-weights",
        "dca-day",
        "retirement-before-birth",
        "retirement-twice",
        "contribution-stage",
    ],
)
def test_cli_check_config_exits_78_naming_the_field(write_config, tmp_path, case):
    _, overrides, named = next(c for c in BAD_CONFIGS if c[0] == case)
    if callable(overrides):
        overrides = overrides(tmp_path)
    result = run_cli("--config", str(write_config(overrides)), "check-config")
    assert result.returncode == EX_CONFIG, result.stderr
    assert named.replace("Value error, ", "") in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "config file not found"),
        ("[investor\nbirth_date = 1990-01-01", "not valid TOML"),
        (b"\xff\xfe[investor]", "not"),
        # a pipe (or /dev/zero) is read forever: the command hung
        ("fifo", "is not a regular file"),
    ],
    ids=["missing", "bad-toml", "not-utf8", "a-pipe"],
)
def test_cli_unreadable_config_is_a_clear_error(tmp_path, content, message):
    path = tmp_path / "c.toml"
    if content == "fifo":
        os.mkfifo(path)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    result = run_cli("--config", str(path), "check-config")
    assert result.returncode == EX_CONFIG
    assert message in result.stderr and str(path) in result.stderr
    assert "Traceback" not in result.stderr


def test_a_config_saved_with_a_byte_order_mark_is_read(write_config):
    """Notepad's "UTF-8" puts U+FEFF first: tomllib refuses it as "Invalid statement (at
    line 1, column 1)", which names nothing a person can see."""
    path = write_config()
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    result = run_cli("--config", str(path), "check-config")
    assert result.returncode == 0, result.stderr
    assert "config OK" in result.stdout


def test_cli_check_config_ok_summarises(write_config):
    result = run_cli("--config", str(write_config()), "check-config")
    assert result.returncode == 0, result.stderr
    assert "config OK" in result.stdout and "5 stages" in result.stdout


def test_config_path_from_environment(write_config):
    path = write_config({"investor": {"birth_date": "1970-01-01"}})  # 57 in 2027
    result = run_cli("stage", "--at", "2027-06-01", "--json", env={"STAGEWISE_CONFIG": str(path)})
    assert result.returncode == 0, result.stderr
    assert '"id": "pre_retiree"' in result.stdout


def test_environment_override_beats_the_file(write_config, monkeypatch):
    path = write_config({"investor": {"monthly_contribution": 100}})
    monkeypatch.setenv("STAGEWISE_INVESTOR__MONTHLY_CONTRIBUTION", "2500")
    monkeypatch.setenv("STAGEWISE_SCHEDULE__DCA_DAY", "7")
    config = load_config(path)
    assert config.settings.investor.monthly_contribution == 2500
    assert config.settings.schedule.dca_day == 7
    assert config.settings.schedule.dca_hour == 9  # the rest of the file still applies


def test_environment_gives_text_for_a_choice_of_numbers(write_config, monkeypatch):
    monkeypatch.setenv("STAGEWISE_SCHEDULE__WITHDRAW_PERIODS", "4")
    assert load_config(write_config()).settings.schedule.withdraw_periods == 4
    monkeypatch.setenv("STAGEWISE_SCHEDULE__WITHDRAW_PERIODS", "3")
    with pytest.raises(ConfigError, match="schedule.withdraw_periods"):
        load_config(write_config())


def test_a_section_in_the_environment_that_is_not_json_is_a_config_error(write_config):
    """Exit 78 naming the section, no traceback, and not the value (it may hold a key)."""
    env = {"STAGEWISE_EXCHANGE": '{"api_key": "' + SECRET}
    result = run_cli("--config", str(write_config()), "check-config", env=env)
    assert result.returncode == EX_CONFIG
    assert "STAGEWISE_EXCHANGE is not JSON" in result.stderr and "Traceback" not in result.stderr
    assert SECRET not in result.stdout + result.stderr


def test_environment_typo_is_refused_too(write_config, monkeypatch):
    monkeypatch.setenv("STAGEWISE_INVESTOR__MONTLY_CONTRIBUTION", "2500")
    with pytest.raises(ConfigError) as raised:
        load_config(write_config())
    assert str(raised.value).splitlines() == [
        "the environment: unknown STAGEWISE_ variables",
        "  - STAGEWISE_INVESTOR__MONTLY_CONTRIBUTION: not a setting "
        "(did you mean STAGEWISE_INVESTOR__MONTHLY_CONTRIBUTION?)",
    ]


@pytest.mark.parametrize(
    ("variable", "suggested"),
    [
        ("STAGEWISE_INVESTR__MONTHLY_CONTRIBUTION", "STAGEWISE_INVESTOR__MONTHLY_CONTRIBUTION"),
        ("STAGEWISE_SCHEDULE_DCA_DAY", "STAGEWISE_SCHEDULE__DCA_DAY"),
        ("STAGEWISE_CONFG", "STAGEWISE_CONFIG"),
        ("STAGEWISE_EXCHANGE__APIKEY", "STAGEWISE_EXCHANGE__API_KEY"),
        ("STAGEWISE_EXCHANG__CCXT__OPTIONS", "STAGEWISE_EXCHANGE__CCXT__OPTIONS"),
        ("STAGEWISE_FOO", "sections: investor, exchange, paper, schedule"),
    ],
)
def test_a_variable_naming_no_setting_is_refused_with_the_nearest_name(
    write_config, variable, suggested
):
    """pydantic-settings ignores a STAGEWISE_ variable that matches no section: the setting
    the person meant to change would silently keep the file's value."""
    result = run_cli("--config", str(write_config()), "check-config", env={variable: SECRET})
    assert result.returncode == EX_CONFIG, result.stdout
    assert f"{variable}: not a setting" in result.stderr and suggested in result.stderr
    assert SECRET not in result.stdout + result.stderr  # a value may be a key: never echoed
    assert "Traceback" not in result.stderr


def test_the_real_variables_are_not_refused(write_config):
    env = {
        "STAGEWISE_CONFIG": str(write_config()),
        "STAGEWISE_EXCHANGE__API_KEY": SECRET,
        "STAGEWISE_EXCHANGE__SECRET": SECRET,
        "STAGEWISE_EXCHANGE__PASSWORD": SECRET,
        "STAGEWISE_EXCHANGE__CCXT__TIMEOUT": "5000",
        "STAGEWISE_LOG": '{"level": "debug"}',
    }
    result = run_cli("check-config", env=env)
    assert result.returncode == 0, result.stderr
    assert SECRET not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        (
            "STAGEWISE_SCHEDULE__DCA_DAY",
            "31",
            "STAGEWISE_SCHEDULE__DCA_DAY (schedule.dca_day): Input should be less than or equal",
        ),
        (
            "STAGEWISE_INVESTOR__TIMEZONE",
            "Mars/Olympus",
            "STAGEWISE_INVESTOR__TIMEZONE (investor.timezone): 'Mars/Olympus' is not an IANA",
        ),
        (
            "STAGEWISE_INVESTOR",
            '{"monthly_contribution": -1}',
            "STAGEWISE_INVESTOR (investor.monthly_contribution): Input should be greater",
        ),
    ],
)
def test_an_invalid_value_from_the_environment_names_the_variable_not_the_file(
    write_config, variable, value, problem
):
    path = write_config()
    result = run_cli("--config", str(path), "check-config", env={variable: value})
    assert result.returncode == EX_CONFIG
    first, only = result.stderr.splitlines()  # one problem, blamed on the environment
    assert first == "stagewise: configuration error: the environment: invalid configuration"
    assert only.startswith(f"  - {problem}")
    assert str(path) not in result.stderr


def test_problems_of_the_file_and_the_environment_are_each_blamed_on_their_source(
    write_config, monkeypatch
):
    monkeypatch.setenv("STAGEWISE_SCHEDULE__DCA_HOUR", "25")
    path = write_config({"schedule": {"dca_day": 31}})
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    lines = str(raised.value).splitlines()
    assert lines[0] == f"{path} and the environment: invalid configuration"
    assert sorted(lines[1:]) == [
        "  - STAGEWISE_SCHEDULE__DCA_HOUR (schedule.dca_hour): "
        "Input should be less than or equal to 23",
        "  - schedule.dca_day: Input should be less than or equal to 28",
    ]


def test_every_credential_ccxt_takes_is_refused_in_the_ccxt_table(write_config):
    """The file is world-readable, and a key there overrode the environment's. ccxt's own list
    of credentials, each also in the snake_case form ccxt accepts, all in one file."""
    import ccxt

    names = list(ccxt.Exchange.requiredCredentials)
    assert {"apiKey", "secret", "password", "uid", "privateKey", "walletAddress", "token"} <= set(
        names
    )
    snake = ["api_key", "private_key", "wallet_address", "account_id"]
    table = {name: f"{SECRET}-{i}" for i, name in enumerate(names + snake)}
    result = run_cli(
        "--config", str(write_config({"exchange": {"ccxt": table}})), "check-config", "--json"
    )
    assert result.returncode == EX_CONFIG
    assert "API keys are read from the environment only, never from the config file" in (
        result.stderr
    )
    for name in table:
        assert f"exchange.ccxt.{name}: remove it from the file" in result.stderr, name
    assert "set STAGEWISE_EXCHANGE__API_KEY in the environment" in result.stderr
    assert SECRET not in result.stdout + result.stderr
    assert len(json.loads(result.stdout)["errors"]) == len(table)


def test_a_key_in_the_ccxt_table_never_reaches_the_exchange(standin_config, plan_standin):
    config = standin_config(
        {"exchange": {"mode": "read-only", "ccxt": {"apiKey": SECRET, "secret": SECRET}}}
    )
    env = {"STAGEWISE_EXCHANGE__API_KEY": "env-key", "STAGEWISE_EXCHANGE__SECRET": "env-secret"}
    result = run_cli("--config", str(config), "once", "dca", env=env)
    assert result.returncode == EX_CONFIG
    assert "exchange.ccxt.apiKey" in result.stderr and SECRET not in result.stderr
    assert plan_standin.requests == []


def test_ccxt_verbose_from_the_environment_is_refused_naming_the_variable(write_config):
    env = {"STAGEWISE_EXCHANGE__CCXT__VERBOSE": "true", "STAGEWISE_EXCHANGE__API_KEY": SECRET}
    result = run_cli("--config", str(write_config()), "check-config", env=env)
    assert result.returncode == EX_CONFIG
    assert (
        "STAGEWISE_EXCHANGE__CCXT__VERBOSE (exchange.ccxt.verbose): refused: ccxt's verbose mode"
        in result.stderr
    )
    assert SECRET not in result.stdout + result.stderr


def env_example_values() -> dict[str, str]:
    """The variables set in the shipped systemd/stagewise.env.example, as a person copying it
    has them before editing."""
    lines = (REPO / "systemd" / "stagewise.env.example").read_text().splitlines()
    pairs = [line.split("=", 1) for line in lines if line and not line.startswith("#")]
    return {name: value for name, value in pairs}


def test_the_env_examples_placeholder_is_not_taken_for_a_key(write_config):
    env = env_example_values()
    assert set(env) == {"STAGEWISE_EXCHANGE__API_KEY", "STAGEWISE_EXCHANGE__SECRET"}
    paper = run_cli("--config", str(write_config()), "check-config", env=env)
    assert paper.returncode == 0, paper.stderr  # paper mode needs no key
    assert "API key is the placeholder from stagewise.env.example, not a key" in paper.stdout
    assert "API key set" not in paper.stdout
    as_json = run_cli("--config", str(write_config()), "check-config", "--json", env=env)
    assert json.loads(as_json.stdout)["api_key"] == "placeholder"

    path = write_config({"exchange": {"mode": "read-only"}})
    read_only = run_cli("--config", str(path), "check-config", env=env)
    assert read_only.returncode == EX_CONFIG
    assert (
        "exchange: STAGEWISE_EXCHANGE__API_KEY and STAGEWISE_EXCHANGE__SECRET hold the "
        "placeholder from stagewise.env.example, not a key" in read_only.stderr
    )
    real = {**env, "STAGEWISE_EXCHANGE__API_KEY": SECRET, "STAGEWISE_EXCHANGE__SECRET": SECRET}
    assert "API key set" in run_cli("--config", str(path), "check-config", env=real).stdout


def test_an_exchange_ccxt_does_not_know_is_refused_with_the_nearest(write_config):
    result = run_cli("--config", str(write_config({"exchange": {"id": "binanse"}})), "check-config")
    assert result.returncode == EX_CONFIG
    assert (
        "exchange.id: 'binanse' is not an exchange ccxt knows (did you mean 'binance'?)"
        in result.stderr
    )


def test_check_config_json_of_a_bad_config_says_so_on_stdout(write_config, tmp_path):
    path = write_config({"schedule": {"dca_day": 31}, "policy": {"band_abs_pct": 0}})
    result = run_cli("--config", str(path), "check-config", "--json")
    assert result.returncode == EX_CONFIG
    answer = json.loads(result.stdout)
    assert answer["ok"] is False and answer["exit_code"] == EX_CONFIG
    assert answer["error"] == f"{path}: invalid configuration"
    assert sorted(answer["errors"]) == [
        "policy.band_abs_pct: Input should be greater than 0",
        "schedule.dca_day: Input should be less than or equal to 28",
    ]
    unreadable = tmp_path / "broken.toml"
    unreadable.write_text("[investor\n")
    result = run_cli("--config", str(unreadable), "check-config", "--json")
    assert result.returncode == EX_CONFIG
    answer = json.loads(result.stdout)
    assert answer["ok"] is False and "not valid TOML" in answer["errors"][0]


@pytest.mark.parametrize(
    "args",
    [
        ["check-config"],
        ["stage"],
        ["status"],
        ["once", "dca"],
        ["simulate", "--start", "2026-01-01", "--end", "2026-02-01"],
    ],
    ids=lambda a: a[0],
)
def test_a_birth_date_in_the_future_is_a_config_error_for_every_command(write_config, args):
    result = run_cli("--config", str(write_config({"investor": {"birth_date": NEXT_YEAR}})), *args)
    assert result.returncode == EX_CONFIG, result.stderr
    assert f"investor.birth_date: {NEXT_YEAR} is in the future" in result.stderr
    assert "Traceback" not in result.stderr


def test_secret_from_environment_appears_in_no_output_or_repr(write_config, monkeypatch):
    path = write_config({"exchange": {"mode": "read-only"}})
    env = {"STAGEWISE_EXCHANGE__API_KEY": SECRET, "STAGEWISE_EXCHANGE__SECRET": SECRET + "2"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    config = load_config(path)
    assert config.settings.exchange.api_key.get_secret_value() == SECRET
    for text in (
        repr(config),
        str(config.settings),
        repr(config.settings.exchange),
        config.settings.model_dump_json(),
    ):
        assert SECRET not in text
    for args in (["check-config"], ["check-config", "--json"], ["stage"], ["stage", "--json"]):
        result = run_cli("--config", str(path), *args, env=env)
        assert result.returncode == 0, result.stderr
        assert SECRET not in result.stdout + result.stderr
    assert "API key set" in run_cli("--config", str(path), "check-config", env=env).stdout


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("STAGEWISE_PAPER__INITIAL_BALANCES", "USDT=5"),
        ("STAGEWISE_INVESTOR", "not json"),
    ],
)
def test_a_variable_that_is_not_the_json_its_table_needs_is_named(
    write_config, monkeypatch, variable, value
):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as raised:
        load_config(write_config())
    said = str(raised.value)
    assert said.startswith(f"the environment: {variable} is not JSON: a table or a list"), said
    assert value not in said and SECRET not in said


def test_secret_in_the_file_is_not_echoed_in_the_error(write_config):
    result = run_cli(
        "--config", str(write_config({"exchange": {"secret": SECRET}})), "check-config"
    )
    assert result.returncode == EX_CONFIG
    assert "exchange.secret" in result.stderr and SECRET not in result.stderr


def test_an_index_of_cadence_never_is_accepted(write_config, tmp_path):
    path = write_config(
        {
            "plan": {
                "indices": indices_with(
                    tmp_path, lambda d: set_in(d, ["index", "defi", "cadence"], "never")
                )
            }
        }
    )
    assert load_config(path).plan.indices["defi"].cadence == "never"


def test_shipped_example_config_is_valid():
    result = run_cli("--config", str(REPO / "config" / "example.toml"), "check-config")
    assert result.returncode == 0, result.stderr
