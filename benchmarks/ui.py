"""Recommendations page benchmark: how long the page takes with many training runs in MLflow.

    .venv/bin/python benchmarks/ui.py                 # 100, 500 and 2,000 runs (about 3 min on 2 cores)
    .venv/bin/python benchmarks/ui.py --runs 500

Starts the local stack (moto S3 and an MLflow server process, SQLite backend), publishes one small
export through the real pipeline, then adds runs to the experiment (each with the leaderboard's
five metrics and two tags) and times ``GET /`` and ``GET /api/overview`` of the FastAPI app
(median of 5 after one warm-up), whatever the number of runs: the page reads the newest 200.
Prints a table and ends with one line:

    RESULT page_ms_at_<largest>=<median ms> page_ms_at_<smallest>=<median ms>

Operators should see the page within a second; the target is < 1,000 ms at 2,000 runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DATASET = "bench-ui"
DS = "2026-11-01"


def _add_runs(experiment_id: str, count: int, start: int) -> None:
    from mlflow import MlflowClient
    from mlflow.entities import Metric, RunTag

    client = MlflowClient()
    now = int(time.time() * 1000)
    for i in range(start, start + count):
        run = client.create_run(experiment_id, run_name=f"bench-{i}")
        metrics = [
            Metric(f"test_{m}_at_10", (i % 97) / 100, now, 0) for m in ("ndcg", "recall", "hr", "mrr", "coverage")
        ]
        tags = [RunTag("recsys.model", "mf_bpr"), RunTag("recsys.logical_date", DS)]
        client.log_batch(run.info.run_id, metrics=metrics, tags=tags)


def _time(client, path: str) -> float:
    client.get(path)  # warm-up
    samples = []
    for _ in range(5):
        start = time.perf_counter()
        response = client.get(path)
        samples.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, response.text[:500]
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, nargs="+", default=[100, 500, 2000])
    args = parser.parse_args()

    from fastapi.testclient import TestClient
    from mlflow import MlflowClient

    from recsys_lib.devstack.services import start_stack, stop_stack
    from recsys_lib.pipelines.runner import retrain
    from recsys_lib.sources import write_raw
    from recsys_lib.sources.synthetic import generate_shop
    from recsys_lib.storage import ObjectStore
    from recsys_lib.ui.app import create_app

    with tempfile.TemporaryDirectory() as state:
        stack = start_stack(state, bucket="bench")
        os.environ.update(stack.client_env())
        try:
            events, items = generate_shop(n_users=200, n_items=80, days=20, end=datetime(2026, 11, 2, tzinfo=UTC))
            write_raw(ObjectStore("bench"), DATASET, events, items)
            retrain({"dataset": DATASET, "model": "item_knn", "k": 5, "export_shards": 1}, DS)
            experiment = MlflowClient().get_experiment_by_name(f"recsys-{DATASET}").experiment_id
            client = TestClient(create_app())
            rows, have = [], 1
            for target in sorted(args.runs):
                _add_runs(experiment, target - have, have)
                have = target
                page = _time(client, f"/?dataset={DATASET}")
                api = _time(client, f"/api/overview?dataset={DATASET}")
                rows.append((target, page, api))
        finally:
            stop_stack(stack)
    print(f"{'runs':>6} {'GET / (ms)':>12} {'GET /api/overview (ms)':>24}")
    for target, page, api in rows:
        print(f"{target:>6} {page:>12.0f} {api:>24.0f}")
    (small, small_ms, _), (large, large_ms, _) = rows[0], rows[-1]
    print(f"RESULT page_ms_at_{large}={large_ms:.0f} page_ms_at_{small}={small_ms:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
