"""Object storage: one S3 bucket and prefix behind :class:`ObjectStore`, keys built by :mod:`layout`."""

from recsys_lib.storage import layout
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
