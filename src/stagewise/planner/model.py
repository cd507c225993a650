"""The planner's plain data: what goes in (policy, carried state) and what comes out (a plan).

Frozen dataclasses; no I/O. Weights are fractions of the account's value; money is in the
quote currency.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

Side = Literal["buy", "sell"]
# The rules whose sale proceeds leave the account (not for the next rebalance to spend).
MOVED_OUT = ("profit", "withdraw")
Rule = Literal["dca", "rebalance", "profit", "withdraw", "windfall"]


@dataclass(frozen=True, slots=True)
class Policy:
    """How the planner trades, from the investor's settings (fractions, not percent).

    band_abs / band_rel: an asset is outside its band when |weight - target| exceeds the
        smaller of band_abs and band_rel * target (the 5/25 rule).
    rebalance_to: "target" trades all the way back; "band" only to the band's edge.
    drift_watch: what the drift watch compares with the bands between scheduled rebalances:
        "sleeve" each index's share (its assets drift until the index's own cadence), or
        "asset" each asset's.
    max_order_share: the most one sell may move, as a share of the account's value: a larger
        one is proposed in part, up to it (buys spend the account's cash: not capped).
    min_order: rebalance, drift, profit and withdrawal orders worth less (quote currency)
        are not proposed (dust); DCA and windfall buys only need the market's minimum.
    min_rebalance_share: a drift-watch rebalance moving less than this share of the account
        in all is not proposed (a quiet check).
    milestone_sell_share: the part of a position's gain sold at each profit milestone.
    profit_min_days / profit_min_value: a milestone is taken only from a position held at
        least this many days (since it was opened: `PlanState.held_since`) and worth at least
        this much (quote currency): a new or tiny position's gain is noise, not a profit
        worth moving out.
    fee_rate: the fee assumed where a market declares none.
    slippage: how much worse than the snapshot price an order is assumed to fill (buys
        above, sells below); the order's estimated price includes it.
    outside_value: the investor's investments held outside the account (for crypto share).
    allow_deposit: read-only mode: DCA/windfall buys may need money not yet on the account;
        the plan then says how much to deposit. Paper mode deposits first and sets it False.
    """

    band_abs: float = 0.05
    band_rel: float = 0.25
    rebalance_to: Literal["target", "band"] = "target"
    drift_watch: Literal["sleeve", "asset"] = "sleeve"
    max_order_share: float = 0.25
    min_order: float = 10.0
    min_rebalance_share: float = 0.01
    milestone_sell_share: float = 0.5
    profit_min_days: int = 90
    profit_min_value: float = 500.0
    fee_rate: float = 0.001
    slippage: float = 0.0
    outside_value: float = 0.0
    allow_deposit: bool = False


@dataclass(frozen=True, slots=True)
class PlanState:
    """What the planner carries between runs (kept by the store).

    cost_basis: average cost of one unit per asset, in the quote currency.
    milestones_taken: per asset, the gain milestones (percent) already sold at.
    profit_base: per asset, the price its milestones count from once every milestone was
        taken (the price of the last one): they re-arm there. Absent: the average cost.
    held_since: per asset, the UTC day (ISO text) its position was opened (went from none
        to held, or was first seen held); gone when the position is.
    carry: DCA/windfall money not yet placed (too small for a market's minimum).
    profit_to_move: read-only mode: proceeds proposed to be moved off the account (profit
        taken, for the investor's traditional investments; a withdrawal, for the retiree)
        and not yet seen leaving it. Every rule
        plans as if they were gone (never spent); lowered by each fall of the account's
        value stagewise sees (`fills.state_seen`). Paper mode books them out at once (0).
    profit_due: per asset, units of a milestone's sale still to sell: a sale above the
        implausible-order cap is proposed in parts, one a run, until it is all sold.
    withdrawn_year / withdrawn: the calendar year and the amount withdrawn so far in it.
    withdraw_due: withdrawal money earlier periods could not raise (owed to the next).
    paused / pause_reason: the guide's emergency rule is in force.
    """

    cost_basis: Mapping[str, float] = field(default_factory=dict)
    milestones_taken: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    profit_base: Mapping[str, float] = field(default_factory=dict)
    profit_due: Mapping[str, float] = field(default_factory=dict)
    held_since: Mapping[str, str] = field(default_factory=dict)
    carry: float = 0.0
    profit_to_move: float = 0.0
    withdrawn_year: int = 0
    withdrawn: float = 0.0
    withdraw_due: float = 0.0
    paused: bool = False
    pause_reason: str = ""


@dataclass(frozen=True, slots=True)
class Order:
    """One proposed order, rounded to its market's grid and explained."""

    symbol: str
    base: str
    side: Side
    amount: float
    price: float
    notional: float
    fee: float
    rule: Rule
    reason: str
    weight_before: float
    weight_after: float
    weight_target: float


@dataclass(frozen=True, slots=True)
class Skip:
    """Something the planner chose not to propose, and why (below minimum, cap, no cash …)."""

    asset: str
    rule: Rule
    reason: str
    notional: float = 0.0


@dataclass(frozen=True, slots=True)
class Summary:
    """The account around the plan: value, crypto share of the whole portfolio, drift."""

    value: float
    crypto_share: float
    drift_before: Mapping[str, float]
    drift_after: Mapping[str, float]


@dataclass(frozen=True, slots=True)
class Plan:
    """One run's proposal. `refused` is set (and orders empty) when no plan could be made."""

    rule: Rule
    orders: tuple[Order, ...]
    skipped: tuple[Skip, ...]
    notes: tuple[str, ...]
    state: PlanState
    summary: Summary | None
    deposit_needed: float = 0.0
    refused: str | None = None

    @property
    def carry(self) -> float:
        return self.state.carry

    @property
    def moved_out(self) -> float:
        """Quote money the plan takes off the account once it fills: a profit sale's
        proceeds, which go to the investor's traditional investments, and a withdrawal's,
        which the retiree takes (0 for other rules)."""
        if self.rule not in MOVED_OUT:
            return 0.0
        return sum(o.notional - o.fee for o in self.orders if o.side == "sell")
