import numpy as np
import pandas as pd
import pytest

from recsys_lib import schema
from recsys_lib.config import FeaturesConfig, load_config
from recsys_lib.errors import ConfigError, DataValidationError
from recsys_lib.features import FeatureSet, build_features
from recsys_lib.features.interactions import PAIRS_DTYPES

CONFIG = FeaturesConfig(validation_fraction=0.1, test_fraction=0.1)
#: Train histories by the time of each pair's last event: u2 viewed b (0), bought a (3), carted b (5).
HISTORY_TRAIN = [[0, 2], [0, 1], [5]]


def _pairs(df: pd.DataFrame) -> list[tuple[int, int, float]]:
    return list(zip(df[schema.USER_IDX], df[schema.ITEM_IDX], df[schema.WEIGHT].astype(float), strict=True))


def test_encoders_cover_event_users_and_catalogue_plus_event_items(events, items):
    fs = build_features(events, items, CONFIG)
    assert isinstance(fs, FeatureSet)
    assert fs.user_ids.tolist() == ["u1", "u2", "u3"]
    assert fs.item_ids.tolist() == ["a", "b", "c", "d", "e", "z"]


def test_catalogue_is_aligned_to_item_idx(events, items):
    cat = build_features(events, items, CONFIG).items
    assert list(cat.columns) == [schema.ITEM_IDX, schema.ITEM_ID, *list(schema.ITEMS_DTYPES)[1:]]
    assert cat[schema.ITEM_IDX].tolist() == list(range(6))
    assert cat[schema.ITEM_ID].tolist() == ["a", "b", "c", "d", "e", "z"]
    assert cat[schema.TITLE].iloc[:5].tolist() == ["A", "B", "C", "D", "E"]
    assert cat[[schema.TITLE, schema.CATEGORY, schema.PRICE]].iloc[5].isna().all()  # z: events only
    assert cat[schema.AVAILABLE].tolist() == [True, True, True, False, True, True]


def test_split_tables_hold_weighted_pairs_per_window(events, items):
    fs = build_features(events, items, CONFIG)
    # u1=0 u2=1 u3=2; a=0 b=1 c=2 d=3 z=5. Minute 8 is validation, minute 9 test.
    assert _pairs(fs.train) == [(0, 0, 4.0), (0, 2, 1.0), (1, 0, 5.0), (1, 1, 5.0), (2, 5, 1.0)]
    assert _pairs(fs.validation) == [(0, 3, 5.0)]
    assert _pairs(fs.test) == [(2, 0, 1.0)]
    for df in (fs.train, fs.validation, fs.test):
        assert df.dtypes.astype(str).to_dict() == PAIRS_DTYPES
    assert fs.train[schema.TIMESTAMP].iloc[0] == events[schema.TIMESTAMP].iloc[4]  # last event of (u1, a)


def test_weights_follow_the_config(events, items):
    config = FeaturesConfig(event_weights={"view": 0.5, "add_to_cart": 2.0, "purchase": 10.0})
    fs = build_features(events, items, config)
    assert dict(zip(fs.train[schema.ITEM_IDX], fs.train[schema.WEIGHT], strict=False))[1] == pytest.approx(3.0)
    with pytest.raises(ConfigError, match="purchase"):
        build_features(events, items, FeaturesConfig(event_weights={"view": 1.0, "add_to_cart": 1.0}))


def test_history_orders_each_users_items_by_time_and_window(events, items):
    fs = build_features(events, items, CONFIG)
    train = fs.history()
    assert [train.of(u).tolist() for u in range(fs.n_users)] == HISTORY_TRAIN
    both = fs.history(schema.TRAIN, schema.VALIDATION)
    assert both.of(0).tolist() == HISTORY_TRAIN[0] + [3]  # u1's d (validation) comes after train
    assert both.matrix().nnz == len(fs.train) + len(fs.validation)


def test_zero_validation_fraction_gives_an_empty_typed_validation(events, items):
    fs = build_features(events, items, FeaturesConfig(validation_fraction=0.0, test_fraction=0.1))
    assert len(fs.validation) == 0
    assert fs.validation.dtypes.astype(str).to_dict() == PAIRS_DTYPES
    assert len(fs.train) + len(fs.test) > 0


def test_inputs_are_not_modified_and_output_is_deterministic(events, items):
    before_events, before_items = events.copy(), items.copy()
    first = build_features(events, items, CONFIG)
    shuffled = events.sample(frac=1.0, random_state=1)
    second = build_features(shuffled, items, CONFIG)
    pd.testing.assert_frame_equal(events, before_events)
    pd.testing.assert_frame_equal(items, before_items)
    for name in ("train", "validation", "test", "items"):
        pd.testing.assert_frame_equal(getattr(first, name), getattr(second, name))
    assert np.array_equal(first.matrix("train", "test").toarray(), second.matrix("train", "test").toarray())


def test_bad_inputs_say_what_is_wrong(events, items):
    with pytest.raises(DataValidationError, match="empty"):
        build_features(events.iloc[:0], items, CONFIG)
    with pytest.raises(DataValidationError, match="duplicate item_id"):
        build_features(events, pd.concat([items, items.iloc[:1]]), CONFIG)


def test_impressions_and_clicks_are_not_interactions(events, items):
    """Outcome events (weight 0 by default) add no user, item, pair or sequence step."""
    shown = events.head(3).assign(
        **{schema.USER_ID: "only-shown", schema.EVENT_TYPE: schema.IMPRESSION, schema.PLACEMENT: "home"}
    )
    clicked = events.head(2).assign(**{schema.EVENT_TYPE: schema.CLICK, schema.ITEM_ID: "e"})
    with_outcomes = pd.concat([events, shown, clicked], ignore_index=True)
    plain, mixed = build_features(events, items, CONFIG), build_features(with_outcomes, items, CONFIG)
    assert mixed.user_ids.tolist() == plain.user_ids.tolist()  # "only-shown" was never a shopper
    for name in (schema.TRAIN, schema.VALIDATION, schema.TEST):
        assert _pairs(getattr(mixed, name)) == _pairs(getattr(plain, name))
    with pytest.raises(DataValidationError, match="weighted 0"):
        build_features(shown, items, CONFIG)
    with pytest.raises(ConfigError, match=r"event_weights must be >= 0.*refund"):
        load_config(overrides={"features.event_weights": {"view": 1.0, "refund": -1.0}})


def test_item_age_counts_days_from_first_interaction_to_the_datas_end(events, items):
    fs = build_features(events, items, CONFIG)
    age = fs.item_age_days()
    end = events[schema.TIMESTAMP].max()
    for idx, item in enumerate(fs.item_ids):
        stamps = events.loc[events[schema.ITEM_ID] == item, schema.TIMESTAMP]
        if stamps.empty:
            assert age[idx] == 0.0, item  # in the catalogue, never touched: the newest arrival
        else:  # a pair's time is its newest event: the first pair of an item with one pair is its last event
            pairs = pd.concat([fs.train, fs.validation, fs.test])
            first = pairs.loc[pairs[schema.ITEM_IDX] == idx, schema.TIMESTAMP].min()
            assert age[idx] == pytest.approx((end - first).total_seconds() / 86_400), item
    assert (age >= 0).all()
