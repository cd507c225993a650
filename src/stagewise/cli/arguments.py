"""Reading the command line: argument types, and the config a command runs with."""

from __future__ import annotations

import argparse
import sys
import unicodedata
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from stagewise.config_files import ConfigSource, find_config
from stagewise.errors import ConfigError
from stagewise.settings import Config, load_config

if TYPE_CHECKING:
    from stagewise.history import PriceHistory
    from stagewise.store import Store


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
    """A reason a person can read later: not empty, not only spaces, one line without
    control characters (a terminal would run an escape sequence shown back with it)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("give a reason (it is kept in the journal)")
    if any(unicodedata.category(c) == "Cc" for c in text):
        raise argparse.ArgumentTypeError(
            "the reason holds a control character (a line break, an escape): give it as "
            "one line of text"
        )
    return text.strip()


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"'{text}' must be at least 1")
    return value


# The days a command may be asked about: a plan's lifetime (a birth date from 1900 to 2100,
# an age to 130, see the settings), far from the ends of Python's calendar.
FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(2299, 12, 31)


def parse_time(text: str) -> datetime:
    """An ISO date or date-time; naive ones are completed later in the investor's zone."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"'{text}' is not a time like 2027-01-31 or 2027-01-31T09:00"
        ) from None
    in_range(text, moment.date())
    return moment


def parse_date(text: str) -> date:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date like 2027-01-31") from None
    return in_range(text, day)


def in_range(text: str, day: date) -> date:
    """`day` (given as `text`), refused outside FIRST_DAY .. LAST_DAY."""
    if not FIRST_DAY <= day <= LAST_DAY:
        raise argparse.ArgumentTypeError(f"'{text}' is not a day from {FIRST_DAY} to {LAST_DAY}")
    return day


def port_number(text: str) -> int:
    """A TCP port to listen on: 1 to 65535."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a port number") from None
    if not 1 <= port <= 65_535:
        raise argparse.ArgumentTypeError(f"'{text}' is not a port number (1 to 65535)")
    return port


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
    return load_config(source.path, example=source.example, now=datetime.now(UTC))


def aware(moment: datetime, config: Config) -> datetime:
    """`moment` with the investor's time zone if it has none."""
    return moment if moment.tzinfo else moment.replace(tzinfo=config.tz)


def today(config: Config) -> date:
    return datetime.now(config.tz).date()


def load_history(args: argparse.Namespace, config: Config) -> PriceHistory:
    """The price history `simulate` runs on: --from-exchange's download, --prices, else the
    shipped sample (with --volumes' quote volumes beside a CSV's closes)."""
    from stagewise.history import load_csv, load_volumes

    if args.from_exchange:
        from stagewise.downloads import download_history

        def downloading(symbol: str) -> None:
            print(f"downloading {symbol} daily candles ...", file=sys.stderr)

        now = datetime.now(UTC)
        return download_history(config, args.start, args.end, now, downloading=downloading)
    from stagewise import shipped

    history = load_csv(args.prices or shipped.path(shipped.SAMPLE_PRICES))
    return load_volumes(args.volumes, history) if args.volumes else history


def given_db(path: Path) -> Path:
    """The state file a command was told to read with --db: it must be there (a mistyped
    path must not read as "nothing recorded"), else InputMissing naming it (or its folder)."""
    from stagewise.errors import InputMissing

    if path.is_dir():
        raise InputMissing(f"--db {path} is a folder: name the state file")
    if not path.is_file():
        raise InputMissing(f"no state file at {path}")
    return path


def read_store(path: Path) -> Store | None:
    """The state file at `path`, read-only (a read command creates nothing); None when
    there is none yet (no file, or one that holds nothing yet)."""
    from stagewise.store import NoStateYet, Store

    if not path.exists():
        return None
    try:
        return Store.read(path)
    except NoStateYet:
        return None
