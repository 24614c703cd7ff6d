from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from recsys_lib import schema
from recsys_lib.config import DataConfig
from recsys_lib.errors import SourceError
from recsys_lib.sources import read_source, uci_retail
from recsys_lib.sources.uci_catalogue import derive_categories
from recsys_lib.storage import ObjectStore

COLUMNS = list(uci_retail.UCI_COLUMNS)
UK = "United Kingdom"
# fmt: off
RAW_ROWS = [
    # kept, then an exact duplicate of the second line
    ("536365", "85123A", "WHITE HANGING HEART T-LIGHT HOLDER", 6, "2010-12-01 08:26:00", 2.55, 17850.0, UK),
    ("536365", "71053", "WHITE METAL LANTERN", 6, "2010-12-01 08:26:00", 3.39, 17850.0, UK),
    ("536365", "71053", "WHITE METAL LANTERN", 6, "2010-12-01 08:26:00", 3.39, 17850.0, UK),
    # cancelled invoices (the first is also a fee code with a negative quantity)
    ("C536379", "D", "Discount", -1, "2010-12-01 09:41:00", 27.5, 14527.0, UK),
    ("C536383", "35004C", "SET OF 3 COLOURED FLYING DUCKS", -1, "2010-12-01 09:49:00", 4.65, 15311.0, UK),
    # no customer
    ("536414", "22139", None, 56, "2010-12-01 11:52:00", 0.0, np.nan, UK),
    # postage, then a kept line with a messy code and description, in British summer time
    ("536370", "POST", "POSTAGE", 3, "2010-12-01 08:45:00", 18.0, 12583.0, "France"),
    ("536370", " 85123a ", "WHITE HANGING HEART T-LIGHT HOLDER ", 2, "2011-07-01 10:00:00", 2.95, 12583.0, "France"),
    # a return outside a cancelled invoice, a free line, a gift voucher
    ("536371", "22423", "REGENCY CAKESTAND 3 TIER", -2, "2010-12-02 08:00:00", 12.75, 13047.0, UK),
    ("536372", "22423", "REGENCY CAKESTAND 3 TIER", 1, "2010-12-02 08:30:00", 0.0, 13047.0, UK),
    ("536373", "gift_0001_20", "Dotcomgiftshop Gift Voucher £20.00", 1, "2010-12-02 08:40:00", 16.67, 13047.0, UK),
    # kept (a second, rarer description of 85123A), carriage, kept
    ("536374", "22423", "REGENCY CAKESTAND 3 TIER", 2, "2010-12-02 09:00:00", 12.75, 13047.0, UK),
    ("536374", "85123A", "CREAM HANGING HEART T-LIGHT HOLDER", 1, "2010-12-02 09:00:00", 2.75, 13047.0, UK),
    ("536375", "C2", "CARRIAGE", 1, "2010-12-02 10:00:00", 50.0, 14911.0, "EIRE"),
    ("536376", "71053", "WHITE METAL LANTERN", 4, "2010-12-03 12:00:00", 3.75, 17850.0, UK),
]
# fmt: on
EXPECTED_DROPPED = {
    uci_retail.CANCELLED_INVOICE: 2,
    uci_retail.MISSING_CUSTOMER: 1,
    uci_retail.NON_PRODUCT_CODE: 3,
    uci_retail.NON_POSITIVE_QUANTITY: 1,
    uci_retail.NON_POSITIVE_PRICE: 1,
    uci_retail.DUPLICATE_ROW: 1,
}


def raw_lines() -> pd.DataFrame:
    return pd.DataFrame(RAW_ROWS, columns=COLUMNS)


def expected_events() -> pd.DataFrame:
    rows = [  # sorted by time; the July line was 10:00 in London (BST), 09:00 UTC
        ("17850", "85123A", "2010-12-01 08:26:00", 6, 2.55, "536365"),
        ("17850", "71053", "2010-12-01 08:26:00", 6, 3.39, "536365"),
        ("13047", "22423", "2010-12-02 09:00:00", 2, 12.75, "536374"),
        ("13047", "85123A", "2010-12-02 09:00:00", 1, 2.75, "536374"),
        ("17850", "71053", "2010-12-03 12:00:00", 4, 3.75, "536376"),
        ("12583", "85123A", "2011-07-01 09:00:00", 2, 2.95, "536370"),
    ]
    frame = pd.DataFrame(
        rows,
        columns=[schema.USER_ID, schema.ITEM_ID, schema.TIMESTAMP, schema.QUANTITY, schema.PRICE, schema.SESSION_ID],
    )
    return schema.conform_events(frame.assign(**{schema.EVENT_TYPE: schema.PURCHASE}))


