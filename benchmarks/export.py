"""Batch export benchmark, like for like: our export against FAISS doing the same job, and against
the fp32 and bf16 compute bounds measured in the same run.

    .venv/bin/python benchmarks/export.py                          # both sizes, k = 10 and 100, 3 trials
    .venv/bin/python benchmarks/export.py --sizes 100000x20000 --trials 1 --no-write

Synthetic user and item vectors (d = 64, seeded normal), 20 history items per user, k = 10 (the
export's default) and k = 100. Both sides get the same job, end to end, each in a fresh child
process on the same pinned threads (``torch.set_num_threads``, ``faiss.omp_set_num_threads``):

(b) FAISS: ``IndexFlatIP`` searching k + 20 for each batch of users and dropping each user's history
    items from the result (what implicit's FAISS wrapper does; here vectorised), then the same
    Arrow rows and Parquet parts staged on a local S3 endpoint (moto over HTTP, its own process)
    through the same ``stage_parts`` the DAG's shards use;
(c) ours: ``InnerProductIndex`` with the history masked, then the same rows and parts.

(a) Bounds: 2 x users x items x d FLOPs at the square matrix-multiply rates measured in each trial
on the pinned threads, fp32 (torch or numpy, the faster) and bf16 (torch). Our scan multiplies in
bf16 where that is faster (AVX512-BF16, AMX) under an exactness proof, so it can pass the fp32 bound.

Trials are interleaved: each trial runs every cell, both sides, alternating which side goes first;
a cell's figure is the median of its trials, printed with [min-max]. Also per cell: the share of
users whose bf16 scan the proof could not certify (scored again in full), and, when
../shared/datasets has Amazon Beauty, the same share on vectors of the default model trained there
(skewed norms). Prints a table, writes the ``export`` section of benchmarks/RESULTS.md unless
``--no-write``, and ends with one line naming the worst cell first:

    RESULT export_vs_faiss_min=<x> export_vs_faiss_k10_1m=<y> export_vs_bound_fp32=<z> peak_rss_mb=<m>

(``k10_1m``: the largest size at k = 10; ``export_vs_bound_fp32`` in that cell; ``peak_rss_mb``:
the largest of our export's children).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from queue import Empty
from typing import Any

import numpy as np
from machine import cpu_name, replace_section

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
BEAUTY = ROOT.parent / "shared" / "datasets" / "amazon_beauty_s3rec_5core" / "Beauty.txt"
BUCKET = "bench"
FAISS_BATCH = 16_384  # FAISS's own best batch here (its BLAS path blocks 4,096 queries at a time)
ROWS_PER_FILE = 1_000_000


def vectors(n: int, dim: int, seed: int) -> np.ndarray:
    """(n, dim) float32 standard normal, generated in blocks so peak memory stays near the result."""
    out = np.empty((n, dim), dtype=np.float32)
    rng = np.random.default_rng(seed)
    for start in range(0, n, 1 << 18):
        end = min(n, start + (1 << 18))
        out[start:end] = rng.standard_normal((end - start, dim), dtype=np.float32)
    return out


def history(n_users: int, n_items: int, per_user: int, seed: int) -> Any:
    """(n_users, n_items) CSR with ``per_user`` distinct-ish random items per user."""
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    cols = rng.integers(0, n_items, size=n_users * per_user, dtype=np.int32)
    indptr = np.arange(0, n_users * per_user + 1, per_user, dtype=np.int64)
    return sp.csr_matrix((np.ones(len(cols), np.float32), cols, indptr), shape=(n_users, n_items))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def pin(threads: int) -> None:
    """The same threads for every library that may run a pool in this process."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    threadpool_limits(threads)


def pools() -> str:
    """The thread pools this process has loaded (BLAS and OpenMP vendors, versions, threads)."""
    from threadpoolctl import threadpool_info

    seen = sorted(
        {
            f"{p['internal_api']} {p.get('version') or ''} x{p['num_threads']}".replace("  ", " ")
            for p in threadpool_info()
        }
    )
    return ", ".join(seen) or "none visible"


