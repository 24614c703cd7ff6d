"""The bad-input corpus: each case turns a good shop into the raw files a broken feed would land.

A case either stops the run (``stop``: a DataValidationError before training) or quarantines the
offending rows and lets the run go on (``quarantine``). ``rule``, ``column`` and ``example`` are
what the error message (or the quarantine's reason and rows) must name. docs/RELIABILITY.md lists
the same cases; tests/test_reliability_doc.py keeps the two in step.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd

from recsys_lib import schema
from recsys_lib.storage import frame_to_parquet

Files = dict[str, bytes]
Build = Callable[[pd.DataFrame, pd.DataFrame], Files]
FUTURE = pd.Timestamp("2030-01-01", tz="UTC")
FEW = 3  # rows broken in a "few rows" case: well under the 5% quarantine share of ~3,000 events


@dataclass(frozen=True)
class Case:
    name: str
    what: str
    build: Build
    outcome: Literal["stop", "quarantine"]
    rule: str
    column: str
    example: Any
    params: dict[str, Any] = field(default_factory=dict)
    """Run parameters the case needs besides the corpus's (a window, a source mapping)."""


def parquet(events: pd.DataFrame, items: pd.DataFrame) -> Files:
    return {"events.parquet": frame_to_parquet(events), "items.parquet": frame_to_parquet(items)}


def events_csv(events: pd.DataFrame) -> str:
    """The events as the CSV an upstream system writes: ISO 8601 timestamps with an offset."""
    out = events.assign(**{schema.TIMESTAMP: events[schema.TIMESTAMP].map(lambda t: t.isoformat())})
    return out.to_csv(index=False)


def with_events(change: Callable[[pd.DataFrame], pd.DataFrame]) -> Build:
    return lambda events, items: parquet(change(events.copy()), items)


def with_items(change: Callable[[pd.DataFrame], pd.DataFrame]) -> Build:
    return lambda events, items: parquet(events, change(items.copy()))


def with_csv(change: Callable[[str], bytes]) -> Build:
    return lambda events, items: {"events.csv": change(events_csv(events)), "items.parquet": frame_to_parquet(items)}


def set_rows(column: str, value: Any, rows: int = FEW) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def change(events: pd.DataFrame) -> pd.DataFrame:
        events.loc[events.index[10 : 10 + rows], column] = value
        return events

    return change


def share(column: str, value: Any, fraction: float) -> Callable[[pd.DataFrame], pd.DataFrame]:
    return lambda events: set_rows(column, value, int(len(events) * fraction))(events)


def _csv_line(text: str, row: int, column: str, value: str) -> bytes:
    frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    frame.loc[row, column] = value
    return frame.to_csv(index=False).encode()


def _truncated(text: str) -> bytes:
    """The file cut off after 45% of its bytes, three characters into a line."""
    data = text.encode()
    cut = data.index(b"\n", int(len(data) * 0.45)) + 4
    return data[:cut]


