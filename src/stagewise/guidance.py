"""The guide's figures for a stage that no rule trades on, as a person reads them.

The planner trades on a stage's bands, cadences, milestones and rates; the guide gives each
stage more: the ages and years to retirement it was written for, the emergency fund to keep
outside crypto, the drawdown its investor should sit through, the portfolio goal and the
sleeves' expected returns; and, for every stage, the transition protocol and the emergency
rule. `stagewise stage` prints them (and `--json` has them), the yearly re-assessment
records them with the investor's progress toward the goal, and `simulate` compares its
drawdown and values with them.

Pure: functions of the plan data.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from stagewise.stages import PlanData, Stage


@dataclass(frozen=True)
class Goal:
    """The stage's portfolio goal (quote currency; both 0: none, keep what there is)."""

    low: float
    high: float
    by_age: int

    @property
    def growth(self) -> bool:
        return self.high > 0

    def progress(self, value: float) -> str:
        """How `value` stands against the goal, in words."""
        if not self.growth:
            return "the guide sets no growth goal for this stage: preserve the portfolio"
        if value >= self.high:
            return "at or above the top of the goal"
        if value >= self.low:
            return "inside the goal's range"
        return f"{value / self.low * 100:.1f} % of the goal's lower end"  # low > value >= 0


def goal_of(stage: Stage) -> Goal:
    g = stage.contribution.portfolio_goal
    return Goal(g.min, g.max, g.by_age)


def guidance_json(stage: Stage, plan: PlanData) -> dict[str, Any]:
    """The stage's reported figures (percent as written in the data, money in the quote)."""
    goal = goal_of(stage)
    rule = plan.emergency_rule
    rules = plan.rules
    example = rules.transition_example
    fund = stage.emergency_fund_months
    return {
        "guide_ages": stage.guide_ages,
        "years_to_retirement": stage.years_to_retirement,
        "emergency_fund_months": [fund.min, fund.max],
        "max_drawdown_accepted_pct": stage.max_drawdown_accepted_pct,
        "portfolio_goal": {"min": goal.low, "max": goal.high, "by_age": goal.by_age},
        "expected_return_pct": {
            s.name: None
            if s.expected_return_pct is None
            else {
                "min": s.expected_return_pct.min,
                "max": s.expected_return_pct.max,
                "when": s.expected_return_pct.when,
            }
            for s in stage.sleeve
        },
        "example": dict(stage.example),
        "transition_months": [rules.transition_months_min, rules.transition_months_max],
        "transition_example": None
        if example is None
        else {
            "from_age": example.from_age,
            "to_age": example.to_age,
            "yearly_shift_pct": example.yearly_shift_pct,
        },
        "emergency_rule": {
            "stop_contributions": rule.stop_contributions,
            "sell": rule.sell,
            "use_emergency_fund_first": rule.use_emergency_fund_first,
            "resume": rule.resume,
        },
    }


def guidance_lines(stage: Stage, plan: PlanData, quote: str) -> list[str]:
    """`guidance_json` as `stagewise stage` prints it, one figure a line."""
    g = guidance_json(stage, plan)
    written = ", ".join(
        part
        for part in (
            g["guide_ages"] and f"ages {g['guide_ages']}",
            g["years_to_retirement"] and f"{g['years_to_retirement']} years to retirement",
        )
        if part
    )
    lines = [f"the guide for {stage.name}" + (f" ({written})" if written else "") + ":"]
    low, high = g["emergency_fund_months"]
    months = f"{low:g}" if low == high else f"{low:g}-{high:g}"
    lines.append(f"  emergency fund: {months} months of expenses in cash, outside crypto")
    if g["max_drawdown_accepted_pct"] is not None:
        lines.append(
            f"  drawdowns: be ready to sit through falls of {g['max_drawdown_accepted_pct']:g} % "
            "without selling"
        )
    goal = goal_of(stage)
    if goal.growth:
        lines.append(
            f"  portfolio goal: {goal.low:,.0f}-{goal.high:,.0f} {quote} by age {goal.by_age}"
        )
    else:
        lines.append("  portfolio goal: none to grow toward; preserve the portfolio")
    expected = [
        f"{name} {r['min']:g}-{r['max']:g} %" + (f" ({r['when']})" if r["when"] else "")
        for name, r in g["expected_return_pct"].items()
        if r is not None
    ]
    if expected:
        lines.append(f"  expected returns (the guide's, not a forecast): {'; '.join(expected)}")
    if g["example"]:
        lines.append(f"  the guide's example: {example_text(g['example'])}")
    t_low, t_high = g["transition_months"]
    transition = f"  between stages: weights glide over {t_low}-{t_high} months"
    if g["transition_example"]:
        e = g["transition_example"]
        transition += (
            f" (the guide's example: age {e['from_age']} -> {e['to_age']}, "
            f"{e['yearly_shift_pct']:g} % of the weights a year)"
        )
    lines.append(transition)
    lines.append(
        "  emergency rule: on a job loss or a financial crisis, `stagewise pause` stops "
        "contributions and sells nothing; use your emergency fund first; `stagewise resume` "
        "when stable"
    )
    return lines


def simulation_notes(
    stages: Sequence[Stage],
    values: Sequence[tuple[date, float]],
    goal_days: Mapping[str, date],
    max_drawdown: float,
    quote: str,
) -> list[str]:
    """What a simulation's report says against the guide: its largest fall of value beside
    the drawdown the `stages` it spans ask their investor to accept (the strictest), and the
    value on the day of each stage's goal age (`goal_days`, stage id -> day) that `values`
    (day, value; ascending) reach."""
    notes = []
    accepted = [s for s in stages if s.max_drawdown_accepted_pct is not None]
    if accepted:
        strict = min(accepted, key=lambda s: s.max_drawdown_accepted_pct or 0.0)
        limit = strict.max_drawdown_accepted_pct or 0.0
        verdict = "within" if max_drawdown * 100 <= limit else "beyond"
        notes.append(
            f"the value fell at most {max_drawdown * 100:.1f} %: {verdict} the {limit:g} % the "
            f"guide asks {strict.name} to sit through without selling"
        )
    days = [d for d, _ in values]
    for stage in stages:
        goal, day = goal_of(stage), goal_days.get(stage.id)
        if not goal.growth or day is None or not days or not days[0] <= day <= days[-1]:
            continue
        value = values[bisect.bisect_right(days, day) - 1][1]
        notes.append(
            f"at age {goal.by_age} ({day}) the account was worth {value:,.2f} {quote} against "
            f"the guide's goal of {goal.low:,.0f}-{goal.high:,.0f} for {stage.name}: "
            f"{goal.progress(value)}"
        )
    return notes


def example_text(example: Mapping[str, Any]) -> str:
    """A worked example of the guide in one line: 'Jake, age 26: income 85,000, ...'."""
    rest = {k: v for k, v in example.items() if k not in ("name", "age")}
    who = ", ".join(
        str(example[k]) if k == "name" else f"age {example[k]}"
        for k in ("name", "age")
        if k in example
    )
    figures = ", ".join(
        f"{k.replace('_pct', '').replace('_', ' ')} {v:,.10g}{' %' if k.endswith('_pct') else ''}"
        if isinstance(v, int | float)
        else f"{k.replace('_', ' ')} {v}"
        for k, v in rest.items()
    )
    return f"{who}: {figures}" if who else figures
