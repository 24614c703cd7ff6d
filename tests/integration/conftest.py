"""Helpers for the integration tests: a synthetic shop written as raw input on the local S3."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from recsys_lib.storage import ObjectStore


def shop_in_store(bucket: str, dataset: str, *, end: datetime, **shop: Any) -> ObjectStore:
    """Generate a synthetic shop (``generate_shop(**shop)``) ending at ``end`` and write it under
    ``raw/<dataset>/`` of ``bucket``; returns the store."""
    from recsys_lib.sources import write_raw
    from recsys_lib.sources.synthetic import generate_shop

    store = ObjectStore(bucket)
    events, items = generate_shop(end=end, **shop)
    write_raw(store, dataset, events, items)
    return store


@contextlib.contextmanager
def running_service(dataset: str, log: Path, *args: str) -> Iterator[Any]:
    """``recsys serve --dataset <dataset> <args>`` as a process on a free port, until healthy;
    yields an httpx client on it and stops the process afterwards."""
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [str(Path(sys.executable).parent / "recsys"), "serve", "--dataset", dataset, "--port", str(port), *args]
    with log.open("w") as out:
        process = subprocess.Popen(command, env=dict(os.environ), stdout=out, stderr=subprocess.STDOUT)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            deadline = time.monotonic() + 120
            while True:
                if process.poll() is not None:
                    raise AssertionError(f"recsys serve exited: {log.read_text()[-3000:]}")
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError(f"recsys serve never became healthy: {log.read_text()[-3000:]}")
                time.sleep(0.2)
            yield client
    finally:
        process.terminate()
        process.wait(timeout=30)
