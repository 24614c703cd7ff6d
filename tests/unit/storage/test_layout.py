from __future__ import annotations

import pytest

from recsys_lib.errors import ConfigError
from recsys_lib.storage import layout


def test_keys_follow_the_design_layout() -> None:
    assert layout.snapshot_key("shop", "2026-01-02", "events") == "snapshots/dataset=shop/dt=2026-01-02/events.parquet"
    assert layout.validation_report_key("shop", "2026-01-02") == "validation/dataset=shop/dt=2026-01-02/report.json"
    assert layout.export_prefix("user_topk", "shop", "2026-01-02") == "exports/user_topk/dataset=shop/dt=2026-01-02/"
    assert layout.latest_pointer_key("user_topk", "shop") == "exports/user_topk/dataset=shop/_latest.json"
    assert layout.export_staging_prefix("user_topk", "shop", "2026-01-02", "a1").startswith(
        "exports/user_topk/dataset=shop/_staging/"
    )


@pytest.mark.parametrize("dataset", ["../x", "a/b", "", "UPPER", "x" * 80])
def test_bad_dataset_names_are_refused(dataset: str) -> None:
    with pytest.raises(ConfigError, match="dataset"):
        layout.snapshot_key(dataset, "2026-01-02", "events")


@pytest.mark.parametrize("ds", ["2026-13-01", "yesterday", "2026-1-2", "../2026-01-01"])
def test_bad_dates_are_refused(ds: str) -> None:
    with pytest.raises(ConfigError, match="logical date"):
        layout.features_prefix("shop", ds)


def test_unknown_tables_are_refused() -> None:
    with pytest.raises(ConfigError, match="export table"):
        layout.export_prefix("secrets", "shop", "2026-01-02")
