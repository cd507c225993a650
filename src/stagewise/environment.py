"""The STAGEWISE_ environment variables: which setting each one sets, and what a variable
that sets none was meant to be.

pydantic-settings reads them (`STAGEWISE_<SECTION>__<KEY>`, case-insensitive) and silently
ignores one that matches no section; here such a variable is an error naming the nearest
valid name, and a problem with a value names the variable that set it. Only names are ever
shown: a value may be an API key.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from stagewise.errors import ConfigError

ENV_PREFIX = "STAGEWISE_"
# Names the config file to read; sets no setting.
CONFIG_ENV = "STAGEWISE_CONFIG"


def setting_variables(
    environ: Mapping[str, str], model: type[BaseModel]
) -> dict[tuple[str, ...], str]:
    """The STAGEWISE_ variables that set a setting, by the path they set (lower case, as
    pydantic-settings reads them): `("investor", "monthly_contribution")` ->
    `STAGEWISE_INVESTOR__MONTHLY_CONTRIBUTION`. One that names no setting is refused with the
    nearest valid name (pydantic-settings would ignore it). Names only: values may be keys."""
    found: dict[tuple[str, ...], str] = {}
    unknown = []
    for name in sorted(environ):
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or upper == CONFIG_ENV:
            continue
        parts = tuple(upper[len(ENV_PREFIX) :].lower().split("__"))
        if _is_setting(parts, model):
            found[parts] = name
        else:
            unknown.append(f"{name}: not a setting{_nearest_variable(parts, model)}")
    if unknown:
        raise ConfigError("the environment: unknown STAGEWISE_ variables", unknown)
    return found


def _is_setting(parts: tuple[str, ...], model: type[BaseModel]) -> bool:
    section = model.model_fields.get(parts[0])
    if section is None or not all(parts):
        return False
    inner = section.annotation
    if len(parts) == 1 or not (isinstance(inner, type) and issubclass(inner, BaseModel)):
        return True
    field = inner.model_fields.get(parts[1])
    # Deeper levels only into a table (`exchange.ccxt`, `paper.initial_balances`).
    return field is not None and (len(parts) == 2 or typing.get_origin(field.annotation) is dict)


def _nearest_variable(parts: tuple[str, ...], model: type[BaseModel]) -> str:
    import difflib  # only a misspelt variable needs it

    names = [CONFIG_ENV] + [
        f"{ENV_PREFIX}{section.upper()}__{key.upper()}"
        for section, info in model.model_fields.items()
        if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel)
        for key in info.annotation.model_fields
    ]
    # Compared without the prefix they all share, as a misspelt key in the file is.
    given = "__".join(parts[:2]).upper()
    close = difflib.get_close_matches(given, [n[len(ENV_PREFIX) :] for n in names], n=1)
    if close:
        deeper = "".join(f"__{p.upper()}" for p in parts[2:])
        return f" (did you mean {ENV_PREFIX}{close[0]}{deeper}?)"
    sections = ", ".join(model.model_fields)
    return f" (settings are {ENV_PREFIX}<SECTION>__<KEY>, sections: {sections})"


def invalid(
    source: str,
    err: ValidationError,
    model: type[BaseModel],
    variables: dict[tuple[str, ...], str],
) -> ConfigError:
    """The validation error of `model` read from `source` (a file) with the environment on
    top, each problem blamed on what set it: the variable (`setting_variables`), or `source`."""

    def origin(error: ErrorDetails) -> str | None:
        if error["type"] == "missing":
            return None
        loc = tuple(str(p).lower() for p in error["loc"])
        for n in range(len(loc), 0, -1):  # the longest variable setting it
            if loc[:n] in variables:
                return variables[loc[:n]]
        return None

    errors = err.errors(include_url=False)
    from_env = [origin(e) is not None for e in errors]
    blamed = (
        "the environment"
        if all(from_env)
        else f"{source} and the environment"
        if any(from_env)
        else source
    )
    return ConfigError.from_validation(blamed, err, model, origin)
