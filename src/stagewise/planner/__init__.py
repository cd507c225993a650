"""The planner: pure rules that turn a snapshot, the targets, a policy and the carried state
into a proposal (orders with reasons), never placing anything.

One module per rule of the guide (dca, windfall, rebalance, profit, withdraw); the shared
machinery is `book` (the checked account), `orders` (one order on the market's grid) and
`fills` (the account once a plan fills). No I/O, no clock, no logging.
"""

from stagewise.planner.dca import plan_dca
from stagewise.planner.fills import apply
from stagewise.planner.model import Order, Plan, PlanState, Policy, Skip, Summary
from stagewise.planner.profit import plan_profit
from stagewise.planner.rebalance import plan_drift, plan_rebalance
from stagewise.planner.windfall import plan_windfall
from stagewise.planner.withdraw import plan_withdraw

__all__ = [
    "Order",
    "Plan",
    "PlanState",
    "Policy",
    "Skip",
    "Summary",
    "apply",
    "plan_dca",
    "plan_profit",
    "plan_drift",
    "plan_rebalance",
    "plan_windfall",
    "plan_withdraw",
]
