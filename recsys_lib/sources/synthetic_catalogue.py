"""The synthetic shop's catalogue: items with readable titles, categories, brands and prices.

Titles read "<adjective> <material> <product>", where the product word belongs to the item's
category ("Rustic Oak Planter" is in ``garden``), so title tokens carry the category signal that
content features should find. Prices are log-normal around a per-category median.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys_lib import schema
from recsys_lib.sources.base import conform_items

#: (category, product words); categories beyond this list get generic names and words.
CATEGORY_VOCAB: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("kitchen", ("Mug", "Pan", "Kettle", "Bowl")),
    ("garden", ("Planter", "Hose", "Lantern", "Trowel")),
    ("toys", ("Puzzle", "Robot", "Kite", "Blocks")),
    ("books", ("Novel", "Atlas", "Cookbook", "Journal")),
    ("beauty", ("Serum", "Balm", "Lotion", "Palette")),
    ("sports", ("Ball", "Racket", "Mat", "Bottle")),
    ("electronics", ("Speaker", "Charger", "Headphones", "Radio")),
    ("fashion", ("Scarf", "Jacket", "Sneakers", "Hat")),
    ("home", ("Cushion", "Blanket", "Vase", "Clock")),
    ("pets", ("Leash", "Basket", "Feeder", "Collar")),
    ("office", ("Notebook", "Pen", "Stapler", "Folder")),
    ("music", ("Ukulele", "Strings", "Metronome", "Capo")),
)
_GENERIC_WORDS = ("Item", "Set", "Pack", "Kit")
ADJECTIVES = ("Classic", "Compact", "Deluxe", "Eco", "Vintage", "Modern", "Rustic", "Smart", "Cosy", "Bold", "Mini")
MATERIALS = ("Oak", "Steel", "Cotton", "Ceramic", "Bamboo", "Leather", "Glass", "Wool", "Copper", "Linen")
_BRAND_HEADS = ("Nor", "Ala", "Ver", "Kel", "Bri", "Tam", "Oro", "Zen")
_BRAND_TAILS = ("dik", "vo", "lux", "ton", "ra", "mo", "field", "ex")

UNAVAILABLE_SHARE = 0.03  # items out of stock
PRICE_SIGMA = 0.45  # log-normal spread of item prices around their category's median


@dataclass(frozen=True)
class Catalogue:
    """Items and the arrays the event generator samples from (aligned with ``items`` rows)."""

    items: pd.DataFrame
    category_idx: np.ndarray  # (n_items,) int: category of each item
    price: np.ndarray  # (n_items,) float: list price in the shop's currency


def category_names(n_categories: int) -> list[str]:
    """Names of the first ``n_categories`` categories (vocabulary first, then ``category13`` ...)."""
    named = [name for name, _ in CATEGORY_VOCAB]
    return [named[c] if c < len(named) else f"category{c + 1:02d}" for c in range(n_categories)]


def brand_names(n_brands: int) -> list[str]:
    """``n_brands`` distinct made-up brand names (``Norvo``, ``Alalux``, ...)."""
    heads, tails = len(_BRAND_HEADS), len(_BRAND_TAILS)
    names = []
    for b in range(n_brands):
        name = _BRAND_HEADS[b % heads] + _BRAND_TAILS[(b // heads) % tails]
        names.append(name if b < heads * tails else f"{name}{b // (heads * tails) + 1}")
    return names


def _titles(rng: np.random.Generator, category_idx: np.ndarray) -> list[str]:
    n = len(category_idx)
    adjective = rng.integers(len(ADJECTIVES), size=n)
    material = rng.integers(len(MATERIALS), size=n)
    word = rng.integers(len(_GENERIC_WORDS), size=n)  # every category has four product words
    vocab = [words for _, words in CATEGORY_VOCAB]
    return [
        f"{ADJECTIVES[a]} {MATERIALS[m]} {(vocab[c] if c < len(vocab) else _GENERIC_WORDS)[w]}"
        for a, m, w, c in zip(adjective, material, word, category_idx, strict=True)
    ]


def generate_catalogue(rng: np.random.Generator, n_items: int, n_categories: int, n_brands: int) -> Catalogue:
    """Items ``i00000`` ... spread evenly over categories in random order, with brands and prices."""
    category_idx = rng.permutation(np.arange(n_items) % n_categories)
    category_median = np.exp(rng.uniform(np.log(5.0), np.log(80.0), size=n_categories))
    price = np.round(category_median[category_idx] * rng.lognormal(0.0, PRICE_SIGMA, size=n_items), 2)
    price = np.maximum(price, 0.5)
    brand_idx = rng.integers(n_brands, size=n_items)
    available = rng.random(n_items) >= UNAVAILABLE_SHARE
    width = max(5, len(str(n_items - 1)))
    items = pd.DataFrame(
        {
            schema.ITEM_ID: [f"i{i:0{width}d}" for i in range(n_items)],
            schema.TITLE: _titles(rng, category_idx),
            schema.CATEGORY: np.array(category_names(n_categories), dtype=object)[category_idx],
            schema.BRAND: np.array(brand_names(n_brands), dtype=object)[brand_idx],
            schema.PRICE: price,
            schema.AVAILABLE: available,
        }
    )
    return Catalogue(items=conform_items(items), category_idx=category_idx, price=price)
