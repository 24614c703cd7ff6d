import numpy as np
import pandas as pd

from recsys_lib import schema
from recsys_lib.features.content import MISSING, encode_content, hash_bucket, price_edges


def _items() -> pd.DataFrame:
    return pd.DataFrame(
        {
            schema.ITEM_ID: ["a", "b", "c"],
            schema.TITLE: ["Red Lipstick, red!", None, "lipstick"],
            schema.CATEGORY: ["Make-up", "make-up ", None],
            schema.BRAND: [None, "Acme", "Acme"],
            schema.PRICE: [1.0, None, 30.0],
        }
    )


def test_titles_become_distinct_hashed_tokens_with_offsets():
    content = encode_content(_items(), title_buckets=1000, category_buckets=50, price_buckets=2)
    red, lipstick = hash_bucket("red", 1000), hash_bucket("lipstick", 1000)
    assert content.title_offsets.tolist() == [0, 2, 3]
    assert content.title_tokens.tolist() == [red, lipstick, MISSING, lipstick]  # "red" once; no title -> 0


def test_categories_and_brands_hash_case_and_space_insensitively_and_missing_is_zero():
    content = encode_content(_items(), title_buckets=1000, category_buckets=50, price_buckets=2)
    assert content.category[0] == content.category[1] == hash_bucket("make-up", 50) and content.category[2] == MISSING
    assert content.brand.tolist() == [MISSING, hash_bucket("acme", 50), hash_bucket("acme", 50)]
    assert all(1 <= b <= 50 for b in content.brand[1:])


def test_price_buckets_follow_catalogue_quantiles():
    content = encode_content(_items(), title_buckets=1000, category_buckets=50, price_buckets=2)
    assert content.price_bucket.tolist() == [1, MISSING, 2]
    np.testing.assert_allclose(price_edges(pd.Series([1.0, 2.0, 3.0, 4.0, None]), 4), [1.75, 2.5, 3.25])
    assert len(price_edges(pd.Series([None, None], dtype="float64"), 4)) == 0


def test_a_catalogue_without_content_columns_is_all_missing():
    content = encode_content(pd.DataFrame({schema.ITEM_ID: ["x", "y"]}), 100, 10, 5)
    assert content.title_tokens.tolist() == [MISSING, MISSING]
    assert (content.category == MISSING).all() and (content.price_bucket == MISSING).all()
