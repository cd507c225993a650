"""What a command gives back: its exit code, JSON, and the texts `stage` and `status` share."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from stagewise.contributions import contribution_on, retirement, withdrawal_rate
from stagewise.errors import StagewiseError
from stagewise.settings import Config
from stagewise.targets import Targets

EX_OK = 0
EX_FAILURE = 1
EX_USAGE = 2
EX_DATAERR = 65
EX_NOINPUT = 66
EX_UNAVAILABLE = 69
EX_CANTCREAT = 73
EX_TEMPFAIL = 75
EX_CONFIG = 78


def exit_code_for(error: StagewiseError) -> int:
    from stagewise.errors import (
        DataError,
        ExchangeAuthError,
        ExchangeUnavailable,
        InputMissing,
        OutputRefused,
        StateUnavailable,
        UsageError,
    )

    if isinstance(error, ExchangeUnavailable | ExchangeAuthError):
        return EX_UNAVAILABLE
    if isinstance(error, StateUnavailable):
        return EX_TEMPFAIL
    if isinstance(error, DataError):  # a price history, an events file
        return EX_DATAERR
    if isinstance(error, UsageError):
        return EX_USAGE
    if isinstance(error, OutputRefused):
        return EX_CANTCREAT
    if isinstance(error, InputMissing):
        return EX_NOINPUT
    return EX_FAILURE


def emit_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


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


def targets_json(t: Targets, on: date) -> dict[str, Any]:
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
        "on": on.isoformat(),
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


def render_targets(t: Targets, on: date, n_stages: int) -> str:
    from tabulate import tabulate  # only the commands that print tables load it (not `run`)

    lines = [f"{on}: age {t.age}, stage {t.stage.number} of {n_stages}: {t.stage.name}"]
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
