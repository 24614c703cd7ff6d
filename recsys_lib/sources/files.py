"""Raw objects to frames: find the readable files under a raw prefix and decode Parquet, CSV
(plain or gzip) and Excel (``.xlsx``) bytes, reading only the columns asked for.

Decoding is pure (bytes in, frame out); every way a file can be unreadable (corrupt Parquet or
workbook, text in another encoding, a truncated gzip stream, an empty file) becomes a SourceError
naming the object.
"""

from __future__ import annotations

import io
import posixpath
import zipfile
import zlib
from collections.abc import Callable, Collection
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from recsys_lib.errors import SourceError
from recsys_lib.storage.objectstore import ObjectStore, parquet_to_frame

#: File name endings a raw file may have, longest first so ``.csv.gz`` wins over ``.gz``.
TABLE_SUFFIXES: tuple[str, ...] = (".csv.gz", ".parquet", ".csv", ".xlsx")
#: ... and of the sequence text files (:mod:`recsys_lib.sources.sequences`).
SUPPORTED_SUFFIXES: tuple[str, ...] = (*TABLE_SUFFIXES, ".txt")

_UNREADABLE = (ValueError, OSError, EOFError, KeyError, zlib.error, zipfile.BadZipFile, pa.ArrowException)
_KINDS = {".parquet": "Parquet", ".csv": "CSV", ".csv.gz": "gzip-compressed CSV", ".xlsx": "Excel (.xlsx)"}


@dataclass(frozen=True)
class CsvDialect:
    """How CSV text is written: field separator and encoding (a UTF-8 byte-order mark is skipped)."""

    delimiter: str = ","
    encoding: str = "utf-8"


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


def decode_frame(
    name: str,
    data: bytes,
    *,
    str_columns: Collection[str] = (),
    columns: Collection[str] | None = None,
    dialect: CsvDialect = CsvDialect(),
) -> pd.DataFrame:
    """Decode one raw file's bytes; ``name`` (its key or URI) picks the format and labels errors.

    ``columns``: read only these (those the file lacks are simply absent); None reads all. CSV
    must have a header row; only empty fields are missing values (so a literal ``NA`` stays a
    string), and ``str_columns`` are read as strings (``"00042"`` keeps its zeros) in CSV and Excel.
    """
    suffix = file_suffix(name)
    if suffix == ".txt":
        raise SourceError(f"cannot read {name} as a table: text files are sequence files (data.source 'sequences')")
    if suffix is None:
        raise SourceError(f"cannot read {name}: unsupported file type; use one of {', '.join(SUPPORTED_SUFFIXES)}")
    wanted = None if columns is None else set(columns)
    str_dtypes = dict.fromkeys(str_columns, "str")
    try:
        if suffix == ".parquet":
            return _decode_parquet(data, wanted)
        if suffix == ".xlsx":
            return pd.read_excel(
                io.BytesIO(data), dtype=str_dtypes, usecols=None if wanted is None else wanted.__contains__
            )
        frame = _decode_csv(name, data, suffix, str_dtypes, wanted, dialect)
    except UnicodeDecodeError as exc:
        raise SourceError(
            f"readable_file: cannot read {name}: CSV files must be {_encoding_name(dialect)} encoded; re-save it "
            f"as such or set the dataset's encoding (data.mappings.<dataset>.encoding) ({exc})"
        ) from exc
    except _UNREADABLE as exc:
        raise SourceError(
            f"readable_file: cannot read {name}: not a valid {_KINDS[suffix]} file ({type(exc).__name__}: {exc})"
        ) from exc
    return frame


def _encoding_name(dialect: CsvDialect) -> str:
    utf8 = dialect.encoding.replace("_", "-").lower() in ("utf-8", "utf8")
    return "UTF-8" if utf8 else dialect.encoding


def _decode_csv(
    name: str, data: bytes, suffix: str, dtypes: dict[str, str], wanted: set[str] | None, dialect: CsvDialect
) -> pd.DataFrame:
    options = {
        "compression": "gzip" if suffix == ".csv.gz" else None,
        "sep": dialect.delimiter,
        "encoding": "utf-8-sig" if _encoding_name(dialect) == "UTF-8" else dialect.encoding,  # -sig: a BOM is skipped
    }
    header = pd.read_csv(io.BytesIO(data), nrows=0, **options).columns
    if len(header) == 1 and any(sep in str(header[0]) for sep in ";\t|," if sep != dialect.delimiter):
        raise SourceError(
            f"readable_file: cannot read {name}: its header {str(header[0])[:80]!r} is one column; the CSV "
            f"separator is {dialect.delimiter!r} (set data.mappings.<dataset>.delimiter for another)"
        )
    return pd.read_csv(
        io.BytesIO(data),
        dtype=dtypes,
        usecols=None if wanted is None else [c for c in header if c in wanted],
        keep_default_na=False,
        na_values=[""],
        **options,
    )


def _decode_parquet(data: bytes, wanted: set[str] | None) -> pd.DataFrame:
    """Parquet bytes to a frame, decoding only the ``wanted`` columns' chunks."""
    if wanted is None:
        return parquet_to_frame(data)
    source = pa.BufferReader(data)
    present = [c for c in pq.read_schema(source).names if c in wanted]
    return pq.read_table(source, columns=present).to_pandas()


def read_frames(
    store: ObjectStore,
    keys: list[str],
    *,
    str_columns: Collection[str] = (),
    columns: Collection[str] | None = None,
    dialect: CsvDialect = CsvDialect(),
    prepare: Callable[[pd.DataFrame, str], pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """Fetch and decode ``keys`` (see :func:`decode_frame`) and concatenate them in the given order
    (index reset).

    ``prepare(frame, uri)`` runs on each file before concatenation, so per-file parsing (for
    example CSV timestamp strings next to Parquet timestamps) happens before the types meet.
    """
    frames = []
    for key in keys:
        uri = store.uri(key)
        frame = decode_frame(uri, store.get_bytes(key), str_columns=str_columns, columns=columns, dialect=dialect)
        frames.append(prepare(frame, uri) if prepare is not None else frame)
    if len(frames) == 1:
        return frames[0]
    return pd.concat(frames, ignore_index=True)


def base_name(key: str) -> str:
    """The last path segment of a key: ``raw/shop/events-01.csv`` -> ``events-01.csv``."""
    return posixpath.basename(key)
