"""``pipelines.outcomes.report`` on a mocked bucket: a generated shop, a small published export, a
simulated week landed after it, and the report written next to them (no MLflow)."""

from __future__ import annotations

import pytest

from recsys_lib import schema
from recsys_lib.errors import ConfigError, SourceError
from recsys_lib.export.pseudonym import KEY_ENV, pseudonym_key, pseudonymize
from recsys_lib.export.publish import publish, stage_parts
from recsys_lib.export.reader import read_recommendations
from recsys_lib.pipelines import outcomes, simulate
from recsys_lib.storage import ObjectStore, layout
from tests.unit.outcomes.test_simulate_run import EXPORT_DT, _make_shop, _params

KEY = "an-outcomes-test-key-of-32-bytes"


def _republish_pseudonymized(store: ObjectStore, dataset: str) -> None:
    """The same export with hashed user ids and a manifest that says so."""
    rows = read_recommendations(store, dataset, EXPORT_DT)
    rows[schema.USER_ID] = pseudonymize(rows[schema.USER_ID].to_numpy(), pseudonym_key(KEY))
    parts = stage_parts(store, "user_topk", dataset, EXPORT_DT, "a2", [rows], 100)
    model = {"name": "recsys-shop", "version": "1", "run_id": "r1"}
    publish(
        store, "user_topk", dataset, EXPORT_DT, "a2", parts, model=model, snapshot_uri="s3://b/s/", pseudonymized=True
    )


def _rounded(value: object) -> object:
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return round(value, 6) if isinstance(value, float) else value


def test_the_report_reads_the_landed_days_and_is_partial_until_the_window_is(mock_s3: ObjectStore) -> None:
    _make_shop(mock_s3, "shop")
    simulate.run(_params("shop"), days=3, seed=1)
    with pytest.raises(SourceError, match=r"^empty_window"):
        outcomes.report(_params("shop"), EXPORT_DT, export_dt=EXPORT_DT, log_to_mlflow=False)  # as of its own day
    report, uri = outcomes.report(_params("shop"), "2024-06-03", export_dt=EXPORT_DT, log_to_mlflow=False)
    assert uri == mock_s3.uri(layout.outcomes_report_key("shop", EXPORT_DT))
    assert mock_s3.get_json(layout.outcomes_report_key("shop", EXPORT_DT)) == report
    assert report["partial"] and report["window"]["days_observed"] == 3
    assert report["verdict"] == "no_experiment" and list(report["arms"]) == ["champion"]
    assert report["arms"]["champion"]["users_with_list"] == 20 and report["arms"]["champion"]["exposed"] > 0
    assert report["unexposed"]["users"] > 0  # the other 40 shoppers and the new visitors
    # a landing missing in the middle of the window is a day not observed
    mock_s3.delete([o.key for o in mock_s3.list_objects(layout.raw_partition_prefix("shop", "events", "2024-06-02"))])
    later, _ = outcomes.report(_params("shop"), "2024-06-09", export_dt=EXPORT_DT, log_to_mlflow=False)
    assert later["window"]["days_observed"] == 2 and later["partial"]


def test_a_pseudonymised_export_is_joined_through_the_same_hash(mock_s3, monkeypatch) -> None:
    _make_shop(mock_s3, "shop")
    simulate.run(_params("shop"), days=3, seed=1)
    plain, _ = outcomes.report(_params("shop"), "2024-06-03", export_dt=EXPORT_DT, log_to_mlflow=False)
    _republish_pseudonymized(mock_s3, "shop")
    monkeypatch.delenv(KEY_ENV, raising=False)
    with pytest.raises(ConfigError, match=KEY_ENV):
        outcomes.report(_params("shop"), "2024-06-03", export_dt=EXPORT_DT, log_to_mlflow=False)
    hashed, _ = outcomes.report(_params("shop"), "2024-06-03", export_dt=EXPORT_DT, log_to_mlflow=False, pseudonym=KEY)
    # the same users in another order: equal up to float summation order
    assert _rounded(hashed["arms"]) == _rounded(plain["arms"])
    assert _rounded(hashed["unexposed"]) == _rounded(plain["unexposed"])
    assert hashed["arms"]["champion"]["exposed"] > 0


def test_a_partial_report_never_replaces_a_complete_one(mock_s3: ObjectStore) -> None:
    _make_shop(mock_s3, "shop")
    simulate.run(_params("shop"), days=3, seed=1)
    two_days = {**_params("shop"), "outcomes.window_days": 2}
    complete, _ = outcomes.report(two_days, "2024-06-02", export_dt=EXPORT_DT, log_to_mlflow=False)
    assert not complete["partial"]
    later, _ = outcomes.report(two_days, "2024-06-01", export_dt=EXPORT_DT, log_to_mlflow=False)
    assert later["partial"] and later["stored"] is False
    assert mock_s3.get_json(layout.outcomes_report_key("shop", EXPORT_DT)) == complete
