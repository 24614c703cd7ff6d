"""What every pipeline step needs to know about its run: config, logical date, lineage tags."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

from recsys_lib.config import GIT_COMMIT_VAR, PipelineConfig, environment, load_config
from recsys_lib.registry.connection import apply_http_settings
from recsys_lib.storage import ObjectStore, layout


@dataclass(frozen=True)
class RunContext:
    """One pipeline run: its validated config, logical date and data interval end, and the Airflow
    run it belongs to; built once per task by :meth:`create`."""

    config: PipelineConfig
    ds: str
    """Logical date ``YYYY-MM-DD``: every output of the run is partitioned by it."""
    interval_end: datetime
    """End of the run's data interval (UTC); no event may be newer."""
    dag_run_id: str | None = None
    extra_tags: dict[str, str] = field(default_factory=dict)

    @classmethod
    def create(
        cls,
        params: Mapping[str, Any] | None,
        ds: str,
        *,
        interval_end: str | datetime | None = None,
        dag_run_id: str | None = None,
        config_path: str | None = None,
    ) -> RunContext:
        """Validate parameters and date once; ``interval_end`` defaults to the end of day ``ds``."""
        config = load_config(config_path, overrides=params or {})
        apply_http_settings(config.registry)  # MLflow's retries and timeout: a down server fails in bounded time
        layout.check_ds(ds)
        if interval_end is None:
            end = datetime.combine(date.fromisoformat(ds) + timedelta(days=1), time(), tzinfo=UTC)
        elif isinstance(interval_end, str):
            end = datetime.fromisoformat(interval_end)
        else:
            end = interval_end
        end = end if end.tzinfo else end.replace(tzinfo=UTC)
        return cls(config, ds, end.astimezone(UTC), dag_run_id)

    @property
    def last_day(self) -> str:
        """The last UTC day the data interval covers (``YYYY-MM-DD``): the day before its end, since
        the end's own day has not happened yet. Airflow 3's ``@daily`` run of logical date D ends its
        interval at D 00:00, so it reads up to day D - 1; without an interval end it is ``ds``."""
        return (self.interval_end - timedelta(microseconds=1)).date().isoformat()

    @cached_property
    def store(self) -> ObjectStore:
        """The run's object store (bucket and prefix from config), made on first use and reused."""
        return ObjectStore.from_config(self.config.storage)

    @property
    def dataset(self) -> str:
        """The dataset name every key of the run is partitioned by."""
        return self.config.data.dataset

    def lineage_tags(self, **more: str) -> dict[str, str]:
        """MLflow run tags linking the Airflow run, logical date, inputs and code version."""
        tags = {"recsys.logical_date": self.ds, "recsys.dataset": self.dataset, "recsys.git_commit": git_commit()}
        if self.dag_run_id:
            tags["airflow.dag_run_id"] = self.dag_run_id
        tags.update(self.extra_tags)
        tags.update(more)
        return tags


def git_commit() -> str:
    """Commit of the running code: ``RECSYS_GIT_COMMIT`` if set (images), else ``git rev-parse``."""
    if environment(GIT_COMMIT_VAR):
        return environment(GIT_COMMIT_VAR) or "unknown"
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def flatten(config: PipelineConfig) -> dict[str, Any]:
    """``{"train.epochs": 20, ...}``: the typed config as MLflow params."""
    out: dict[str, Any] = {}
    for section, values in config.model_dump().items():
        for key, value in values.items():
            out[f"{section}.{key}"] = value
    return out
