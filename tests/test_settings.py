"""The investor config and the plan data: what is accepted, what is refused and how."""

from __future__ import annotations

import tomllib

import pytest
import tomli_w
from conftest import REPO, run_cli

from stagewise.errors import ConfigError
from stagewise.settings import load_config

EX_CONFIG = 78

SECRET = "s3cr3t-KEY-do-not-print-9f8e7d"


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
        "index.rwa.cadence",
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
        load_config(path)
    assert named.replace("Value error, ", "") in str(raised.value)


def test_there_are_at_least_fifteen_distinct_bad_configs():
    assert len({case for case, _, _ in BAD_CONFIGS}) >= 15


@pytest.mark.parametrize(
    "case",
    ["typo-nested", "timezone", "key-in-file", "sleeve-weights", "dca-day"],
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
    ],
    ids=["missing", "bad-toml", "not-utf8"],
)
def test_cli_unreadable_config_is_a_clear_error(tmp_path, content, message):
    path = tmp_path / "c.toml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    result = run_cli("--config", str(path), "check-config")
    assert result.returncode == EX_CONFIG
    assert message in result.stderr and str(path) in result.stderr
    assert "Traceback" not in result.stderr


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
    assert 'field "exchange"' in result.stderr and "Traceback" not in result.stderr
    assert SECRET not in result.stdout + result.stderr


def test_environment_typo_is_refused_too(write_config, monkeypatch):
    monkeypatch.setenv("STAGEWISE_INVESTOR__MONTLY_CONTRIBUTION", "2500")
    with pytest.raises(ConfigError, match="did you mean 'monthly_contribution'"):
        load_config(write_config())


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


def test_secret_in_the_file_is_not_echoed_in_the_error(write_config):
    result = run_cli(
        "--config", str(write_config({"exchange": {"secret": SECRET}})), "check-config"
    )
    assert result.returncode == EX_CONFIG
    assert "exchange.secret" in result.stderr and SECRET not in result.stderr


def test_shipped_example_config_is_valid():
    result = run_cli("--config", str(REPO / "config" / "example.toml"), "check-config")
    assert result.returncode == 0, result.stderr
