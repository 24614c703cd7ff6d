"""``publish --plan-uri`` with something that is not a plan, or another dataset's or date's plan,
says so in one line, before anything is read or published."""

from __future__ import annotations

import pytest

from recsys_lib.cli import main
from recsys_lib.errors import ConfigError, ExportNotFoundError, InvalidObjectError
from recsys_lib.export.plan import plan_key, read_plan
from recsys_lib.storage import ObjectStore, layout

DATASET, DS = "shop", "2026-05-01"
PLAN = {
    "dataset": DATASET,
    "dt": DS,
    "attempt": "v1-abc",
    "shards": 2,
    "features_uri": "s3://unit-bucket/tenant-a/features/",
    "snapshot_uri": "s3://unit-bucket/tenant-a/snapshots/",
    "model": {"name": "recsys-shop", "version": "1", "run_id": "r1"},
    "model_uri": "models:/recsys-shop/1",
    "k": 10,
}


@pytest.fixture
def store(mock_s3: ObjectStore, monkeypatch: pytest.MonkeyPatch) -> ObjectStore:
    monkeypatch.setenv("RECSYS_BUCKET", mock_s3.bucket)
    monkeypatch.setenv("RECSYS_PREFIX", mock_s3.prefix)
    mock_s3.put_json(plan_key(DATASET, DS, "v1-abc"), PLAN)
    return mock_s3


def test_a_stored_plan_of_the_dataset_and_date_reads_back(store: ObjectStore) -> None:
    assert read_plan(store, store.uri(plan_key(DATASET, DS, "v1-abc")), DATASET, DS) == PLAN


def test_a_plan_of_another_dataset_or_date_is_refused_naming_both(store: ObjectStore) -> None:
    uri = store.uri(plan_key(DATASET, DS, "v1-abc"))
    with pytest.raises(ConfigError) as other_date:
        read_plan(store, uri, DATASET, "2026-05-02")
    assert str(other_date.value) == (
        f"plan_uri {uri} is the export plan of dataset 'shop' on {DS}, not of 'shop' on 2026-05-02: pass the "
        "plan_uri that `recsys export --dataset shop --ds 2026-05-02` printed"
    )
    with pytest.raises(ConfigError, match="is the export plan of dataset 'shop' on 2026-05-01, not of 'shoes'"):
        read_plan(store, uri, "shoes", DS)


@pytest.mark.parametrize(
    "uri",
    [
        "plan.json",
        "s3://another-bucket/tenant-a/exports/user_topk/dataset=shop/_staging/dt=2026-05-01/v1/_plan.json",
        "s3://unit-bucket/tenant-a/exports/user_topk/dataset=shop/dt=2026-05-01/_manifest.json",
    ],
)
def test_a_uri_that_is_not_a_plan_is_refused(store: ObjectStore, uri: str) -> None:
    with pytest.raises(ConfigError, match=f"^plan_uri '{uri}' is not an export plan"):
        read_plan(store, uri, DATASET, DS)


@pytest.mark.parametrize("content", [[], {}, {**PLAN, "shards": 0}, {**PLAN, "attempt": "v2-def"}, {"model": 1}])
def test_a_plan_object_of_the_wrong_shape_is_refused_naming_it(store: ObjectStore, content: object) -> None:
    key = plan_key(DATASET, DS, "v1-abc")
    store.put_json(key, content)
    with pytest.raises(InvalidObjectError, match=f"^{store.uri(key)} is not an export plan: "):
        read_plan(store, store.uri(key), DATASET, DS)


def test_a_plan_that_is_not_stored_says_why(store: ObjectStore) -> None:
    with pytest.raises(ExportNotFoundError, match="has not run, or a publish of it finished"):
        read_plan(store, store.uri(plan_key(DATASET, DS, "v9-gone")), DATASET, DS)


def test_recsys_publish_with_another_dates_plan_is_one_line_and_publishes_nothing(
    store: ObjectStore, capsys: pytest.CaptureFixture[str]
) -> None:
    uri = store.uri(plan_key(DATASET, DS, "v1-abc"))
    assert main(["publish", "--dataset", DATASET, "--ds", "2026-05-02", "--plan-uri", uri]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"recsys: error: plan_uri {uri} is the export plan of dataset 'shop' on {DS}, not of 'shop' on 2026-05-02: "
        "pass the plan_uri that `recsys export --dataset shop --ds 2026-05-02` printed"
    ]
    assert main(["publish", "--dataset", DATASET, "--ds", DS, "--plan-uri", "s3://unit-bucket/nothing.json"]) == 1
    assert capsys.readouterr().err.startswith("recsys: error: plan_uri 's3://unit-bucket/nothing.json' is not an ")
    assert not store.exists(layout.latest_pointer_key("user_topk", DATASET))
