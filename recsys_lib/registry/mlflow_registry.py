"""The only place MLflow is touched: runs, metrics, model logging, registry versions and aliases.

The tracking server comes from ``MLFLOW_TRACKING_URI`` in the environment; nothing here sets it.
"""

from __future__ import annotations

import tempfile
import time
import warnings
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from recsys_lib import schema
from recsys_lib.errors import ModelError
from recsys_lib.registry.connection import registry_error
from recsys_lib.registry.lookup import model_id_of
from recsys_lib.registry.pyfunc import BUNDLE_ARTIFACT, DEFAULT_K, ZIPPED_CODE
from recsys_lib.serving.bundle import ModelBundle

_ENTRY = Path(__file__).with_name("pyfunc_entry.py")
_PACKAGE = Path(__file__).parents[1]  # recsys_lib/: travels with the model (code_paths)
_REQUIREMENTS = [
    "torch",
    "numpy",
    "pandas",
    "pyarrow",
    "scipy",
    "safetensors",
    "pydantic",
    "pytorch-lightning",
    "pyyaml",
]
"""What loading the model imports besides MLflow (ours travels as code, see :func:`_code_archive`)."""


@dataclass(frozen=True)
class RegisteredVersion:
    """One version of a registered model: its name and version number, the run that logged it and
    the ``models:/<name>/<version>`` URI that loads it."""

    name: str
    version: str
    run_id: str | None
    model_uri: str
    model_id: str | None = None
    """The MLflow 3 LoggedModel (``m-...``) the version was registered from; its metrics are the
    model's test metrics. None for versions registered before models carried metrics."""


@contextmanager
def unreachable_as_model_error(action: str) -> Iterator[None]:
    """Turn "the tracking server cannot be reached" (after MLflow's own HTTP retries) or "it refuses
    the credentials" into one ModelError naming the server, ``action`` and the setting to check
    (:func:`~recsys_lib.registry.connection.registry_error`); other errors pass through unchanged."""
    try:
        yield
    except Exception as exc:
        error = registry_error(exc, action)
        if error is None:
            raise
        raise error from exc


def _client() -> Any:
    from mlflow import MlflowClient

    return MlflowClient()


def start_run(
    experiment: str,
    run_name: str,
    *,
    tags: dict[str, str],
    params: dict[str, Any],
    source: str | None = None,
    git_commit: str | None = None,
) -> str:
    """Create a run in ``experiment`` (created if missing) with tags and params; return its id.

    A new run carries MLflow's system tags as ``mlflow.start_run`` would set them (``mlflow.user``,
    ``mlflow.source.name``/``type``), so the UI shows who ran it and from where: ``source`` names
    the step (default: the running program) and ``git_commit`` the code's commit
    (``mlflow.source.git.commit``; MLflow's own guess from the program's folder is not used, since
    the program may be Airflow's, not this repository's). Under ``mlflow run`` (``MLFLOW_RUN_ID``
    set), the project's run, which has these tags already, is used instead of a new one, so the
    experiment a data scientist launched holds the whole training.
    """
    import os

    from mlflow.entities import Param

    client = _client()
    run_id = os.environ.get("MLFLOW_RUN_ID")
    if run_id:
        for key, value in {**tags, "mlflow.runName": run_name}.items():
            client.set_tag(run_id, key, value)
    else:
        exp = client.get_experiment_by_name(experiment)
        exp_id = exp.experiment_id if exp else client.create_experiment(experiment)
        run_tags = {**system_tags(source=source, git_commit=git_commit), **tags}
        run_id = client.create_run(exp_id, run_name=run_name, tags=run_tags).info.run_id
    items = [Param(k, str(v)[:6000]) for k, v in sorted(params.items())]
    for start in range(0, len(items), 100):
        client.log_batch(run_id, params=items[start : start + 100])
    return str(run_id)


