"""Export rows as Arrow tables, one chunk of users (or items) at a time.

Rows are built straight from the index arrays as Arrow columns: ids are taken from one Arrow
string array of all ids, so no Python string is made per row (at a hundred million rows that is
the difference between seconds and minutes).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pyarrow as pa

from recsys_lib import schema
from recsys_lib.export.embeddings import embedding_table
from recsys_lib.outcomes.arms import CHAMPION
from recsys_lib.serving.scorer import BundleScorer

USER_TOPK, USER_EMBEDDINGS = schema.ExportTable.USER_TOPK, schema.ExportTable.USER_EMBEDDINGS


def rows_table(
    id_column: str,
    ids: np.ndarray,
    target_column: str,
    targets: np.ndarray,
    scores: np.ndarray,
    target_ids: pa.Array,
    *,
    model_name: str,
    model_version: str,
    reasons: np.ndarray | None = None,
    with_reason: bool = False,
    kinds: np.ndarray | None = None,
    arm: str | None = None,
) -> pa.Table:
    """(n, k) index and score blocks to long rows: ``id_column`` (from ``ids``, one per row of the
    block), rank (1-based), ``target_column`` (``target_ids[targets]``), score, model name and
    version, ``reason_item_id`` (``target_ids[reasons]``, null where -1 or absent) and
    ``reason_kind`` (``kinds``, null where None or absent) when ``with_reason``, and ``arm`` on
    every row when given. Padding (-1) is dropped."""
    k = targets.shape[1]
    flat = targets.ravel()
    valid = np.flatnonzero(flat >= 0)
    owner = (valid // k).astype(np.int64)
    columns: dict[str, pa.Array] = {
        id_column: pa.array(np.asarray(ids).astype(str), pa.string()).take(pa.array(owner)),
        schema.RANK: pa.array((valid % k + 1).astype(np.int32)),
        target_column: target_ids.take(pa.array(flat[valid])),
        schema.SCORE: pa.array(scores.ravel()[valid].astype(np.float32)),
        schema.MODEL_NAME: pa.repeat(pa.scalar(model_name), len(valid)),
        schema.MODEL_VERSION: pa.repeat(pa.scalar(str(model_version)), len(valid)),
    }
    if with_reason:
        if reasons is None:
            columns[schema.REASON_ITEM_ID] = pa.nulls(len(valid), pa.string())
        else:
            picked = reasons.ravel()[valid]
            columns[schema.REASON_ITEM_ID] = target_ids.take(pa.array(picked, mask=picked < 0))
        why = kinds.ravel()[valid] if kinds is not None else np.full(len(valid), None, dtype=object)
        columns[schema.REASON_KIND] = pa.array(why, pa.string())
    if arm is not None:
        columns[schema.ARM] = pa.repeat(pa.scalar(arm), len(valid))
    return pa.table(columns)


def user_tables(
    scorer: BundleScorer,
    users: np.ndarray,
    k: int,
    *,
    model_name: str,
    model_version: str,
    chunk_size: int = 4096,
    embeddings: bool = False,
    user_id_map: Callable[[np.ndarray], np.ndarray] | None = None,
    progress: Callable[[int], None] | None = None,
    arm: str = CHAMPION,
) -> Iterator[dict[str, pa.Table]]:
    """Per chunk of ``chunk_size`` of ``users`` (scorer user rows): ``{"user_topk": rows}`` and,
    with ``embeddings`` and a model with vectors, ``"user_embeddings"``: the vectors of the chunk's
    known users, the same ones their top-k was scored with (computed once: for a sequence model
    that is a forward pass over every history).

    Known users are scored by the model, new ones get its popularity fallback; history and
    unavailable items never appear (see BundleScorer). ``user_id_map`` rewrites the exported user
    ids (pseudonymisation). ``progress(n)`` is called after each chunk with its user count. Every
    row names ``arm``, the experiment arm the scorer's model serves.
    """
    item_ids = pa.array(scorer.item_ids.astype(str), pa.string())
    for start in range(0, len(users), chunk_size):
        chunk = np.asarray(users[start : start + chunk_size], dtype=np.int64)
        vectors = scorer.user_vectors(chunk)
        items, scores = scorer.topk(chunk, k, user_vectors=vectors)
        reasons = scorer.reasons(chunk, items)
        kinds = scorer.reason_kinds(chunk, items, reasons)
        ids = scorer.user_ids[chunk].astype(str)
        ids = user_id_map(ids) if user_id_map is not None else ids
        out: dict[str, pa.Table] = {
            USER_TOPK: rows_table(
                schema.USER_ID,
                ids,
                schema.ITEM_ID,
                items,
                scores,
                item_ids,
                model_name=model_name,
                model_version=model_version,
                reasons=reasons,
                with_reason=True,
                kinds=kinds,
                arm=arm,
            )
        }
        if embeddings and vectors is not None:
            known = scorer.user_map[chunk] >= 0
            out[USER_EMBEDDINGS] = embedding_table(
                schema.USER_ID, ids[known], vectors, model_name=model_name, model_version=model_version
            )
        yield out
        if progress is not None:
            progress(len(chunk))


def similar_item_tables(
    scorer: BundleScorer, k: int, *, model_name: str, model_version: str, chunk_size: int = 4096
) -> Iterator[pa.Table]:
    """``similar_items`` rows for every item the model knows that is in the features' catalogue;
    nothing for a model without a notion of item similarity (popularity). Unavailable items are
    never proposed as neighbours."""
    model, bundle = scorer.model, scorer.bundle
    item_ids = pa.array(bundle.item_ids.astype(str), pa.string())
    for start in range(0, model.n_items, chunk_size):
        chunk = np.arange(start, min(start + chunk_size, model.n_items))
        found = model.similar_items(chunk, k, exclude_items=scorer.unavailable)
        if found is None:
            return
        items, scores = found
        yield rows_table(
            schema.ITEM_ID,
            bundle.item_ids[chunk],
            schema.SIMILAR_ITEM_ID,
            items,
            scores,
            item_ids,
            model_name=model_name,
            model_version=model_version,
        )
