"""The page's "Experiment outcomes" section: each arm's charted rates over report dates, the newest
report's verdict and its metrics per arm with the difference and Holm-adjusted p-value.

Renders :func:`recsys_lib.ui.overview.gather`'s ``outcomes`` data (see ``_outcomes`` there) as
escaped HTML with inline SVG charts (:mod:`.charts`): nothing is fetched by the browser.
"""

from __future__ import annotations

from html import escape
from typing import Any

from recsys_lib.outcomes.arms import ARMS, CHALLENGER, CHAMPION
from recsys_lib.outcomes.report import BETTER, METRICS, WORSE
from recsys_lib.outcomes.summary import verdict_line
from recsys_lib.ui.charts import Point, interval_chart

#: One colour per arm, the same in every chart.
ARM_COLOURS = {CHAMPION: "#2563eb", CHALLENGER: "#d97706"}
HINT = (
    "<p class='muted'>No outcome report for this dataset yet: run <code>recsys outcomes</code> "
    "or the <code>recsys_outcomes</code> DAG once an export's window has landed.</p>"
)


def _e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def _label(metric: str) -> str:
    return metric.replace("_", " ").capitalize()


def render_outcomes(data: dict[str, Any] | None) -> str:
    """The section's HTML for the gathered ``data``, or a hint when no report exists yet."""
    if not data:
        return HINT
    newest, report = data["newest"], data["newest"]["report"]
    confidence = float(report.get("confidence", 0.95))
    charts = "".join(
        interval_chart(
            f"{_label(metric)} by export date ({confidence:.0%} intervals)",
            {
                arm: [
                    Point(p["dt"], p["value"], p["ci_low"], p["ci_high"], "partial window" if p["partial"] else "")
                    for p in points
                ]
                for arm, points in by_arm.items()
            },
            colours=ARM_COLOURS,
        )
        for metric, by_arm in data["series"].items()
    )
    window = report["window"]
    state = "warn" if report["partial"] else {BETTER: "ok", WORSE: "bad"}.get(report["verdict"], "")  # not final
    return (
        f"<p class='verdict {state}'>{_e(verdict_line(report))}</p>"
        f"<p class='muted'>Newest report: the {_e(newest['dt'])} export, days {_e(window['first_day'])} to "
        f"{_e(window['last_day_observed'])} &middot; {len(data['dates'])} report(s) charted &middot; "
        f"<code>{_e(newest['report_uri'])}</code></p>"
        f"<div class='charts'>{charts}</div>{_table(report, confidence)}"
    )


def _rate(values: dict[str, Any]) -> str:
    """A table cell: the rate in % with its interval, "unavailable" (reason on hover) or a dash."""
    if "unavailable" in values:
        return f"<td class='muted' title='{_e(values['unavailable'])}'>unavailable</td>"
    value, low, high = values.get("value"), values.get("ci_low"), values.get("ci_high")
    if value is None:
        return "<td class='num'>&ndash;</td>"
    interval = f" <span class='muted'>[{low:.2%}, {high:.2%}]</span>" if low is not None and high is not None else ""
    return f"<td class='num'>{value:.2%}{interval}</td>"


def _difference(values: dict[str, Any] | None, alpha: float) -> str:
    """Two cells: challenger - champion in percentage points with its interval, and the Holm p-value."""
    if not values or values.get("value") is None:
        return "<td class='num'>&ndash;</td><td class='num'>&ndash;</td>"
    low, high, p = values.get("ci_low"), values.get("ci_high"), values.get("p_adjusted")
    interval = ""
    if low is not None and high is not None:
        interval = f" <span class='muted'>[{low * 100:+.2f}, {high * 100:+.2f}]</span>"
    shown = "&ndash;" if p is None else ("&lt;0.0001" if p < 1e-4 else f"{p:.4f}")
    strong = " style='font-weight:600'" if p is not None and p < alpha else ""
    return f"<td class='num'>{values['value'] * 100:+.2f} pp{interval}</td><td class='num'{strong}>{shown}</td>"


def _table(report: dict[str, Any], confidence: float) -> str:
    """The newest report's metrics per arm (arms in :data:`ARMS` order: JSON sorts the keys)."""
    arms = {arm: report["arms"][arm] for arm in ARMS if arm in report["arms"]}
    compared = (report.get("comparison") or {}).get("metrics")
    head = "".join(
        f"<th>{_e(arm)}<br><span class='muted'>{_e(s['model']['name'])} v{_e(s['model']['version'])}</span></th>"
        for arm, s in arms.items()
    )
    head += "<th>difference</th><th>p (Holm)</th>" if compared is not None else ""
    exposed = "".join(f"<td class='num'>{s['exposed']:,} of {s['users_with_list']:,}</td>" for s in arms.values())
    rows = [f"<tr><td>exposed users</td>{exposed}{'<td></td><td></td>' if compared is not None else ''}</tr>"]
    for metric in METRICS:
        primary = " style='font-weight:600'" if metric == report["primary_metric"] else ""
        cells = "".join(_rate(s["metrics"].get(metric, {})) for s in arms.values())
        diff = _difference(compared.get(metric), float(report["alpha"])) if compared is not None else ""
        rows.append(f"<tr><td{primary}>{_e(_label(metric))}</td>{cells}{diff}</tr>")
    caption = (
        f"Newest report per arm, {confidence:.0%} intervals; difference: challenger minus champion in "
        "percentage points; p-values adjusted with Holm's method over the metrics compared."
    )
    return f"<table><caption class='muted'>{_e(caption)}</caption><tr><th>metric</th>{head}</tr>{''.join(rows)}</table>"
