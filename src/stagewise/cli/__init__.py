"""The `stagewise` command line: a thin layer over the library. The only package that parses
arguments, and the only one that maps errors to exit codes.

    __init__.py  the parser, main() and the config/stage commands
    arguments.py argument types and the config of the command line
    output.py    exit codes, JSON, the texts the commands share
    commands.py  run, once, proposals, pause/resume
    status.py    status
    windfall.py  windfall (announce, list, cancel)
    simulate.py  simulate
    init.py      init
"""

from __future__ import annotations

import argparse
import os
import sys
import typing
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path

from stagewise import __version__
from stagewise.cli.arguments import (
    load,
    parse_date,
    parse_time,
    positive_int,
    reason_text,
    today,
    windfall_word,
)
from stagewise.cli.output import (
    EX_CONFIG,
    EX_OK,
    EX_USAGE,
    emit_json,
    exit_code_for,
    money_json,
    render_money,
    render_targets,
    targets_json,
)
from stagewise.contributions import choice_warnings, contribution_warnings
from stagewise.errors import ConfigError, StagewiseError
from stagewise.guidance import guidance_json, guidance_lines
from stagewise.periods import JOBS, SCHEDULED_JOBS
from stagewise.targets import targets_on

DESCRIPTION = """\
stagewise keeps a crypto portfolio on a life-stage plan. It reads balances and prices
through ccxt (read-only key, or a paper account), and records the orders it PROPOSES in
SQLite and in its logs. It never places an order.

Config: --config PATH, else $STAGEWISE_CONFIG, else ~/.config/stagewise/config.toml
($XDG_CONFIG_HOME), else /etc/stagewise/config.toml; without one, the read-only commands
use the shipped example (and say so). `stagewise init` writes a starter config.
Environment variables override the file: STAGEWISE_<SECTION>__<KEY>.
Exit codes: 0 ok, 1 a run failed, 2 bad arguments, 65 bad data, 66 no such input file,
69 exchange unavailable, 73 output file refused, 75 state file busy, read-only or disk
full (try again once fixed), 78 bad config. With --json, an error is also printed as JSON."""


class BadArguments(Exception):
    """argparse refused the command line (exit 2): the parser that did, and its message."""

    def __init__(self, parser: argparse.ArgumentParser, message: str) -> None:
        super().__init__(message)
        self.parser, self.message = parser, message


class Parser(argparse.ArgumentParser):
    """argparse's parser (and its subcommands'), whose refusals reach `main` as BadArguments
    instead of exiting, so that `--json` answers them on stdout too."""

    def error(self, message: str) -> typing.NoReturn:
        raise BadArguments(self, message)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    words = sys.argv[1:] if argv is None else list(argv)
    try:
        args = parser.parse_args(words)
    except BadArguments as e:
        e.parser.print_usage(sys.stderr)
        print(f"{e.parser.prog}: error: {e.message}", file=sys.stderr)
        if "--json" in words:
            emit_error(EX_USAGE, e.message)
        return EX_USAGE
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
        emit_error(code, str(error).splitlines()[0], getattr(error, "problems", None) or [])
    return code


def emit_error(code: int, headline: str, problems: Sequence[str] = ()) -> None:
    """An error as JSON on stdout: its exit code, its first line and each problem."""
    emit_json({"ok": False, "exit_code": code, "error": headline, "errors": problems or [headline]})


def build_parser() -> argparse.ArgumentParser:
    from stagewise.cli.commands import cmd_once, cmd_pause, cmd_proposals, cmd_resume, cmd_run
    from stagewise.cli.status import cmd_status
    from stagewise.cli.windfall import cmd_windfall

    # --config is accepted before or after the command (`stagewise run --config X`).
    common = Parser(add_help=False)
    common.add_argument(
        "--config", metavar="PATH", default=argparse.SUPPRESS, help="the investor config (TOML)"
    )
    parser = Parser(
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
    once.add_argument("job", choices=SCHEDULED_JOBS, help="the job to run")
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
    proposals.add_argument("--job", choices=JOBS, help="only of this job")
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
        "warnings": [
            *contribution_warnings(config, today(config)),
            *choice_warnings(config, today(config)),
        ],
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
    recorded = recorded_at(config, config.state_path, end)
    targets = targets_on(config.profile, on, {i: c["weights"] for i, c in recorded.items()})
    money = money_json(config, on)
    indices = held_indices(config, targets.sleeves, recorded)
    plan = config.plan
    if args.json:
        guide = guidance_json(targets.stage, plan)
        emit_json({**targets_json(targets, on), "indices": indices, **money, "guide": guide})
    else:
        print(render_targets(targets, on, len(config.plan.stages)))
        print("\n".join(["", *render_held(indices)]))
        print("\n".join(["", *render_money(money, config.quote)]))
        print("\n".join(["", *guidance_lines(targets.stage, plan, config.quote)]))
    return EX_OK


Command = Callable[[argparse.Namespace], int]
