"""Daily landings: the window (D - window_days, D], the catalogue snapshot, pruning before any read."""

from __future__ import annotations

import pandas as pd
import pytest

from recsys_lib import schema
from recsys_lib.config import DataConfig
from recsys_lib.errors import SourceError
from recsys_lib.sources import read_source, write_landings, write_raw
from recsys_lib.sources.landing import find_raw_files, window_start
from recsys_lib.storage import ObjectStore


def _events(days: list[str], per_day: int = 3) -> pd.DataFrame:
    rows = [
        {
            schema.USER_ID: f"u{d[-2:]}{n}",
            schema.ITEM_ID: f"i{n}",
            schema.EVENT_TYPE: schema.VIEW,
            schema.TIMESTAMP: pd.Timestamp(f"{d}T12:00:00", tz="UTC") + pd.Timedelta(minutes=n),
        }
        for d in days
        for n in range(per_day)
    ]
    return pd.DataFrame(rows)


DAYS = ["2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04", "2026-11-05"]
CATALOGUE = pd.DataFrame({schema.ITEM_ID: ["i0", "i1", "i2"], schema.TITLE: ["a", "b", "c"]})


@pytest.fixture
def landed(raw_store: ObjectStore) -> ObjectStore:
    write_landings(raw_store, "shop", _events(DAYS), CATALOGUE, catalogue_days=["2026-11-01", "2026-11-04"])
    return raw_store


def test_window_start_counts_the_logical_date_in() -> None:
    assert str(window_start("2026-11-05", 3)) == "2026-11-03"
    assert window_start("2026-11-05", None) is None


def test_a_run_reads_only_its_window_and_never_later_landings(landed: ObjectStore) -> None:
    tables = read_source(landed, DataConfig(window_days=2), "2026-11-03")
    days = tables.events[schema.TIMESTAMP].dt.strftime("%Y-%m-%d").unique().tolist()
    assert days == ["2026-11-02", "2026-11-03"]
    assert tables.files is not None and tables.files.days == ("2026-11-02", "2026-11-03")
    assert tables.files.catalogue_day == "2026-11-01"  # the newest snapshot not after the date
    assert tables.items[schema.TITLE].tolist() == ["a", "b", "c"]


def test_without_a_window_every_landing_up_to_the_date_is_read(landed: ObjectStore) -> None:
    files = find_raw_files(landed, "shop", "2026-11-04", None)
    assert files.days == tuple(DAYS[:4])
    assert files.catalogue_day == "2026-11-04"
    assert all("dt=2026-11-05" not in k for k in files.events)


def test_files_outside_the_window_are_never_fetched(landed: ObjectStore) -> None:
    """A corrupt file in an excluded landing (older or newer) cannot break the run: it is not read."""
    landed.put_bytes("raw/shop/events/dt=2026-11-01/broken.parquet", b"PAR1 garbage")
    landed.put_bytes("raw/shop/events/dt=2026-11-05/broken.csv.gz", b"not gzip")
    tables = read_source(landed, DataConfig(window_days=2), "2026-11-04")
    assert len(tables.events) == 6


def test_an_unreadable_file_inside_the_window_names_its_partition(landed: ObjectStore) -> None:
    landed.put_bytes("raw/shop/events/dt=2026-11-03/broken.parquet", b"PAR1 garbage")
    with pytest.raises(SourceError, match=r"readable_file: .*raw/shop/events/dt=2026-11-03/broken\.parquet"):
        read_source(landed, DataConfig(window_days=2), "2026-11-04")


def test_an_empty_window_stops_naming_the_rule_and_the_landings(landed: ObjectStore) -> None:
    with pytest.raises(SourceError, match=r"empty_window: no events landing in \(2026-10-20, 2026-10-25\].*2026-11-01"):
        read_source(landed, DataConfig(window_days=5), "2026-10-25")


def test_a_catalogue_newer_than_the_date_only_is_refused(raw_store: ObjectStore) -> None:
    write_landings(raw_store, "shop", _events(DAYS), CATALOGUE, catalogue_days=["2026-11-04"])
    with pytest.raises(
        SourceError, match=r"catalogue_snapshot: no catalogue landing on or before 2026-11-02.*2026-11-04"
    ):
        read_source(raw_store, DataConfig(), "2026-11-02")


def test_a_folder_that_is_not_a_date_is_refused(landed: ObjectStore) -> None:
    landed.put_bytes("raw/shop/events/dt=2026-13-01/part.parquet", b"")
    with pytest.raises(SourceError, match=r"partition_key: .*dt=2026-13-01/ .*dt=YYYY-MM-DD"):
        read_source(landed, DataConfig(), "2026-11-04")


def test_landings_may_mix_formats_and_files(landed: ObjectStore) -> None:
    csv = "user_id,item_id,event_type,timestamp\nx1,i9,purchase,2026-11-03T20:00:00Z\n"
    landed.put_bytes("raw/shop/events/dt=2026-11-03/late.csv", csv.encode())
    tables = read_source(landed, DataConfig(window_days=1), "2026-11-03")
    assert len(tables.events) == 4
    assert "x1" in set(tables.events[schema.USER_ID])


def test_flat_files_keep_working_and_the_window_applies_by_timestamp(raw_store: ObjectStore) -> None:
    write_raw(raw_store, "shop", _events(DAYS), CATALOGUE)
    everything = read_source(raw_store, DataConfig(), "2026-11-05")
    assert len(everything.events) == 15 and everything.files is not None and everything.files.flat
    windowed = read_source(raw_store, DataConfig(window_days=2), "2026-11-05")
    assert windowed.events[schema.TIMESTAMP].min() >= pd.Timestamp("2026-11-04", tz="UTC")
    assert windowed.dropped == {"outside_window": 9}