def system_tags(*, source: str | None = None, git_commit: str | None = None) -> dict[str, str]:
    """MLflow's run context tags (user, source name and type, and any context a plugin adds),
    with ``source`` as the source name and ``git_commit`` (unless empty or ``"unknown"``) as the
    source commit."""
    from mlflow.tracking.context.git_context import GitRunContext
    from mlflow.tracking.context.registry import resolve_tags
    from mlflow.utils.mlflow_tags import MLFLOW_GIT_COMMIT, MLFLOW_SOURCE_NAME

    # ``ignore`` takes provider classes (isinstance); MLflow annotates it as instances
    tags: dict[str, str] = resolve_tags(ignore=[GitRunContext])  # type: ignore[list-item]
    if source:
        tags[MLFLOW_SOURCE_NAME] = source
    if git_commit and git_commit != "unknown":
        tags[MLFLOW_GIT_COMMIT] = git_commit
    return tags


def log_metrics(
    run_id: str, metrics: dict[str, float], step: int | None = None, *, model_id: str | None = None
) -> None:
    """Log numeric metrics to a run (``step`` = epoch for training curves). With ``model_id`` (a
    LoggedModel of this run, see :attr:`RegisteredVersion.model_id`) they are the model's metrics
    too: MLflow's Models view and ``mlflow.search_logged_models`` show them with the model."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    batch = [Metric(k, float(v), now, step or 0, model_id=model_id) for k, v in sorted(metrics.items())]
    if batch:
        _client().log_batch(run_id, metrics=batch)


def set_tags(run_id: str, tags: dict[str, str]) -> None:
    """Set each of ``tags`` on the run, one request per tag; an existing tag's value is replaced."""
    client = _client()
    for key, value in tags.items():
        client.set_tag(run_id, key, value)


def log_figure(run_id: str, figure: Any, artifact_file: str) -> None:
    """Log a matplotlib figure as an image artifact of the run, then close it."""
    import matplotlib.pyplot as plt

    try:
        _client().log_figure(run_id, figure, artifact_file)
    finally:
        plt.close(figure)


def log_input(
    run_id: str, sample: pd.DataFrame, *, source: str, name: str, digest: str, context: str = "training"
) -> None:
    """Record a dataset as an input of the run: its schema (inferred from ``sample``, a few thousand
    of its rows, so MLflow's per-cell inference never walks the whole table), ``digest`` (e.g. the
    snapshot object's ETag) and ``source`` (its URI), so the run says exactly which data it learned from."""
    import mlflow
    from mlflow.data.pandas_dataset import from_pandas

    dataset = from_pandas(sample, source=source, name=name, digest=digest[:36])
    with mlflow.start_run(run_id=run_id):
        mlflow.log_input(dataset, context=context)


def log_artifacts(run_id: str, local_dir: str | Path, artifact_path: str) -> None:
    """Upload every file below ``local_dir`` to the run's ``artifact_path``."""
    _client().log_artifacts(run_id, str(local_dir), artifact_path)


def end_run(run_id: str, status: str = "FINISHED") -> None:
    """Mark the run terminated with ``status`` (``FINISHED``, ``FAILED`` or ``KILLED``) and its end time."""
    _client().set_terminated(run_id, status)


def pinned_requirements() -> list[str]:
    """:data:`_REQUIREMENTS` pinned to the versions installed here, the ones the model was trained
    and tested with (a local build tag such as ``+cpu`` dropped: pip resolves the public release)."""
    from importlib.metadata import version

    return [f"{name}=={version(name).split('+')[0]}" for name in _REQUIREMENTS]


def _code_archive(target: Path) -> Path:
    """``recsys_lib``'s Python sources as one zip, ``target/recsys_lib.zip``, for ``code_paths``:
    the registered model then loads where this repository was never installed (pyfunc_entry.py
    puts the zip on ``sys.path`` when ``recsys_lib`` is not importable). One file, not a hundred:
    every model load downloads it. The compiled kernel stays out (a zip cannot hold a loadable
    library); search takes its tensor path there."""
    archive = target / ZIPPED_CODE
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        for path in sorted(_PACKAGE.rglob("*.py")):
            if "__pycache__" not in path.parts:
                zipped.write(path, path.relative_to(_PACKAGE.parent).as_posix())
    return archive


