"""A tiny canonical shop that satisfies the data contract; tests break one rule at a time."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from recsys_lib import schema

INTERVAL_END = datetime(2024, 3, 2, tzinfo=UTC)


@pytest.fixture
def events() -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            schema.USER_ID: ["u1", "u1", "u1", "u2"],
            schema.ITEM_ID: ["i1", "i1", "i1", "i2"],
            schema.EVENT_TYPE: [schema.VIEW, schema.ADD_TO_CART, schema.PURCHASE, schema.VIEW],
            schema.TIMESTAMP: pd.to_datetime(
                ["2024-03-01 10:00", "2024-03-01 10:01", "2024-03-01 10:05", "2024-03-02 00:00"], utc=True
            ),
            schema.QUANTITY: [None, 1, 1, None],
            schema.PRICE: [None, None, 9.5, None],
            schema.SESSION_ID: ["s1", "s1", "s1", "s2"],
        }
    )
    return schema.conform_events(frame)


@pytest.fixture
def items() -> pd.DataFrame:
    frame = pd.DataFrame({schema.ITEM_ID: ["i1", "i2"], schema.TITLE: ["Red Mug", None], schema.PRICE: [9.5, None]})
    return schema.conform_items(frame)


@pytest.fixture
def interval_end() -> datetime:
    """The data interval end the fixture events respect (the last event is exactly at it)."""
    return INTERVAL_END
