"""Windfall: invest the share of a bonus the stage gives (e.g. 50 % for young professionals).

Exactly like DCA (buys only, biggest gaps first, carry kept) with budget = bonus * share
plus the carry. A windfall is a contribution: while the emergency rule is in force it is
not invested (the guide: "use the emergency fund first").
"""

from __future__ import annotations

from stagewise.planner.book import Refusal, money, pct
from stagewise.planner.dca import invest, must_be_money
from stagewise.planner.fills import refuses
from stagewise.planner.model import Plan, PlanState, Policy
from stagewise.snapshot import Snapshot
from stagewise.targets import Targets


@refuses("windfall")
def plan_windfall(
    snapshot: Snapshot,
    targets: Targets,
    policy: Policy,
    state: PlanState,
    bonus: float,
    share: float,
) -> Plan:
    """Buys for `share` (a fraction, 0.5 = 50 %) of `bonus` (quote currency), plus the carry."""
    must_be_money(bonus, "the bonus")
    must_be_money(share, "the bonus share")
    if share > 1:
        raise Refusal(f"the bonus share is {share!r}: a fraction between 0 and 1 (0.5 = 50 %)")
    label = (
        f"windfall: {pct(share)} of a {money(bonus, snapshot.quote)} bonus "
        f"= {money(bonus * share, snapshot.quote)}"
    )
    return invest("windfall", snapshot, targets, policy, state, bonus * share, label)
