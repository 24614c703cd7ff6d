"""What every source adapter returns, and the conform step they all end with.

Adapters produce the canonical tables of DESIGN.md section 3 (each ends with :func:`conform_events`
/ :func:`conform_items`: the schema's casts after :func:`string_ids`) plus an account of the rows
their explicit rules removed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd

from recsys_lib import schema
from recsys_lib.storage.objectstore import ObjectStore

if TYPE_CHECKING:
    from recsys_lib.config import DataConfig
    from recsys_lib.sources.landing import RawFiles

__all__ = ["RawTables", "SourceReader", "conform_events", "conform_items", "string_ids"]

_ID_COLUMNS = (schema.USER_ID, schema.ITEM_ID, schema.SESSION_ID)
_FLOAT_INTEGER_RE = re.compile(r"-?\d+\.0")


def string_ids(series: pd.Series) -> pd.Series:
    """Ids as the shop wrote them: a float column of whole numbers (``296.0``, what a CSV or
    Parquet export of a nullable integer column holds) and a text column whose every value looks
    like one (``"296.0"``) both become ``"296"``; anything else is left as it is."""
    if pd.api.types.is_float_dtype(series):
        values = series.dropna()
        if (values == values.round()).all():
            return series.astype("Int64").astype("str")
        return series
    if pd.api.types.is_integer_dtype(series) or pd.api.types.is_bool_dtype(series):
        return series
    text = series.dropna().astype("str")
    if len(text) and text.str.fullmatch(_FLOAT_INTEGER_RE).all():
        return series.astype("str").str.removesuffix(".0")
    return series


def _with_string_ids(frame: pd.DataFrame) -> pd.DataFrame:
    present = {c: string_ids(frame[c]) for c in _ID_COLUMNS if c in frame.columns}
    return frame.assign(**present) if present else frame


def conform_events(frame: pd.DataFrame) -> pd.DataFrame:
    """:func:`~recsys_lib.schema.conform_events` after :func:`string_ids` on the id columns."""
    return schema.conform_events(_with_string_ids(frame))


def conform_items(frame: pd.DataFrame) -> pd.DataFrame:
    """:func:`~recsys_lib.schema.conform_items` after :func:`string_ids` on ``item_id``."""
    return schema.conform_items(_with_string_ids(frame))


@dataclass(frozen=True)
class RawTables:
    """Canonical events and items read from one dataset's raw files.

    ``dropped`` maps each explicit source rule (``"cancelled_invoice"``, ...) to the number of raw
    rows it removed, in the order the rules were applied; it is empty for sources without rules.
    """

    events: pd.DataFrame
    items: pd.DataFrame
    dropped: dict[str, int] = field(default_factory=dict)
    files: RawFiles | None = None
    """The raw files read (set by :func:`~recsys_lib.sources.read_source`)."""


#: An adapter's reader: the store, the raw files of one run (:class:`~recsys_lib.sources.landing.RawFiles`)
#: and the data settings (dataset, mapping, event types) in, canonical tables out.
SourceReader = Callable[[ObjectStore, "RawFiles", "DataConfig"], RawTables]
