"""Bring your own columns: a shop's names, event names, timestamp formats and CSV dialects by config."""

from __future__ import annotations

import io

import pandas as pd
import pytest

from recsys_lib import schema
from recsys_lib.config import DataConfig, load_config
from recsys_lib.errors import ConfigError, SourceError
from recsys_lib.sources import read_source
from recsys_lib.storage import ObjectStore

#: The layout of public e-commerce clickstream logs: epoch milliseconds, visitor and item ids as
#: numbers, the shop's own event names, a transaction id on purchases only.
EVENT_LOG = """timestamp,visitorid,event,itemid,transactionid
1433221332117,257597,view,355908,
1433224214164,992329,addtocart,248676,
1433221999827,111016,transaction,318965,4000
"""
EVENT_LOG_MAPPING = {
    "columns": {"user_id": "visitorid", "item_id": "itemid", "event_type": "event", "session_id": "transactionid"},
    "event_types": {"addtocart": "add_to_cart", "transaction": "purchase"},
    "timestamp": "epoch_ms",
}


def _data(mapping: dict, dataset: str = "shop", **more) -> DataConfig:
    return load_config(overrides={"data.dataset": dataset, "data.mappings": {dataset: mapping}, **more}).data


def test_an_event_log_reads_through_mapping_config_alone(raw_store: ObjectStore) -> None:
    raw_store.put_bytes("raw/shop/events/dt=2015-06-02/events.csv", EVENT_LOG.encode())
    events = read_source(raw_store, _data(EVENT_LOG_MAPPING), "2015-06-02").events
    assert events[schema.USER_ID].tolist() == ["257597", "992329", "111016"]
    assert events[schema.ITEM_ID].tolist() == ["355908", "248676", "318965"]
    assert events[schema.EVENT_TYPE].tolist() == ["view", "add_to_cart", "purchase"]
    assert events[schema.SESSION_ID].tolist()[2] == "4000"  # a float column of whole numbers, not "4000.0"
    assert events[schema.TIMESTAMP][0] == pd.Timestamp("2015-06-02 05:02:12.117", tz="UTC")


def test_a_value_with_no_mapping_names_the_column_value_and_key(raw_store: ObjectStore) -> None:
    raw_store.put_bytes("raw/shop/events.csv", (EVENT_LOG + "1433221999999,5,refund,7,\n").encode())
    with pytest.raises(
        SourceError,
        match=r"mapping_value: .*events\.csv column 'event' holds 'refund'.*"
        r"data\.mappings\.shop\.event_types",
    ):
        read_source(raw_store, _data(EVENT_LOG_MAPPING))


def test_a_mapped_column_the_file_lacks_names_it_and_the_key(raw_store: ObjectStore) -> None:
    raw_store.put_bytes("raw/shop/events.csv", EVENT_LOG.replace("visitorid", "visitor").encode())
    with pytest.raises(
        SourceError, match=r"mapping_column: .* no column 'visitorid'.*data\.mappings\.shop\.columns\.user_id"
    ):
        read_source(raw_store, _data(EVENT_LOG_MAPPING))


def test_a_mapping_of_unknown_columns_or_event_types_fails_at_the_boundary() -> None:
    with pytest.raises(ConfigError, match=r"data\.mappings\.shop\.columns.*unknown canonical columns \['visitor'\]"):
        _data({"columns": {"visitor": "visitorid"}})
    with pytest.raises(ConfigError, match=r"event_types maps to \['buy'\].*not in data\.event_types"):
        _data({"event_types": {"transaction": "buy"}})
    with pytest.raises(ConfigError, match=r"timestamp must be one of"):
        _data({"timestamp": "unix"})


def test_semicolons_latin1_day_first_and_a_local_time_zone(raw_store: ObjectStore) -> None:
    text = "Kunde;Artikel;Art;Zeit\nJosé;i1;view;31/03/2026 10:00\nAnna;i2;purchase;01/04/2026 09:30\n"
    raw_store.put_bytes("raw/shop/events.csv", text.encode("latin-1"))
    mapping = {
        "columns": {"user_id": "Kunde", "item_id": "Artikel", "event_type": "Art", "timestamp": "Zeit"},
        "timestamp": "day_first",
        "timezone": "Europe/Berlin",
        "delimiter": ";",
        "encoding": "latin-1",
    }
    events = read_source(raw_store, _data(mapping)).events
    assert events[schema.USER_ID].tolist() == ["José", "Anna"]
    assert events[schema.TIMESTAMP].tolist() == [
        pd.Timestamp("2026-03-31 08:00", tz="UTC"),  # CEST, UTC+2
        pd.Timestamp("2026-04-01 07:30", tz="UTC"),
    ]


def test_a_strftime_pattern_that_does_not_fit_names_the_rule_and_values(raw_store: ObjectStore) -> None:
    raw_store.put_bytes("raw/shop/events.csv", b"user_id,item_id,event_type,timestamp\nu,i,view,2026-03-31\n")
    with pytest.raises(SourceError, match=r"timestamp_format: .*'%d\.%m\.%Y'.*\['2026-03-31'\]"):
        read_source(raw_store, _data({"timestamp": "%d.%m.%Y"}))


