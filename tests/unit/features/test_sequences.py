import pandas as pd

from recsys_lib import schema
from recsys_lib.features.sequences import build_sequences


def _events(rows: list[tuple[int, int, int]]) -> pd.DataFrame:
    users, items, seconds = zip(*rows, strict=True)
    return pd.DataFrame(
        {
            schema.USER_IDX: users,
            schema.ITEM_IDX: items,
            schema.TIMESTAMP: pd.to_datetime(list(seconds), unit="s", utc=True),
        }
    )


def test_sequences_are_chronological_deduplicated_and_truncated():
    events = _events([(0, 9, 50), (0, 1, 10), (0, 1, 20), (0, 2, 30), (0, 1, 40), (3, 7, 5), (3, 7, 6)])
    seqs = build_sequences(events, max_length=3)
    assert seqs[schema.USER_IDX].tolist() == [0, 3]
    assert [s.tolist() for s in seqs[schema.ITEM_IDX]] == [[2, 1, 9], [7]]
    full = build_sequences(events, max_length=50)
    assert full[schema.ITEM_IDX].iloc[0].tolist() == [1, 2, 1, 9]  # 1, 1 collapse; 1 later recurs
    assert full[schema.ITEM_IDX].iloc[0].dtype == "int64"


def test_equal_timestamps_keep_row_order():
    seqs = build_sequences(_events([(1, 5, 0), (1, 3, 0), (1, 4, 0)]), max_length=10)
    assert seqs[schema.ITEM_IDX].iloc[0].tolist() == [5, 3, 4]


def test_no_events_gives_an_empty_table():
    seqs = build_sequences(_events([(0, 0, 0)]).iloc[:0], max_length=5)
    assert list(seqs.columns) == [schema.USER_IDX, schema.ITEM_IDX]
    assert len(seqs) == 0
