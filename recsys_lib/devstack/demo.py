"""``make demo``: the whole product on one laptop, from nothing, in a few minutes.

Starts a local S3 endpoint and an MLflow server, lands a seeded synthetic shop as daily partitions
under ``raw/``, runs the ``recsys_retrain`` DAG with Airflow (``airflow dags test``) for the default
model (the champion), runs it again for popularity (a weaker challenger) exported to half the
users, lets the shop's simulated shoppers respond for a week, runs the ``recsys_outcomes`` DAG and
prints where to look and the experiment's verdict.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from recsys_lib.devstack.services import Stack, start_stack, stop_stack
from recsys_lib.extras import require_extra

DATASET = "shop"
BUCKET = "recsys"
# Airflow's log lines look like "<time> [info     ] <message> [<logger>] key=value ..."
_LOG_LINE = re.compile(r"^\S+ \[(?P<level>\w+)\s*\] (?P<msg>.*?)\s+\[(?P<logger>[\w.]+)\]")


STEPS = 7
WEEK = 7  # days of simulated shopping after the experiment's export


def _step(n: int, text: str) -> None:
    print(f"\n[{n}/{STEPS}] {text}", flush=True)


def dags_folder() -> Path:
    """The repository's dags/ (editable install) or ./dags."""
    repo_dags = Path(__file__).resolve().parents[2] / "dags"
    return repo_dags if repo_dags.is_dir() else Path.cwd() / "dags"


def airflow_env(home: Path, stack: Stack) -> dict[str, str]:
    """Environment for the demo's ``airflow`` commands: ours plus the stack's client variables,
    ``AIRFLOW_HOME`` at ``home``, the repository's DAGs, no example DAGs, and this interpreter's
    bin/ first on ``PATH``."""
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


def prepare_airflow(env: dict[str, str]) -> None:
    """Migrate the metadata DB and create the ``gpu`` pool training runs in."""
    airflow = str(Path(sys.executable).parent / "airflow")
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True)
    subprocess.run(
        [airflow, "pools", "set", "gpu", "1", "GPU training slots"], env=env, check=True, capture_output=True
    )


def run_dag(
    env: dict[str, str], ds: str, conf: dict[str, object], log_path: Path, dag_id: str = "recsys_retrain"
) -> None:
    """``airflow dags test`` with the full log appended to ``log_path`` and pipeline progress on stdout."""
    airflow = str(Path(sys.executable).parent / "airflow")
    cmd = [airflow, "dags", "test", dag_id, ds, "-c", json.dumps(conf)]
    with (
        log_path.open("a") as log,
        subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc,
    ):
        for line in proc.stdout or ():  # stdout=PIPE: always a stream
            log.write(line)
            match = _LOG_LINE.match(line)
            if match and (match["logger"].startswith("recsys_lib") or match["level"] in ("error", "critical")):
                print(f"   {match['logger'].rsplit('.', 1)[-1]:<9} {match['msg']}", flush=True)
    if proc.returncode != 0:
        raise SystemExit(f"the DAG run failed (exit {proc.returncode}); full log: {log_path}")


def run_demo(state_dir: Path, *, keep: bool = False, n_users: int = 2000, epochs: int = 20) -> None:
    """Run the demo's seven steps in ``state_dir`` (wiped first): stack, synthetic shop, champion
    and challenger DAG runs, a simulated week, the outcomes DAG, and the summary. The services
    are stopped at the end, even on failure, unless ``keep``; a failed DAG run raises SystemExit
    naming its log."""
    from recsys_lib.sources import write_synthetic_shop
    from recsys_lib.storage import ObjectStore

    require_extra("devstack,airflow", "moto", "airflow", feature="recsys demo")
    started = time.monotonic()
    state_dir = state_dir.resolve()
    shutil.rmtree(state_dir, ignore_errors=True)  # services keep state in memory: start clean
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    export_day = today - timedelta(days=WEEK + 1)  # the experiment's export, a simulated week before today
    champion_day = export_day - timedelta(days=1)
    ds, champion_ds, report_ds = (d.date().isoformat() for d in (export_day, champion_day, today))
    log_path = state_dir / "dag_test.log"

    _step(1, "starting the local S3 endpoint (moto) and the MLflow tracking server")
    stack = start_stack(state_dir / "services", bucket=BUCKET)
    os.environ.update(stack.client_env())
    print(f"   S3 {stack.s3.url}   MLflow {stack.mlflow.url}")
    try:
        _step(2, f"landing a seeded synthetic shop as daily partitions under s3://{BUCKET}/raw/{DATASET}/")
        store = ObjectStore(BUCKET)
        events, items = write_synthetic_shop(
            store, DATASET, end=export_day, n_users=n_users, n_items=max(200, n_users // 4), days=90, seed=0
        )
        print(f"   {len(events):,} events from {events['user_id'].nunique():,} users over {len(items):,} items")

        env = airflow_env(state_dir / "airflow", stack)
        prepare_airflow(env)
        _step(3, f"running DAG recsys_retrain for {champion_ds} with Airflow: the champion (log: {log_path})")
        run_dag(env, champion_ds, {"dataset": DATASET, "epochs": epochs, "k": 10}, log_path)

        _step(4, f"running recsys_retrain for {ds} with popularity, the challenger, exported to half the users")
        run_dag(env, ds, {"dataset": DATASET, "model": "popularity", "k": 10, "challenger_share": 0.5}, log_path)

        _step(5, f"a week of simulated shoppers responding to their lists ({WEEK} daily landings after {ds})")
        from recsys_lib.pipelines import simulate

        week = simulate.run({"dataset": DATASET}, days=WEEK)
        print(
            f"   {week['events']:,} events: {week['impressions']:,} impressions, {week['clicks']:,} clicks, "
            f"{week['purchases']:,} purchases"
        )

        _step(6, f"running DAG recsys_outcomes for {report_ds}: what each arm's shoppers did")
        run_dag(env, report_ds, {"dataset": DATASET}, log_path, dag_id="recsys_outcomes")

        _step(7, "reading the results back through the library")
        from recsys_lib.devstack.summary import print_outcomes, print_summary

        print_summary(store, stack, DATASET, items)
        print_outcomes(store, DATASET, ds)
    finally:
        print("\nservices:", end=" ")
        if keep:
            stack.save()
            print(f"left running. Stop them with: .venv/bin/recsys stack down --state-dir {state_dir / 'services'}")
        else:
            stop_stack(stack)
            print("stopped (run `make demo DEMO_ARGS=--keep` to keep the MLflow UI up)")
    print(f"\ndemo finished in {time.monotonic() - started:.0f}s")
