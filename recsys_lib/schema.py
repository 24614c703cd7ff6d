"""Column names and dtypes of every table the platform reads or writes, in one place.

Code elsewhere refers to columns only through these constants. The canonical tables are described
in DESIGN.md section 3; feature and export tables are ours.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    import pandas as pd

# --- canonical events -----------------------------------------------------------------------
USER_ID: Final = "user_id"
ITEM_ID: Final = "item_id"
EVENT_TYPE: Final = "event_type"
TIMESTAMP: Final = "timestamp"
QUANTITY: Final = "quantity"
PRICE: Final = "price"
SESSION_ID: Final = "session_id"
PLACEMENT: Final = "placement"

VIEW: Final = "view"
ADD_TO_CART: Final = "add_to_cart"
PURCHASE: Final = "purchase"
#: Outcome events: a recommended item was shown (``impression``) or clicked (``click``) where
#: ``placement`` says (``home``, ``product_page``, ``search``, ...). They measure what our lists did
#: and carry no preference of their own by default (see ``features.event_weights``).
IMPRESSION: Final = "impression"
CLICK: Final = "click"
OUTCOME_EVENT_TYPES: Final[tuple[str, ...]] = (IMPRESSION, CLICK)
EVENT_TYPES: Final[tuple[str, ...]] = (VIEW, ADD_TO_CART, PURCHASE, *OUTCOME_EVENT_TYPES)

#: pandas dtypes of the canonical events table; the first four columns are required.
EVENTS_DTYPES: Final[dict[str, str]] = {
    USER_ID: "str",
    ITEM_ID: "str",
    EVENT_TYPE: "str",
    TIMESTAMP: "datetime64[us, UTC]",
    QUANTITY: "Int64",
    PRICE: "float64",
    SESSION_ID: "str",
    PLACEMENT: "str",
}
EVENTS_REQUIRED: Final[tuple[str, ...]] = (USER_ID, ITEM_ID, EVENT_TYPE, TIMESTAMP)

# --- canonical items (catalogue) ------------------------------------------------------------
TITLE: Final = "title"
CATEGORY: Final = "category"
BRAND: Final = "brand"
AVAILABLE: Final = "available"

ITEMS_DTYPES: Final[dict[str, str]] = {
    ITEM_ID: "str",
    TITLE: "str",
    CATEGORY: "str",
    BRAND: "str",
    PRICE: "float64",
    AVAILABLE: "bool",
}
ITEMS_REQUIRED: Final[tuple[str, ...]] = (ITEM_ID,)

# --- features ---------------------------------------------------------------------------------
USER_IDX: Final = "user_idx"
ITEM_IDX: Final = "item_idx"
WEIGHT: Final = "weight"
SPLIT: Final = "split"
TRAIN: Final = "train"
VALIDATION: Final = "validation"
TEST: Final = "test"

# --- exports ------------------------------------------------------------------------------------
RANK: Final = "rank"
SCORE: Final = "score"
MODEL_NAME: Final = "model_name"
MODEL_VERSION: Final = "model_version"
REASON_ITEM_ID: Final = "reason_item_id"
SIMILAR_ITEM_ID: Final = "similar_item_id"
ARM: Final = "arm"
REASON_KIND: Final = "reason_kind"
#: Why an item is in a list (``reason_kind``): bought or viewed together with ``reason_item_id``
#: (item-kNN), close to it in the model's item space (vector models), popular (a shopper the model
#: does not know, or the popularity model), a boosted new arrival, a re-order, or a business rule
#: (a pinned item).
CO_PURCHASE, SIMILAR_ITEM, POPULAR = "co_purchase", "similar_item", "popular"
NEW_ARRIVAL, BUY_AGAIN, RULE = "new_arrival", "buy_again", "rule"
REASON_KINDS: Final = (CO_PURCHASE, SIMILAR_ITEM, POPULAR, NEW_ARRIVAL, BUY_AGAIN, RULE)
#: The registry aliases, and the experiment arms named after the version each one serves.
CHAMPION: Final = "champion"
CHALLENGER: Final = "challenger"


class ExportTable(StrEnum):
    """The published export tables, each under ``exports/<table>/`` (keys built in
    :mod:`recsys_lib.storage.layout`); a member is its name as a string."""

    USER_TOPK = "user_topk"
    """Each user's top-k list (:data:`EXPORT_DTYPES`); its ``_latest.json`` points at the whole set."""
    SIMILAR_ITEMS = "similar_items"
    """Each item's nearest items (:data:`SIMILAR_ITEMS_DTYPES`)."""
    USER_EMBEDDINGS = "user_embeddings"
    """The model's user vectors (:data:`EMBEDDING_TABLES`)."""
    ITEM_EMBEDDINGS = "item_embeddings"
    """The model's item vectors."""
    USER_PROFILES = "user_profiles"
    """Shopper profiles (:data:`USER_PROFILES_DTYPES`)."""
    BUY_AGAIN = "buy_again"
    """Each user's likely re-orders (:data:`BUY_AGAIN_DTYPES`)."""


