"""An outcome report as a few lines of text (``recsys outcomes``, ``make demo``)."""

from __future__ import annotations

from typing import Any

from recsys_lib.outcomes.arms import ARMS
from recsys_lib.outcomes.report import BETTER, METRICS, NO_EXPERIMENT, WORSE

_VERDICTS = {
    BETTER: "the challenger's arm does better",
    WORSE: "the challenger's arm does worse",
    NO_EXPERIMENT: "no experiment (one arm)",
}


def _cell(values: dict[str, Any]) -> str:
    if "unavailable" in values:
        return "unavailable"
    if values.get("value") is None:
        return "-"
    low, high = values.get("ci_low"), values.get("ci_high")
    interval = f" [{low:.3f}, {high:.3f}]" if low is not None and high is not None else ""
    return f"{values['value']:.3f}{interval}"


def verdict_line(report: dict[str, Any]) -> str:
    """``verdict: ... on hit_rate (7 of 7 days observed)``, saying whether it is final."""
    window = report["window"]
    text = _VERDICTS.get(report["verdict"], "not significant yet")
    state = "complete" if not report["partial"] else "partial: no promotion on it"
    return (
        f"verdict: {text} on {report['primary_metric']} "
        f"({window['days_observed']} of {window['window_days']} days observed, {state})"
    )


def summary(report: dict[str, Any]) -> str:
    """Exposed users per arm, then one line per metric: each arm's value with its 95% interval, the
    difference with its interval and Holm-adjusted p-value; then the verdict."""
    arms = {arm: report["arms"][arm] for arm in ARMS if arm in report["arms"]}  # JSON may have sorted the keys
    window = report["window"]
    lines = [f"outcomes of the {window['export_dt']} export, days {window['first_day']}..{window['last_day_observed']}"]
    for arm, section in arms.items():
        model = section["model"]
        lines.append(
            f"  {arm:<10} {model['name']} v{model['version']}: {section['exposed']:,} exposed of "
            f"{section['users_with_list']:,} with a list, {section['purchasers']:,} bought"
        )
    unexposed = report["unexposed"]
    lines.append(f"  unexposed  {unexposed['users']:,} users without a list, {unexposed['purchasers']:,} bought")
    compared = (report.get("comparison") or {}).get("metrics", {})
    header = f"  {'metric':<22}" + "".join(f"{arm:>26}" for arm in arms)
    lines.append(header + (f"{'difference':>28}{'p (Holm)':>10}" if compared else ""))
    for name in METRICS:
        row = f"  {name:<22}" + "".join(f"{_cell(arms[arm]['metrics'][name]):>26}" for arm in arms)
        if name in compared:
            diff = compared[name]
            p = diff.get("p_adjusted")
            row += f"{_cell(diff):>28}{(f'{p:.4f}' if p is not None else '-'):>10}"
        lines.append(row)
    lines.append(verdict_line(report))
    return "\n".join(lines)
