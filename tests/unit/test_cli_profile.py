"""``recsys profile`` on a mocked bucket: the hand-made shop's profiles, computed and pseudonymised
by the export's own step, published, then read back by (hashed) user id."""

from __future__ import annotations

import numpy as np
import pytest

from recsys_lib import schema
from recsys_lib.cli import main
from recsys_lib.export import read_manifest, read_recommendations
from recsys_lib.export.pseudonym import pseudonymize
from recsys_lib.export.publish import move_latest_pointer, publish, stage_parts
from recsys_lib.pipelines.context import RunContext
from recsys_lib.pipelines.export import profile_tables
from recsys_lib.storage import ObjectStore, layout
from tests.unit.features.test_profiles import shop

DATASET, DS = "cli", "2024-07-01"
KEY = "unit-test-pseudonym-key-0123456789"


@pytest.fixture
def published(mock_s3: ObjectStore, monkeypatch: pytest.MonkeyPatch) -> ObjectStore:
    """The shop's snapshot and its ``user_profiles``, pseudonymised under :data:`KEY`, published."""
    monkeypatch.setenv("RECSYS_BUCKET", mock_s3.bucket)
    monkeypatch.setenv("RECSYS_PREFIX", mock_s3.prefix)
    monkeypatch.setenv("RECSYS_PSEUDONYM_KEY", KEY)
    events, items = shop()
    mock_s3.put_frame(layout.snapshot_key(DATASET, DS, "events"), events)
    mock_s3.put_frame(layout.snapshot_key(DATASET, DS, "items"), items)
    snapshot_uri = mock_s3.uri(layout.snapshot_key(DATASET, DS, "events").rsplit("/", 1)[0] + "/")
    ctx = RunContext.create({"dataset": DATASET, "pseudonymize": True}, DS)
    parts = stage_parts(mock_s3, "user_profiles", DATASET, DS, "a1", profile_tables(ctx, snapshot_uri, None), 4)
    model = {"name": "recsys-cli", "version": "1", "run_id": "r1"}
    manifest = publish(mock_s3, "user_profiles", DATASET, DS, "a1", parts, model=model, snapshot_uri=snapshot_uri)
    move_latest_pointer(mock_s3, "user_topk", DATASET, DS, manifest, tables={"user_profiles": manifest})  # the set's
    return mock_s3


def test_the_export_step_pseudonymises_the_profiles_user_ids(published: ObjectStore) -> None:
    rows = read_recommendations(published, DATASET, table="user_profiles")
    users = ["ann", "bob", "cat", "dan", "eve", "fay", "gus"]
    assert sorted(rows[schema.USER_ID]) == sorted(pseudonymize(np.array(users), KEY.encode()))
    assert list(rows.columns) == list(schema.USER_PROFILES_DTYPES)
    assert read_manifest(published, DATASET, table="user_profiles")["columns"] == schema.USER_PROFILES_DTYPES


def test_recsys_profile_prints_a_shoppers_profile(published: ObjectStore, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profile", "--user", "ann", "--dataset", DATASET, "--pseudonymized"]) == 0
    lines = dict(line.split(None, 1) for line in capsys.readouterr().out.strip().splitlines())
    assert lines[schema.USER_ID] == pseudonymize(np.array(["ann"]), KEY.encode())[0]
    assert lines[schema.TOP_CATEGORIES] == "shoes 50%, bags 25%, hats 12%"
    assert lines[schema.TOP_BRANDS] == "acme 71%, beta 14%, zeta 14%"
    assert lines[schema.MONETARY] == "500.00" and lines[schema.RFM_SCORE] == "545"
    assert lines[schema.RFM_SEGMENT] == "champions" and lines[schema.CHURN_RISK] == "False"
    shares = (schema.CATEGORY_SHARES, schema.BRAND_SHARES)  # shown next to the names
    assert list(lines) == [c for c in schema.USER_PROFILES_DTYPES if c not in shares]

    assert main(["profile", "--user", "gus", "--dataset", DATASET, "--pseudonymized", "--ds", DS]) == 0
    lines = dict(line.split(None, 1) for line in capsys.readouterr().out.strip().splitlines())
    assert lines[schema.RECENCY_DAYS] == lines[schema.PRICE_BAND] == lines[schema.TOP_CATEGORIES] == "-"
    assert lines[schema.RFM_SEGMENT] == "browsers"


def test_a_user_without_a_profile_is_one_clear_line(published: ObjectStore, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profile", "--user", "ann", "--dataset", DATASET]) == 1  # the plain id is not in the table
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"recsys: error: user 'ann' has no profile in the published export of {DATASET!r}"]
    assert main(["profile", "--user", "ann", "--dataset", "no-profiles"]) == 1
    assert "no published user_profiles export for dataset 'no-profiles' yet" in capsys.readouterr().err