#: ``user_topk``: ``reason_item_id`` is the history item the item is there because of where the
#: model can say (item-kNN: the largest share of the score; vector models: the closest history item),
#: else null; ``reason_kind`` says why (:data:`REASON_KINDS`); ``arm`` is the
#: experiment arm whose model made the row (``champion``, or ``challenger`` for the users an
#: experiment assigned to it), and ``model_name`` / ``model_version`` are that model's.
EXPORT_DTYPES: Final[dict[str, str]] = {
    USER_ID: "str",
    RANK: "int32",
    ITEM_ID: "str",
    SCORE: "float32",
    MODEL_NAME: "str",
    MODEL_VERSION: "str",
    REASON_ITEM_ID: "str",
    REASON_KIND: "str",
    ARM: "str",
}
#: ``similar_items``: each item's nearest items by the model (co-occurrence or vector cosine).
SIMILAR_ITEMS_DTYPES: Final[dict[str, str]] = {
    ITEM_ID: "str",
    RANK: "int32",
    SIMILAR_ITEM_ID: "str",
    SCORE: "float32",
    MODEL_NAME: "str",
    MODEL_VERSION: "str",
}
EXPORT_SCHEMA_VERSION: Final = 4  # 2: reason_item_id, similar_items. 3: arm. 4: reason_kind

# --- embedding exports (for online re-rankers) --------------------------------------------------
EMBEDDING: Final = "embedding"
#: Embedding export tables and their id column; the other columns are ``embedding`` (a list of
#: float32, the same length in every row), ``model_name`` and ``model_version``.
EMBEDDING_TABLES: Final[dict[str, str]] = {ExportTable.USER_EMBEDDINGS: USER_ID, ExportTable.ITEM_EMBEDDINGS: ITEM_ID}

# --- shopper profiles (``user_profiles``, see ``features.profiles``) ----------------------------
TOP_CATEGORIES: Final = "top_categories"
CATEGORY_SHARES: Final = "category_shares"
TOP_BRANDS: Final = "top_brands"
BRAND_SHARES: Final = "brand_shares"
PRICE_BAND: Final = "price_band"
RECENCY_DAYS: Final = "recency_days"
FREQUENCY: Final = "frequency"
MONETARY: Final = "monetary"
RFM_SCORE: Final = "rfm_score"
RFM_SEGMENT: Final = "rfm_segment"
CHURN_RISK: Final = "churn_risk"
#: ``price_band`` values: the median catalogue price of a shopper's items against the catalogue's tertiles.
PRICE_BANDS: Final = ("low", "mid", "high")
#: ``rfm_segment`` values, in the order the rules of ``features.profiles.rfm_segments`` try them.
RFM_SEGMENTS: Final = ("champions", "loyal", "at_risk", "new", "hibernating", "potential", "browsers")
#: ``user_profiles``: one row per shopper with events. Top categories / brands (at most 3, most
#: interacted first) with their shares of the shopper's views, carts and purchases; recency in whole
#: days since the last purchase (null: never bought; it is also the "days since last purchase"),
#: distinct purchase days, money spent, the R/F/M quintile scores as ``"RFM"`` digits (null: never
#: bought), the segment and the churn-risk flag.
USER_PROFILES_DTYPES: Final[dict[str, str]] = {
    USER_ID: "str",
    TOP_CATEGORIES: "list<string>",
    CATEGORY_SHARES: "list<float32>",
    TOP_BRANDS: "list<string>",
    BRAND_SHARES: "list<float32>",
    PRICE_BAND: "str",
    RECENCY_DAYS: "Int32",
    FREQUENCY: "int32",
    MONETARY: "float64",
    RFM_SCORE: "str",
    RFM_SEGMENT: "str",
    CHURN_RISK: "bool",
}