# --- (a) the compute bounds -------------------------------------------------------------------------
def matmul_rates(threads: int, n: int = 4096, repeats: int = 3) -> dict[str, float]:
    """GFLOP/s of a square product: fp32 through numpy and torch, bf16 through torch."""
    import torch

    pin(threads)
    a, b = np.random.default_rng(0).standard_normal((2, n, n), dtype=np.float32)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    ha, hb = ta.bfloat16(), tb.bfloat16()
    rates = {}
    for name, mm in (("numpy", lambda: a @ b), ("torch", lambda: ta @ tb), ("bf16", lambda: ha @ hb)):
        mm()  # warm up (thread pools, page faults)
        start = time.perf_counter()
        for _ in range(repeats):
            mm()
        rates[name] = 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9
    return rates


def run_rates(threads: int, out: Any) -> None:
    out.put(matmul_rates(threads))


# --- the shared sink: the export's rows and Parquet parts ------------------------------------------
def staged(
    n_users: int, n_items: int, k: int, env: dict[str, str], side: str, top_k: Callable[..., Iterator[Any]]
) -> dict[str, Any]:
    """Stage ``top_k``'s (lo, hi, items, scores) blocks as ``user_topk`` rows on the S3 endpoint,
    timing the whole and the search alone (``top_k`` adds its seconds to ``timings["search"]``)."""
    os.environ.update(env)
    import pyarrow as pa

    from recsys_lib import schema
    from recsys_lib.export.batch import rows_table
    from recsys_lib.export.publish import stage_parts
    from recsys_lib.storage import ObjectStore

    user_ids = np.array([f"u{u:08d}" for u in range(n_users)], dtype=object)
    item_ids = pa.array([f"i{i:07d}" for i in range(n_items)], pa.string())
    store = ObjectStore(BUCKET, f"export-bench/{side}/{n_users}x{n_items}k{k}")
    timings = {"search": 0.0}

    def tables() -> Iterator[Any]:
        for lo, hi, top, scores in top_k(timings):
            yield rows_table(
                schema.USER_ID,
                user_ids[lo:hi],
                schema.ITEM_ID,
                top,
                scores,
                item_ids,
                model_name="bench",
                model_version="1",
                with_reason=True,
                arm="champion",
            )

    start = time.perf_counter()
    parts = stage_parts(store, "user_topk", "bench", "2026-01-01", "run", tables(), ROWS_PER_FILE)
    seconds = time.perf_counter() - start
    return {
        "users_per_s": n_users / seconds,
        "search_users_per_s": n_users / timings["search"],
        "rows": sum(p.rows for p in parts),
        "bytes": sum(p.size for p in parts),
        "parts": len(parts),
        "peak_rss_mb": peak_rss_mb(),
        "pools": pools(),
    }


