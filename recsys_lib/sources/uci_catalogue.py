"""The UCI Online Retail catalogue: one row per stock code, built from the kept invoice lines.

The source has no catalogue, so it is derived: the title is the description a code carries most
often (ties broken alphabetically), the price is the median unit price, and the category is a
coarse guess from the title (:func:`derive_categories`). There are no brands and every item is
taken as available.
"""

from __future__ import annotations

import pandas as pd

from recsys_lib import schema
from recsys_lib.sources.base import conform_items

#: A title's last word becomes a category only when at least this many items share it.
MIN_CATEGORY_ITEMS = 5


def most_frequent_titles(item_ids: pd.Series, descriptions: pd.Series) -> pd.Series:
    """Per item id, its most frequent non-null description (alphabetically first on ties)."""
    pairs = pd.DataFrame({"item": item_ids, "title": descriptions}).dropna()
    counts = pairs.groupby(["item", "title"], sort=False, observed=True).size().rename("n").reset_index()
    best = counts.sort_values(["item", "n", "title"], ascending=[True, False, True]).drop_duplicates("item")
    return best.set_index("item")["title"]


def derive_categories(titles: pd.Series, min_items: int = MIN_CATEGORY_ITEMS) -> pd.Series:
    """Coarse category per title: its last word of letters, upper-cased (``"... T-LIGHT HOLDER"``
    gives ``HOLDER``, ``"JUMBO BAG RED RETROSPOT"`` gives ``RETROSPOT``).

    Words shared by fewer than ``min_items`` titles, and titles with no such word, give null.
    Often a product type (HOLDER, BAG, MUG), sometimes a design line (RETROSPOT): a grouping for
    content features and reports, not a taxonomy.
    """
    words = titles.str.upper().str.extract(r"([A-Z]{2,})[^A-Z]*$", expand=False)
    counts = words.value_counts()
    return words.where(words.map(counts).fillna(0) >= min_items)


def build_catalogue(item_ids: pd.Series, descriptions: pd.Series, unit_prices: pd.Series) -> pd.DataFrame:
    """Canonical items table for the distinct ``item_ids`` (sorted), from aligned line columns."""
    prices = unit_prices.groupby(item_ids, sort=True).median()
    titles = most_frequent_titles(item_ids, descriptions).reindex(prices.index)
    items = pd.DataFrame(
        {
            schema.ITEM_ID: prices.index,
            schema.TITLE: titles.to_numpy(),
            schema.CATEGORY: derive_categories(titles).to_numpy(),
            schema.PRICE: prices.to_numpy(),
            schema.AVAILABLE: True,
        }
    )
    return conform_items(items)
