"""The object-storage layout of DESIGN.md section 4: every key the platform uses is built here.

All keys are relative to the configured bucket prefix. Dataset names and dates are validated, so
no caller can build a key outside its table (``dataset=../x`` is refused).
"""

from __future__ import annotations

import re
from datetime import date

from recsys_lib.config import NAME_PATTERN
from recsys_lib.errors import ConfigError
from recsys_lib.schema import ExportTable

_NAME_RE = re.compile(NAME_PATTERN)
EXPORT_TABLES: tuple[ExportTable, ...] = tuple(ExportTable)


def check_dataset(dataset: str) -> str:
    """``dataset`` unchanged if it is a valid name (lowercase letters, digits, ``-``, ``_``; at most
    63), else ConfigError: what keeps a key from leaving its table (``dataset=../x``)."""
    if not _NAME_RE.match(dataset):
        raise ConfigError(f"invalid dataset name {dataset!r}: use lowercase letters, digits, '-' and '_'")
    return dataset


def check_ds(ds: str) -> str:
    """A logical date as ``YYYY-MM-DD``."""
    try:
        date.fromisoformat(ds)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid logical date {ds!r}: expected YYYY-MM-DD") from exc
    if len(ds) != 10:
        raise ConfigError(f"invalid logical date {ds!r}: expected YYYY-MM-DD")
    return ds


#: Per-run intermediate tables, one ``dt=`` partition per logical date (pruned by ``storage.retention_days``).
INTERMEDIATE_TABLES = ("ingested", "snapshots", "quarantine", "features", "models")


def _partition(table: str, dataset: str, ds: str) -> str:
    return f"{table}/dataset={check_dataset(dataset)}/dt={check_ds(ds)}/"


def table_root(table: str, dataset: str) -> str:
    """The folder holding one ``dt=`` partition per logical date of an intermediate table."""
    if table not in INTERMEDIATE_TABLES:
        raise ConfigError(f"unknown intermediate table {table!r}; allowed: {', '.join(INTERMEDIATE_TABLES)}")
    return f"{table}/dataset={check_dataset(dataset)}/"


def raw_prefix(dataset: str) -> str:
    """Where upstream systems drop raw files for ``dataset``."""
    return f"raw/{check_dataset(dataset)}/"


RAW_TABLES = ("events", "items")


def raw_table_prefix(dataset: str, table: str) -> str:
    """Where daily landings of one raw table go: ``raw/<dataset>/<table>/dt=YYYY-MM-DD/<files>``."""
    return raw_prefix(dataset) + f"{_check_snapshot_table(table)}/"


def raw_partition_prefix(dataset: str, table: str, day: str) -> str:
    """One day's landing of a raw table (``events`` or ``items``)."""
    return raw_table_prefix(dataset, table) + f"dt={check_ds(day)}/"


def _check_snapshot_table(table: str) -> str:
    if table not in ("events", "items"):
        raise ConfigError(f"unknown snapshot table {table!r}; allowed: events, items")
    return table


def ingested_key(dataset: str, ds: str, table: str) -> str:
    """Canonical table (``events`` or ``items``) as read from ``raw/``, before validation."""
    return _partition("ingested", dataset, ds) + f"{_check_snapshot_table(table)}.parquet"


def snapshot_key(dataset: str, ds: str, table: str) -> str:
    """Validated canonical table (``events`` or ``items``) for one logical date: the rows that
    passed validation; only the validate task writes it."""
    return _partition("snapshots", dataset, ds) + f"{_check_snapshot_table(table)}.parquet"


def quarantine_key(dataset: str, ds: str) -> str:
    """Rows the validate task rejected (row-level rules) for one logical date, as Parquet."""
    return _partition("quarantine", dataset, ds) + "rejected_events.parquet"


def validation_prefix(dataset: str, ds: str) -> str:
    """Everything one validation writes: ``report.json`` and the Data Docs site."""
    return _partition("validation", dataset, ds)


def validation_report_key(dataset: str, ds: str) -> str:
    """The validation report (JSON) of one logical date: success, row counts, each check's result."""
    return validation_prefix(dataset, ds) + "report.json"


