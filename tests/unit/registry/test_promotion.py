from __future__ import annotations

from recsys_lib.registry.promotion import CHALLENGER, CHAMPION, decide_alias, decide_online


def test_first_model_becomes_champion() -> None:
    assert decide_alias(0.01, None).alias == CHAMPION


def test_better_model_replaces_champion_only_beyond_the_margin() -> None:
    assert decide_alias(0.30, 0.20).alias == CHAMPION
    assert decide_alias(0.20, 0.20).alias == CHALLENGER  # a tie keeps the champion
    assert decide_alias(0.21, 0.20, min_improvement=0.05).alias == CHALLENGER
    assert decide_alias(0.26, 0.20, min_improvement=0.05).alias == CHAMPION


def test_force_promotes_a_worse_model() -> None:
    decision = decide_alias(0.1, 0.9, force=True)
    assert decision.alias == CHAMPION and "forced" in decision.reason


def test_online_promotion_leaves_a_better_model_as_challenger() -> None:
    decision = decide_alias(0.30, 0.10, online=True)
    assert decision.alias == "challenger" and "outcome evidence" in decision.reason
    assert decide_alias(0.30, None, online=True).alias == "champion"  # the first model
    assert decide_alias(0.05, 0.10, online=True, force=True).alias == "champion"


def _report(export_dt: str, verdict: str, *, partial: bool = False, versions=("1", "2"), metric="hit_rate") -> dict:
    return {
        "window": {"export_dt": export_dt},
        "verdict": verdict,
        "partial": partial,
        "primary_metric": metric,
        "arms": {"champion": {"model": {"version": versions[0]}}, "challenger": {"model": {"version": versions[1]}}},
    }


def _online(reports: list[dict], min_days: int = 3):
    return decide_online(reports, champion="1", challenger="2", min_days=min_days, primary_metric="hit_rate")


def test_online_promotion_needs_min_days_complete_wins_in_a_row() -> None:
    wins = [_report(f"2026-01-0{d}", "challenger_better") for d in (1, 2, 3)]
    decision = _online(list(reversed(wins)))  # any order
    assert decision.promote and decision.evidence == ("2026-01-01", "2026-01-02", "2026-01-03")
    assert "3 complete report(s) in a row" in decision.reason
    assert not _online(wins[1:]).promote  # two are not enough
    assert _online(wins[1:]).evidence == ("2026-01-02", "2026-01-03")


def test_a_loss_or_a_tie_ends_the_streak_and_partial_reports_never_count() -> None:
    newest_not_significant = [
        _report("2026-01-01", "challenger_better"),
        _report("2026-01-02", "challenger_better"),
        _report("2026-01-03", "challenger_better"),
        _report("2026-01-04", "not_significant"),
    ]
    assert not _online(newest_not_significant).promote
    partial = [_report(f"2026-01-0{d}", "challenger_better", partial=d == 3) for d in (1, 2, 3)]
    assert not _online(partial).promote and _online(partial, min_days=2).promote
    assert not _online([_report("2026-01-01", "challenger_better", partial=True)], min_days=1).promote


def test_reports_about_other_versions_or_metrics_are_not_evidence() -> None:
    others = [_report(f"2026-01-0{d}", "challenger_better", versions=("1", "3")) for d in (1, 2, 3)]
    assert not _online(others).promote
    conversion = [_report(f"2026-01-0{d}", "challenger_better", metric="conversion_rate") for d in (1, 2, 3)]
    assert not _online(conversion).promote
