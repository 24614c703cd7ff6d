import numpy as np
import pandas as pd
import pytest

from recsys_lib import schema
from recsys_lib.errors import ConfigError
from recsys_lib.features.interactions import PAIRS_DTYPES, aggregate_pairs, empty_pairs, event_weights

WEIGHTS = {"view": 1.0, "add_to_cart": 3.0, "purchase": 5.0}


def test_event_weights_follow_the_event_type():
    types = pd.Series(["view", "purchase", "add_to_cart", "view"])
    assert event_weights(types, WEIGHTS).tolist() == [1.0, 5.0, 3.0, 1.0]


def test_unknown_event_type_names_the_config_key():
    with pytest.raises(ConfigError, match=r"features.event_weights.*'refund'"):
        event_weights(pd.Series(["view", "refund"]), WEIGHTS)


def test_aggregate_sums_weights_keeps_last_timestamp_and_sorts():
    ts = pd.to_datetime(["2024-01-03", "2024-01-01", "2024-01-02", "2024-01-05"], utc=True)
    events = pd.DataFrame(
        {
            schema.USER_IDX: [1, 0, 1, 0],
            schema.ITEM_IDX: [4, 2, 4, 1],
            schema.WEIGHT: [1.0, 5.0, 3.0, 1.0],
            schema.TIMESTAMP: ts,
        }
    )
    before = events.copy()
    pairs = aggregate_pairs(events)
    pd.testing.assert_frame_equal(events, before)  # input untouched
    assert list(pairs.columns) == list(PAIRS_DTYPES)
    assert pairs.dtypes.astype(str).to_dict() == PAIRS_DTYPES
    assert pairs[[schema.USER_IDX, schema.ITEM_IDX]].to_numpy().tolist() == [[0, 1], [0, 2], [1, 4]]
    assert pairs[schema.WEIGHT].tolist() == [1.0, 5.0, 4.0]
    assert pairs[schema.TIMESTAMP].iloc[2] == pd.Timestamp("2024-01-03", tz="UTC")


def test_empty_pairs_has_the_split_layout():
    empty = empty_pairs()
    assert len(empty) == 0
    assert empty.dtypes.astype(str).to_dict() == PAIRS_DTYPES
    assert aggregate_pairs(empty).dtypes.astype(str).to_dict() == PAIRS_DTYPES
    assert np.issubdtype(empty[schema.USER_IDX].dtype, np.integer)
