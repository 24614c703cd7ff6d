"""`recsys <stage>` runs one step of the DAG at a time from a shell, each finding its inputs where
the previous one wrote them; errors are one line and exit status 1."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from recsys_lib.cli import main
from tests.integration.conftest import shop_in_store

pytestmark = pytest.mark.integration

DATASET = "cli-shop"
DS = "2026-10-25"


def _run(capsys, *argv: str) -> dict:
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_each_stage_alone_in_dag_order_publishes_recommendations(local_stack, capsys) -> None:
    shop_in_store(local_stack.bucket, DATASET, end=datetime(2026, 10, 26, tzinfo=UTC), n_users=80, n_items=40, days=15)
    common = ["--dataset", DATASET, "--ds", DS, "--set", "model=item_knn", "--set", "k=4"]
    assert _run(capsys, "ingest", *common)["events"] > 0
    assert _run(capsys, "validate", *common)["snapshot_uri"].endswith(f"snapshots/dataset={DATASET}/dt={DS}/")
    assert _run(capsys, "features", *common)["features_uri"].endswith(f"features/dataset={DATASET}/dt={DS}/")
    run_id = _run(capsys, "train", *common)["run_id"]
    assert _run(capsys, "register", *common, "--run-id", run_id)["alias"] == "champion"
    plan_uri = _run(capsys, "export", *common)["plan_uri"]
    assert _run(capsys, "publish", *common, "--plan-uri", plan_uri)["rows"] > 0
    user = "u00000"
    assert main(["recommend", "--dataset", DATASET, "--user", user]) == 0
    out = capsys.readouterr().out
    assert (user in out and "item_knn" not in out) or "rank" in out


def test_a_stage_without_its_inputs_fails_in_one_line(local_stack, capsys) -> None:
    assert main(["features", "--dataset", "never-ingested", "--ds", DS]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("recsys: error: ") and "never-ingested" in err and "\n" not in err
    with pytest.raises(SystemExit) as usage:
        main(["register", "--dataset", DATASET, "--ds", DS])  # --run-id is required
    assert usage.value.code == 2
