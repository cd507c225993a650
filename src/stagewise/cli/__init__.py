"""The `stagewise` command line: a thin layer over the library. The only package that parses
arguments, and the only one that maps errors to exit codes.

    __init__.py  the parser, main() and the config/stage commands
    commands.py  run, once, status, proposals, pause/resume, windfall
    simulate.py  simulate
    init.py      init
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from stagewise import __version__
from stagewise.contributions import (
    contribution_on,
    contribution_warnings,
    retirement,
    withdrawal_rate,
)
from stagewise.errors import ConfigError, StagewiseError
from stagewise.settings import Config, ConfigSource, find_config, load_config
from stagewise.targets import Targets, targets_on

EX_OK = 0
EX_FAILURE = 1
EX_USAGE = 2
EX_DATAERR = 65
EX_NOINPUT = 66
EX_UNAVAILABLE = 69
EX_CANTCREAT = 73
EX_TEMPFAIL = 75
EX_CONFIG = 78

DESCRIPTION = """\
stagewise keeps a crypto portfolio on a life-stage plan. It reads balances and prices
through ccxt (read-only key, or a paper account), and records the orders it PROPOSES in
SQLite and in its logs. It never places an order.

Config: --config PATH, else $STAGEWISE_CONFIG, else ~/.config/stagewise/config.toml
($XDG_CONFIG_HOME), else /etc/stagewise/config.toml; without one, the read-only commands
use the shipped example (and say so). `stagewise init` writes a starter config.
Environment variables override the file: STAGEWISE_<SECTION>__<KEY>.
Exit codes: 0 ok, 1 a run failed, 2 bad arguments, 65 bad data, 66 no such input file,
69 exchange unavailable, 73 output file refused, 75 state file busy or disk full (try
again), 78 bad config. With --json, an error is also printed as JSON."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or EX_OK)
    except ConfigError as e:
        print(f"stagewise: configuration error: {e}", file=sys.stderr)
        return error_exit(args, e, EX_CONFIG)
    except StagewiseError as e:
        print(f"stagewise: {e}", file=sys.stderr)
        return error_exit(args, e, exit_code_for(e))
    except KeyboardInterrupt:
        print("stagewise: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader (e.g. `| head`) went away: not an error of ours.
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        return EX_OK


def error_exit(args: argparse.Namespace, error: StagewiseError, code: int) -> int:
    """`code`, after printing `error` on stdout as JSON if the command was asked for JSON (a
    script reading stdout gets an answer, not nothing)."""
    if getattr(args, "json", False):
        problems = getattr(error, "problems", None) or []
        headline = str(error).splitlines()[0]
        emit_json(
            {"ok": False, "exit_code": code, "error": headline, "errors": problems or [headline]}
        )
    return code


def exit_code_for(error: StagewiseError) -> int:
    from stagewise.errors import (
        ExchangeAuthError,
        ExchangeUnavailable,
        InputMissing,
        OutputRefused,
        PriceHistoryError,
        StateUnavailable,
        UsageError,
    )

    if isinstance(error, ExchangeUnavailable | ExchangeAuthError):
        return EX_UNAVAILABLE
    if isinstance(error, StateUnavailable):
        return EX_TEMPFAIL
    if isinstance(error, PriceHistoryError):
        return EX_DATAERR
    if isinstance(error, UsageError):
        return EX_USAGE
    if isinstance(error, OutputRefused):
        return EX_CANTCREAT
    if isinstance(error, InputMissing):
        return EX_NOINPUT
    return EX_FAILURE


JOBS = ("dca", "rebalance", "drift", "profit", "withdraw", "reassess")


def build_parser() -> argparse.ArgumentParser:
    from stagewise.cli.commands import (
        cmd_once,
        cmd_pause,
        cmd_proposals,
        cmd_resume,
        cmd_run,
        cmd_status,
        cmd_windfall,
    )

    # --config is accepted before or after the command (`stagewise run --config X`).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config", metavar="PATH", default=argparse.SUPPRESS, help="the investor config (TOML)"
    )
    parser = argparse.ArgumentParser(
        prog="stagewise",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"stagewise {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, func: Command, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text, parents=[common])
        p.set_defaults(func=func)
        return p

    command("run", cmd_run, "run the daemon: scheduled jobs until SIGTERM (systemd: Type=notify)")

    once = command("once", cmd_once, "run one job now, recorded like a scheduled run")
    once.add_argument("job", choices=JOBS, help="the job to run")
    once.add_argument(
        "--at",
        type=parse_time,
        metavar="TIME",
        help="a dry run as if at TIME (ISO date or date-time; investor's time zone unless "
        "given): the plan of that day with today's balances and prices, nothing recorded",
    )
    once.add_argument(
        "--record",
        action="store_true",
        help="with a past --at: run that moment's period now and record it (a missed period)",
    )
    once.add_argument("--json", action="store_true", help="print the outcome as JSON")

    status = command("status", cmd_status, "holdings vs targets, drift, stage, pause, runs")
    status.add_argument("--json", action="store_true", help="print as JSON")

    proposals = command("proposals", cmd_proposals, "the orders proposed so far, newest first")
    proposals.add_argument("--since", type=parse_time, metavar="TIME", help="only since TIME")
    proposals.add_argument("--job", choices=(*JOBS, "windfall"), help="only of this job")
    proposals.add_argument("--period", metavar="KEY", help="only of this period (dca:2027-01)")
    proposals.add_argument("--limit", type=positive_int, default=50, help="at most N (50)")
    proposals.add_argument("--json", action="store_true", help="print as JSON")
    proposals.add_argument(
        "--db", type=Path, metavar="PATH", help="read another state file (e.g. a simulation's)"
    )

    stage = command("stage", cmd_stage, "the stage, glide path and targets on a day (today)")
    stage.add_argument("--at", type=parse_date, metavar="YYYY-MM-DD", help="the day to show")
    stage.add_argument("--json", action="store_true", help="print as JSON")

    pause = command("pause", cmd_pause, "the emergency rule: stop contributions (sells nothing)")
    pause.add_argument(
        "--reason", required=True, type=reason_text, help="why (kept in the journal)"
    )
    pause.add_argument(
        "--replace",
        action="store_true",
        help="already paused: give the pause this reason instead of keeping the first",
    )
    command("resume", cmd_resume, "end the emergency pause: contributions resume")

    windfall = command(
        "windfall",
        cmd_windfall,
        "announce a bonus (the stage's share is invested at the next job); "
        "`windfall list` shows them, `windfall cancel ID` withdraws a pending one",
    )
    windfall.add_argument(
        "amount",
        type=windfall_word,
        metavar="AMOUNT | list | cancel",
        help="the bonus, in the quote currency; or `list`; or `cancel` and the windfall's id",
    )
    windfall.add_argument("id", nargs="?", type=positive_int, metavar="ID", help="for `cancel`")

    check = command("check-config", cmd_check_config, "validate the config and the plan data")
    check.add_argument("--json", action="store_true", help="print the summary as JSON")

    from stagewise.cli.simulate import add_simulate_command

    add_simulate_command(command)

    from stagewise.cli.indices import add_indices_command

    add_indices_command(command)

    from stagewise.cli.init import add_init_command

    add_init_command(command)

    from stagewise.cli.notify import add_notify_command
    from stagewise.cli.view import add_view_command

    add_notify_command(command)
    add_view_command(command)
    return parser


def positive_amount(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not (value > 0) or value == float("inf"):
        raise argparse.ArgumentTypeError(f"'{text}' must be a positive amount")
    return value


def windfall_word(text: str) -> float | str:
    """`windfall`'s first word: `list`, `cancel`, or an amount (a positive number)."""
    if text in ("list", "cancel"):
        return text
    try:
        return positive_amount(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"'{text}' is neither an amount (a positive number), `list` nor `cancel`"
        ) from None


def reason_text(text: str) -> str:
    """A reason a person can read later: not empty, not only spaces."""
    if not text.strip():
        raise argparse.ArgumentTypeError("give a reason (it is kept in the journal)")
    return text.strip()


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"'{text}' must be at least 1")
    return value


def parse_time(text: str) -> datetime:
    """An ISO date or date-time; naive ones are completed later in the investor's zone."""
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"'{text}' is not a time like 2027-01-31 or 2027-01-31T09:00"
        ) from None


def parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date like 2027-01-31") from None


def config_source(args: argparse.Namespace) -> ConfigSource:
    return find_config(getattr(args, "config", None))


def load(args: argparse.Namespace, *, writes: bool = False) -> Config:
    """The config of the command line. With none of the user's found, the shipped example
    stands in for commands that only read (said on stderr); `writes` commands refuse: their
    pause, windfall or run would land in a state file no config of the user's names."""
    source = config_source(args)
    if source.example:
        looked = ", ".join(str(p) for p in source.looked_in)
        if writes:
            raise ConfigError(
                f"no config found (looked in {looked}; none given with --config or "
                f"$STAGEWISE_CONFIG): run `stagewise init` to write one, then edit it"
            )
        print(
            f"stagewise: no config found (looked in {looked}): using the shipped example "
            f"{source.path}; `stagewise init` writes one to edit",
            file=sys.stderr,
        )
    return load_config(source.path, example=source.example)


def aware(moment: datetime, config: Config) -> datetime:
    """`moment` with the investor's time zone if it has none."""
    return moment if moment.tzinfo else moment.replace(tzinfo=config.tz)


def today(config: Config) -> date:
    return datetime.now(config.tz).date()


def emit_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


KEY_STATUS = {
    "set": "set",
    "not set": "not set",
    "placeholder": "is the placeholder from stagewise.env.example, not a key",
}


