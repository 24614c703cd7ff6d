import numpy as np
import pandas as pd

from recsys_lib.features.encoders import decode_ids, encode_ids, fit_ids


def test_fit_ids_is_sorted_unique_over_all_columns_and_drops_nulls():
    ids = fit_ids(pd.Series(["u10", "u2", "u10", None]), np.array(["u1", "u2"], dtype=object))
    assert ids.tolist() == ["u1", "u10", "u2"]
    assert ids.dtype == object


def test_fit_ids_does_not_depend_on_row_order():
    values = [f"i{n}" for n in np.random.default_rng(0).integers(0, 50, 200)]
    assert np.array_equal(fit_ids(pd.Series(values)), fit_ids(pd.Series(values[::-1])))


def test_encode_round_trips_and_marks_unknown_ids():
    ids = fit_ids(pd.Series(["b", "a", "c"]))
    idx = encode_ids(ids, pd.Series(["c", "a", "zz"]))
    assert idx.dtype == np.int64
    assert idx.tolist() == [2, 0, -1]
    assert decode_ids(ids, idx).tolist() == ["c", "a", None]
