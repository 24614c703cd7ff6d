"""A shop's own column names, event names and timestamp format, mapped onto the canonical schema.

Pure functions over one decoded file at a time, driven by :class:`~recsys_lib.config.SourceMapping`
(``data.mappings.<dataset>``). A mapping that does not fit the data stops the ingest with a
SourceError naming the rule (``mapping_column``, ``mapping_value``, ``timestamp_format``), the file,
the column, an example value and the mapping key to change.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys_lib import schema
from recsys_lib.config import SourceMapping
from recsys_lib.errors import SourceError


def shop_columns(mapping: SourceMapping, table: str = "events") -> dict[str, str]:
    """``{shop column: canonical column}`` of every canonical column of ``table`` (events or items);
    a column the mapping does not name is read under its canonical name."""
    dtypes, named = (
        (schema.EVENTS_DTYPES, mapping.columns) if table == "events" else (schema.ITEMS_DTYPES, mapping.item_columns)
    )
    return {named.get(c, c): c for c in dtypes}


def rename(frame: pd.DataFrame, mapping: SourceMapping, name: str, dataset: str, table: str = "events") -> pd.DataFrame:
    """The file's columns under canonical names. A column the mapping names explicitly but the
    file lacks raises SourceError (``mapping_column``); other missing columns are left to the
    schema and validation (optional columns become nulls, a missing required one is reported)."""
    named = mapping.columns if table == "events" else mapping.item_columns
    key = "columns" if table == "events" else "item_columns"
    missing = {c: shop for c, shop in named.items() if shop not in frame.columns}
    if missing:
        canonical, shop = next(iter(missing.items()))
        raise SourceError(
            f"mapping_column: {name} has no column {shop!r}, which data.mappings.{dataset}.{key}.{canonical} "
            f"maps to {canonical!r}; its columns are {list(frame.columns)[:20]}"
        )
    return frame.rename(columns={shop: c for shop, c in shop_columns(mapping, table).items() if shop != c})


def map_event_types(
    frame: pd.DataFrame, mapping: SourceMapping, accepted: tuple[str, ...], name: str, dataset: str
) -> pd.DataFrame:
    """Shop event names -> canonical event types by ``mapping.event_types``; values already canonical
    pass unchanged. Without a configured mapping the column is left to validation (an unknown type
    is quarantined there). Raises SourceError (``mapping_value``) naming the value otherwise."""
    if not mapping.event_types or schema.EVENT_TYPE not in frame.columns:
        return frame
    values = frame[schema.EVENT_TYPE]
    known = set(mapping.event_types) | set(accepted)
    present = values.dropna().unique()
    unknown = [v for v in present if v not in known]
    if unknown:
        column = mapping.columns.get(schema.EVENT_TYPE, schema.EVENT_TYPE)
        raise SourceError(
            f"mapping_value: {name} column {column!r} holds {unknown[0]!r} (of {len(unknown)} unmapped values, "
            f"e.g. {unknown[:5]}), which data.mappings.{dataset}.event_types does not map; map it to one of "
            f"{list(accepted)}"
        )
    mapped = values.map(lambda v: mapping.event_types.get(v, v), na_action="ignore")
    return frame.assign(**{schema.EVENT_TYPE: mapped.astype("str")})


def parse_timestamps(frame: pd.DataFrame, mapping: SourceMapping, name: str, dataset: str) -> pd.DataFrame:
    """``frame`` with its ``timestamp`` column as UTC datetimes, read as ``mapping.timestamp`` says;
    values without an offset are in ``mapping.timezone``.

    Raises SourceError naming the file and example values when a value does not parse
    (``column_type``, ``timestamp_format``), or when one ISO file mixes values with and without a
    UTC offset (``mixed_time_zones``: which clock the naive ones use cannot be known)."""
    if schema.TIMESTAMP not in frame.columns:
        return frame
    column = frame[schema.TIMESTAMP]
    fmt = mapping.timestamp
    key = f"data.mappings.{dataset}.timestamp"
    if pd.api.types.is_datetime64_any_dtype(column):
        parsed = column
    elif fmt in ("epoch_s", "epoch_ms"):
        numbers = pd.to_numeric(column, errors="coerce")
        _refuse_unparsed(column, numbers, name, f"numbers of {fmt[6:]} since 1970 ({key} is {fmt!r})")
        return frame.assign(**{schema.TIMESTAMP: pd.to_datetime(numbers, unit=fmt[6:], utc=True)})
    elif pd.api.types.is_numeric_dtype(column):
        raise SourceError(
            f"column_type: {name} column 'timestamp' holds numbers (e.g. {column.dropna().head(3).tolist()}); "
            f"set {key} to 'epoch_s' or 'epoch_ms', or write ISO 8601 timestamps"
        )
    else:
        text = column.astype("str").where(column.notna())
        if fmt == "iso":
            parsed = pd.to_datetime(text, utc=True, format="ISO8601", errors="coerce")
            _refuse_unparsed(text, parsed, name, f"ISO 8601 timestamps ({key} is 'iso')")
            if _with_offsets(text, name):
                return frame.assign(**{schema.TIMESTAMP: parsed})
            parsed = parsed.dt.tz_localize(None)
        else:
            options = {"dayfirst": True} if fmt == "day_first" else {"format": fmt}
            parsed = pd.to_datetime(text, errors="coerce", **options)
            _refuse_unparsed(text, parsed, name, f"timestamps like {fmt!r} ({key})", rule="timestamp_format")
    return frame.assign(**{schema.TIMESTAMP: _to_utc(parsed, mapping.timezone)})


def _to_utc(parsed: pd.Series, timezone: str) -> pd.Series:
    if parsed.dt.tz is not None:
        return parsed.dt.tz_convert("UTC")
    if timezone == "UTC":
        return parsed.dt.tz_localize("UTC")
    standard_time = np.zeros(len(parsed), dtype=bool)  # the repeated autumn hour is read as standard time
    return parsed.dt.tz_localize(timezone, ambiguous=standard_time, nonexistent="shift_forward").dt.tz_convert("UTC")


def _refuse_unparsed(raw: pd.Series, parsed: pd.Series, name: str, expected: str, rule: str = "column_type") -> None:
    bad = raw.notna() & parsed.isna()
    if bad.any():
        raise SourceError(
            f"{rule}: {name} column 'timestamp' must hold {expected}; cannot parse e.g. "
            f"{raw[bad].astype('str').unique()[:5].tolist()}"
        )


def _with_offsets(text: pd.Series, name: str) -> bool:
    """Whether the ISO values carry UTC offsets; SourceError when some do and some do not."""
    offset = text.str.contains(r"(?:Z|[+-]\d{2}:?\d{2})$", regex=True, na=False)
    naive = text.notna() & ~offset
    if offset.any() and naive.any():
        raise SourceError(
            f"mixed_time_zones: {name} column 'timestamp' mixes values with a UTC offset "
            f"(e.g. {text[offset].head(2).tolist()}) and values without one (e.g. {text[naive].head(2).tolist()}); "
            "give every timestamp an offset, or none (read in data.mappings.<dataset>.timezone, default UTC)"
        )
    return bool(offset.any())
