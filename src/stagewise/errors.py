"""The few named errors of stagewise; each carries a message a user can act on.

Only the CLI maps them to exit codes (78, EX_CONFIG, for configuration errors; 75,
EX_TEMPFAIL, for a state file that cannot be written just now).
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Sequence

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails


class StagewiseError(Exception):
    """Base of every error stagewise raises on purpose."""


class ConfigError(StagewiseError):
    """The configuration (investor config, stages or indices) is invalid.

    `problems` lists one line per offending field: "path.to.field: what is wrong".
    """

    def __init__(self, message: str, problems: Sequence[str] = ()) -> None:
        self.problems = list(problems)
        lines = [message, *(f"  - {p}" for p in self.problems)]
        super().__init__("\n".join(lines))

    @classmethod
    def from_validation(
        cls,
        source: str,
        err: ValidationError,
        model: type[BaseModel],
        origin: Callable[[ErrorDetails], str | None] | None = None,
    ) -> ConfigError:
        """One problem per pydantic error, named by its dotted path, typos given a suggestion.
        `origin` names what set an offending value when it is not `source` (an environment
        variable): the problem then leads with it."""
        problems = []
        for error in err.errors(include_url=False):
            problem = _describe(error, model)
            where = origin(error) if origin else None
            problems.append(f"{where} ({problem.replace(': ', '): ', 1)}" if where else problem)
        return cls(f"{source}: invalid configuration", problems)


class UsageError(StagewiseError):
    """What was asked cannot be done as asked: a period that ends before it starts, a day
    before the investor's birth, an implausible windfall, a windfall that is not pending.
    A bad argument (exit 2): nothing was written."""


class InputMissing(StagewiseError):
    """A file the command was told to read does not exist (exit 66, EX_NOINPUT)."""


class SnapshotError(StagewiseError):
    """The exchange answered, but the answer cannot be used to plan (missing/zero/NaN price,
    unparsable body). No plan is ever made from it."""


class ExchangeUnavailable(StagewiseError):
    """The exchange could not be reached in time, even after retries. Try again later."""


class ExchangeAuthError(StagewiseError):
    """The exchange refused the API key (bad key, missing permission). Not retried: fix the key."""


class StateUnavailable(StagewiseError):
    """The state file cannot be written just now; nothing was written. Try again."""


class StateBusy(StateUnavailable):
    """Another process holds the state file's write lock past the busy timeout."""


class StateFull(StateUnavailable):
    """No room left for the write: the disk holding the state file is full."""


class StateReadOnly(StateUnavailable):
    """The state file (or its folder, or its file system) may not be written."""


class DataError(StagewiseError):
    """A data file a command was given is unusable (exit 65, EX_DATAERR)."""


class PriceHistoryError(DataError):
    """A price history file or download is unusable (bad row, gap, unknown asset)."""


class EventsFileError(DataError):
    """A plan events file (`simulate --events`) is unusable: the message names its file,
    line and field."""


class OutputRefused(StagewiseError):
    """A file stagewise was asked to write over is not one it may replace (a state file,
    another program's data): it is left exactly as it is. Choose another path."""


def _describe(error: ErrorDetails, model: type[BaseModel]) -> str:
    loc = [str(p) for p in error["loc"]]
    path = ".".join(loc) or "(top level)"
    if error["type"] == "extra_forbidden":
        import difflib  # only a bad config needs it; a running daemon never does

        known = _fields_at(model, error["loc"][:-1])
        close = difflib.get_close_matches(loc[-1], known, n=1, cutoff=0.6)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return f"{path}: unknown key{hint}"
    msg = error["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    return f"{path}: {msg}"


def _fields_at(model: type[BaseModel], loc: Sequence[object]) -> list[str]:
    """The field names valid at `loc` inside `model`, to suggest a fix for a typo."""
    current: object = model
    for part in loc:
        if isinstance(current, type) and issubclass(current, BaseModel) and isinstance(part, str):
            field = current.model_fields.get(part)
            if field is None:
                return []
            current = _inner_model(field.annotation)
        else:  # an index into a list or a key of a dict: the item type stays the same
            continue
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _inner_model(annotation: object) -> object:
    """The BaseModel inside `list[M]`, `dict[str, M]`, `M | None`, or the annotation itself."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _inner_model(arg)
        if isinstance(found, type) and issubclass(found, BaseModel):
            return found
    return annotation
