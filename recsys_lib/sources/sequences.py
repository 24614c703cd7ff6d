"""Sequence text files: ``user item item ...`` per line, or ``user item`` pairs per line.

The formats of the public sequential-recommendation datasets (``Beauty.txt`` of S3-Rec, the
``user item`` files of SASRec). Both read the same way: a line's first token is the user, every
following token an item that user interacted with, and file order is chronological (within a
line, and from line to line). Tokens are separated by whitespace; blank lines are skipped.

The files carry order, not time. Event ``i`` of the file (counting across all lines) is given the
timestamp :data:`EPOCH` + ``i`` seconds, so each user's order is kept exactly: train these
datasets with ``features.split = "leave_one_out"``, which only needs that order. Every event is a
``purchase``; the catalogue is the item ids with no attributes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from recsys_lib import schema
from recsys_lib.errors import SourceError
from recsys_lib.sources.base import RawTables, conform_events, conform_items
from recsys_lib.sources.files import base_name
from recsys_lib.storage.objectstore import ObjectStore

if TYPE_CHECKING:
    from recsys_lib.config import DataConfig
    from recsys_lib.sources.landing import RawFiles

#: Timestamp of the first event of a sequence file; event i is EPOCH + i seconds.
EPOCH = pd.Timestamp("2000-01-01", tz="UTC")
SUFFIX = ".txt"


def parse_sequences(text: str, name: str = "<text>") -> pd.DataFrame:
    """Canonical events of one sequence file's ``text``, in file order.

    Raises SourceError naming ``name`` and the line when a line has a user but no item.
    """
    users: list[str] = []
    items: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        tokens = line.split()
        if not tokens:
            continue
        if len(tokens) < 2:
            raise SourceError(
                f"cannot read {name}: line {number} has a user ({tokens[0]!r}) but no item; "
                "expected 'user item item ...' or 'user item'"
            )
        users.extend([tokens[0]] * (len(tokens) - 1))
        items.extend(tokens[1:])
    seconds = np.arange(len(users), dtype=np.int64)
    return pd.DataFrame(
        {
            schema.USER_ID: pd.Series(users, dtype="str"),
            schema.ITEM_ID: pd.Series(items, dtype="str"),
            schema.EVENT_TYPE: schema.PURCHASE,
            schema.TIMESTAMP: EPOCH + pd.to_timedelta(seconds, unit="s"),
        }
    )


def sequence_tables(events: pd.DataFrame) -> RawTables:
    """Canonical events and an attribute-less catalogue of their items."""
    catalogue = pd.DataFrame({schema.ITEM_ID: events[schema.ITEM_ID].drop_duplicates()})
    return RawTables(events=conform_events(events), items=conform_items(catalogue), dropped={})


def read(store: ObjectStore, files: RawFiles, data: DataConfig) -> RawTables:
    """Read every ``*.txt`` file of ``files.events`` in key order (the order of their events)."""
    keys = files.events
    text_keys = [k for k in keys if k.lower().endswith(SUFFIX)]
    if not text_keys:
        raise SourceError(
            f"no sequence file among {[base_name(k) for k in keys]}: expected '*.txt' files with "
            "'user item item ...' or 'user item' lines directly under the raw prefix"
        )
    frames = []
    for key in text_keys:
        uri = store.uri(key)
        try:
            text = store.get_bytes(key).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SourceError(f"cannot read {uri}: sequence files must be UTF-8 text ({exc})") from exc
        frames.append(parse_sequences(text, uri))
    events = pd.concat(frames, ignore_index=True)
    offset = pd.to_timedelta(np.arange(len(events), dtype=np.int64), unit="s")  # one clock across files
    return sequence_tables(events.assign(**{schema.TIMESTAMP: EPOCH + offset}))
