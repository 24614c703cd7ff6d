import numpy as np
import pandas as pd
import pytest

from recsys_lib import schema
from recsys_lib.features.split import SPLIT_CODES, assign_splits, temporal_cutoffs


def _timestamps(n: int, seed: int = 0) -> pd.Series:
    seconds = np.random.default_rng(seed).integers(0, 30 * 86400, n)
    return pd.Series(pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(seconds, unit="s"))


@pytest.mark.parametrize(("validation_fraction", "test_fraction"), [(0.1, 0.1), (0.2, 0.05), (0.0, 0.3)])
def test_windows_are_temporal_and_sized_by_fraction(validation_fraction, test_fraction):
    ts = _timestamps(5000)
    codes = assign_splits(ts, temporal_cutoffs(ts, validation_fraction, test_fraction))
    train, val, test = (ts[codes == SPLIT_CODES[s]] for s in (schema.TRAIN, schema.VALIDATION, schema.TEST))
    assert train.max() < test.min()
    if validation_fraction:
        assert train.max() < val.min() and val.max() < test.min()
    assert len(test) / len(ts) == pytest.approx(test_fraction, abs=0.005)
    assert len(val) / len(ts) == pytest.approx(validation_fraction, abs=0.005)


def test_ties_at_a_cutoff_stay_together():
    ts = pd.Series(pd.to_datetime(["2024-01-01"] * 3 + ["2024-01-02"] * 3 + ["2024-01-03"] * 4, utc=True))
    codes = assign_splits(ts, temporal_cutoffs(ts, 0.1, 0.1))
    assert codes.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 2]  # the 1-event windows grow to whole days


def test_small_tables_still_get_a_test_event():
    ts = _timestamps(3)
    codes = assign_splits(ts, temporal_cutoffs(ts, 0.1, 0.1))
    assert sorted(codes.tolist()) == [0, 1, 2]


def test_empty_table_is_an_error():
    with pytest.raises(ValueError, match="empty"):
        temporal_cutoffs(pd.Series([], dtype="datetime64[us, UTC]"), 0.1, 0.1)
