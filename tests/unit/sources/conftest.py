"""Fixtures for the source adapter tests: an in-process mocked S3 store and a small synthetic shop."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pandas as pd
import pytest

from recsys_lib.sources.synthetic import generate_shop
from recsys_lib.storage import ObjectStore

END = datetime(2024, 6, 1, tzinfo=UTC)


@pytest.fixture
def raw_store(monkeypatch: pytest.MonkeyPatch) -> Iterator[ObjectStore]:
    """``ObjectStore("test-bucket", "pfx")`` on moto's in-process S3 (no server, no network)."""
    from moto import mock_aws

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        store = ObjectStore("test-bucket", "pfx")
        store.client.create_bucket(Bucket="test-bucket")
        yield store


@pytest.fixture(scope="session")
def end() -> datetime:
    """The exclusive end of the synthetic shop's time range."""
    return END


@pytest.fixture(scope="module")
def shop() -> tuple[pd.DataFrame, pd.DataFrame]:
    """(events, items) of the default-sized synthetic shop ending at :data:`END`."""
    return generate_shop(end=END, seed=7)