def expected_items() -> pd.DataFrame:
    return schema.conform_items(
        pd.DataFrame(
            {
                schema.ITEM_ID: ["22423", "71053", "85123A"],
                schema.TITLE: ["REGENCY CAKESTAND 3 TIER", "WHITE METAL LANTERN", "WHITE HANGING HEART T-LIGHT HOLDER"],
                schema.CATEGORY: pd.Series([None, None, None], dtype="str"),  # too few items for a category
                schema.PRICE: [12.75, (3.39 + 3.75) / 2, 2.75],
            }
        )
    )


def test_rules_drop_exactly_the_dirty_lines() -> None:
    tables = uci_retail.to_canonical(raw_lines())
    assert tables.dropped == EXPECTED_DROPPED
    assert list(tables.dropped) == list(uci_retail.DROP_RULES)
    pd.testing.assert_frame_equal(tables.events, expected_events())
    pd.testing.assert_frame_equal(tables.items, expected_items())


def test_each_dropped_line_is_counted_under_its_first_rule() -> None:
    cancelled_duplicates = pd.DataFrame([RAW_ROWS[3], RAW_ROWS[3]], columns=COLUMNS)  # also non-product, qty < 0
    dropped = uci_retail.to_canonical(cancelled_duplicates).dropped
    assert dropped[uci_retail.CANCELLED_INVOICE] == 2 and sum(dropped.values()) == 2


def test_csv_and_parquet_files_give_the_same_tables(raw_store: ObjectStore) -> None:
    csv = raw_lines().astype({"CustomerID": "Int64"}).to_csv(index=False).encode()
    raw_store.put_bytes("raw/uci/part-1.csv", csv)
    from_csv = read_source(raw_store, DataConfig(source="uci_retail", dataset="uci"))
    raw_store.put_frame("raw/uci-pq/online_retail.parquet", raw_lines())
    from_parquet = read_source(raw_store, DataConfig(source="uci_retail", dataset="uci-pq"))
    for tables in (from_csv, from_parquet):
        assert tables.dropped == EXPECTED_DROPPED
        pd.testing.assert_frame_equal(tables.events, expected_events())
        pd.testing.assert_frame_equal(tables.items, expected_items())


def test_the_uci_sheet_date_format_and_string_customer_ids_are_understood() -> None:
    raw = raw_lines().iloc[[0]].assign(InvoiceDate="12/1/2010 8:26", CustomerID="17850.0")
    events = uci_retail.to_canonical(raw).events
    assert events[schema.USER_ID].tolist() == ["17850"]
    assert events[schema.TIMESTAMP].iloc[0] == pd.Timestamp("2010-12-01 08:26", tz="UTC")


def test_missing_columns_are_named() -> None:
    with pytest.raises(SourceError, match=r"missing columns \['CustomerID'\]"):
        uci_retail.to_canonical(raw_lines().drop(columns=["CustomerID"]))


def test_malformed_values_raise_a_source_error() -> None:
    with pytest.raises(SourceError, match="cannot convert"):
        uci_retail.to_canonical(raw_lines().assign(Quantity="six"))


def test_non_utf8_csv_is_refused(raw_store: ObjectStore) -> None:
    buffer = io.BytesIO()
    raw_lines().to_csv(buffer, index=False, encoding="latin-1")  # the £ of the voucher line is not UTF-8
    raw_store.put_bytes("raw/uci/lines.csv", buffer.getvalue())
    with pytest.raises(SourceError, match=r"raw/uci/lines\.csv: CSV files must be UTF-8"):
        read_source(raw_store, DataConfig(source="uci_retail", dataset="uci"))


def test_fee_codes_are_not_products() -> None:
    codes = pd.Series(
        ["POST", "DOT", "M", "BANK CHARGES", "GIFT_0001_10", "DCGSSGIRL", "85123A", "C2", "84029E"], dtype="str"
    )
    assert uci_retail.is_non_product(codes).tolist() == [True] * 6 + [False, True, False]


def test_categories_are_last_words_shared_by_enough_items() -> None:
    titles = pd.Series(["RED MUG", "BLUE MUG ", "MUG, LARGE", "JUMBO BAG RED RETROSPOT", "SET/3", None], dtype="str")
    common = derive_categories(titles, min_items=2)
    assert common.tolist()[:2] == ["MUG", "MUG"] and common.iloc[2:].isna().all()
    every = derive_categories(titles, min_items=1)
    assert every.tolist()[2:5] == ["LARGE", "RETROSPOT", "SET"] and pd.isna(every.iloc[5])
