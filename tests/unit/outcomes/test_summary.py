import json

from recsys_lib.config import OutcomesConfig
from recsys_lib.outcomes.report import build_report
from recsys_lib.outcomes.summary import summary
from tests.unit.outcomes.test_report import EVENTS, RECS, WINDOW


def test_summary_lists_both_arms_every_metric_and_the_verdict_in_a_stable_order():
    report = json.loads(json.dumps(build_report(RECS, EVENTS, WINDOW, OutcomesConfig()), sort_keys=True))
    lines = summary(report).splitlines()
    assert lines[0] == "outcomes of the 2026-01-10 export, days 2026-01-11..2026-01-17"
    assert lines[1].split()[0] == "champion" and lines[2].split()[0] == "challenger"  # not alphabetical
    assert "2 exposed of 2 with a list, 1 bought" in lines[1]
    assert lines[3].split()[:2] == ["unexposed", "1"]
    hit = next(line for line in lines if line.strip().startswith("hit_rate"))
    assert "0.500 [0.095, 0.905]" in hit and hit.rstrip().endswith("1.0000")
    ctr = next(line for line in lines if line.strip().startswith("click_through_rate"))
    assert ctr.split()[1:] == ["-", "1.000", "-", "-"]
    assert lines[-1] == "verdict: not significant yet on hit_rate (7 of 7 days observed, complete)"
