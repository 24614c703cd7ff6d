"""``pipelines.simulate.run`` on a mocked bucket: a generated shop, a tiny published export."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from recsys_lib import schema
from recsys_lib.cli import main
from recsys_lib.errors import ConfigError, SourceError
from recsys_lib.export.publish import publish, stage_parts
from recsys_lib.pipelines.simulate import PART_NAME, run
from recsys_lib.sources import write_landings, write_raw
from recsys_lib.sources.landing import find_raw_files
from recsys_lib.sources.synthetic import generate_shop
from recsys_lib.sources.synthetic_params import read_shop_params, write_shop_params
from recsys_lib.storage import ObjectStore, layout

SHOP = {"n_users": 60, "n_items": 40, "n_categories": 8, "n_brands": 25, "seed": 2}
EXPORT_DT = "2024-05-31"


def _params(dataset: str) -> dict[str, str]:
    return {"dataset": dataset, "storage.bucket": "unit-bucket", "storage.prefix": "tenant-a"}


def _make_shop(store: ObjectStore, dataset: str, *, partitioned: bool = True) -> None:
    """The generated shop's raw files and arguments, and a published export (:func:`_publish`)."""
    events, items = generate_shop(days=5, end=datetime(2024, 6, 1, tzinfo=UTC), **SHOP)
    if partitioned:
        write_landings(store, dataset, events, items)
    else:
        write_raw(store, dataset, events, items)
    write_shop_params(store, dataset, {**SHOP, "days": 5, "end": "2024-06-01"})
    _publish(store, dataset, items)


def _publish(store: ObjectStore, dataset: str, items: pd.DataFrame) -> None:
    """A published ``user_topk`` of dataset on EXPORT_DT: the first 3 items for 20 users."""
    users = [f"u{u:05d}" for u in range(20)]
    rows = pd.DataFrame(
        {
            schema.USER_ID: [u for u in users for _ in range(3)],
            schema.RANK: [1, 2, 3] * len(users),
            schema.ITEM_ID: items[schema.ITEM_ID].iloc[[0, 1, 2] * len(users)].to_numpy(),
            schema.SCORE: 1.0,
            schema.MODEL_NAME: "recsys-shop",
            schema.MODEL_VERSION: "1",
        }
    )
    rows = rows.reindex(columns=list(schema.EXPORT_DTYPES)).astype(schema.EXPORT_DTYPES)  # other columns null
    parts = stage_parts(store, "user_topk", dataset, EXPORT_DT, "a1", [rows], 100)
    model = {"name": "recsys-shop", "version": "1", "run_id": "r1"}
    publish(store, "user_topk", dataset, EXPORT_DT, "a1", parts, model=model, snapshot_uri="s3://b/snap/")


def test_run_lands_one_partition_per_day_and_replaces_it(mock_s3: ObjectStore) -> None:
    _make_shop(mock_s3, "shop")
    out = run(_params("shop"), days=2, seed=1)
    assert out["days"] == ["2024-06-01", "2024-06-02"] and out["export_dt"] == EXPORT_DT
    assert out["impressions"] > 0 and out["impressions"] % 3 == 0 and out["events"] > out["impressions"]
    keys = [layout.raw_partition_prefix("shop", "events", d) + PART_NAME for d in out["days"]]
    first = [mock_s3.get_frame(k) for k in keys]
    assert sum(len(f) for f in first) == out["events"]
    assert all((f[schema.TIMESTAMP].dt.date.astype(str) == d).all() for f, d in zip(first, out["days"], strict=True))
    assert run(_params("shop"), days=2, seed=1) == out
    for key, frame in zip(keys, first, strict=True):
        pd.testing.assert_frame_equal(mock_s3.get_frame(key), frame)
    assert set(keys) <= set(find_raw_files(mock_s3, "shop", "2024-06-02", None).events)  # the next ingest reads them
    later = run(_params("shop"), days=1, start="2024-06-05")
    assert later["days"] == ["2024-06-05"]


def test_run_refuses_a_flat_layout_and_a_start_before_the_lists(mock_s3: ObjectStore) -> None:
    _make_shop(mock_s3, "flat", partitioned=False)
    with pytest.raises(SourceError, match=r"^flat_layout:"):
        run(_params("flat"), days=1)
    _make_shop(mock_s3, "shop")
    with pytest.raises(ConfigError, match="start must be after"):
        run(_params("shop"), days=1, start=EXPORT_DT)
    with pytest.raises(ConfigError, match="days must be >= 1"):
        run(_params("shop"), days=0)


def test_run_needs_the_generator_arguments(mock_s3: ObjectStore) -> None:
    _make_shop(mock_s3, "shop")
    mock_s3.delete([layout.raw_prefix("shop") + "_synthetic.json"])
    with pytest.raises(SourceError, match="recsys generate"):
        run(_params("shop"), days=1)


def test_cli_generate_records_its_arguments_and_simulate_uses_them(
    mock_s3: ObjectStore, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RECSYS_BUCKET", "unit-bucket")
    monkeypatch.setenv("RECSYS_PREFIX", "tenant-a")
    generate = ["generate", "--dataset", "cli", "--users", "60", "--items", "40", "--days", "5", "--seed", "2"]
    assert main([*generate, "--end", "2024-06-01", "--partitioned"]) == 0
    assert read_shop_params(mock_s3, "cli") == {**SHOP, "days": 5, "end": "2024-06-01"}
    _publish(mock_s3, "cli", generate_shop(days=5, end=datetime(2024, 6, 1, tzinfo=UTC), **SHOP)[1])
    assert main(["simulate", "--dataset", "cli", "--days", "2"]) == 0
    out = capsys.readouterr().out.strip().splitlines()[-1]
    assert out.startswith(f"simulated 2024-06-01..2024-06-02 after the export of {EXPORT_DT}: ")