LAST_PURCHASE: Final = "last_purchase"
PURCHASE_COUNT: Final = "purchases"
#: ``buy_again`` (``recommend.repeat_purchases: separate``): each shopper's likely re-orders, best
#: first, by the repurchase model (see recsys_lib.serving.repurchase); ``purchases`` is how often
#: they bought the item, ``last_purchase`` when they last did.
BUY_AGAIN_DTYPES: Final[dict[str, str]] = {
    USER_ID: "str",
    RANK: "int32",
    ITEM_ID: "str",
    SCORE: "float32",
    PURCHASE_COUNT: "int32",
    LAST_PURCHASE: "datetime64[us, UTC]",
    REASON_KIND: "str",
}


def export_columns(table: str) -> dict[str, str]:
    """Column -> dtype of an export table (an embedding is ``list<float32>``)."""
    if table in EMBEDDING_TABLES:
        return {EMBEDDING_TABLES[table]: "str", EMBEDDING: "list<float32>", MODEL_NAME: "str", MODEL_VERSION: "str"}
    if table == ExportTable.SIMILAR_ITEMS:
        return SIMILAR_ITEMS_DTYPES
    if table == ExportTable.USER_PROFILES:
        return USER_PROFILES_DTYPES
    if table == ExportTable.BUY_AGAIN:
        return BUY_AGAIN_DTYPES
    return EXPORT_DTYPES


def conform(df: pd.DataFrame, dtypes: dict[str, str], required: tuple[str, ...]) -> pd.DataFrame:
    """Return a copy of ``df`` with exactly the columns of ``dtypes``, cast to those dtypes.

    Optional columns missing from ``df`` are added as nulls (``available`` defaults to True);
    extra columns are dropped. Missing required columns are left for validation to report, so
    this never raises for them; a value that cannot be cast raises ``ValueError`` from pandas.
    """
    import pandas as pd  # imported here so `import recsys_lib.config` (DAG parsing) stays light

    out = pd.DataFrame(index=df.index)
    for column, dtype in dtypes.items():
        if column in df.columns:
            series = df[column]
        elif column in required:
            continue
        elif column == AVAILABLE:
            series = pd.Series(True, index=df.index)
        else:
            series = pd.Series(None, index=df.index, dtype=dtype if not dtype.startswith("datetime64") else "object")
        try:
            if dtype.startswith("datetime64"):
                out[column] = pd.to_datetime(series, utc=True).astype(dtype)
            elif dtype == "bool":
                out[column] = series.fillna(True).astype(bool)
            else:
                out[column] = series.astype(dtype)
        except (ValueError, TypeError, OverflowError) as exc:
            raise ValueError(f"column {column!r} must hold {dtype} values; {_uncastable(series, dtype)}") from exc
    return out.reset_index(drop=True)


def _uncastable(series: pd.Series, dtype: str, limit: int = 5) -> str:
    """``cannot convert e.g. ['abc', '1.5']``: up to ``limit`` distinct values that do not cast."""
    import pandas as pd

    bad = []
    for value in series.dropna().unique():
        try:
            pd.Series([value]).astype(dtype if not dtype.startswith("datetime64") else "datetime64[us, UTC]")
        except (ValueError, TypeError, OverflowError):
            bad.append(value if isinstance(value, str | int | float | bool) else str(value))
            if len(bad) == limit:
                break
    return f"cannot convert e.g. {bad!r}" if bad else f"the column's {series.dtype} values do not convert"


def conform_events(df: pd.DataFrame) -> pd.DataFrame:
    """Canonical events table from any frame with (at least) the required event columns."""
    return conform(df, EVENTS_DTYPES, EVENTS_REQUIRED)


def conform_items(df: pd.DataFrame) -> pd.DataFrame:
    """Canonical items table from any frame with (at least) an ``item_id`` column."""
    return conform(df, ITEMS_DTYPES, ITEMS_REQUIRED)
