"""The "Experiment outcomes" section from real reports of a tiny hand-made experiment: the series
the charts draw, the verdict, the table in arm order, and the hint without reports."""

import json

from recsys_lib import schema
from recsys_lib.config import OutcomesConfig
from recsys_lib.outcomes.report import Window, build_report
from recsys_lib.ui.outcomes import render_outcomes
from recsys_lib.ui.overview import outcome_series
from tests.unit.outcomes.test_report import EVENTS, RECS, WINDOW, D


def _stored(report: dict) -> dict:
    """The report as the page reads it back from S3 (JSON with sorted keys)."""
    return json.loads(json.dumps(report, sort_keys=True))


REPORTS = {
    "2026-01-09": _stored(build_report(RECS[RECS[schema.ARM] == "champion"], EVENTS, WINDOW, OutcomesConfig())),
    D: _stored(build_report(RECS, EVENTS, Window(D, window_days=7, days_observed=3), OutcomesConfig())),
}


def _data() -> dict:
    return {
        "dates": [D, "2026-01-09"],
        "newest": {"dt": D, "report_uri": "s3://bucket/<key>", "report": REPORTS[D]},
        "series": outcome_series(REPORTS),
    }


def test_series_run_oldest_first_per_arm_in_arm_order() -> None:
    series = outcome_series(REPORTS)
    assert list(series) == ["hit_rate", "conversion_rate"]
    assert list(series["hit_rate"]) == ["champion", "challenger"]  # not JSON's sorted order
    assert [p["dt"] for p in series["hit_rate"]["champion"]] == ["2026-01-09", D]
    assert [p["dt"] for p in series["hit_rate"]["challenger"]] == [D]  # no challenger the day before
    assert [p["partial"] for p in series["hit_rate"]["champion"]] == [False, True]
    newest = series["hit_rate"]["champion"][-1]
    assert newest["value"] == REPORTS[D]["arms"]["champion"]["metrics"]["hit_rate"]["value"]
    assert newest["ci_low"] <= newest["value"] <= newest["ci_high"]


def test_the_section_shows_two_charts_the_verdict_and_the_table() -> None:
    html = render_outcomes(_data())
    assert html.count("<svg") == 2 and html.count("<polyline") == 4
    assert "not significant yet on hit_rate (3 of 7 days observed, partial: no promotion on it)" in html
    assert "class='verdict warn'" in html  # a partial window is not final
    assert html.index(">champion<br>") < html.index(">challenger<br>")
    assert "<th>difference</th><th>p (Holm)</th>" in html
    assert "title='no impression events in the window" in html  # day 14's impression is past the 3 days
    assert "s3://bucket/&lt;key&gt;" in html and "<key>" not in html


def test_without_a_challenger_the_table_has_no_difference() -> None:
    only = REPORTS["2026-01-09"]
    html = render_outcomes({**_data(), "newest": {"dt": "2026-01-09", "report_uri": "u", "report": only}})
    assert "no experiment (one arm)" in html and "p (Holm)" not in html and ">challenger<br>" not in html


def test_no_report_yet_is_a_hint() -> None:
    html = render_outcomes(None)
    assert "No outcome report" in html and "recsys outcomes" in html and "<svg" not in html
