from __future__ import annotations

from recsys_lib.registry.promotion import CHALLENGER, CHAMPION, decide_alias


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
