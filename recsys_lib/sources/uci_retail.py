"""The UCI Online Retail source (Chen, Sain & Guo 2012): invoice lines become purchase events.

Raw files (``.parquet``, ``.csv``, ``.csv.gz``, ``.xlsx`` as published, concatenated in key order)
have the columns ``InvoiceNo, StockCode, Description, Quantity, InvoiceDate, UnitPrice, CustomerID,
Country`` (the 2010-2011 data set) or Online Retail II's ``Invoice, StockCode, Description, Quantity,
InvoiceDate, Price, Customer ID, Country`` (2009-2011); the two may be mixed across files.
Each kept line is one ``purchase``: ``user_id`` = CustomerID (``"17850"``, never ``"17850.0"``),
``item_id`` = StockCode stripped and upper-cased, ``session_id`` = InvoiceNo, ``quantity``,
``price`` = UnitPrice (GBP). InvoiceDate is UK wall-clock time: it is read as Europe/London and
converted to UTC (a 1-hour shift in summer; the shop never traded around the DST switches).

Rows are dropped by the rules of :data:`DROP_RULES`, applied in that order; each dropped row is
counted once, under the first rule it breaks. The catalogue has one row per kept item: the most
frequent description as title, the median unit price, a coarse category (:func:`derive_categories`),
no brand, always available.
"""

from __future__ import annotations

import posixpath
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from recsys_lib import schema
from recsys_lib.errors import SourceError
from recsys_lib.sources.base import RawTables, conform_events
from recsys_lib.sources.files import read_frames
from recsys_lib.sources.uci_catalogue import build_catalogue
from recsys_lib.storage.objectstore import ObjectStore

if TYPE_CHECKING:
    from recsys_lib.config import DataConfig
    from recsys_lib.sources.landing import RawFiles

INVOICE, STOCK_CODE, DESCRIPTION, QUANTITY = "InvoiceNo", "StockCode", "Description", "Quantity"
INVOICE_DATE, UNIT_PRICE, CUSTOMER, COUNTRY = "InvoiceDate", "UnitPrice", "CustomerID", "Country"
UCI_COLUMNS = (INVOICE, STOCK_CODE, DESCRIPTION, QUANTITY, INVOICE_DATE, UNIT_PRICE, CUSTOMER, COUNTRY)
REQUIRED_COLUMNS = (INVOICE, STOCK_CODE, QUANTITY, INVOICE_DATE, UNIT_PRICE, CUSTOMER)
#: Online Retail II's names for the columns it renamed.
RETAIL_II_NAMES = {"Invoice": INVOICE, "Price": UNIT_PRICE, "Customer ID": CUSTOMER}
_STR_COLUMNS = (INVOICE, STOCK_CODE, DESCRIPTION, INVOICE_DATE, CUSTOMER, COUNTRY, *RETAIL_II_NAMES)

CANCELLED_INVOICE = "cancelled_invoice"  # InvoiceNo starts with "C": a cancellation, not a purchase
MISSING_CUSTOMER = "missing_customer"  # no CustomerID: the line cannot be attributed to a user
NON_PRODUCT_CODE = "non_product_code"  # postage, fees, discounts, manual adjustments, gift vouchers
NON_POSITIVE_QUANTITY = "non_positive_quantity"  # Quantity <= 0 or missing: returns, stock adjustments
NON_POSITIVE_PRICE = "non_positive_price"  # UnitPrice <= 0 or missing: free samples, bad-debt adjustments
DUPLICATE_ROW = "duplicate_row"  # the same line twice (after stripping and upper-casing codes)
DROP_RULES = (
    CANCELLED_INVOICE,
    MISSING_CUSTOMER,
    NON_PRODUCT_CODE,
    NON_POSITIVE_QUANTITY,
    NON_POSITIVE_PRICE,
    DUPLICATE_ROW,
)

#: Fee and adjustment codes found in the data (upper-cased). C2 is carriage, B "adjust bad debt".
NON_PRODUCT_CODES = frozenset({"POST", "DOT", "C2", "M", "D", "S", "B", "CRUK", "PADS", "AMAZONFEE", "BANK CHARGES"})
GIFT_VOUCHER_PREFIX = "GIFT_"  # gift_0001_10 ... gift_0001_50
SOURCE_TIMEZONE = "Europe/London"


def normalise(raw: pd.DataFrame, name: str = "UCI frame") -> pd.DataFrame:
    """Typed, stripped UCI columns: codes upper-cased, ids as strings, InvoiceDate in UTC.

    Raises SourceError naming ``name`` when a required column is missing or a value is malformed.
    """
    raw = _require_columns(raw, name)
    absent = pd.Series(pd.NA, index=raw.index, dtype="str")
    try:
        return pd.DataFrame(
            {
                INVOICE: _clean_text(raw[INVOICE]),
                STOCK_CODE: _clean_text(raw[STOCK_CODE]).str.upper(),
                DESCRIPTION: _clean_text(raw[DESCRIPTION]) if DESCRIPTION in raw else absent,
                QUANTITY: pd.to_numeric(raw[QUANTITY]),
                INVOICE_DATE: _invoice_dates_utc(raw[INVOICE_DATE]),
                UNIT_PRICE: pd.to_numeric(raw[UNIT_PRICE]).astype("float64"),
                CUSTOMER: _customer_ids(raw[CUSTOMER]),
                COUNTRY: _clean_text(raw[COUNTRY]) if COUNTRY in raw else absent,
            },
            index=raw.index,
        )
    except (ValueError, TypeError) as exc:
        raise SourceError(f"cannot convert {name}: {exc}") from exc


