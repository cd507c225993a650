"""`stagewise init`: a starter config to edit (and, if asked, the plan files and the service)."""

from __future__ import annotations

import argparse
import os
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

from stagewise import shipped
from stagewise.cli.output import EX_OK
from stagewise.config_files import SYSTEM_CONFIG, SYSTEM_STATE, config_places

SYSTEMD_UNIT = Path("/etc/systemd/system/stagewise.service")
UNIT_COMMAND = Path("/usr/local/bin/stagewise")  # the unit's ExecStart

HELP = """\
Writes a starter config (the shipped example, to edit) to ~/.config/stagewise/config.toml
($XDG_CONFIG_HOME), to DIR, or with --system to /etc/stagewise/ together with the env file
for the API keys and the systemd unit. An existing file is never overwritten: it is kept
as it is, and said so. --example NAME writes the guide's worked example NAME (jake, maria,
robert, linda, george: their figures, and the command that tests the guide's claim) as
NAME.toml instead of config.toml."""


def add_init_command(command: Callable[..., argparse.ArgumentParser]) -> None:
    p = command("init", cmd_init, "write a starter config to edit (never overwrites a file)")
    p.description = HELP
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("dir", nargs="?", type=Path, help="the folder to write config.toml into")
    p.add_argument(
        "--plan",
        action="store_true",
        help="also copy the plan (stages.toml, indices.toml) beside it to edit, and use those",
    )
    p.add_argument(
        "--example",
        choices=shipped.examples(),
        help="the guide's worked example of that name as NAME.toml (a sweep tests its claim)",
    )
    p.add_argument(
        "--system",
        action="store_true",
        help="the service install: /etc/stagewise/ (config, env file for the keys) and "
        f"{SYSTEMD_UNIT}; the state in {SYSTEM_STATE.parent}",
    )


def cmd_init(args: argparse.Namespace) -> int:
    if args.system and (args.dir is not None or args.example):
        given = "a folder" if args.dir is not None else "--example"
        print(f"stagewise: init: give {given} or --system, not both", file=sys.stderr)
        return 2
    system = args.system
    if args.dir is not None and args.dir.exists() and not args.dir.is_dir():
        print(
            f"stagewise: init: {args.dir} is a file: give the folder to write config.toml "
            f"into (e.g. {args.dir.parent})",
            file=sys.stderr,
        )
        return 2
    folder = SYSTEM_CONFIG.parent if system else (args.dir or config_places()[0].parent)
    config = folder / f"{args.example or 'config'}.toml"
    starter = starter_config(args.plan, system, args.example)
    files: list[tuple[Path, str, int]] = [(config, starter, 0o644)]
    if args.plan:
        files += [(folder / n, shipped.text(n), 0o644) for n in (shipped.STAGES, shipped.INDICES)]
    if system:
        files.append((folder / "stagewise.env", shipped.text(shipped.ENV_EXAMPLE), 0o600))
        files.append((SYSTEMD_UNIT, shipped.text(shipped.UNIT), 0o644))
    kept = set()
    try:
        for path, text, mode in files:
            if not write_new(path, text, mode):
                kept.add(path)
            print(f"{'kept (exists)' if path in kept else 'wrote'}  {path}")
    except OSError as e:
        print(f"stagewise: init: cannot write {e.filename}: {e.strerror}", file=sys.stderr)
        return 73  # EX_CANTCREAT: nothing already there was touched
    if args.plan and config in kept and not names_plan_files(config):
        print(
            f"note: the kept {config.name} does not use the plan files copied beside it: set "
            'stages = "stages.toml" and indices = "indices.toml" in its [plan] table to edit them'
        )
    print()
    print(next_steps(config, system, starter if args.example else None))
    return EX_OK


def names_plan_files(config: Path) -> bool:
    """True when the config at `config` names both plan files of its folder ([plan] stages
    and indices); False too when it cannot be read as TOML."""
    try:
        plan = tomllib.loads(config.read_text(encoding="utf-8-sig")).get("plan", {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False
    folder = config.parent
    wanted = {"stages": shipped.STAGES, "indices": shipped.INDICES}
    return all(
        isinstance(plan.get(key), str)
        and (folder / plan[key]).resolve() == (folder / name).resolve()
        for key, name in wanted.items()
    )


def starter_config(plan: bool, system: bool, example: str | None = None) -> str:
    """The config `init` writes: the shipped example, or the guide's worked `example`."""
    text = shipped.text(shipped.example(example) if example else shipped.EXAMPLE)
    if plan:
        text = text.replace('# stages = "stages.toml"', 'stages = "stages.toml"')
        text = text.replace('# indices = "indices.toml"', 'indices = "indices.toml"')
    if system:
        text = text.replace(f'# path = "{SYSTEM_STATE}"', f'path = "{SYSTEM_STATE}"')
    return text


def write_new(path: Path, text: str, mode: int) -> bool:
    """Write `path` only if it does not exist (checked and created in one step); False if
    it does. The file is created with `mode` (e.g. 0600 for the keys), never wider."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(path, mode)  # the umask may have narrowed it; never widened beyond `mode`
    return True


def next_steps(config: Path, system: bool, example: str | None = None) -> str:
    named = "" if system or config == config_places()[0] else f" --config {config}"
    if example is not None:  # the guide's claim, tested as its comment says
        return "\n".join(["next steps:", *(f"  {step}" for step in _claim(example, config))])
    steps = [
        f"edit {config}: your birth date, time zone, outside investments, contribution",
        f"stagewise{named} check-config",
        f"stagewise{named} stage         # the stage and the targets it gives you",
        f"stagewise{named} simulate      # the plan over the shipped sample prices",
    ]
    if system:
        steps.append(f"API keys (read-only mode): {config.parent / 'stagewise.env'} (mode 0600)")
        if not UNIT_COMMAND.exists():  # the unit's ExecStart
            steps.append(f"ln -s {Path(sys.argv[0]).resolve()} {UNIT_COMMAND}")
        steps.append("systemctl daemon-reload && systemctl enable --now stagewise")
    else:
        steps.append(f"stagewise{named} run           # the daemon, in the foreground")
    return "\n".join(["next steps:", *(f"  {n}. {step}" for n, step in enumerate(steps, 1))])


def _claim(example: str, config: Path) -> list[str]:
    """The sweep an example's comment gives to test the guide's claim, on the file written
    (its --prices left to the user: without it, the GENERATED sample)."""
    steps = [f"stagewise --config {config} check-config"]
    for line in example.splitlines():
        words = line.lstrip("# ").split()
        if words[:2] != ["stagewise", "simulate"]:
            continue
        rest = words[2:]
        for option in ("--config", "--prices"):
            if option in rest:
                at = rest.index(option)
                del rest[at : at + 2]
        steps.append(
            f"stagewise --config {config} simulate {' '.join(rest)} --prices YOUR-HISTORY.csv"
        )
    return steps