def cmd_check_config(args: argparse.Namespace) -> int:
    config = load(args)
    s = config.settings
    # What the daemon could not run with (the settings alone load without ccxt: `stage` and
    # `status` need no exchange, so the id is checked here and when the daemon builds it).
    problems = [p for p in (s.exchange.missing_keys(), unknown_exchange(s.exchange.id)) if p]
    if problems:
        raise ConfigError(f"{config.path}: invalid configuration", problems)
    notify: list[str] = []
    if s.notify.configured:  # each target parses, by its number and service (never its URL)
        from stagewise.outbox import targets_for

        notify = targets_for(s.notify).names
    summary = {
        "config": str(config.path),
        "mode": s.exchange.mode,
        "exchange": s.exchange.id,
        "quote": s.exchange.quote,
        "api_key": s.exchange.key_status(),
        "stages": [st.id for st in config.plan.stages],
        "indices": sorted(config.plan.indices),
        "assets": config.plan.assets(),
        "state": str(s.state.path),
        "timezone": s.investor.timezone,
        "warnings": contribution_warnings(config, today(config)),
        "notify": notify,
    }
    if args.json:
        emit_json({"ok": True, **summary})
        return EX_OK
    print(f"config OK: {config.path}")
    print(
        f"  mode {s.exchange.mode} on {s.exchange.id}, quote {s.exchange.quote}, "
        f"API key {KEY_STATUS[s.exchange.key_status()]}"
    )
    print(
        f"  {len(config.plan.stages)} stages, {len(config.plan.indices)} indices, "
        f"{len(summary['assets'])} assets; time zone {s.investor.timezone}"
    )
    print(f"  state: {s.state.path}")
    for warning in summary["warnings"]:  # worth a look, not an error: the config is valid
        print(f"  warning: {warning}")
    print(
        f"  notifications: {', '.join(notify) if notify else 'off (STAGEWISE_NOTIFY__URLS unset)'}"
    )
    return EX_OK


