"""The planner's Policy, read from the investor's settings (percent there, fractions here)."""

from __future__ import annotations

from stagewise.planner.model import Policy
from stagewise.settings import Settings


def policy_from(settings: Settings, *, allow_deposit: bool) -> Policy:
    """The Policy of `settings`. `allow_deposit`: read-only mode, where DCA/windfall money may
    not be on the account yet (paper mode deposits the contribution first: False)."""
    p = settings.policy
    return Policy(
        band_abs=p.band_abs_pct / 100,
        band_rel=p.band_rel_pct / 100,
        rebalance_to=p.rebalance_to,
        drift_watch=p.drift_watch,
        max_order_share=p.max_order_pct / 100,
        min_order=p.min_order,
        min_rebalance_share=p.min_rebalance_pct / 100,
        milestone_sell_share=p.milestone_sell_pct / 100,
        profit_min_days=p.profit_min_days,
        profit_min_value=p.profit_min_value,
        fee_rate=settings.paper.fee_rate,
        slippage=settings.paper.slippage,
        outside_value=settings.investor.outside_investments,
        allow_deposit=allow_deposit,
    )