def _require_columns(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """``frame`` under the 2010-2011 names (Online Retail II's renamed); SourceError when a required
    column is missing under either name."""
    frame = frame.rename(columns={k: v for k, v in RETAIL_II_NAMES.items() if k in frame.columns})
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise SourceError(
            f"{name} is not UCI Online Retail data: missing columns {missing}; expected {list(UCI_COLUMNS)} "
            f"(or Online Retail II's {list(RETAIL_II_NAMES)} for {list(RETAIL_II_NAMES.values())})"
        )
    return frame


def _clean_text(series: pd.Series) -> pd.Series:
    """Strings stripped of surrounding blanks; empty strings become missing."""
    text = series.astype("str").str.strip()
    return text.mask(text == "")


def _customer_ids(series: pd.Series) -> pd.Series:
    """CustomerID as a string id: ``17850.0`` (float column) and ``"17850.0"`` both give ``"17850"``."""
    if pd.api.types.is_numeric_dtype(series):
        return series.astype("Int64").astype("str")
    return _clean_text(series).str.removesuffix(".0")


def _invoice_dates_utc(series: pd.Series) -> pd.Series:
    """InvoiceDate (ISO ``2010-12-01 08:26:00`` or the UCI sheet's ``12/1/2010 8:26``) in UTC."""
    if pd.api.types.is_datetime64_any_dtype(series):
        local = pd.to_datetime(series)
    else:
        try:
            local = pd.to_datetime(series, format="ISO8601")
        except ValueError:
            local = pd.to_datetime(series, format="%m/%d/%Y %H:%M")
    if local.dt.tz is not None:
        return local.dt.tz_convert("UTC")
    ambiguous = np.zeros(len(local), dtype=bool)  # an ambiguous autumn hour is read as GMT
    return local.dt.tz_localize(SOURCE_TIMEZONE, ambiguous=ambiguous, nonexistent="shift_forward").dt.tz_convert("UTC")


def is_non_product(codes: pd.Series) -> pd.Series:
    """True for fee and adjustment codes: known fee codes, gift vouchers, and codes without a digit."""
    has_digit = codes.str.contains(r"\d", regex=True, na=False)
    return codes.isin(NON_PRODUCT_CODES) | codes.str.startswith(GIFT_VOUCHER_PREFIX, na=False) | ~has_digit


def rule_masks(lines: pd.DataFrame) -> dict[str, pd.Series]:
    """For each rule of :data:`DROP_RULES`, which normalised lines break it (rules may overlap)."""
    return {
        CANCELLED_INVOICE: lines[INVOICE].str.upper().str.startswith("C", na=False),
        MISSING_CUSTOMER: lines[CUSTOMER].isna(),
        NON_PRODUCT_CODE: is_non_product(lines[STOCK_CODE]),
        NON_POSITIVE_QUANTITY: ~(lines[QUANTITY] > 0),
        NON_POSITIVE_PRICE: ~(lines[UNIT_PRICE] > 0),
        DUPLICATE_ROW: lines.duplicated(keep="first"),
    }


def apply_rules(lines: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """Drop the lines that break any rule; return the kept lines and the count per first-broken rule."""
    masks = rule_masks(lines)
    already = pd.Series(False, index=lines.index)
    dropped: dict[str, int] = {}
    for rule in DROP_RULES:
        newly = masks[rule] & ~already
        dropped[rule] = int(newly.sum())
        already |= newly
    return lines[~already], dropped


def to_canonical(raw: pd.DataFrame, name: str = "UCI frame") -> RawTables:
    """Canonical purchase events and catalogue from raw UCI lines (pure; see the module docstring)."""
    kept, dropped = apply_rules(normalise(raw, name))
    events = pd.DataFrame(
        {
            schema.USER_ID: kept[CUSTOMER],
            schema.ITEM_ID: kept[STOCK_CODE],
            schema.EVENT_TYPE: schema.PURCHASE,
            schema.TIMESTAMP: kept[INVOICE_DATE],
            schema.QUANTITY: kept[QUANTITY],
            schema.PRICE: kept[UNIT_PRICE],
            schema.SESSION_ID: kept[INVOICE],
        }
    ).sort_values(schema.TIMESTAMP, kind="stable")
    try:
        events = conform_events(events)
    except (ValueError, TypeError) as exc:
        raise SourceError(f"cannot convert {name}: {exc}") from exc
    items = build_catalogue(kept[STOCK_CODE], kept[DESCRIPTION], kept[UNIT_PRICE])
    return RawTables(events=events, items=items, dropped=dropped)


def read(store: ObjectStore, files: RawFiles, data: DataConfig) -> RawTables:
    """Read every events file of ``files`` as UCI Online Retail lines and convert them."""
    keys = files.events
    raw = read_frames(store, keys, str_columns=_STR_COLUMNS, prepare=_require_columns)
    return to_canonical(raw, name=store.uri(posixpath.dirname(keys[0]) + "/"))
