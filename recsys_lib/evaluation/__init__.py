"""Evaluation: ranking metrics (pure numpy) and the full-ranking temporal-split protocol."""

from recsys_lib.evaluation.evaluate import evaluate_recommender, evaluation_users, relevant_items
from recsys_lib.evaluation.metrics import ranking_metrics

__all__ = ["evaluate_recommender", "evaluation_users", "ranking_metrics", "relevant_items"]
