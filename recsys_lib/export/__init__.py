"""Batch top-k export: scoring (:mod:`batch`), the publish protocol (:mod:`publish`), the reader."""

from recsys_lib.export.reader import Embeddings, read_embeddings, read_manifest, read_recommendations

__all__ = ["Embeddings", "read_embeddings", "read_manifest", "read_recommendations"]
