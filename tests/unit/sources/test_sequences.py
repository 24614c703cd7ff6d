import pandas as pd
import pytest

from recsys_lib import schema
from recsys_lib.config import DataConfig
from recsys_lib.errors import SourceError
from recsys_lib.sources import read_source, sequences
from recsys_lib.storage import ObjectStore


def _pairs(events: pd.DataFrame) -> list[tuple[str, str]]:
    return list(zip(events[schema.USER_ID], events[schema.ITEM_ID], strict=True))


def test_one_sequence_per_line_keeps_the_order_within_each_user():
    events = sequences.parse_sequences("1 1 2 3\n2 4 1\n")
    assert _pairs(events) == [("1", "1"), ("1", "2"), ("1", "3"), ("2", "4"), ("2", "1")]
    assert events[schema.TIMESTAMP].is_monotonic_increasing and events[schema.TIMESTAMP].is_unique
    assert (events[schema.EVENT_TYPE] == schema.PURCHASE).all()


def test_user_item_pairs_read_the_same_way_and_blank_lines_are_skipped():
    text = "a x\nb y\n\na z\n"
    events = sequences.parse_sequences(text)
    assert _pairs(events) == [("a", "x"), ("b", "y"), ("a", "z")]
    user_a = events[events[schema.USER_ID] == "a"].sort_values(schema.TIMESTAMP)
    assert user_a[schema.ITEM_ID].tolist() == ["x", "z"]


def test_ids_stay_strings_with_leading_zeros():
    events = sequences.parse_sequences("007 0042\t0043\n")
    assert _pairs(events) == [("007", "0042"), ("007", "0043")]


def test_a_line_without_items_is_an_error_naming_the_line():
    with pytest.raises(SourceError, match=r"beauty.txt: line 2 has a user \('9'\) but no item"):
        sequences.parse_sequences("1 2 3\n9\n", "beauty.txt")


def test_read_source_reads_text_files_in_key_order_with_one_clock(raw_store: ObjectStore):
    raw_store.put_bytes("raw/seq/part-b.txt", b"2 5 6\n")
    raw_store.put_bytes("raw/seq/part-a.txt", b"1 7 8\n2 9\n")
    tables = read_source(raw_store, DataConfig(source="sequences", dataset="seq"))
    assert _pairs(tables.events) == [("1", "7"), ("1", "8"), ("2", "9"), ("2", "5"), ("2", "6")]
    assert tables.events[schema.TIMESTAMP].is_monotonic_increasing and tables.events[schema.TIMESTAMP].is_unique
    assert sorted(tables.items[schema.ITEM_ID]) == ["5", "6", "7", "8", "9"]
    assert tables.items[schema.AVAILABLE].all() and tables.dropped == {}


def test_non_utf8_text_is_a_source_error(raw_store: ObjectStore):
    raw_store.put_bytes("raw/seq/bad.txt", b"1 \xff\xfe\n")
    with pytest.raises(SourceError, match="UTF-8"):
        read_source(raw_store, DataConfig(source="sequences", dataset="seq"))


def test_text_files_are_not_read_as_tables(raw_store: ObjectStore):
    raw_store.put_bytes("raw/seq/events.txt", b"1 2\n")
    with pytest.raises(SourceError, match="no canonical events file"):
        read_source(raw_store, DataConfig(source="canonical", dataset="seq"))