# --- (b) FAISS, the same job ---------------------------------------------------------------------------
def drop_history(found: np.ndarray, scores: np.ndarray, seen: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``k`` of each row of ``found`` (best first) that are not in the row's history
    (``seen``, CSR), padded -1 / -inf: what a FAISS search of k + h needs after it."""
    n = len(found)
    lengths = np.diff(seen.indptr)
    width = int(lengths.max()) if n else 0
    hist = np.full((n, max(width, 1)), -2, dtype=np.int64)  # -2 matches no item, nor FAISS's -1
    rows = np.repeat(np.arange(n), lengths)
    hist[rows, np.arange(len(seen.indices)) - np.repeat(seen.indptr[:-1], lengths)] = seen.indices
    masked = (found[:, :, None] == hist[:, None, :]).any(axis=2) | (found < 0)
    order = np.argsort(masked, axis=1, kind="stable")[:, :k]  # kept first, in FAISS's order
    top, val = np.take_along_axis(found, order, 1), np.take_along_axis(scores, order, 1)
    gone = np.take_along_axis(masked, order, 1)
    top[gone], val[gone] = -1, -np.inf
    return top, val


def run_faiss(n_users: int, n_items: int, dim: int, k: int, per_user: int, threads: int, env: dict, out: Any) -> None:
    import faiss

    pin(threads)
    faiss.omp_set_num_threads(threads)
    users, items = vectors(n_users, dim, 1), vectors(n_items, dim, 2)
    seen = history(n_users, n_items, per_user, 3)
    index = faiss.IndexFlatIP(dim)
    index.add(items)

    def top_k(timings: dict[str, float]) -> Iterator[Any]:
        for lo in range(0, n_users, FAISS_BATCH):
            hi = min(n_users, lo + FAISS_BATCH)
            t0 = time.perf_counter()
            scores, found = index.search(users[lo:hi], k + per_user)
            top, val = drop_history(found, scores, seen[lo:hi], k)
            timings["search"] += time.perf_counter() - t0
            yield lo, hi, top, val

    result = staged(n_users, n_items, k, env, "faiss", top_k)
    out.put({**result, "faiss": faiss.__version__, "options": faiss.get_compile_options()})


# --- (c) our export -----------------------------------------------------------------------------------
def run_export(
    n_users: int, n_items: int, dim: int, k: int, per_user: int, chunk: int, threads: int, env: dict, out: Any
) -> None:
    pin(threads)
    from recsys_lib.search.index import InnerProductIndex

    users, items = vectors(n_users, dim, 1), vectors(n_items, dim, 2)
    seen = history(n_users, n_items, per_user, 3)
    index = InnerProductIndex(items, device="cpu")  # FAISS's flat index runs on the CPU too

    def top_k(timings: dict[str, float]) -> Iterator[Any]:
        for lo in range(0, n_users, chunk):
            hi = min(n_users, lo + chunk)
            t0 = time.perf_counter()
            top, scores = index.search(users[lo:hi], k, seen[lo:hi])
            timings["search"] += time.perf_counter() - t0
            yield lo, hi, top, scores

    result = staged(n_users, n_items, k, env, "ours", top_k)
    stats = index.stats
    out.put(
        {
            **result,
            "path": index.path(k),
            "bf16_rows": stats.rows["bf16"],
            "bf16_rescored_share": stats.rescored_share("bf16"),
            "rescored_share": stats.rescored_share(),
        }
    )


def in_child(target: Any, *args: Any) -> dict[str, Any]:
    """Run ``target(*args, queue)`` in a fresh process; return what it put on the queue."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, queue))
    proc.start()
    while True:
        try:
            result = queue.get(timeout=5)
            break
        except Empty:
            if not proc.is_alive():
                raise SystemExit(f"{target.__name__} died (exit status {proc.exitcode}) before reporting") from None
    proc.join()
    return result


# --- trained vectors: the proof on skewed norms ---------------------------------------------------
def beauty_rescored(ks: list[int], threads: int, path: Path, out: Any) -> None:
    """The default model fitted on Beauty (train split); the share of its users whose bf16 scan
    the proof leaves open, at each k, with history (train + validation) masked."""
    pin(threads)
    from recsys_lib.config import FeaturesConfig, ModelConfig, TrainConfig
    from recsys_lib.features import build_features
    from recsys_lib.models import create_model
    from recsys_lib.search.index import InnerProductIndex
    from recsys_lib.sources.sequences import parse_sequences, sequence_tables

    tables = sequence_tables(parse_sequences(path.read_text(), "Beauty.txt"))
    features = build_features(tables.events, tables.items, FeaturesConfig(split="leave_one_out"))
    model_config = ModelConfig()
    model = create_model(model_config, features.n_users, features.n_items)
    model.fit(features, TrainConfig(seed=42))
    items = model.item_vectors()
    users = model.user_vectors(np.arange(features.n_users), features.history("train", "validation"))
    seen = features.matrix("train", "validation")
    norms = np.linalg.norm(items, axis=1)
    shares = {}
    for k in ks:
        index = InnerProductIndex(items, device="cpu", precision="bf16")
        for lo in range(0, len(users), 1024):
            index.search(users[lo : lo + 1024], k, seen[lo : lo + 1024])
        shares[k] = index.stats.rescored_share("bf16")
    out.put(
        {
            "model": model_config.name,
            "users": features.n_users,
            "items": features.n_items,
            "norm_max_over_median": float(norms.max() / np.median(norms)),
            "shares": shares,
        }
    )


# --- the run -------------------------------------------------------------------------------------------
def spread(values: list[float], fmt: str = ",.0f") -> str:
    return f"{statistics.median(values):{fmt}} [{min(values):{fmt}}-{max(values):{fmt}}]"


def run_trials(sizes: list[tuple[int, int]], ks: list[int], args: argparse.Namespace, env: dict) -> list[dict]:
    cells = [{"users": u, "items": i, "k": k, "faiss": [], "ours": [], "rates": []} for u, i in sizes for k in ks]
    for trial in range(args.trials):
        for n, cell in enumerate(cells):
            rates = in_child(run_rates, args.threads)
            cell["rates"].append(rates)
            shape = (cell["users"], cell["items"], args.dim, cell["k"], args.history)
            sides = {
                "faiss": (run_faiss, (*shape, args.threads, env)),
                "ours": (run_export, (*shape, args.chunk, args.threads, env)),
            }
            order = ["faiss", "ours"] if (trial + n) % 2 == 0 else ["ours", "faiss"]
            for side in order:
                target, side_args = sides[side]
                cell[side].append(in_child(target, *side_args))
            f, o = cell["faiss"][-1], cell["ours"][-1]
            print(
                f"  trial {trial + 1}/{args.trials} {cell['users']:,} x {cell['items']:,} k={cell['k']}: "
                f"faiss {f['users_per_s']:,.0f} users/s, ours {o['users_per_s']:,.0f} "
                f"({o['users_per_s'] / f['users_per_s']:.2f}x; ran {' then '.join(order)}); "
                f"fp32 {max(rates['numpy'], rates['torch']):.0f} / bf16 {rates['bf16']:.0f} GFLOP/s",
                flush=True,
            )
    for cell in cells:
        flops = 2 * cell["items"] * args.dim
        fp32 = [max(r["numpy"], r["torch"]) * 1e9 / flops for r in cell["rates"]]
        bf16 = [r["bf16"] * 1e9 / flops for r in cell["rates"]]
        med = {side: statistics.median(r["users_per_s"] for r in cell[side]) for side in ("faiss", "ours")}
        cell.update(
            bound_fp32=fp32,
            bound_bf16=bf16,
            vs_faiss=med["ours"] / med["faiss"],
            vs_bound_fp32=med["ours"] / statistics.median(fp32),
            vs_bound_bf16=med["ours"] / statistics.median(bf16),
        )
    return cells


def table(cells: list[dict]) -> list[str]:
    lines = [
        "| users x items | k | bound fp32 users/s | bound bf16 users/s | FAISS users/s | ours users/s "
        "| FAISS search only | ours search only | ours/FAISS | ours/fp32 bound | ours/bf16 bound "
        "| bf16 rows rescored | peak RSS FAISS / ours MB | output |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for c in cells:
        f, o = c["faiss"], c["ours"]
        rescored = [r["bf16_rescored_share"] for r in o if r["bf16_rows"]]
        share = f"{100 * statistics.median(rescored):.2f}%" if rescored else "(fp32 path)"
        lines.append(
            f"| {c['users']:,} x {c['items']:,} | {c['k']} | {spread(c['bound_fp32'])} | {spread(c['bound_bf16'])} | "
            f"{spread([r['users_per_s'] for r in f])} | {spread([r['users_per_s'] for r in o])} | "
            f"{spread([r['search_users_per_s'] for r in f])} | {spread([r['search_users_per_s'] for r in o])} | "
            f"**{c['vs_faiss']:.2f}** | {c['vs_bound_fp32']:.2f} | {c['vs_bound_bf16']:.2f} | {share} | "
            f"{max(r['peak_rss_mb'] for r in f):,.0f} / {max(r['peak_rss_mb'] for r in o):,.0f} | "
            f"{o[-1]['rows']:,} rows, {o[-1]['parts']} parts, {o[-1]['bytes'] / 1e6:,.0f} MB |"
        )
    return lines


def result_line(cells: list[dict], sizes: list[tuple[int, int]]) -> str:
    worst = min(cells, key=lambda c: c["vs_faiss"])
    biggest = max(sizes, key=lambda s: s[0] * s[1])
    largest = [c for c in cells if (c["users"], c["items"]) == biggest]
    head = next((c for c in largest if c["k"] == 10), largest[0])
    peak = max(r["peak_rss_mb"] for c in cells for r in c["ours"])
    return (
        f"RESULT export_vs_faiss_min={worst['vs_faiss']:.2f} export_vs_faiss_k10_1m={head['vs_faiss']:.2f} "
        f"export_vs_bound_fp32={head['vs_bound_fp32']:.2f} peak_rss_mb={peak:.0f}"
    )


def update_results(text: str) -> None:
    """Replace this section of RESULTS.md (or append it)."""
    replace_section(RESULTS, "export", text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000x20000,1000000x100000", help="users x items, comma separated")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--k", default="10,100", help="top-k values, comma separated")
    parser.add_argument("--history", type=int, default=20, help="history items per user, masked by both sides")
    parser.add_argument("--chunk", type=int, default=1024, help="users per scoring chunk of ours")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="threads of every pool, both sides")
    parser.add_argument("--trials", type=int, default=3, help="interleaved trials per cell (median reported)")
    parser.add_argument("--no-beauty", action="store_true", help="skip the trained-vectors rescoring check")
    parser.add_argument(
        "--beauty", type=Path, default=BEAUTY, help="Beauty.txt for that check (default: ../shared/datasets/...)"
    )
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args(argv)
    sizes = [tuple(int(x) for x in s.split("x")) for s in args.sizes.split(",")]
    ks = [int(k) for k in args.k.split(",")]
    started = datetime.now(UTC)
    print(f"# {started:%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores ({cpu_name()}); {args.threads} threads per side")

    from recsys_lib.devstack.services import LOCAL_S3_CREDENTIALS, REGION, start_s3, stop_pid

    with tempfile.TemporaryDirectory(prefix="export-bench-") as state:
        s3 = start_s3(state, [BUCKET])
        env = {**LOCAL_S3_CREDENTIALS, "AWS_DEFAULT_REGION": REGION, "AWS_ENDPOINT_URL_S3": s3.url}
        try:
            cells = run_trials(sizes, ks, args, env)
        finally:
            stop_pid(s3.pid)
    beauty = None
    if not args.no_beauty and args.beauty.exists():
        beauty = in_child(beauty_rescored, ks, args.threads, args.beauty)
    elif not args.no_beauty:
        print(f"# {args.beauty} not found: the trained-vectors rescoring check is skipped (--beauty PATH)")

    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    command = "python benchmarks/export.py" + (" " + shlex.join(sys.argv[1:]) if sys.argv[1:] else "")
    f0, o0 = cells[0]["faiss"][0], cells[0]["ours"][0]
    lines = [
        "<!-- export -->",
        "## Batch export: our export vs FAISS on the same job, vs the compute bounds",
        "",
        f"`{command}` on {started:%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores ({cpu_name()}), {gpu}; "
        f"torch {torch.__version__}, faiss {f0['faiss']} ({f0['options'].strip()}). "
        f"d = {args.dim}; {args.history} history items per user, dropped by both sides (FAISS searches "
        f"k + {args.history} in batches of {FAISS_BATCH:,} users, ours masks them in chunks of {args.chunk}); "
        f"both stage the same Parquet parts on a moto S3 endpoint. {args.threads} threads per side, "
        f"pinned; thread pools seen: FAISS child {f0['pools']}; ours {o0['pools']}. Each cell: median "
        f"[min-max] of {args.trials} interleaved trials (each trial runs every cell, alternating which "
        "side goes first). Bounds: square 4096 products in the same trial, fp32 (numpy or torch, the "
        "faster) and bf16 (torch). Search path of ours: "
        + ", ".join(sorted({r["path"] for c in cells for r in c["ours"]}))
        + " (the index times both on its first chunks and keeps the faster).",
        "",
        *table(cells),
        "",
    ]
    if beauty:
        lines.append(
            f"Trained vectors: `{beauty['model']}` (the default model) fitted on Amazon Beauty "
            f"({beauty['users']:,} users x {beauty['items']:,} items; item norms max/median "
            f"{beauty['norm_max_over_median']:.1f}), bf16 scan forced, history masked: users rescored "
            + ", ".join(f"{100 * s:.2f}% at k = {k}" for k, s in beauty["shares"].items())
            + "."
        )
        lines.append("")
    lines += [f"`{result_line(cells, sizes)}`", "<!-- /export -->"]
    print("\n".join(lines[3:-1]))
    if not args.no_write:
        update_results("\n".join(lines))
    print(result_line(cells, sizes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
