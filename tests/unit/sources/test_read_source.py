from __future__ import annotations

import gzip
from typing import get_args

import pandas as pd
import pytest

from recsys_lib import schema
from recsys_lib.config import DataConfig, SourceName
from recsys_lib.errors import SourceError
from recsys_lib.sources import SOURCES, read_source, write_raw
from recsys_lib.storage import ObjectStore

EVENTS_CSV = """user_id,item_id,event_type,timestamp,quantity,session_id
007,i1,view,2024-03-01T10:00:00+00:00,,s1
007,i1,purchase,2024-03-01T12:30:00+02:00,2,s1
NA,i2,view,2024-03-02T08:00:00Z,,
"""


def test_sources_are_the_config_choices() -> None:
    assert SOURCES == get_args(SourceName) == ("canonical", "uci_retail", "sequences")


def test_write_raw_then_read_source_round_trips(
    raw_store: ObjectStore, shop: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    events, items = shop
    uris = write_raw(raw_store, "shop", events, items)
    assert uris == ["s3://test-bucket/pfx/raw/shop/events.parquet", "s3://test-bucket/pfx/raw/shop/items.parquet"]
    tables = read_source(raw_store, DataConfig(source="canonical", dataset="shop"))
    pd.testing.assert_frame_equal(tables.events, events)
    pd.testing.assert_frame_equal(tables.items, items)
    assert tables.dropped == {}


def test_write_raw_replaces_older_canonical_files_only(
    raw_store: ObjectStore, shop: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    raw_store.put_bytes("raw/shop/events-old.csv", EVENTS_CSV.encode())
    raw_store.put_bytes("raw/shop/README.txt", b"keep me")
    write_raw(raw_store, "shop", *shop)
    assert [o.key for o in raw_store.list_objects("raw/shop/")] == [
        "raw/shop/README.txt",
        "raw/shop/events.parquet",
        "raw/shop/items.parquet",
    ]


def test_canonical_csv_is_parsed_with_utc_timestamps_and_string_ids(raw_store: ObjectStore) -> None:
    raw_store.put_bytes("raw/shop/events.csv", EVENTS_CSV.encode())
    events = read_source(raw_store, DataConfig(source="canonical", dataset="shop")).events
    assert events[schema.USER_ID].tolist() == ["007", "007", "NA"]  # leading zeros kept, "NA" is an id
    assert events[schema.TIMESTAMP].tolist() == [
        pd.Timestamp("2024-03-01 10:00", tz="UTC"),
        pd.Timestamp("2024-03-01 10:30", tz="UTC"),  # +02:00 converted
        pd.Timestamp("2024-03-02 08:00", tz="UTC"),
    ]
    assert events[schema.QUANTITY].isna().tolist() == [True, False, True]
    assert events[schema.PRICE].isna().all()  # the optional price column was absent
    assert events[schema.SESSION_ID].isna().tolist() == [False, False, True]


def test_events_parts_are_concatenated_in_key_order_and_items_default_to_event_ids(raw_store: ObjectStore) -> None:
    lines = EVENTS_CSV.splitlines()
    raw_store.put_bytes("raw/shop/events-2.csv.gz", gzip.compress("\n".join([lines[0], lines[3]]).encode()))
    raw_store.put_bytes("raw/shop/events-1.csv", "\n".join(lines[:3]).encode())
    raw_store.put_bytes("raw/shop/old/events.csv", EVENTS_CSV.encode())  # sub-folders are not read
    tables = read_source(raw_store, DataConfig(source="canonical", dataset="shop"))
    assert tables.events[schema.ITEM_ID].tolist() == ["i1", "i1", "i2"]
    assert tables.items[schema.ITEM_ID].tolist() == ["i1", "i2"]
    assert tables.items[schema.AVAILABLE].all() and tables.items[schema.TITLE].isna().all()


@pytest.mark.parametrize(
    ("key", "data", "message"),
    [
        ("events.parquet", b"PAR1 this is not parquet", r"events\.parquet: not a valid Parquet file"),
        ("events.csv", "user_id,item_id\nJosé,i1\n".encode("latin-1"), r"events\.csv: CSV files must be UTF-8"),
        ("events.csv.gz", gzip.compress(EVENTS_CSV.encode())[:40], r"events\.csv\.gz: not a valid gzip-compressed CSV"),
        ("events.csv", b"", r"events\.csv: not a valid CSV file"),
    ],
)
def test_unreadable_files_raise_a_source_error_naming_the_object(
    raw_store: ObjectStore, key: str, data: bytes, message: str
) -> None:
    raw_store.put_bytes(f"raw/shop/{key}", data)
    with pytest.raises(SourceError, match=f"s3://test-bucket/pfx/raw/shop/{message}"):
        read_source(raw_store, DataConfig(source="canonical", dataset="shop"))


def test_values_that_do_not_fit_the_schema_raise_a_source_error(raw_store: ObjectStore) -> None:
    raw_store.put_bytes("raw/shop/events.csv", b"user_id,item_id,event_type,timestamp\nu,i,view,yesterday\n")
    with pytest.raises(SourceError, match=r"column_type: .* 'timestamp' must hold ISO 8601 .* \['yesterday'\]"):
        read_source(raw_store, DataConfig(source="canonical", dataset="shop"))
    raw_store.put_bytes(
        "raw/shop/events.csv", b"user_id,item_id,event_type,timestamp,quantity\nu,i,view,2024-01-01,x2\n"
    )
    with pytest.raises(SourceError, match=r"column 'quantity' must hold Int64 values; cannot convert e.g. \['x2'\]"):
        read_source(raw_store, DataConfig(source="canonical", dataset="shop"))


def test_naive_timestamps_are_utc_but_a_file_mixing_naive_and_offset_values_is_refused(raw_store: ObjectStore) -> None:
    header = b"user_id,item_id,event_type,timestamp\n"
    raw_store.put_bytes("raw/shop/events.csv", header + b"u,i,view,2024-03-01 10:00:00\n")
    [stamp] = read_source(raw_store, DataConfig(source="canonical", dataset="shop")).events[schema.TIMESTAMP]
    assert stamp == pd.Timestamp("2024-03-01 10:00", tz="UTC")
    raw_store.put_bytes("raw/shop/events.csv", header + b"u,i,view,2024-03-01 10:00:00\nu,i,view,2024-03-01T09:00Z\n")
    with pytest.raises(SourceError, match=r"mixed_time_zones: .*events\.csv column 'timestamp' mixes"):
        read_source(raw_store, DataConfig(source="canonical", dataset="shop"))


def test_an_empty_prefix_says_where_files_are_expected(raw_store: ObjectStore) -> None:
    raw_store.put_bytes("raw/shop/_SUCCESS", b"")
    with pytest.raises(SourceError, match=r"no raw files under s3://test-bucket/pfx/raw/shop/"):
        read_source(raw_store, DataConfig(source="canonical", dataset="shop"))


def test_a_prefix_without_events_file_is_refused(raw_store: ObjectStore) -> None:
    raw_store.put_bytes("raw/shop/items.csv", b"item_id\ni1\n")
    with pytest.raises(SourceError, match=r"no canonical events file among \['items.csv'\]"):
        read_source(raw_store, DataConfig(source="canonical", dataset="shop"))


def test_unknown_sources_list_the_allowed_ones(raw_store: ObjectStore) -> None:
    with pytest.raises(SourceError, match="allowed: canonical, uci_retail"):
        read_source(raw_store, DataConfig.model_construct(source="amazon", dataset="shop"))
