"""Batch top-k export: scoring (:mod:`batch`), the publish protocol (:mod:`publish`), the reader."""

from recsys_lib.export.reader import read_manifest, read_recommendations

__all__ = ["read_manifest", "read_recommendations"]
