"""The ccxt client an `Exchange` wraps, built from the exchange settings: rate limited, with
a timeout and the keys, the config's [exchange.ccxt] table passed through, and spot markets
only (ccxt's defaults add futures and margin lists, and a wallet call: a read-only key with spot
rights is enough, and a load is one request)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import ccxt

from stagewise.sections import ExchangeSettings


def build_client(settings: ExchangeSettings) -> Any:
    """The ccxt exchange object: rate limited, with a timeout, keys and pass-through config."""
    cls = getattr(ccxt, settings.id, None)
    if cls is None or not isinstance(cls, type) or not issubclass(cls, ccxt.Exchange):
        from stagewise.errors import ConfigError

        raise ConfigError(f"exchange.id: '{settings.id}' is not an exchange ccxt knows")
    config: dict[str, Any] = {"enableRateLimit": True, "timeout": settings.timeout_ms}
    for field, name in (("api_key", "apiKey"), ("secret", "secret"), ("password", "password")):
        value = getattr(settings, field)
        if value is not None:
            config[name] = value.get_secret_value()
    client = cls(_deep_merge(config, settings.ccxt))
    _load_spot_markets_only(client.options, settings.ccxt.get("options") or {})
    return client


def _load_spot_markets_only(options: dict[str, Any], chosen: Mapping[str, Any]) -> None:
    """Make ccxt's `load_markets` ask for spot markets only, where its options choose (binance,
    bybit, okx ...: `fetchMarkets` types; binance's margin lists and private currency call),
    unless the config's [exchange.ccxt] options chose otherwise."""
    wanted = options.get("fetchMarkets")
    if "fetchMarkets" not in chosen:
        if isinstance(wanted, dict) and isinstance(wanted.get("types"), list):
            if "spot" in wanted["types"]:
                options["fetchMarkets"] = {**wanted, "types": ["spot"]}
        elif isinstance(wanted, dict) and isinstance(wanted.get("types"), dict):
            if "spot" in wanted["types"]:
                types = {kind: kind == "spot" for kind in wanted["types"]}
                options["fetchMarkets"] = {**wanted, "types": types}
        elif isinstance(wanted, list) and "spot" in wanted:
            options["fetchMarkets"] = ["spot"]
    for name in ("fetchMargins", "fetchCurrencies"):
        if isinstance(options.get(name), bool) and name not in chosen:
            options[name] = False


def _deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _deep_merge(dict(merged[key]), value)
        else:
            merged[key] = value
    return merged
