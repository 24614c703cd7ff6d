"""Read-only questions the Recommendations page and the demo ask of MLflow, answered as plain data.

Each function makes a bounded number of calls to the tracking server (``MLFLOW_TRACKING_URI``) and
raises ModelError, naming the server, when MLflow refuses; :func:`server_problem` says beforehand,
within a few seconds, whether asking is worth it at all.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from recsys_lib.errors import ModelError

if TYPE_CHECKING:
    from recsys_lib.registry.mlflow_registry import RegisteredVersion


@dataclass(frozen=True)
class RunSummary:
    """One MLflow run: what the leaderboard and the demo show of it."""

    run_id: str
    experiment_id: str
    name: str
    status: str
    tags: dict[str, str]
    metrics: dict[str, float]
    """The latest value of each metric logged to the run."""


@dataclass(frozen=True)
class VersionSummary:
    """A registered model version: where it came from (run and LoggedModel)."""

    name: str
    version: str
    run_id: str | None
    model_id: str | None


def model_id_of(version: Any) -> str | None:
    """The LoggedModel an MLflow ``ModelVersion`` was registered from: its ``model_id`` where the
    registry keeps it, else the id in its ``source`` (``models:/m-...``, what ``log_model``
    registers); None for a version registered from a run's artifacts."""
    if getattr(version, "model_id", None):
        return str(version.model_id)
    source = str(getattr(version, "source", "") or "")
    model_id = source.removeprefix("models:/")
    if source.startswith("models:/") and model_id and not {"/", "@"} & set(model_id):
        return model_id
    return None


def tracking_uri() -> str:
    """The tracking server's address as MLflow resolves it (``MLFLOW_TRACKING_URI``, else its default)."""
    import mlflow

    return str(mlflow.get_tracking_uri())


def server_problem(timeout: float = 2.0) -> str | None:
    """Why the tracking server cannot be asked now, or None: ``MLFLOW_TRACKING_URI`` is not set
    (MLflow would fall back to a local store), or its ``/health`` does not answer within ``timeout``
    seconds."""
    from mlflow.environment_variables import MLFLOW_TRACKING_URI

    if not MLFLOW_TRACKING_URI.is_set():
        return "MLFLOW_TRACKING_URI is not set in this process's environment"
    uri = tracking_uri()
    if not uri.startswith(("http://", "https://")):
        return None
    import requests

    try:
        requests.get(uri.rstrip("/") + "/health", timeout=timeout).raise_for_status()
    except requests.RequestException as exc:
        return f"MLflow tracking server {uri} is unreachable ({type(exc).__name__})"
    return None


def _client() -> Any:
    from mlflow import MlflowClient

    return MlflowClient()


@contextmanager
def _refusals_as_model_error() -> Iterator[None]:
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as exc:
        raise ModelError(f"MLflow at {tracking_uri()}: {exc}") from exc


def _summary(run: Any) -> RunSummary:
    return RunSummary(
        run_id=run.info.run_id,
        experiment_id=run.info.experiment_id,
        name=run.info.run_name or "",
        status=run.info.status,
        tags=dict(run.data.tags),
        metrics=dict(run.data.metrics),
    )


def run_summary(run_id: str) -> RunSummary:
    """The run ``run_id``; ModelError if there is none."""
    with _refusals_as_model_error():
        return _summary(_client().get_run(run_id))


def recent_runs(experiment: str, max_runs: int) -> list[RunSummary]:
    """The newest ``max_runs`` runs of ``experiment``, newest first; empty if it does not exist."""
    with _refusals_as_model_error():
        client = _client()
        found = client.get_experiment_by_name(experiment)
        if found is None:
            return []
        runs = client.search_runs([found.experiment_id], order_by=["attributes.start_time DESC"], max_results=max_runs)
        return [_summary(run) for run in runs]


def versions_by_run(name: str, max_versions: int = 1000) -> dict[str, str]:
    """``{run_id: version}`` of registered model ``name`` (its newest ``max_versions`` versions)."""
    with _refusals_as_model_error():
        found = _client().search_model_versions(f"name='{name}'", max_results=max_versions)
        return {str(v.run_id): str(v.version) for v in found if v.run_id}


def aliased_versions(name: str, aliases: Sequence[str]) -> dict[str, VersionSummary]:
    """The versions of ``name`` holding each of ``aliases``; an alias no version holds (or a model
    not registered yet) is left out."""
    from mlflow.exceptions import MlflowException

    out: dict[str, VersionSummary] = {}
    client = _client()
    with _refusals_as_model_error():
        for alias in aliases:
            try:
                found = client.get_model_version_by_alias(name, alias)
            except MlflowException as exc:
                if "RESOURCE_DOES_NOT_EXIST" in str(exc.error_code) or "not found" in str(exc).lower():
                    continue
                raise
            out[alias] = VersionSummary(name, str(found.version), found.run_id, model_id_of(found))
    return out


def latest_values(metrics: Sequence[Any]) -> dict[str, float]:
    """``{key: value}`` of MLflow ``Metric`` entities, the value of the highest step (then the
    newest timestamp) winning where a key repeats."""
    latest: dict[str, Any] = {}
    for metric in metrics:
        seen = latest.get(metric.key)
        if seen is None or (metric.step, metric.timestamp) >= (seen.step, seen.timestamp):
            latest[metric.key] = metric
    return {key: float(metric.value) for key, metric in latest.items()}


def version_metrics(version: RegisteredVersion | VersionSummary) -> dict[str, float]:
    """The test metrics of a registered version: those of its LoggedModel (MLflow 3), or, for a
    version whose model carries none (registered before models had metrics), its run's."""
    with _refusals_as_model_error():
        if version.model_id:
            metrics = latest_values(_client().get_logged_model(version.model_id).metrics or [])
            if metrics:
                return metrics
        if version.run_id is None:
            return {}
        return dict(_client().get_run(version.run_id).data.metrics)