def data_docs_prefix(dataset: str, ds: str) -> str:
    """Great Expectations Data Docs site (``index.html`` at its root) of one validation."""
    return validation_prefix(dataset, ds) + "data_docs/"


def validation_root(dataset: str) -> str:
    """The folder holding one ``dt=`` partition per validated logical date of ``dataset``."""
    return f"validation/dataset={check_dataset(dataset)}/"


def outcomes_report_key(dataset: str, ds: str) -> str:
    """The outcome report of the export published for ``ds`` (what shoppers did with it)."""
    return _partition("outcomes", dataset, ds) + "report.json"


def outcomes_root(dataset: str) -> str:
    """The folder holding one ``dt=`` partition per reported export date of ``dataset``."""
    return f"outcomes/dataset={check_dataset(dataset)}/"


def partition_dates(folders: list[str]) -> list[str]:
    """The logical dates of ``.../dt=YYYY-MM-DD/`` folder names (``ObjectStore.list_prefixes``), newest first."""
    found = {m.group(1) for f in folders if (m := re.search(r"dt=(\d{4}-\d{2}-\d{2})/$", f))}
    return sorted(found, reverse=True)


def features_prefix(dataset: str, ds: str) -> str:
    """The feature tables of one logical date (:meth:`FeatureSet.save` writes them here)."""
    return _partition("features", dataset, ds)


def model_prefix(dataset: str, ds: str, run_id: str) -> str:
    """Trained model bundle of one training run (before it is logged to the registry)."""
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", run_id):
        raise ConfigError(f"invalid run id {run_id!r}")
    return _partition("models", dataset, ds) + f"run={run_id}/"


def _check_table(table: str) -> str:
    if table not in EXPORT_TABLES:
        raise ConfigError(f"unknown export table {table!r}; allowed: {', '.join(EXPORT_TABLES)}")
    return table


def export_table_uri(bucket: str, prefix: str, table: str) -> str:
    """``s3://<bucket>/<prefix>/exports/<table>``: every dataset's partitions of one published table
    (the Airflow Asset the publish task updates)."""
    root = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
    return f"s3://{bucket}/{root}exports/{_check_table(table)}"


def export_prefix(table: str, dataset: str, ds: str) -> str:
    """Published partition: ``part-*.parquet``, ``_manifest.json``, ``_SUCCESS``."""
    return _partition(f"exports/{_check_table(table)}", dataset, ds)


def export_staging_root(table: str, dataset: str) -> str:
    """The folder holding one ``dt=`` folder of export attempts per logical date."""
    return f"exports/{_check_table(table)}/dataset={check_dataset(dataset)}/_staging/"


def export_staging_prefix(table: str, dataset: str, ds: str, attempt: str) -> str:
    """Scratch area for one export attempt; readers never look here (leading underscore)."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,128}", attempt):
        raise ConfigError(f"invalid export attempt id {attempt!r}")
    return export_staging_root(table, dataset) + f"dt={check_ds(ds)}/{attempt}/"


_STAGED_OBJECT = re.compile(
    r"exports/(?P<table>[^/]+)/dataset=(?P<dataset>[^/]+)/_staging/dt=(?P<dt>[^/]+)/(?P<attempt>[^/]+)/(?P<name>[^/]+)"
)


def parse_staged_object(key: str) -> dict[str, str] | None:
    """``{"table", "dataset", "dt", "attempt", "name"}`` of a key that :func:`export_staging_prefix`
    plus an object name built; None for any other key."""
    found = _STAGED_OBJECT.fullmatch(key)
    return None if found is None else found.groupdict()


def latest_pointer_key(table: str, dataset: str) -> str:
    """The pointer to the newest published partition, written last."""
    return f"exports/{_check_table(table)}/dataset={check_dataset(dataset)}/_latest.json"


#: The table whose ``_latest.json`` is the one pointer of the whole export set.
EXPORT_SET_TABLE = ExportTable.USER_TOPK


def export_set_pointer_key(dataset: str) -> str:
    """The one pointer of the export set: its date is "the latest" of every export table (the
    other tables have no pointer of their own), so readers never mix two exports' tables."""
    return latest_pointer_key(EXPORT_SET_TABLE, dataset)
