"""docker/: the compose stack is valid Compose, has every service the DAG needs, takes its
secrets only from the environment, and the README's production section describes the same stack."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

DOCKER = REPO / "docker"
#: The Compose Specification's JSON schema, as shipped in docker-compose 1.29.2 (Apache-2.0).
SCHEMA = DOCKER / "compose-spec.schema.json"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DOCKER / "docker-compose.yml").read_text())


def _validator():
    import jsonschema

    return jsonschema.Draft201909Validator(json.loads(SCHEMA.read_text()))


def test_the_compose_file_follows_the_compose_specification(compose: dict) -> None:
    validator = _validator()
    assert [e.message for e in validator.iter_errors(compose)] == []
    broken = copy.deepcopy(compose)
    broken["services"]["redis"]["restart_policy"] = "always"  # not a Compose key: the schema must say so
    assert any("restart_policy" in e.message for e in validator.iter_errors(broken))


def test_every_service_the_dag_needs_is_there(compose: dict) -> None:
    services = compose["services"]
    assert {
        "postgres", "redis", "object-store", "object-store-init", "mlflow", "airflow-init", "airflow-apiserver",
        "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer", "airflow-worker", "airflow-worker-gpu",
    } <= set(services)  # fmt: skip
    commands = {name: str(s.get("command", "")) for name, s in services.items()}
    assert commands["airflow-apiserver"] == "api-server" and commands["airflow-scheduler"] == "scheduler"
    assert commands["airflow-dag-processor"] == "dag-processor" and commands["airflow-triggerer"] == "triggerer"
    env = services["airflow-scheduler"]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:")
    assert "@postgres/airflow" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert env["AWS_ENDPOINT_URL_S3"] == "http://object-store:9000"
    assert "@postgres/mlflow" in services["mlflow"]["environment"]["MLFLOW_BACKEND_STORE_URI"]
    assert services["mlflow"]["environment"]["MLFLOW_ARTIFACTS_DESTINATION"].startswith("s3://")
    assert "airflow pools set gpu" in services["airflow-init"]["command"][0]


def test_the_gpu_worker_serves_the_queue_the_train_task_uses_and_reserves_a_gpu(compose: dict) -> None:
    source = (REPO / "dags" / "recsys_retrain.py").read_text()
    [queue] = re.findall(r'@task\(pool="gpu", pool_slots=1, queue="(\w+)"\)', source)
    gpu = compose["services"]["airflow-worker-gpu"]
    assert f"--queues {queue} " in gpu["command"] + " "
    [device] = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    assert "--queues gpu" not in compose["services"]["airflow-worker"]["command"]  # CPU workers never train


def test_the_live_service_runs_replicated_with_a_health_check_and_the_workers_environment(compose: dict) -> None:
    serving = compose["services"]["recsys-serving"]
    assert serving["entrypoint"] == ["recsys"] and serving["command"][0] == "serve"
    assert "0.0.0.0" in serving["command"]
    assert serving["deploy"]["replicas"] >= 2
    assert "/healthz" in " ".join(serving["healthcheck"]["test"])
    worker = compose["services"]["airflow-worker"]["environment"]
    for key in ("MLFLOW_TRACKING_URI", "AWS_ENDPOINT_URL_S3", "AWS_ACCESS_KEY_ID", "RECSYS_BUCKET"):
        assert serving["environment"][key] == worker[key], key


def test_the_ui_needs_a_login_and_no_secret_is_written_down(compose: dict) -> None:
    env = compose["services"]["airflow-apiserver"]["environment"]
    assert env["AIRFLOW__CORE__AUTH_MANAGER"].endswith("FabAuthManager")  # not the dev-only simple manager
    text = (DOCKER / "docker-compose.yml").read_text()
    for line in text.splitlines():
        match = re.match(r"\s*([A-Z_]*(PASSWORD|SECRET|KEY)[A-Z_]*):\s*(\S+)", line)
        if match and not match.group(1).startswith("AIRFLOW__CORE__AUTH"):
            assert match.group(3).startswith("${"), line
    example = (DOCKER / ".env.example").read_text()
    assert all(not v for v in re.findall(r"^\w*(?:PASSWORD|SECRET|KEY)\w*=(.*)$", example, re.M))


def test_the_images_install_the_pinned_versions() -> None:
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)$", (REPO / "constraints.txt").read_text(), re.M))
    airflow = (DOCKER / "airflow.Dockerfile").read_text()
    assert f"apache/airflow:{pins['apache-airflow']}-python3.11" in airflow
    assert "-c /opt/recsys/constraints.txt" in airflow and f'"torch=={pins["torch"]}+cpu"' in airflow
    assert f'"torch=={pins["torch"]}"' in (DOCKER / "gpu-worker.Dockerfile").read_text()
    assert f'"mlflow=={pins["mlflow"]}"' in (DOCKER / "mlflow.Dockerfile").read_text()


def test_the_readme_production_section_matches_the_stack(compose: dict) -> None:
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Production deployment") :]
    section = section[: section.index("\n## ", 1)]
    for service in compose["services"]:
        assert f"`{service}`" in section, service
    for path in ("docker/docker-compose.yml", "docker/.env.example", "docker/airflow.Dockerfile"):
        assert path in section and Path(REPO / path).exists()
