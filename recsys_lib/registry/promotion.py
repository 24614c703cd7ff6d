"""Which alias a newly registered model earns: a pure decision, kept apart from MLflow calls."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from recsys_lib.outcomes.report import BETTER
from recsys_lib.schema import CHALLENGER, CHAMPION

__all__ = ["CHALLENGER", "CHAMPION", "OnlineDecision", "PromotionDecision", "decide_alias", "decide_online"]


@dataclass(frozen=True)
class PromotionDecision:
    """The alias a new version earns (``champion`` or ``challenger``) and a sentence saying why,
    with the scores compared."""

    alias: str
    reason: str


def decide_alias(
    new_score: float,
    champion_score: float | None,
    *,
    min_improvement: float = 0.0,
    force: bool = False,
    online: bool = False,
) -> PromotionDecision:
    """``champion`` if there is none yet, if forced, or if ``new_score`` beats it by more than
    ``min_improvement`` (not ``online``: then only outcome evidence promotes, see
    :func:`decide_online`); ``challenger`` otherwise. Scores are "higher is better" metrics."""
    if force:
        return PromotionDecision(CHAMPION, "promotion forced by parameter")
    if champion_score is None:
        return PromotionDecision(CHAMPION, "first model: no champion yet")
    if online:
        return PromotionDecision(
            CHALLENGER,
            f"evaluation.promote_on is online: waits for outcome evidence (offline {new_score:.5f} vs champion "
            f"{champion_score:.5f})",
        )
    if new_score > champion_score + min_improvement:
        return PromotionDecision(CHAMPION, f"{new_score:.5f} beats champion {champion_score:.5f} (+{min_improvement})")
    return PromotionDecision(
        CHALLENGER, f"{new_score:.5f} does not beat champion {champion_score:.5f} (+{min_improvement})"
    )


@dataclass(frozen=True)
class OnlineDecision:
    """Whether the outcome reports promote the challenger, why, and the export dates relied on."""

    promote: bool
    reason: str
    evidence: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The decision as JSON-ready values (``evidence`` as a list), for task results and run tags."""
        return {"promote": self.promote, "reason": self.reason, "evidence": list(self.evidence)}


def _versions(report: Mapping[str, Any]) -> tuple[str | None, str | None]:
    arms = report.get("arms", {})
    return tuple(arms.get(arm, {}).get("model", {}).get("version") for arm in (CHAMPION, CHALLENGER))


def decide_online(
    reports: Sequence[Mapping[str, Any]], *, champion: str, challenger: str, min_days: int, primary_metric: str
) -> OnlineDecision:
    """Promote ``challenger`` over ``champion`` (version strings) when the newest ``min_days``
    complete outcome reports comparing exactly these two versions on ``primary_metric`` all say
    the challenger's arm does better with significance. Partial reports never count; a complete
    report with another verdict ends the streak. ``reports`` may be in any order."""
    relevant = sorted(
        (r for r in reports if _versions(r) == (champion, challenger) and r.get("primary_metric") == primary_metric),
        key=lambda r: r["window"]["export_dt"],
        reverse=True,
    )
    streak: list[str] = []
    for report in relevant:
        if report.get("partial"):
            continue
        if report.get("verdict") != BETTER:
            break
        streak.append(report["window"]["export_dt"])
        if len(streak) == min_days:
            return OnlineDecision(
                True,
                f"challenger v{challenger} beat champion v{champion} on {primary_metric} with significance in "
                f"{min_days} complete report(s) in a row ({', '.join(sorted(streak))})",
                tuple(sorted(streak)),
            )
    return OnlineDecision(
        False,
        f"challenger v{challenger} has {len(streak)} of the {min_days} complete report(s) in a row beating champion "
        f"v{champion} on {primary_metric} that online promotion needs",
        tuple(sorted(streak)),
    )
