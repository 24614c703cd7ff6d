"""``recsys`` against endpoints that cannot serve it: an S3 endpoint or an MLflow server on a closed
port, credentials a real S3 server refuses, a bucket that does not exist. Each ends within a
bounded time in one line naming the endpoint, the setting to check and the cause, exit status 1,
no traceback (``-v`` adds it)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from recsys_lib.devstack.services import free_port, wait_http

pytestmark = pytest.mark.integration

RECSYS = str(Path(sys.executable).parent / "recsys")
RECOMMEND = ["recommend", "--dataset", "shop", "--user", "shopper-1"]


def _recsys(*argv: str, env: dict[str, str]) -> tuple[int, list[str]]:
    """Exit status and stderr lines of ``recsys argv`` in a process of its own (the attempts and
    timeouts that bound its wait are checked in tests/unit/storage and tests/unit/registry; the
    300 s here only stops a hang)."""
    done = subprocess.run([RECSYS, *argv], env=env, capture_output=True, text=True, timeout=300)
    return done.returncode, done.stderr.strip().splitlines()


@pytest.fixture
def env(local_stack) -> dict[str, str]:
    """The local stack's client environment, for a child process."""
    return {**os.environ, **local_stack.client_env()}


@pytest.fixture
def strict_s3(tmp_path: Path) -> Iterator[str]:
    """A moto S3 server that checks credentials (no IAM user exists, so every key is unknown)."""
    port = free_port()
    log = tmp_path / "moto.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            env={**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "0"},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_http(f"http://127.0.0.1:{port}/moto-api/", 60, server, str(log))
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(30)


def test_an_s3_endpoint_on_a_closed_port(env: dict[str, str]) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    closed = {**env, "AWS_ENDPOINT_URL_S3": endpoint, "RECSYS_S3_MAX_ATTEMPTS": "2"}
    status, lines = _recsys(*RECOMMEND, env=closed)
    assert status == 1 and len(lines) == 1, lines
    assert lines[0].startswith(f"recsys: error: cannot reach the S3 endpoint {endpoint} after 2 attempt(s) while ")
    assert "Could not connect to the endpoint URL" in lines[0] and "check AWS_ENDPOINT_URL_S3" in lines[0]

    status, lines = _recsys("-v", *RECOMMEND, env=closed)
    assert (
        status == 1 and "Traceback (most recent call last):" in lines and "EndpointConnectionError" in "\n".join(lines)
    )
    assert lines[-1].startswith("recsys: error: cannot reach the S3 endpoint")


def test_credentials_the_s3_server_refuses(env: dict[str, str], strict_s3: str) -> None:
    status, lines = _recsys(*RECOMMEND, env={**env, "AWS_ENDPOINT_URL_S3": strict_s3})
    assert status == 1 and len(lines) == 1, lines
    assert lines[0].startswith(f"recsys: error: the S3 endpoint {strict_s3} refused the credentials while reading ")
    assert "InvalidAccessKeyId" in lines[0]
    assert lines[0].endswith("check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)")


def test_a_bucket_that_does_not_exist(env: dict[str, str], local_stack) -> None:
    status, lines = _recsys(*RECOMMEND, env={**env, "RECSYS_BUCKET": "no-such-bucket"})
    assert status == 1 and len(lines) == 1, lines
    assert lines[0] == (
        f"recsys: error: bucket 'no-such-bucket' does not exist at the S3 endpoint {local_stack.s3.url} (while "
        "reading s3://no-such-bucket/exports/user_topk/dataset=shop/_latest.json); check storage.bucket "
        "(RECSYS_BUCKET) and AWS_ENDPOINT_URL_S3"
    )


def test_an_mlflow_server_on_a_closed_port(env: dict[str, str]) -> None:
    uri = f"http://127.0.0.1:{free_port()}"
    argv = ["export", "--dataset", "shop", "--ds", "2026-05-01", "--set", "registry.max_retries=1"]
    status, lines = _recsys(*argv, env={**env, "MLFLOW_TRACKING_URI": uri})
    assert status == 1 and len(lines) == 1, lines  # no traceback, no "Retrying ..." warnings
    assert lines[0] == (
        f"recsys: error: MLflow tracking server {uri} is unreachable while running `recsys export` ([Errno 111] "
        "Connection refused; registry.max_retries=1, registry.request_timeout=30 s); check MLFLOW_TRACKING_URI"
    )
