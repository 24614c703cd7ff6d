"""Object storage: one S3 bucket and prefix behind :class:`ObjectStore`, keys built by :mod:`layout`.

:mod:`layout` is light (no pandas, pyarrow or boto3), so a DAG file can build keys and URIs at
parse time; the store and its Parquet helpers load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from recsys_lib.storage import layout

if TYPE_CHECKING:
    from recsys_lib.storage.objectstore import (
        ObjectInfo,
        ObjectStore,
        frame_to_parquet,
        parquet_to_frame,
        parse_s3_uri,
        table_to_parquet,
    )

__all__ = [
    "ObjectInfo",
    "ObjectStore",
    "frame_to_parquet",
    "layout",
    "parquet_to_frame",
    "parse_s3_uri",
    "table_to_parquet",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from recsys_lib.storage import objectstore

        return getattr(objectstore, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