def _pyfunc_arguments(
    bundle: ModelBundle, bundle_dir: str | Path, example_user_ids: list[str], code_dir: Path
) -> dict[str, Any]:
    """What logging and saving a bundle as a pyfunc share: code entry and the package's code,
    artifact, signature, example, pinned requirements."""
    from mlflow.models import infer_signature

    example = pd.DataFrame({schema.USER_ID: [str(u) for u in example_user_ids[:3]]})
    output = bundle.recommend_ids(example[schema.USER_ID].to_numpy(), DEFAULT_K)
    with warnings.catch_warnings():  # "integer columns cannot hold missing values": rank never is missing
        warnings.simplefilter("ignore", UserWarning)
        signature = infer_signature(example, output, params={"k": DEFAULT_K})
    return {
        "python_model": str(_ENTRY),
        "artifacts": {BUNDLE_ARTIFACT: str(bundle_dir)},
        "signature": signature,
        "input_example": example,
        "pip_requirements": pinned_requirements(),
        "code_paths": [str(_code_archive(code_dir))],
    }


def save_pyfunc(bundle: ModelBundle, bundle_dir: str | Path, path: str | Path, example_user_ids: list[str]) -> None:
    """Write ``bundle`` (saved in ``bundle_dir``) as a local pyfunc model at ``path``, exactly as
    :func:`log_and_register` logs it; ``mlflow.pyfunc.load_model(path)`` serves it."""
    import mlflow

    with tempfile.TemporaryDirectory() as code_dir:
        mlflow.pyfunc.save_model(str(path), **_pyfunc_arguments(bundle, bundle_dir, example_user_ids, Path(code_dir)))


def log_and_register(
    run_id: str,
    bundle: ModelBundle,
    bundle_dir: str | Path,
    registered_name: str,
    example_user_ids: list[str],
    *,
    tags: dict[str, str] | None = None,
) -> RegisteredVersion:
    """Log ``bundle`` (saved in ``bundle_dir``) as a pyfunc model of the run, with signature, input
    example and ``tags`` (the LoggedModel's), and register it."""
    import mlflow

    with tempfile.TemporaryDirectory() as code_dir, mlflow.start_run(run_id=run_id):
        arguments = _pyfunc_arguments(bundle, bundle_dir, example_user_ids, Path(code_dir))
        info = mlflow.pyfunc.log_model(name="model", registered_model_name=registered_name, tags=tags, **arguments)
    version = info.registered_model_version
    if version is None:
        raise ModelError(f"MLflow did not register a version of {registered_name}")
    return RegisteredVersion(
        registered_name, str(version), run_id, f"models:/{registered_name}/{version}", info.model_id
    )


def version_by_alias(name: str, alias: str) -> RegisteredVersion | None:
    """The version holding ``alias``, or None if the model or the alias does not exist yet."""
    from mlflow.exceptions import MlflowException

    try:
        mv = _client().get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if "RESOURCE_DOES_NOT_EXIST" in str(exc.error_code) or "not found" in str(exc).lower():
            return None
        raise
    return RegisteredVersion(name, str(mv.version), mv.run_id, f"models:/{name}/{mv.version}", model_id_of(mv))


def set_alias(name: str, alias: str, version: str) -> None:
    """Point ``alias`` of registered model ``name`` at ``version``, moving it from the version that
    held it in one request (it is never deleted first)."""
    _client().set_registered_model_alias(name, alias, version)


def delete_alias(name: str, alias: str) -> None:
    """Remove ``alias`` from registered model ``name``; the version it named stays registered."""
    _client().delete_registered_model_alias(name, alias)


def set_version_tags(name: str, version: str, tags: dict[str, str]) -> None:
    """Set each of ``tags`` on version ``version`` of ``name``, one request per tag; existing values are replaced."""
    client = _client()
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)


def load_bundle(model_uri: str) -> ModelBundle:
    """Load a registered model (``models:/name/3`` or ``models:/name@champion``) as a bundle."""
    import mlflow

    try:
        pyfunc = mlflow.pyfunc.load_model(model_uri)
    except Exception as exc:  # MLflow raises many types here; wrap with the URI for context
        raise ModelError(f"cannot load {model_uri} from the MLflow registry: {exc}") from exc
    bundle: ModelBundle = pyfunc.unwrap_python_model().bundle
    return bundle
