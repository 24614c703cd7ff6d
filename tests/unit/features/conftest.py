"""Tiny canonical events and catalogue whose features can be worked out by hand."""

from __future__ import annotations

import pandas as pd
import pytest

from recsys_lib import schema

T0 = pd.Timestamp("2024-03-01", tz="UTC")


def make_events(rows: list[tuple[str, str, str, int]]) -> pd.DataFrame:
    """Canonical events from (user_id, item_id, event_type, minutes after T0) tuples."""
    users, items, types, minutes = zip(*rows, strict=True)
    return schema.conform_events(
        pd.DataFrame(
            {
                schema.USER_ID: users,
                schema.ITEM_ID: items,
                schema.EVENT_TYPE: types,
                schema.TIMESTAMP: T0 + pd.to_timedelta(list(minutes), unit="min"),
                schema.QUANTITY: 1,
                schema.PRICE: 1.0,
                schema.SESSION_ID: "s",
            }
        )
    )


@pytest.fixture
def events() -> pd.DataFrame:
    """10 events at minutes 0..9: train = minutes 0-7, validation = 8, test = 9 (fractions 0.1/0.1)."""
    return make_events(
        [
            ("u2", "b", "view", 0),
            ("u2", "b", "view", 1),
            ("u1", "a", "view", 2),
            ("u2", "a", "purchase", 3),
            ("u1", "a", "add_to_cart", 4),
            ("u2", "b", "add_to_cart", 5),
            ("u3", "z", "view", 6),  # z is not in the catalogue
            ("u1", "c", "view", 7),
            ("u1", "d", "purchase", 8),
            ("u3", "a", "view", 9),
        ]
    )


@pytest.fixture
def items() -> pd.DataFrame:
    """Catalogue of a, b, c, d, e (e never interacted with; d unavailable)."""
    return schema.conform_items(
        pd.DataFrame(
            {
                schema.ITEM_ID: ["e", "d", "c", "b", "a"],
                schema.TITLE: ["E", "D", "C", "B", "A"],
                schema.CATEGORY: ["x", "x", "y", "y", "y"],
                schema.BRAND: ["k", "k", "k", "l", "l"],
                schema.PRICE: [5.0, 4.0, 3.0, 2.0, 1.0],
                schema.AVAILABLE: [True, False, True, True, True],
            }
        )
    )
