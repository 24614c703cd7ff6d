"""What every source adapter returns, and the conform step they all end with.

Adapters produce the canonical tables of DESIGN.md section 3 (each ends with
:func:`~recsys_lib.schema.conform_events` / ``conform_items``) plus an account of the rows their
explicit rules removed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from recsys_lib.schema import conform_events, conform_items
from recsys_lib.storage.objectstore import ObjectStore

__all__ = ["RawTables", "SourceReader", "conform_events", "conform_items"]


@dataclass(frozen=True)
class RawTables:
    """Canonical events and items read from one dataset's raw files.

    ``dropped`` maps each explicit source rule (``"cancelled_invoice"``, ...) to the number of raw
    rows it removed, in the order the rules were applied; it is empty for sources without rules.
    """

    events: pd.DataFrame
    items: pd.DataFrame
    dropped: dict[str, int] = field(default_factory=dict)


#: An adapter's reader: the store and the sorted raw keys of one dataset in, canonical tables out.
SourceReader = Callable[[ObjectStore, list[str]], RawTables]
