"""Exact top-k by inner product over a whole catalogue, at close to matrix-multiply speed.

Scoring ``n`` users against ``m`` items is one matrix product; picking each row's top-k out of ``m``
scores costs a selection over every score, and on a CPU that selection (``torch.topk``) costs about
as much as the product itself. FAISS's flat index hides it by scanning tiles that stay in cache with
a heap per query. Here a search has three small parts behind one interface,
:class:`~recsys_lib.search.index.InnerProductIndex`:

- a **candidate scan** over the item table (:mod:`~recsys_lib.search.table`): the fused CPU kernel
  (:mod:`~recsys_lib.search.fused`, :mod:`~recsys_lib.search.kernel`) or the **tensor path**
  (:mod:`~recsys_lib.search.tensor`: GPUs, CPUs without the kernel), in fp32 or bf16;
- an **exactness proof** (:mod:`~recsys_lib.search.proof`) that turns candidates into the exact
  top-k: results equal a full sort by the reported score (best first, ties to the lower item index,
  padding -1 / -inf), whatever the scan and its precision;
- :mod:`~recsys_lib.search.topk`: the masked top-k of a block of scores, for models without vectors.

Nothing here knows about models or ids: the package depends on numpy, scipy and torch only.
"""

from recsys_lib.search.index import InnerProductIndex, SearchStats, default_device
from recsys_lib.search.topk import SCORE_CHUNK_BYTES, bounded_chunk, topk_excluding

__all__ = ["SCORE_CHUNK_BYTES", "InnerProductIndex", "SearchStats", "bounded_chunk", "default_device", "topk_excluding"]
