"""User and item vectors of a served model, as export rows for an online re-ranker.

A re-ranker scores ``user_vector . item_vector`` for the candidates it is given; for the models
that have vectors this ranks like the batch export (MF-BPR adds a per-item bias that is not in the
vectors). User vectors are written by the export's shards next to each user's top-k, from the same
computation (:func:`recsys_lib.export.batch.user_tables`): a sequence model's user vector is its
reading of the history the export scored, so the re-ranker and the batch top-k agree.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa

from recsys_lib import schema
from recsys_lib.serving.bundle import ModelBundle


def embedding_table(
    id_column: str, ids: np.ndarray, vectors: np.ndarray, *, model_name: str, model_version: str
) -> pa.Table:
    """Rows of ``id_column`` (``ids``), ``embedding`` (a row of ``vectors`` (n, d) as a list of
    float32), model name and version; built as Arrow columns, no Python object per row."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n, dim = vectors.shape
    if n * dim >= 2**31:
        raise ValueError(f"{n} x {dim} values do not fit one Arrow list array; pass fewer rows per table")
    offsets = pa.array(np.arange(n + 1, dtype=np.int64) * dim, pa.int32())
    return pa.table(
        {
            id_column: pa.array(np.asarray(ids).astype(str), pa.string()),
            schema.EMBEDDING: pa.ListArray.from_arrays(offsets, pa.array(vectors.ravel())),
            schema.MODEL_NAME: pa.repeat(pa.scalar(model_name), n),
            schema.MODEL_VERSION: pa.repeat(pa.scalar(str(model_version)), n),
        }
    )


def item_embedding_tables(
    bundle: ModelBundle, *, model_name: str, model_version: str, chunk_size: int = 4096
) -> Iterator[pa.Table]:
    """Every item the model knows with its vector, ``chunk_size`` items per table; nothing for a
    model without vectors (popularity, item-kNN)."""
    vectors = bundle.model.item_vectors()  # (n_items, dim) or None
    if vectors is None:
        return
    for start in range(0, len(vectors), chunk_size):
        rows = slice(start, start + chunk_size)
        yield embedding_table(
            schema.ITEM_ID, bundle.item_ids[rows], vectors[rows], model_name=model_name, model_version=model_version
        )
