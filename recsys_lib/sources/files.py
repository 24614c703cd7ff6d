"""Raw objects to frames: find the readable files under a raw prefix and decode Parquet or CSV bytes.

Decoding is pure (bytes in, frame out); every way a file can be unreadable (corrupt Parquet,
non-UTF-8 text, a truncated gzip stream, an empty file) becomes a SourceError naming the object.
"""

from __future__ import annotations

import io
import posixpath
import zlib
from collections.abc import Callable, Collection

import pandas as pd
import pyarrow as pa

from recsys_lib.errors import SourceError
from recsys_lib.storage.objectstore import ObjectStore, parquet_to_frame

#: File name endings a raw file may have, longest first so ``.csv.gz`` wins over ``.gz``.
TABLE_SUFFIXES: tuple[str, ...] = (".csv.gz", ".parquet", ".csv")
#: ... and of the sequence text files (:mod:`recsys_lib.sources.sequences`).
SUPPORTED_SUFFIXES: tuple[str, ...] = (*TABLE_SUFFIXES, ".txt")

_UNREADABLE = (ValueError, OSError, EOFError, zlib.error, pa.ArrowException)


def file_suffix(key: str) -> str | None:
    """The supported suffix of ``key`` (``".parquet"``, ``".csv"``, ``".csv.gz"``), else None."""
    lowered = key.lower()
    return next((s for s in SUPPORTED_SUFFIXES if lowered.endswith(s)), None)


def list_raw_files(store: ObjectStore, prefix: str) -> list[str]:
    """Store-relative keys of the readable raw files directly under ``prefix``, sorted by key.

    Objects in sub-folders, hidden names (``_SUCCESS``, ``.keep``) and other suffixes are ignored.
    """
    keys = []
    for info in store.list_objects(prefix):
        name = info.key[len(prefix) :]
        if "/" in name or name.startswith(("_", ".")) or file_suffix(name) is None:
            continue
        keys.append(info.key)
    return keys


def decode_frame(name: str, data: bytes, *, str_columns: Collection[str] = ()) -> pd.DataFrame:
    """Decode one raw file's bytes; ``name`` (its key or URI) picks the format and labels errors.

    CSV must be UTF-8 with a header row; only empty fields are missing values (so a literal
    ``NA`` stays a string), and ``str_columns`` are read as strings (``"00042"`` keeps its zeros).
    """
    suffix = file_suffix(name)
    if suffix == ".txt":
        raise SourceError(f"cannot read {name} as a table: text files are sequence files (data.source 'sequences')")
    if suffix is None:
        raise SourceError(f"cannot read {name}: unsupported file type; use one of {', '.join(SUPPORTED_SUFFIXES)}")
    try:
        if suffix == ".parquet":
            return parquet_to_frame(data)
        frame = pd.read_csv(
            io.BytesIO(data),
            compression="gzip" if suffix == ".csv.gz" else None,
            dtype=dict.fromkeys(str_columns, "str"),
            keep_default_na=False,
            na_values=[""],
            encoding="utf-8",
        )
    except UnicodeDecodeError as exc:
        raise SourceError(
            f"readable_file: cannot read {name}: CSV files must be UTF-8 encoded; re-save it as UTF-8 ({exc})"
        ) from exc
    except _UNREADABLE as exc:
        kind = {".parquet": "Parquet", ".csv": "CSV", ".csv.gz": "gzip-compressed CSV"}[suffix]
        raise SourceError(
            f"readable_file: cannot read {name}: not a valid {kind} file ({type(exc).__name__}: {exc})"
        ) from exc
    if len(frame.columns) == 1 and any(sep in str(frame.columns[0]) for sep in ";\t|"):
        raise SourceError(
            f"readable_file: cannot read {name}: its header {str(frame.columns[0])[:80]!r} is one column; "
            "CSV files must be comma-separated"
        )
    return frame


def read_frames(
    store: ObjectStore,
    keys: list[str],
    *,
    str_columns: Collection[str] = (),
    prepare: Callable[[pd.DataFrame, str], pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """Fetch and decode ``keys`` and concatenate them in the given order (index reset).

    ``prepare(frame, uri)`` runs on each file before concatenation, so per-file parsing (for
    example CSV timestamp strings next to Parquet timestamps) happens before the types meet.
    """
    frames = []
    for key in keys:
        uri = store.uri(key)
        frame = decode_frame(uri, store.get_bytes(key), str_columns=str_columns)
        frames.append(prepare(frame, uri) if prepare is not None else frame)
    if len(frames) == 1:
        return frames[0]
    return pd.concat(frames, ignore_index=True)


def base_name(key: str) -> str:
    """The last path segment of a key: ``raw/shop/events-01.csv`` -> ``events-01.csv``."""
    return posixpath.basename(key)