def _spike(events: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([events.assign(session_id=f"s{i}") for i in range(10)], ignore_index=True)


def _duplicates(events: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([events, events.iloc[20 : 20 + FEW]], ignore_index=True)


def _long_ids(events: pd.DataFrame) -> pd.DataFrame:
    return set_rows(schema.USER_ID, "x" * 10_000, 2)(events)


def _stale(events: pd.DataFrame) -> pd.DataFrame:
    return events.assign(**{schema.TIMESTAMP: events[schema.TIMESTAMP] - pd.Timedelta(days=10)})


def _epoch(events: pd.DataFrame) -> pd.DataFrame:
    return events.assign(**{schema.TIMESTAMP: events[schema.TIMESTAMP].astype("int64") // 10**6})


def _items_set(column: str, value: Any) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def change(items: pd.DataFrame) -> pd.DataFrame:
        items.loc[items.index[1], column] = value
        return items

    return change


def landings(events: pd.DataFrame, items: pd.DataFrame, catalogue_day: str | None = None) -> Files:
    """Daily landings ``events/dt=<day>/part-0.parquet`` and one catalogue snapshot (the first day's)."""
    days = events[schema.TIMESTAMP].dt.strftime("%Y-%m-%d")
    files = {f"events/dt={d}/part-0.parquet": frame_to_parquet(frame) for d, frame in events.groupby(days)}
    files[f"items/dt={catalogue_day or days.min()}/catalogue.parquet"] = frame_to_parquet(items)
    return files


def _corrupt_landing(events: pd.DataFrame, items: pd.DataFrame) -> Files:
    return {**landings(events, items), "events/dt=2026-05-01/late.parquet": b"PAR1\x00garbage"}


def _old_landings(events: pd.DataFrame, items: pd.DataFrame) -> Files:
    return landings(events[events[schema.TIMESTAMP] < pd.Timestamp("2026-04-26", tz="UTC")], items)


def _misnamed_landing(events: pd.DataFrame, items: pd.DataFrame) -> Files:
    return {**landings(events, items), "events/dt=2026-5-2/part-0.parquet": frame_to_parquet(events.head())}


def _renamed(columns: dict[str, str], events_change: Callable[[pd.DataFrame], pd.DataFrame] = lambda e: e) -> Build:
    return lambda events, items: parquet(events_change(events.copy()).rename(columns=columns), items)


VISITOR_LOG = {"columns": {"user_id": "visitorid", "event_type": "event"}, "event_types": {"addtocart": "add_to_cart"}}


def _mixed_zones(text: str) -> bytes:
    return _csv_line(text, 5, schema.TIMESTAMP, "2026-05-02 10:00:00")


CASES: list[Case] = [
    # --- files that cannot be read -------------------------------------------------------------
    Case("empty_file", "events.csv has 0 bytes", lambda e, i: {"events.csv": b"", "items.parquet": frame_to_parquet(i)},
         "stop", "readable_file", "events.csv", "not a valid CSV file"),
    Case("corrupt_parquet", "events.parquet holds random bytes", lambda e, i: {"events.parquet": b"PAR1\x00garbage"},
         "stop", "readable_file", "events.parquet", "not a valid Parquet file"),
    Case("non_utf8_bytes", "events.csv encoded as Latin-1 with an accented id",
         lambda e, i: {"events.csv": _csv_line(events_csv(e), 3, schema.USER_ID, "José").decode().encode("latin-1")},
         "stop", "readable_file", "events.csv", "UTF-8"),
    Case("wrong_delimiter", "events.csv separated by semicolons",
         lambda e, i: {"events.csv": events_csv(e).replace(",", ";").encode()},
         "stop", "readable_file", "events.csv", "user_id;item_id"),
    Case("no_events_file", "only a catalogue was delivered", lambda e, i: {"items.parquet": frame_to_parquet(i)},
         "stop", "missing_file", "events", "items.parquet"),
    # --- values that do not fit their column ---------------------------------------------------
    Case("wrong_type", "quantity holds text", with_csv(lambda t: _csv_line(t, 4, schema.QUANTITY, "abc")),
         "stop", "column_type", "'quantity'", "'abc'"),
    Case("unparseable_timestamps", "a timestamp reads 'yesterday'",
         with_csv(lambda t: _csv_line(t, 4, schema.TIMESTAMP, "yesterday")),
         "stop", "column_type", "'timestamp'", "'yesterday'"),
    Case("mixed_time_zones", "one timestamp without offset among offset ones", with_csv(_mixed_zones),
         "stop", "mixed_time_zones", "'timestamp'", "2026-05-02 10:00:00"),
    Case("epoch_int_timestamps", "timestamps written as epoch milliseconds", with_events(_epoch),
         "stop", "column_type", "'timestamp'", "holds numbers"),
    # --- the table's shape ---------------------------------------------------------------------
    Case("missing_column", "events without event_type", with_events(lambda e: e.drop(columns=[schema.EVENT_TYPE])),
         "stop", "expect_column_to_exist", "events.event_type", "'item_id'"),
    Case("zero_rows", "events.csv with a header and no rows", with_csv(lambda t: t.splitlines()[0].encode() + b"\n"),
         "stop", "expect_table_row_count_to_be_between", "events", "observed 0"),
    Case("truncated_csv", "events.csv cut off mid-line after 45% of its bytes", with_csv(_truncated),
         "stop", "volume", "events", "observed"),
    Case("all_null_column", "every user_id is empty", with_csv(lambda t: _csv_all(t, schema.USER_ID)),
         "stop", "null_user_id", "events.user_id", "[None]"),
    # --- rows that break a row rule: a few are quarantined, many stop the run ---------------------
    Case("future_timestamps", "3 events dated 2030", with_events(set_rows(schema.TIMESTAMP, FUTURE)),
         "quarantine", "timestamp_outside_interval", schema.TIMESTAMP, FUTURE),
    Case("many_future_timestamps", "10% of events dated 2030",
         with_events(share(schema.TIMESTAMP, FUTURE, 0.1)),
         "stop", "timestamp_outside_interval", "events.timestamp", "2030-01-01T00:00:00+00:00"),
    Case("duplicated_events", "3 events delivered twice", with_events(_duplicates),
         "quarantine", "exact_duplicate", "row", None),
    Case("unknown_event_types", "3 events of type 'refund'", with_events(set_rows(schema.EVENT_TYPE, "refund")),
         "quarantine", "unknown_event_type", schema.EVENT_TYPE, "refund"),
    Case("many_unknown_event_types", "20% of events of type 'refund'",
         with_events(share(schema.EVENT_TYPE, "refund", 0.2)),
         "stop", "unknown_event_type", "events.event_type", "['refund']"),
    Case("negative_prices", "3 events with price -5", with_events(set_rows(schema.PRICE, -5.0)),
         "quarantine", "negative_price", schema.PRICE, -5.0),
    Case("zero_quantity", "3 events with quantity 0", with_events(set_rows(schema.QUANTITY, 0)),
         "quarantine", "quantity_below_1", schema.QUANTITY, 0),
    Case("null_item_ids", "3 events without an item", with_events(set_rows(schema.ITEM_ID, None)),
         "quarantine", "null_item_id", schema.ITEM_ID, None),
    Case("null_event_types", "3 events without a type", with_events(set_rows(schema.EVENT_TYPE, None)),
         "quarantine", "null_event_type", schema.EVENT_TYPE, None),
    Case("very_long_ids", "2 user ids of 10,000 characters", with_events(_long_ids),
         "quarantine", "user_id_too_long", schema.USER_ID, "x" * 10_000),
    # --- the dataset against its catalogue and its past -----------------------------------------
    Case("volume_spike_10x", "ten times the previous day's events", with_events(_spike),
         "stop", "volume", "events", "0.5x to 2x"),
    Case("event_type_mix_drift", "only views arrive (carts and purchases lost)",
         with_events(lambda e: e[e[schema.EVENT_TYPE] == schema.VIEW]),
         "stop", "event_type_drift", "events.event_type", "KL divergence"),
    Case("category_mix_drift", "the catalogue re-categorised every item",
         with_items(lambda i: i.assign(category="clearance")),
         "stop", "category_drift", "events.category", "KL divergence"),
    Case("stale_feed", "the newest event is 10 days old", with_events(_stale),
         "stop", "freshness", "events.timestamp", "validation.freshness_hours=48"),
    Case("items_missing_from_catalogue", "40% of the catalogue is missing",
         with_items(lambda i: i.iloc[: int(len(i) * 0.6)]),
         "stop", "referential_integrity", "events.item_id_missing_from_catalogue", "i000"),
    # --- the catalogue ---------------------------------------------------------------------------
    Case("duplicate_catalogue_ids", "two catalogue rows share an id", with_items(_items_set(schema.ITEM_ID, "i00000")),
         "stop", "expect_column_values_to_be_unique", "items.item_id", "'i00000'"),
    Case("negative_catalogue_price", "an item priced -1", with_items(_items_set(schema.PRICE, -1.0)),
         "stop", "negative_price", "items.price", "[-1.0]"),
    Case("catalogue_without_item_id", "items without an item_id column",
         with_items(lambda i: i.drop(columns=[schema.ITEM_ID])),
         "stop", "expect_column_to_exist", "items.item_id", "'title'"),
    Case("long_catalogue_ids", "an item id of 300 characters", with_items(_items_set(schema.ITEM_ID, "y" * 300)),
         "stop", "item_id_too_long", "items.item_id", "(300 characters)"),
    # --- daily landings and the training window ---------------------------------------------------
    Case("unreadable_landing", "a corrupt file in the events landing of a day inside the window", _corrupt_landing,
         "stop", "readable_file", "events/dt=2026-05-01/late.parquet", "not a valid Parquet file"),
    Case("empty_window", "no landing in the last 3 days (data.window_days=3)", _old_landings,
         "stop", "empty_window", "events", "(2026-04-29, 2026-05-02]", {"window_days": 3}),
    Case("catalogue_after_the_date", "the only catalogue snapshot is dated after the run",
         lambda e, i: landings(e, i, catalogue_day="2026-05-10"),
         "stop", "catalogue_snapshot", "items", "oldest is dt=2026-05-10"),
    Case("misnamed_landing", "a landing folder named dt=2026-5-2", _misnamed_landing,
         "stop", "partition_key", "dt=2026-5-2/", "dt=YYYY-MM-DD"),
    # --- a source mapping that does not fit the data -----------------------------------------------
    Case("mapped_column_missing", "the mapping reads user_id from 'visitorid'; the file calls it 'visitor'",
         _renamed({"user_id": "visitor", "event_type": "event"}),
         "stop", "mapping_column", "'visitorid'", "data.mappings.corpus-shop.columns.user_id",
         {"data.mappings": {"corpus-shop": VISITOR_LOG}}),
    Case("unmapped_event_name", "3 events named 'wishlist', which the mapping does not map",
         _renamed({"user_id": "visitorid", "event_type": "event"}, set_rows(schema.EVENT_TYPE, "wishlist")),
         "stop", "mapping_value", "'event'", "'wishlist'", {"data.mappings": {"corpus-shop": VISITOR_LOG}}),
    Case("timestamp_format_mismatch", "ISO timestamps where the mapping says '%d.%m.%Y %H:%M'",
         with_csv(lambda t: t.encode()),
         "stop", "timestamp_format", "'timestamp'", "%d.%m.%Y %H:%M",
         {"data.mappings": {"corpus-shop": {"timestamp": "%d.%m.%Y %H:%M"}}}),
]  # fmt: skip


def _csv_all(text: str, column: str) -> bytes:
    frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    frame[column] = ""
    return frame.to_csv(index=False).encode()
