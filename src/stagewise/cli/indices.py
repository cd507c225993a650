"""`stagewise indices`: each index's rule (or fixed basket) and its latest recorded
composition, from the state file (or a simulation's, with --db)."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

from stagewise.cli.arguments import load, parse_date
from stagewise.cli.output import EX_OK, emit_json
from stagewise.settings import Config
from stagewise.stages import Index


def add_indices_command(command: Callable[..., argparse.ArgumentParser]) -> None:
    p = command("indices", cmd_indices, "the indices' rules and latest compositions")
    p.add_argument(
        "--at", type=parse_date, metavar="YYYY-MM-DD", help="the compositions as of that day"
    )
    p.add_argument("--json", action="store_true", help="print as JSON")
    p.add_argument(
        "--db", type=Path, metavar="PATH", help="read another state file (e.g. a simulation's)"
    )


def cmd_indices(args: argparse.Namespace) -> int:
    from stagewise.cli.arguments import given_db, read_store

    config = load(args)
    store = read_store(config.state_path if args.db is None else given_db(args.db))
    at = None
    if args.at is not None:  # the end of that day, in the investor's time zone
        at = datetime.combine(args.at + timedelta(days=1), time(0), tzinfo=config.tz)
    try:
        recorded = store.compositions(at=at) if store is not None else {}
    finally:
        if store is not None:
            store.close()
    data = {name: _index_data(config, name, recorded.get(name)) for name in config.plan.indices}
    if args.json:
        emit_json(data)
        return EX_OK
    for name, shown in data.items():
        print(f"{shown['name']} ({name}), {shown['cadence']}: {shown['rule']}")
        if shown["focus"]:
            print(f"  focus (the guide's): {shown['focus']}")
        if shown["constituents"] is None:
            print("  not composed yet (it is at its first rebalance or first job)")
            continue
        if shown["chosen_at"] is not None:
            print(f"  chosen {shown['chosen_at']} from the closes of {shown['close_day']}")
        figures = shown["figures"]
        index = config.plan.indices[name]
        for asset, weight in shown["constituents"].items():
            figure = f"  (figure {figure_text(index, figures[asset])})" if asset in figures else ""
            print(f"  {asset:<8} {weight:6.2f} %{figure}")
        for note in shown["notes"]:
            print(f"  note: {note}")
    return EX_OK


def _index_data(config: Config, name: str, recorded: dict[str, Any] | None) -> dict[str, Any]:
    index = config.plan.indices[name]
    fixed = index.constituents
    return {
        "name": index.name,
        "cadence": index.cadence,
        "focus": index.focus,
        "rule": describe(index),
        "universe": index.universe,
        "source": None if index.source is None else str(index.source),
        "constituents": dict(fixed) if fixed is not None else ordered(recorded),
        "chosen_at": None if recorded is None else recorded["moment"].isoformat(),
        "close_day": None if recorded is None else recorded["close_day"],
        "figures": {} if recorded is None else recorded["figures"],
        "notes": [] if recorded is None else recorded["notes"],
    }


def ordered(recorded: Mapping[str, Any] | None) -> dict[str, float] | None:
    """A recorded composition's weights in rank order (the state file keeps them by name),
    or by weight when nothing ranked them; None for no composition."""
    if recorded is None:
        return None
    ranks = recorded.get("ranks") or {}
    by = sorted(recorded["weights"].items(), key=lambda aw: (ranks.get(aw[0], 0), -aw[1], aw[0]))
    return dict(by)


def describe(index: Index) -> str:
    """The index's rule in a line ("top 5 of 8 by 30-day momentum, equal weights")."""
    if index.source is not None:
        return f"the holdings in {index.source} (re-read at each reconstitution)"
    if index.universe is None:
        return "a fixed basket"
    if isinstance(index.universe, list):
        among, everything = f"{len(index.universe)}", f"all {len(index.universe)} assets"
    else:
        own = f" and {', '.join(index.exclude)}" if index.exclude else ""
        among = everything = (
            f"the exchange's assets (less stablecoins, fiat, wrapped, leveraged{own})"
        )
    select = index.select
    if select == "all":
        chosen = everything
    else:
        chosen = f"top {select.top} of {among} by {select.lookback_days}-day {select.by}"
        chosen += f" skipping {select.skip_days} days" if select.skip_days else ""
    floor = index.liquidity
    if floor is not None:
        chosen += (
            f" with a median daily quote volume over {floor.days} days of at least "
            f"{floor.min_quote_volume:,.0f}"
        )
    caps = [
        f"{label} {pct:g} %"
        for label, pct in (("at most", index.max_weight_pct), ("at least", index.min_weight_pct))
        if pct is not None
    ]
    weigh = index.weigh.replace("_", " ")
    return f"{chosen}, {weigh} weights" + (f" ({', '.join(caps)} each)" if caps else "")


def figure_text(index: Index, figure: float) -> str:
    """A ranking figure as `indices` prints it: a return or volatility in percent, a
    volume in the quote currency."""
    by = None if index.select == "all" else index.select.by
    return f"{figure:,.0f}" if by == "volume" else f"{figure:+.2%}"


# -- what `stage` and `status` show of each index held -------------------------------------


def recorded_at(config: Config, state: Path, at: datetime) -> dict[str, dict[str, Any]]:
    """The latest composition of each rule index at `at`, from the state file (read-only;
    none when there is no file yet)."""
    from stagewise.cli.arguments import read_store

    store = read_store(state)
    if store is None:
        return {}
    try:
        return store.compositions(at=at)
    finally:
        store.close()


def held_indices(
    config: Config, sleeves: Iterable[str], recorded: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Each index of `sleeves`: its kind, cadence, current constituents (percent; None: a
    rule index not composed yet) and, for a rule index, when they were chosen."""
    out = {}
    for name in sleeves:
        index = config.plan.indices[name]
        last = recorded.get(name)
        kind = "holdings file" if index.source else "rule" if index.is_rule else "fixed basket"
        constituents = index.constituents if not index.is_rule else ordered(last)
        out[name] = {
            "name": index.name,
            "kind": kind,
            "cadence": index.cadence,
            "constituents": None if constituents is None else dict(constituents),
            # in the investor's time zone, as `status` shows times
            "chosen_at": None if last is None else last["moment"].astimezone(config.tz).isoformat(),
            "close_day": None if last is None else last["close_day"],
        }
    return out


def render_held(shown: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The lines of `held_indices`: one an index, then its constituents."""
    lines = ["index constituents:"]
    for data in shown.values():
        head = f"  {data['name']} ({data['kind']}, {data['cadence']})"
        if data["constituents"] is None:
            lines.append(f"{head}: not composed yet (at its first rebalance or first job)")
            continue
        if data["chosen_at"] is not None:
            chosen = datetime.fromisoformat(data["chosen_at"])
            head += f": chosen {chosen:%Y-%m-%d %H:%M} from the closes of {data['close_day']}"
        held = ", ".join(f"{a} {w:.2f} %" for a, w in data["constituents"].items())
        lines += [head, f"    {held}"]
    return lines
