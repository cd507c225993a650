"""Does the plan hold? The plan over every window of the price history, and over variants.

A sweep runs `simulate` (the same jobs, the same code as one simulation) once for each window
of a length (48 months) stepped through the history (every month), and for each variant of the
config (`--vary investor.crypto_share_point=0,0.5,1`). Each window starts with the config's
initial balances and the investor at the age its start gives (the birth date stays).

The runs go to any concurrent.futures-style executor: none (in this process), local processes
(`local_pool`), or a Dask cluster (`stagewise.cluster`). A worker loads the sweep's inputs
(the price history, the variants' configs) once, when it starts, and is then sent only which
variant and which window to run; it sends back the window's figures, never its database.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import (
    BrokenExecutor,
    Executor,
    Future,
    ProcessPoolExecutor,
    as_completed,
)
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import partial
from itertools import product
from typing import Literal

from stagewise import logs
from stagewise.errors import StagewiseError, UsageError
from stagewise.history import PriceHistory
from stagewise.settings import Config, with_setting
from stagewise.simulate import SimulationResult, default_start, simulate
from stagewise.targets import add_months

Unit = Literal["d", "m", "y"]
_UNITS: dict[str, Unit] = {"d": "d", "m": "m", "y": "y"}
LONGEST_YEARS = 200  # a window or a step: longer than any price history
_MOST: dict[Unit, int] = {"d": 366 * LONGEST_YEARS, "m": 12 * LONGEST_YEARS, "y": LONGEST_YEARS}
_SPAN = re.compile(r"\s*(\d+)\s*([dmy])\s*", re.IGNORECASE)


@dataclass(frozen=True)
class Span:
    """A length of time as a person says it: 48m (months), 1y, 30d."""

    count: int
    unit: Unit

    def after(self, day: date, times: int = 1) -> date:
        """`day` moved on by `times` this span (whole calendar months, clamped to a month's
        end, for m and y)."""
        n = self.count * times
        if self.unit == "d":
            return day + timedelta(days=n)
        return add_months(day, n if self.unit == "m" else 12 * n)

    def __str__(self) -> str:
        return f"{self.count}{self.unit}"


class NoSpan(ValueError):
    """A span of 0 days, months or years."""


def parse_span(text: str) -> Span:
    """`text` as a Span; ValueError saying what is wrong (NoSpan for one of length 0)."""
    found = _SPAN.fullmatch(text)
    if not found:
        raise ValueError(f"'{text}' is not a length like 48m (months), 2y (years) or 30d (days)")
    span = Span(int(found[1]), _UNITS[found[2].lower()])
    if span.count == 0:
        raise NoSpan(f"'{text}' is no length: at least 1d")
    if span.count > _MOST[span.unit]:
        raise ValueError(f"'{text}' is longer than {LONGEST_YEARS} years")
    return span


@dataclass(frozen=True)
class Window:
    """One simulation's span: [start, end), days in the investor's time zone."""

    start: date
    end: date


def windows(
    history: PriceHistory,
    config: Config,
    length: Span,
    step: Span,
    first: date | None = None,
    until: date | None = None,
) -> list[Window]:
    """Every window of `length`, the first starting on `first` (default: the day a plain
    simulation starts unless told, `default_start`: the first a close is known, or the first
    each rule index has the closes it reads), the next `step` later, and so on while a window
    ends by `until` (default: the day after the history's last): a UsageError when not one
    fits."""
    tz = config.tz
    first = max(first or default_start(config, history), history.first_start(tz))
    last = history.days[-1] + timedelta(days=1)
    until = min(until or last, last)
    found: list[Window] = []
    while True:
        start = step.after(first, len(found))
        end = length.after(start)
        if end > until:
            break
        found.append(Window(start, end))
    if not found and first >= until:
        raise UsageError(
            f"no window starts on {first} or later: the prices ({history.source}) end with "
            f"the close of {until - timedelta(days=1)}"
        )
    if not found:
        raise UsageError(
            f"a {length} window is longer than the history: the first would run "
            f"{first} .. {length.after(first) - timedelta(days=1)}, and the prices "
            f"({history.source}) end with the close of {min(until, last) - timedelta(days=1)}"
        )
    return found


@dataclass(frozen=True)
class Variant:
    """The config with some settings changed (none: the config as it is)."""

    config: Config
    settings: tuple[tuple[str, str], ...] = ()

    @property
    def label(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.settings) or "as configured"


def variants(config: Config, vary: Sequence[tuple[str, Sequence[str]]]) -> list[Variant]:
    """Every combination of the values of `vary` ((dotted key, values) pairs), each validated
    as the config is (a ConfigError naming the key and value); [the config] without any."""
    keys = [key for key, _ in vary]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise UsageError(f"--vary {twice[0]} is given twice: give its values in one --vary")
    found = []
    for values in product(*(values for _, values in vary)):
        varied = config
        for key, value in zip(keys, values, strict=True):
            varied = with_setting(varied, key, value, f"--vary {key}={value}")
        found.append(Variant(varied, tuple(zip(keys, values, strict=True))))
    return found


@dataclass(frozen=True)
class WindowResult:
    """A window's figures (those of `stagewise simulate`'s report over its span)."""

    variant: int  # its index in the sweep's variants
    start: date
    end: date
    seed_value: float
    contributions: float
    withdrawals: float
    profit_moved_out: float
    final_value: float
    fees: float
    slippage: float
    max_drawdown: float
    money_weighted: float | None
    time_weighted: float | None
    runs: int
    failed_runs: int
    path: tuple[float, ...]  # the value at the end of each month of the window

    @property
    def gain(self) -> float:
        """As `SimulationResult.gain`: everything taken out (withdrawals and profit moved out)
        counts as gained."""
        return (
            self.final_value
            - self.seed_value
            - self.contributions
            + self.withdrawals
            + self.profit_moved_out
        )

    @property
    def put_in(self) -> float:
        """The money put in: the starting balance and every contribution."""
        return self.seed_value + self.contributions


def window_result(variant: int, r: SimulationResult) -> WindowResult:
    f = r.figures
    return WindowResult(
        variant=variant,
        start=r.start,
        end=r.end,
        seed_value=f.seed_value,
        contributions=f.contributions,
        withdrawals=f.withdrawals,
        profit_moved_out=f.profit_moved_out,
        final_value=f.final_value,
        fees=f.fees,
        slippage=f.slippage,
        max_drawdown=f.max_drawdown,
        money_weighted=f.money_weighted,
        time_weighted=f.time_weighted,
        runs=sum(r.runs_by_status.values()),
        failed_runs=r.runs_by_status.get("failed", 0),
        path=_monthly(r),
    )


def _monthly(r: SimulationResult) -> tuple[float, ...]:
    """The value on the last valued day of each month from the start (the spread of paths)."""
    values: list[float] = []
    month_end = add_months(r.start, 1)
    last = r.figures.seed_value
    for d in r.figures.days:
        while d.day >= month_end:
            values.append(last)
            month_end = add_months(r.start, len(values) + 1)
        last = d.value
    values.append(last)
    return tuple(values)


@dataclass(frozen=True)
class Inputs:
    """What every worker of a sweep loads once: the prices, each variant's config, and how
    each window is simulated."""

    history: PriceHistory
    configs: tuple[Config, ...]
    min_notional: float = 5.0
    strict_history: bool = False
    log_level: str = "error"  # a window's warnings are every window's: errors only


@dataclass(frozen=True)
class Sweep:
    """Every window for every variant, over one price history."""

    variants: tuple[Variant, ...]
    windows: tuple[Window, ...]
    history: PriceHistory
    min_notional: float = 5.0
    strict_history: bool = False
    log_level: str = "error"
    # Names this sweep's inputs on a worker that may serve several (a Dask cluster's).
    token: str = field(default_factory=lambda: secrets.token_hex(8))

    @property
    def inputs(self) -> Inputs:
        configs = tuple(v.config for v in self.variants)
        return Inputs(self.history, configs, self.min_notional, self.strict_history, self.log_level)

    @property
    def tasks(self) -> list[tuple[int, Window]]:
        """(variant, window) pairs, window by window (every variant of a window together)."""
        return [(v, w) for w in self.windows for v in range(len(self.variants))]


# A worker's inputs, by sweep token: loaded once per worker (`load`), then read by each task.
_LOADED: dict[str, Inputs] = {}


def load(token: str, inputs: Inputs) -> None:
    """Keep `inputs` for the tasks of sweep `token` run in this process."""
    _LOADED[token] = inputs


def unload(token: str) -> None:
    _LOADED.pop(token, None)


def run_window(token: str, variant: int, window: Window) -> WindowResult:
    """One task: the window simulated for the variant, in memory (no database written)."""
    inputs = _LOADED.get(token)
    if inputs is None:
        raise StagewiseError(
            f"this worker was not given the sweep's inputs (sweep {token}): start it with "
            "`local_pool`, or load them first (`stagewise.sweep.load`)"
        )
    result = simulate(
        inputs.configs[variant],
        inputs.history,
        window.start,
        window.end,
        None,
        min_notional=inputs.min_notional,
        strict_history=inputs.strict_history,
    )
    return window_result(variant, result)


def prepare_worker(token: str, inputs: Inputs) -> None:
    """A worker's start (a process of its own): its logging, and the inputs, once."""
    logs.configure(inputs.log_level, "auto")
    load(token, inputs)


