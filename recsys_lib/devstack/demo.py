"""``make demo``: the whole product on one laptop, from nothing, in a few minutes.

Starts a local S3 endpoint and an MLflow server, writes a seeded synthetic shop to ``raw/``, runs
the ``recsys_retrain`` DAG with Airflow (``airflow dags test``), then prints where to look.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from recsys_lib.devstack.services import Stack, start_stack, stop_stack

DATASET = "shop"
BUCKET = "recsys"
# Airflow's log lines look like "<time> [info     ] <message> [<logger>] key=value ..."
_LOG_LINE = re.compile(r"^\S+ \[(?P<level>\w+)\s*\] (?P<msg>.*?)\s+\[(?P<logger>[\w.]+)\]")


def _step(n: int, text: str) -> None:
    print(f"\n[{n}/5] {text}", flush=True)


def dags_folder() -> Path:
    """The repository's dags/ (editable install) or ./dags."""
    repo_dags = Path(__file__).resolve().parents[2] / "dags"
    return repo_dags if repo_dags.is_dir() else Path.cwd() / "dags"


def airflow_env(home: Path, stack: Stack) -> dict[str, str]:
    bin_dir = str(Path(sys.executable).parent)
    return {
        **os.environ,
        **stack.client_env(),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder()),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONUNBUFFERED": "1",
    }


def run_dag(env: dict[str, str], ds: str, conf: dict[str, object], log_path: Path) -> None:
    """``airflow dags test`` with the full log in ``log_path`` and pipeline progress on stdout."""
    airflow = str(Path(sys.executable).parent / "airflow")
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True)
    subprocess.run(
        [airflow, "pools", "set", "gpu", "1", "GPU training slots"], env=env, check=True, capture_output=True
    )
    cmd = [airflow, "dags", "test", "recsys_retrain", ds, "-c", json.dumps(conf)]
    with (
        log_path.open("w") as log,
        subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc,
    ):
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            match = _LOG_LINE.match(line)
            if match and (match["logger"].startswith("recsys_lib") or match["level"] in ("error", "critical")):
                print(f"   {match['logger'].rsplit('.', 1)[-1]:<9} {match['msg']}", flush=True)
    if proc.returncode != 0:
        raise SystemExit(f"the DAG run failed (exit {proc.returncode}); full log: {log_path}")


def run_demo(state_dir: Path, *, keep: bool = False, n_users: int = 2000, epochs: int = 20) -> None:
    from recsys_lib.sources import write_raw
    from recsys_lib.sources.synthetic import generate_shop
    from recsys_lib.storage import ObjectStore

    started = time.monotonic()
    state_dir = state_dir.resolve()
    shutil.rmtree(state_dir, ignore_errors=True)  # services keep state in memory: start clean
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    ds = today.date().isoformat()

    _step(1, "starting the local S3 endpoint (moto) and the MLflow tracking server")
    stack = start_stack(state_dir / "services", bucket=BUCKET)
    os.environ.update(stack.client_env())
    print(f"   S3 {stack.s3.url}   MLflow {stack.mlflow.url}")
    try:
        _step(2, f"writing a seeded synthetic shop to s3://{BUCKET}/raw/{DATASET}/")
        events, items = generate_shop(n_users=n_users, n_items=max(200, n_users // 4), days=90, end=today, seed=0)
        store = ObjectStore(BUCKET)
        write_raw(store, DATASET, events, items)
        print(f"   {len(events):,} events from {events['user_id'].nunique():,} users over {len(items):,} items")

        _step(3, f"running DAG recsys_retrain for {ds} with Airflow (log: {state_dir / 'dag_test.log'})")
        conf = {"dataset": DATASET, "epochs": epochs, "k": 10}
        run_dag(airflow_env(state_dir / "airflow", stack), ds, conf, state_dir / "dag_test.log")

        _step(4, "reading the results back through the library")
        from recsys_lib.devstack.summary import print_summary

        print_summary(store, stack, DATASET, items)
    finally:
        _step(5, "services")
        if keep:
            stack.save()
            print(f"   left running. Stop them with: .venv/bin/recsys stack down --state-dir {state_dir / 'services'}")
        else:
            stop_stack(stack)
            print("   stopped (run `make demo DEMO_ARGS=--keep` to keep the MLflow UI up)")
    print(f"\ndemo finished in {time.monotonic() - started:.0f}s")
