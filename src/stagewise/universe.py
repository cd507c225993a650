"""The universe a rule index chooses from: its own list, or every asset trading against the
quote currency ("exchange") less the exclusions.

The shipped exclusions leave out what is not an investment of its own: stablecoins and fiat
currencies (cash by another name), wrapped and staked tokens (another asset in a wrapper),
and leveraged tokens (BTCUP, ETH3L: a bet with decay). An index's `exclude` adds to them.
Pure: the assets an exchange (or a price history) lists are given.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from stagewise.stages import Index

# Shipped exclusions, by kind (exchange codes). Extend them per index with `exclude`.
EXCLUDED: Mapping[str, frozenset[str]] = {
    "a stablecoin": frozenset(
        {
            "USDT", "USDC", "BUSD", "DAI", "TUSD", "FDUSD", "USDP", "USDD", "PYUSD", "USDE",
            "USDS", "GUSD", "FRAX", "LUSD", "SUSD", "USTC", "UST", "EURI", "EURC", "AEUR",
            "EURT", "XUSD", "USD1", "RLUSD", "BFUSD", "VAI",
        }
    ),
    "a fiat currency": frozenset(
        {
            "USD", "EUR", "GBP", "JPY", "AUD", "CAD", "CHF", "TRY", "BRL", "RUB", "UAH",
            "NGN", "ZAR", "PLN", "RON", "ARS", "MXN", "COP", "IDR", "BIDR", "IDRT",
            "BVND", "KRW", "INR", "CZK", "SEK", "NOK", "DKK", "HKD", "SGD", "NZD",
        }
    ),
    "a wrapped or staked token": frozenset(
        {
            "WBTC", "WETH", "WBETH", "BETH", "STETH", "WSTETH", "RETH", "CBETH", "BNSOL",
            "WBNB", "BTCB", "RENBTC", "HBTC", "TBTC", "CBBTC", "SOLVBTC", "LBTC", "BBTC",
            "MSOL", "JITOSOL", "STSOL", "WEETH", "EZETH", "WSOL", "WAVAX", "WMATIC",
        }
    ),
}  # fmt: skip
# BTCUP, BTCDOWN, ETHBULL, ETHBEAR, BTC3L, ETH5S ...: a listed asset's code with a suffix.
_LEVERAGED = re.compile(r"^(?P<base>[A-Z0-9]{2,}?)(UP|DOWN|BULL|BEAR|[2-5][LS])$")
LEVERAGED = "a leveraged token"


@dataclass(frozen=True)
class Universe:
    """The assets a reconstitution chooses from, and those left out, each with why:
    `excluded` (a note each), `listed_out` by the exclusions (one note for them all)."""

    assets: tuple[str, ...]
    excluded: Mapping[str, str] = field(default_factory=dict)
    listed_out: Mapping[str, str] = field(default_factory=dict)

    def notes(self) -> list[str]:
        out = [f"{a} excluded: {why}" for a, why in sorted(self.excluded.items())]
        if self.listed_out:
            out.append(
                f"{len(self.listed_out)} excluded as stablecoins, fiat, wrapped or leveraged "
                f"tokens or by the index's exclude list: {', '.join(sorted(self.listed_out))}"
            )
        return out


def resolve(
    index: Index,
    listed: Collection[str],
    quote: str,
    unlisted: str,
    assets: Sequence[str] | None = None,
) -> Universe:
    """The universe of `index` among the assets `listed` against `quote`: its own list (or
    `assets`, a holdings file's), an asset not listed excluded with the reason `unlisted` (a
    template of {asset} and {quote}); or "exchange": every listed asset less the shipped
    exclusions and the index's own."""
    chosen = assets if assets is not None else index.universe
    if isinstance(chosen, list | tuple):
        there = set(listed)
        missing = {a: unlisted.format(asset=a, quote=quote) for a in chosen if a not in there}
        return Universe(tuple(a for a in chosen if a in there), missing)
    own = set(index.exclude)
    assets, out = [], {}
    for asset in sorted(set(listed) - {quote}):
        why = exclusion(asset, listed, own)
        if why is None:
            assets.append(asset)
        else:
            out[asset] = why
    return Universe(tuple(assets), listed_out=out)


def exclusion(asset: str, listed: Collection[str], own: Collection[str] = ()) -> str | None:
    """Why `asset` is left out of an exchange universe (None: it is in it)."""
    if asset in own:
        return "on the index's exclude list"
    for kind, codes in EXCLUDED.items():
        if asset in codes:
            return kind
    match = _LEVERAGED.match(asset)
    if match is not None and match["base"] in listed:  # JUP is not J-UP: J is not listed
        return LEVERAGED
    return None
