"""Evaluation: ranking metrics (pure numpy), the full-ranking protocols and the sampled-negative one."""

from recsys_lib.evaluation.evaluate import evaluate_recommender, evaluation_users, relevant_items
from recsys_lib.evaluation.metrics import ranking_metrics
from recsys_lib.evaluation.sampled import evaluate_sampled

__all__ = ["evaluate_recommender", "evaluate_sampled", "evaluation_users", "ranking_metrics", "relevant_items"]
