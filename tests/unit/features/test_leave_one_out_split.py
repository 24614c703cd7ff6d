import numpy as np
import pandas as pd

from recsys_lib import schema
from recsys_lib.config import FeaturesConfig
from recsys_lib.features import build_features
from recsys_lib.features.split import SPLIT_CODES, leave_one_out_splits

TRAIN, VAL, TEST = (SPLIT_CODES[s] for s in (schema.TRAIN, schema.VALIDATION, schema.TEST))


def _ts(*days: int) -> pd.Series:
    return pd.Series(pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(list(days), unit="D"))


def test_newest_event_is_test_and_the_one_before_validation_per_user():
    users = np.array([0, 0, 0, 0, 1, 1, 1])
    codes = leave_one_out_splits(users, _ts(3, 1, 4, 2, 9, 7, 8))  # rows in no particular order
    assert codes.tolist() == [VAL, TRAIN, TEST, TRAIN, TEST, TRAIN, VAL]


def test_equal_timestamps_fall_back_to_row_order():
    codes = leave_one_out_splits(np.array([5, 5, 5]), _ts(1, 1, 1))
    assert codes.tolist() == [TRAIN, VAL, TEST]


def test_short_histories_keep_something_to_learn_from():
    users = np.array([0, 1, 1, 2, 2, 2])
    codes = leave_one_out_splits(users, _ts(0, 0, 1, 0, 1, 2))
    assert codes.tolist() == [TRAIN, TRAIN, TEST, TRAIN, VAL, TEST]


def test_inputs_are_not_modified():
    users, ts = np.array([1, 0, 1]), _ts(2, 1, 0)
    before = users.copy(), ts.copy()
    leave_one_out_splits(users, ts)
    np.testing.assert_array_equal(users, before[0])
    pd.testing.assert_series_equal(ts, before[1])


def test_build_features_holds_out_one_item_per_user():
    rng = np.random.default_rng(0)
    n_users, per_user = 30, 6
    events = pd.DataFrame(
        {
            schema.USER_ID: np.repeat([f"u{u}" for u in range(n_users)], per_user),
            schema.ITEM_ID: [f"i{i}" for i in rng.integers(0, 1000, n_users * per_user)],
            schema.EVENT_TYPE: schema.PURCHASE,
            schema.TIMESTAMP: _ts(*np.tile(np.arange(per_user), n_users)),
        }
    )
    features = build_features(events, pd.DataFrame({schema.ITEM_ID: []}), FeaturesConfig(split="leave_one_out"))
    for window in (features.validation, features.test):
        assert sorted(window[schema.USER_IDX]) == list(range(n_users))
    newest = events.groupby(schema.USER_ID)[schema.ITEM_ID].last()
    test_items = features.item_ids[features.test.sort_values(schema.USER_IDX)[schema.ITEM_IDX]]
    assert test_items.tolist() == newest.loc[features.user_ids].tolist()