def unknown_exchange(exchange_id: str) -> str | None:
    import difflib

    from stagewise.exchange import known_exchanges

    known = known_exchanges()
    if exchange_id in known:
        return None
    close = difflib.get_close_matches(exchange_id, known, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"exchange.id: '{exchange_id}' is not an exchange ccxt knows{hint}"


def cmd_stage(args: argparse.Namespace) -> int:
    from stagewise.cli.indices import held_indices, recorded_at, render_held

    config = load(args)
    on = args.at or today(config)
    # The rule indices' compositions in the state file as of the end of that day.
    end = datetime.combine(on + timedelta(days=1), datetime.min.time(), config.tz)
    recorded = recorded_at(config, config.settings.state.path, end)
    targets = targets_on(config, on, {i: c["weights"] for i, c in recorded.items()})
    money = money_json(config, on)
    indices = held_indices(config, targets.sleeves, recorded)
    if args.json:
        emit_json({**targets_json(targets), "indices": indices, **money})
    else:
        print(render_targets(targets, len(config.plan.stages)))
        print("\n".join(["", *render_held(indices)]))
        print("\n".join(["", *render_money(money, config.quote)]))
    return EX_OK


def money_json(config: Config, on: date) -> dict[str, Any]:
    """What goes in and out on `on`: the retirement day, the contribution, the withdrawals."""
    month = contribution_on(config, on)
    band = month.stage.contribution.monthly
    r = retirement(config)
    rate = withdrawal_rate(config, on)
    return {
        "retirement": {
            "date": None if r.on is None else r.on.isoformat(),
            "source": r.source,
            "retired": month.retired,
            # From that day (none unless [investor.contributions] names the retirement stage).
            "monthly_contribution": None
            if r.on is None
            else round(contribution_on(config, r.on).amount, 2),
        },
        "contribution": {
            "monthly": round(month.amount, 2),
            "stage": month.stage.id,
            "setting": month.setting,
            "guide_range": [band.min, band.max],
        },
        "withdrawal_pct": None if rate is None else round(rate * 100, 4),
    }


def render_money(m: dict[str, Any], quote: str) -> list[str]:
    """The lines of `money_json` that `stage` and `status` print."""
    r, c = m["retirement"], m["contribution"]
    if r["date"] is None:
        retired = f"retirement: none ({r['source']})"
    elif r["retired"]:
        retired = f"retired since {r['date']} ({r['source']})"
    else:
        then = r["monthly_contribution"]
        goes_in = (
            f"contributions become {then:,.2f} {quote} a month" if then else "contributions stop"
        )
        retired = f"retirement on {r['date']} ({r['source']}): withdrawals start, {goes_in}"
    low, high = c["guide_range"]
    if c["setting"]:
        given = f"from {c['setting']}"
    else:
        given = "none once retired" if r["retired"] else "none in this stage"
    withdrawals = (
        "none before retirement"
        if m["withdrawal_pct"] is None
        else f"{m['withdrawal_pct']:g} % a year"
    )
    return [
        retired,
        f"monthly contribution: {c['monthly']:,.2f} {quote} ({given}; "
        f"the guide for stage {c['stage']}: {low:,.0f}-{high:,.0f})",
        f"withdrawals: {withdrawals}",
    ]


def targets_json(t: Targets) -> dict[str, Any]:
    glide = None
    if t.glide is not None:
        glide = {
            "from": t.glide.from_stage,
            "to": t.glide.to_stage,
            "starts": t.glide.starts.isoformat(),
            "ends": t.glide.ends.isoformat(),
            "step": t.glide.step,
            "steps": t.glide.steps,
            "progress": round(t.glide.progress, 6),
        }
    return {
        "on": t.on.isoformat(),
        "age": t.age,
        "stage": {"id": t.stage.id, "name": t.stage.name, "number": t.stage.number},
        "glide": glide,
        "crypto_share": round(t.crypto_share, 6),
        "crypto_band": [round(t.crypto_band[0], 6), round(t.crypto_band[1], 6)],
        "cash": t.cash,
        "sleeves": {
            k: {"name": s.name, "weight": round(s.weight, 6), "cadence": s.cadence}
            for k, s in t.sleeves.items()
        },
        "weights": {k: round(v, 6) for k, v in t.weights.items()},
    }


def pct(x: float) -> str:
    return f"{x * 100:.2f} %"


def render_targets(t: Targets, n_stages: int) -> str:
    from tabulate import tabulate  # only the commands that print tables load it (not `run`)

    lines = [f"{t.on}: age {t.age}, stage {t.stage.number} of {n_stages}: {t.stage.name}"]
    if t.glide:
        g = t.glide
        lines.append(
            f"glide path: {g.from_stage} -> {g.to_stage}, step {g.step} of {g.steps} "
            f"({g.progress * 100:.1f} %), {g.starts} .. {g.ends}"
        )
    else:
        lines.append("glide path: none (targets are the stage's own)")
    lo, hi = t.crypto_band
    lines.append(
        f"crypto share of whole portfolio: target {pct(t.crypto_share)} "
        f"(band {pct(lo)} .. {pct(hi)})"
    )
    if t.cash:
        lines.append(f"cash kept in the quote currency: {pct(t.cash)}")
    lines.append("")
    rows = [[s.name, pct(s.weight), s.cadence] for s in t.sleeves.values()]
    lines.append(tabulate(rows, headers=["sleeve", "weight", "rebalance"], disable_numparse=True))
    lines.append("")
    rows = [[a, pct(w)] for a, w in t.weights.items()]
    lines.append(tabulate(rows, headers=["asset", "weight"], disable_numparse=True))
    return "\n".join(lines)


Command = Callable[[argparse.Namespace], int]
