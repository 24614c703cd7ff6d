"""Which alias a newly registered model earns: a pure decision, kept apart from MLflow calls."""

from __future__ import annotations

from dataclasses import dataclass

CHAMPION = "champion"
CHALLENGER = "challenger"


@dataclass(frozen=True)
class PromotionDecision:
    alias: str
    reason: str


def decide_alias(
    new_score: float, champion_score: float | None, *, min_improvement: float = 0.0, force: bool = False
) -> PromotionDecision:
    """``champion`` if there is none yet, if forced, or if ``new_score`` beats it by more than
    ``min_improvement``; ``challenger`` otherwise. Scores are "higher is better" metrics."""
    if force:
        return PromotionDecision(CHAMPION, "promotion forced by parameter")
    if champion_score is None:
        return PromotionDecision(CHAMPION, "first model: no champion yet")
    if new_score > champion_score + min_improvement:
        return PromotionDecision(CHAMPION, f"{new_score:.5f} beats champion {champion_score:.5f} (+{min_improvement})")
    return PromotionDecision(
        CHALLENGER, f"{new_score:.5f} does not beat champion {champion_score:.5f} (+{min_improvement})"
    )
