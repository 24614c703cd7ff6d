"""Feature sets for model tests: a planted-preference dataset and a small random one."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
import torch

from recsys_lib import schema
from recsys_lib.config import FeaturesConfig
from recsys_lib.features import FeatureSet, build_features


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread() -> Iterator[None]:
    """These models are tiny: one intra-op thread is as fast, and it avoids OpenMP stalls (10-50x
    slower steps) when the 2-core test runner is shared with other processes."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


EVENT_TYPES = np.array([schema.VIEW, schema.ADD_TO_CART, schema.PURCHASE])


def planted_events(
    n_users: int, n_items: int, n_categories: int, events_per_user: int, loyalty: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Users each prefer one category (``loyalty`` of their events); item popularity is skewed
    within a category; timestamps are uniform over 60 days. Returns (events, items)."""
    rng = np.random.default_rng(seed)
    per_category = n_items // n_categories
    popularity = 1.0 / np.arange(1, per_category + 1) ** 0.7
    n = n_users * events_per_user
    users = np.repeat(np.arange(n_users), events_per_user)
    loyal = rng.random(n) < loyalty
    category = np.where(loyal, users % n_categories, rng.integers(0, n_categories, n))
    items = category * per_category + rng.choice(per_category, size=n, p=popularity / popularity.sum())
    events = pd.DataFrame(
        {
            schema.USER_ID: [f"u{u:04d}" for u in users],
            schema.ITEM_ID: [f"i{i:04d}" for i in items],
            schema.EVENT_TYPE: rng.choice(EVENT_TYPES, size=n, p=[0.7, 0.2, 0.1]),
            schema.TIMESTAMP: pd.Timestamp("2024-01-01", tz="UTC")
            + pd.to_timedelta(rng.integers(0, 60 * 86400, n), "s"),
        }
    )
    catalogue = pd.DataFrame(
        {
            schema.ITEM_ID: [f"i{i:04d}" for i in range(n_items)],
            schema.CATEGORY: [f"c{i // per_category}" for i in range(n_items)],
        }
    )
    return events, catalogue


@pytest.fixture(scope="session")
def planted() -> FeatureSet:
    """200 users, 100 items in 4 categories, 90% loyal to one category; 10%/10% temporal holdout."""
    events, items = planted_events(200, 100, 4, events_per_user=30, loyalty=0.9, seed=0)
    return build_features(events, items, FeaturesConfig())


@pytest.fixture(scope="session")
def small() -> FeatureSet:
    """40 users x 30 items of random events; validation and test windows of 15% each."""
    events, items = planted_events(40, 30, 3, events_per_user=10, loyalty=0.5, seed=1)
    return build_features(events, items, FeaturesConfig(validation_fraction=0.15, test_fraction=0.15))


def stepped(module, optimizer, inputs: torch.Tensor, targets: torch.Tensor) -> tuple[int, set[int]]:
    """One sampled-softmax training step of ``module`` (a NextItemModule) on ``inputs``/``targets``:
    returns the number of positions its loss averaged over and the negatives it drew."""
    drawn: list[torch.Tensor] = []
    real_randint = torch.randint

    def recording_randint(*args, **kwargs):
        drawn.append(real_randint(*args, **kwargs))
        return drawn[-1]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch, "randint", recording_randint)
        loss, n_targets = module.loss(inputs, targets)
    loss.backward()
    optimizer.step()
    return n_targets, set(drawn[0].ravel().tolist())
