"""Item content as integer features: title tokens, category, brand and price bucket per item.

What the two-tower model's item tower reads, so an item with no interactions still gets a vector.
Tokens, categories and brands are hashed into fixed bucket ranges (crc32, stable across processes
and runs), so no vocabulary has to be stored and a new item's text maps the same way at serving
time. Index 0 of every field means "missing"; hashed values land in ``1..buckets``.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys_lib import schema

_TOKEN = re.compile(r"[a-z0-9]+")
MISSING = 0


@dataclass(frozen=True)
class ItemContent:
    """Every item's content features as integer arrays aligned to ``item_idx`` (0 means missing);
    the title tokens are flattened with offsets, the EmbeddingBag layout."""

    title_tokens: np.ndarray
    """(n_tokens,) int64 hashed title tokens of every item, item after item (an EmbeddingBag input)."""
    title_offsets: np.ndarray
    """(n_items,) int64 start of each item's tokens in ``title_tokens``; an item with no title has
    the single token 0."""
    category: np.ndarray
    """(n_items,) int64 hashed category, 0 when missing."""
    brand: np.ndarray
    """(n_items,) int64 hashed brand, 0 when missing."""
    price_bucket: np.ndarray
    """(n_items,) int64 price quantile bucket ``1..price_buckets``, 0 when missing."""


def hash_bucket(text: str, buckets: int) -> int:
    """``1 + crc32(text) % buckets``: a stable bucket for a non-empty string."""
    return 1 + zlib.crc32(text.encode("utf-8")) % buckets


def _hashed(values: pd.Series, buckets: int) -> np.ndarray:
    text = values.astype("str").str.strip().str.lower()
    return np.array([MISSING if pd.isna(v) or not v else hash_bucket(v, buckets) for v in text], dtype=np.int64)


def _title_tokens(titles: pd.Series, buckets: int) -> tuple[np.ndarray, np.ndarray]:
    tokens: list[int] = []
    offsets = np.empty(len(titles), dtype=np.int64)
    for i, title in enumerate(titles.astype("str")):
        offsets[i] = len(tokens)
        words = _TOKEN.findall(title.lower()) if not pd.isna(title) else []
        tokens.extend([hash_bucket(w, buckets) for w in dict.fromkeys(words)] or [MISSING])
    return np.asarray(tokens, dtype=np.int64), offsets


def price_edges(prices: pd.Series, buckets: int) -> np.ndarray:
    """``(buckets - 1,)`` float64 inner quantile edges of the known prices (empty without prices)."""
    known = pd.to_numeric(prices, errors="coerce").dropna().to_numpy(np.float64)
    if len(known) == 0 or buckets < 2:
        return np.empty(0, dtype=np.float64)
    edges: np.ndarray = np.quantile(known, np.linspace(0, 1, buckets + 1)[1:-1])
    return edges


def encode_content(items: pd.DataFrame, title_buckets: int, category_buckets: int, price_buckets: int) -> ItemContent:
    """Content features of a catalogue aligned to item_idx (row i is item i; see FeatureSet.items).

    ``items`` is not modified; missing columns count as missing values.
    """

    def column(name: str) -> pd.Series:
        return items[name] if name in items else pd.Series([None] * len(items), dtype="str")

    tokens, offsets = _title_tokens(column(schema.TITLE), title_buckets)
    prices = pd.to_numeric(column(schema.PRICE), errors="coerce").to_numpy(np.float64)
    edges = price_edges(column(schema.PRICE), price_buckets)
    bucket = np.where(np.isnan(prices), MISSING, 1 + np.searchsorted(edges, np.nan_to_num(prices), side="right"))
    return ItemContent(
        title_tokens=tokens,
        title_offsets=offsets,
        category=_hashed(column(schema.CATEGORY), category_buckets),
        brand=_hashed(column(schema.BRAND), category_buckets),
        price_bucket=bucket.astype(np.int64),
    )
