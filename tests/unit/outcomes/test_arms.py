import numpy as np
import pytest

from recsys_lib.errors import ConfigError
from recsys_lib.outcomes.arms import bucket, in_challenger_arm

USERS = np.array([f"u{i:06d}" for i in range(20_000)], dtype=object)


def test_arms_are_stable_whatever_the_order_or_the_batch():
    arms = in_challenger_arm(USERS, "exp-a", 0.5)
    again = in_challenger_arm(USERS[::-1], "exp-a", 0.5)[::-1]
    assert (arms == again).all()
    assert (in_challenger_arm(USERS[:100], "exp-a", 0.5) == arms[:100]).all()


def test_arms_are_balanced_within_tolerance():
    # 20,000 users at 50%: the challenger count has sd 70.7, so 3 sd is +-212
    for share in (0.5, 0.1):
        n = int(in_challenger_arm(USERS, "exp-a", share).sum())
        sd = (len(USERS) * share * (1 - share)) ** 0.5
        assert abs(n - len(USERS) * share) < 3 * sd, (share, n)


def test_a_larger_share_only_adds_users_to_the_challenger():
    small, large = in_challenger_arm(USERS, "exp-a", 0.1), in_challenger_arm(USERS, "exp-a", 0.3)
    assert (large[small]).all()


def test_another_experiment_shuffles_users_independently():
    a, b = in_challenger_arm(USERS, "exp-a", 0.5), in_challenger_arm(USERS, "exp-b", 0.5)
    agreement = float((a == b).mean())
    assert 0.47 < agreement < 0.53  # independent halves agree half the time


def test_no_share_means_no_challenger_and_bad_values_name_the_key():
    assert not in_challenger_arm(USERS, "exp-a", 0.0).any()
    with pytest.raises(ConfigError, match=r"experiment\.challenger_share"):
        in_challenger_arm(USERS, "exp-a", 1.0)
    with pytest.raises(ConfigError, match=r"experiment\.name"):
        bucket(USERS[:1], "")
    values = bucket(USERS, "exp-a")
    assert values.min() >= 0 and values.max() < 1