def test_a_utf8_byte_order_mark_is_accepted(raw_store: ObjectStore) -> None:
    text = "user_id,item_id,event_type,timestamp\nu1,i1,view,2026-03-31T10:00:00Z\n"
    raw_store.put_bytes("raw/shop/events.csv", b"\xef\xbb\xbf" + text.encode())
    assert read_source(raw_store, DataConfig()).events[schema.USER_ID].tolist() == ["u1"]


def test_float_ids_become_whole_number_strings_in_every_format(raw_store: ObjectStore) -> None:
    """A nullable integer column exported as floats (296.0) must not publish "296.0"."""
    frame = pd.DataFrame(
        {
            "user_id": [296.0, 12.0],
            "item_id": ["7.0", "8.0"],
            "event_type": ["view", "view"],
            "timestamp": pd.to_datetime(["2026-01-01", "2026-01-02"], utc=True),
        }
    )
    raw_store.put_frame("raw/pq/events.parquet", frame)
    raw_store.put_bytes("raw/csv/events.csv", frame.to_csv(index=False).encode())
    for dataset in ("pq", "csv"):
        events = read_source(raw_store, DataConfig(dataset=dataset)).events
        assert events[schema.USER_ID].tolist() == ["296", "12"], dataset
        assert events[schema.ITEM_ID].tolist() == ["7", "8"], dataset


def test_only_the_mapped_columns_are_decoded(raw_store: ObjectStore) -> None:
    frame = pd.DataFrame(
        {
            "visitorid": ["a"],
            "itemid": ["b"],
            "event": ["view"],
            "timestamp": [1],
            "transactionid": [None],
            "blob": ["x"],
        }
    )
    raw_store.put_frame("raw/shop/events.parquet", frame)
    events = read_source(raw_store, _data(EVENT_LOG_MAPPING | {"timestamp": "epoch_s"})).events
    assert events[schema.TIMESTAMP].tolist() == [pd.Timestamp(1, unit="s", tz="UTC")]
    assert list(events.columns) == list(schema.EVENTS_DTYPES)


RETAIL_II = pd.DataFrame(
    {
        "Invoice": ["489434", "489434", "C489449"],
        "StockCode": ["85048", "79323P", "22087"],
        "Description": ["LED LIGHT", "PINK CHERRY LIGHTS", "PAPER BUNTING"],
        "Quantity": [12, 12, -12],
        "InvoiceDate": pd.to_datetime(["2009-12-01 07:45", "2009-12-01 07:45", "2009-12-01 10:33"]),
        "Price": [6.95, 6.75, 2.95],
        "Customer ID": [13085.0, 13085.0, 16321.0],
        "Country": ["United Kingdom"] * 3,
    }
)


@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
def test_online_retail_ii_reads_as_published(raw_store: ObjectStore, suffix: str) -> None:
    if suffix == ".xlsx":
        buffer = io.BytesIO()
        RETAIL_II.to_excel(buffer, index=False, sheet_name="Year 2009-2010")
        data = buffer.getvalue()
    else:
        data = RETAIL_II.to_csv(index=False).encode()
    raw_store.put_bytes(f"raw/retail/online_retail_II{suffix}", data)
    tables = read_source(raw_store, DataConfig(dataset="retail", source="uci_retail"))
    assert tables.events[schema.USER_ID].tolist() == ["13085", "13085"]
    assert tables.events[schema.ITEM_ID].tolist() == ["85048", "79323P"]
    assert tables.events[schema.PRICE].tolist() == [6.95, 6.75]
    assert tables.dropped["cancelled_invoice"] == 1
    assert tables.events[schema.TIMESTAMP][0] == pd.Timestamp("2009-12-01 07:45", tz="UTC")  # GMT in winter


def test_a_spreadsheet_of_the_shops_own_columns_reads_in_the_flat_layout(raw_store: ObjectStore) -> None:
    frame = pd.DataFrame(
        {
            "Kunde": ["00042", "7"],
            "Artikel": ["A-1", "B-2"],
            "Art": ["view", "purchase"],
            "Zeit": ["31.03.2026 10:00"] * 2,
        }
    )
    buffer = io.BytesIO()
    frame.to_excel(buffer, index=False)
    raw_store.put_bytes("raw/shop/events.xlsx", buffer.getvalue())
    mapping = {"columns": {"user_id": "Kunde", "item_id": "Artikel", "event_type": "Art", "timestamp": "Zeit"},
               "timestamp": "%d.%m.%Y %H:%M"}  # fmt: skip
    events = read_source(raw_store, _data(mapping)).events
    assert events[schema.USER_ID].tolist() == ["00042", "7"]  # text ids keep their zeros
    assert events[schema.TIMESTAMP].tolist() == [pd.Timestamp("2026-03-31 10:00", tz="UTC")] * 2