def start_worker(token: str, inputs: Inputs) -> None:
    """A local worker process's initializer (`prepare_worker`); Ctrl-C is the parent's to
    handle (the worker ends its window and then stops, when the pool shuts down)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    prepare_worker(token, inputs)


def local_pool(sweep: Sweep, jobs: int) -> ProcessPoolExecutor:
    """`jobs` local worker processes (no more than the sweep has tasks), each loading the
    sweep's inputs once as it starts."""
    return ProcessPoolExecutor(
        max_workers=max(1, min(jobs, len(sweep.tasks))),
        initializer=start_worker,
        initargs=(sweep.token, sweep.inputs),
    )


def default_jobs() -> int:
    """The cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


Progress = Callable[[int, int], None]  # (windows done, windows in all)


def run(
    sweep: Sweep, executor: Executor | None = None, progress: Progress | None = None
) -> list[WindowResult]:
    """Every task of `sweep` on `executor` (None: one after the other in this process), by
    variant and start. The first failing window's error is raised, naming the window, and
    the tasks not yet started are cancelled; so are they on an interrupt (KeyboardInterrupt
    is raised again: the caller's executor finishes the windows already running when it
    shuts down, and nothing of the sweep is kept)."""
    load(sweep.token, sweep.inputs)  # for an executor in this process (threads) too
    try:
        if executor is None:
            results = []
            for n, (variant, window) in enumerate(sweep.tasks, 1):
                results.append(_named(window, partial(run_window, sweep.token, variant, window)))
                if progress:
                    progress(n, len(sweep.tasks))
        else:
            results = _run_on(executor, sweep, progress)
    finally:
        unload(sweep.token)
    return sorted(results, key=lambda r: (r.variant, r.start))


def _run_on(executor: Executor, sweep: Sweep, progress: Progress | None) -> list[WindowResult]:
    with _interrupts_after():  # a worker started meanwhile inherits Ctrl-C blocked
        futures: dict[Future[WindowResult], Window] = {
            executor.submit(run_window, sweep.token, variant, window): window
            for variant, window in sweep.tasks
        }
    results = []
    try:
        for n, future in enumerate(as_completed(futures), 1):
            results.append(_named(futures[future], future.result))
            if progress:
                progress(n, len(futures))
    except BrokenExecutor as e:
        raise StagewiseError(
            f"a worker of the sweep ended before its window did ({e}; out of memory?)"
        ) from None
    except BaseException:
        for future in futures:
            future.cancel()
        raise
    return results


def _named(window: Window, get: Callable[[], WindowResult]) -> WindowResult:
    """`get()`, a StagewiseError of it naming `window`."""
    try:
        return get()
    except StagewiseError as e:
        last = window.end - timedelta(days=1)
        raise type(e)(f"the window {window.start} .. {last}: {e}") from None


@contextlib.contextmanager
def _interrupts_after() -> Iterator[None]:
    """Ctrl-C held back while the block runs (pthread_sigmask where there is one), then
    raised: a worker process forked inside the block never sees it (signal masks are
    inherited), and the parent, which stops the sweep, still does."""
    block = getattr(signal, "pthread_sigmask", None)
    if block is None:
        yield
        return
    block(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        block(signal.SIG_UNBLOCK, {signal.SIGINT})
