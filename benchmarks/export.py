"""Batch export benchmark: our export against FAISS and against the machine's compute bound.

    .venv/bin/python benchmarks/export.py                        # both sizes (about 6 min on 2 cores)
    .venv/bin/python benchmarks/export.py --sizes 100000x20000   # the small one only

Synthetic user and item vectors (d = 64, seeded normal), 20 history items per user, top-k for k = 10
(the export's default) and k = 100 (DESIGN.md section 11's FAISS figure). For each size and k, in
the same run:

(a) bound: 2 x users x items x d FLOPs at the best single-precision matrix-multiply rate measured
    now (a 4096 x 4096 product through torch and numpy, the faster);
(b) faiss-cpu ``IndexFlatIP`` search of the same top-k for every user (no history masking: FAISS
    cannot mask per user, so it gets the easier job);
(c) our export end to end: InnerProductIndex scoring with the 20 history items masked, top-k,
    Arrow rows and Parquet parts staged on a local S3 endpoint (moto over HTTP, its own process)
    through the same ``stage_parts`` the DAG's shards use.

(b) and (c) each run in a fresh child process, so their peak RSS (ru_maxrss) is their own. Prints a
table, writes the ``export`` section of benchmarks/RESULTS.md, and ends with one line:

    RESULT export_vs_faiss=<c/b> export_vs_bound=<c/a> peak_rss_mb=<m>

for the largest size at the first k (10, what the export writes by default); the table has every
size and k.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import shlex
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from machine import cpu_name

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
BUCKET = "bench"
FAISS_BATCH = 16_384


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


# --- (a) the compute bound ------------------------------------------------------------------------
def matmul_gflops(n: int = 4096, repeats: int = 3) -> dict[str, float]:
    import torch

    rates = {}
    a, b = np.random.default_rng(0).standard_normal((2, n, n), dtype=np.float32)
    for name, mm in (("numpy", lambda: a @ b), ("torch", lambda: torch.from_numpy(a) @ torch.from_numpy(b))):
        mm()  # warm up (thread pools, page faults)
        start = time.perf_counter()
        for _ in range(repeats):
            mm()
        rates[name] = 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9
    return rates


def bf16_gflops(n: int = 4096, repeats: int = 3) -> float:
    """torch's bf16 product rate, for reference: the bound (a) is single precision, as the issue
    defines it, and our search runs in bf16 where that is faster (AVX512-BF16, AMX), so it can
    beat the fp32 bound."""
    import torch

    a, b = torch.randn(n, n).bfloat16(), torch.randn(n, n).bfloat16()
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


# --- (b) FAISS ------------------------------------------------------------------------------------
def run_faiss(n_users: int, n_items: int, dim: int, k: int, out: Any) -> None:
    import faiss

    users, items = vectors(n_users, dim, 1), vectors(n_items, dim, 2)
    index = faiss.IndexFlatIP(dim)
    index.add(items)
    start = time.perf_counter()
    for lo in range(0, n_users, FAISS_BATCH):
        index.search(users[lo : lo + FAISS_BATCH], k)
    seconds = time.perf_counter() - start
    out.put({"seconds": seconds, "users_per_s": n_users / seconds, "peak_rss_mb": peak_rss_mb()})


# --- (c) our export ---------------------------------------------------------------------------------
def run_export(n_users: int, n_items: int, dim: int, k: int, per_user: int, chunk: int, env: dict, out: Any) -> None:
    os.environ.update(env)
    import pyarrow as pa

    from recsys_lib import schema
    from recsys_lib.export.batch import rows_table
    from recsys_lib.export.publish import stage_parts
    from recsys_lib.search.index import InnerProductIndex
    from recsys_lib.storage import ObjectStore

    users, items = vectors(n_users, dim, 1), vectors(n_items, dim, 2)
    seen = history(n_users, n_items, per_user, 3)
    user_ids = np.array([f"u{u:08d}" for u in range(n_users)], dtype=object)
    item_ids = pa.array([f"i{i:07d}" for i in range(n_items)], pa.string())
    store = ObjectStore(BUCKET, f"export-bench/{n_users}x{n_items}")
    index = InnerProductIndex(items)
    timings = {"search": 0.0}

    def tables():
        for lo in range(0, n_users, chunk):
            hi = min(n_users, lo + chunk)
            t0 = time.perf_counter()
            top, scores = index.search(users[lo:hi], k, seen[lo:hi])
            timings["search"] += time.perf_counter() - t0
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
    parts = stage_parts(store, "user_topk", "bench", "2026-01-01", "run", tables(), 1_000_000)
    seconds = time.perf_counter() - start
    out.put(
        {
            "seconds": seconds,
            "users_per_s": n_users / seconds,
            "search_users_per_s": n_users / timings["search"],
            "rows": sum(p.rows for p in parts),
            "bytes": sum(p.size for p in parts),
            "parts": len(parts),
            "peak_rss_mb": peak_rss_mb(),
            "device": str(index.device),
            "path": index.path(k),
        }
    )


def in_child(target: Any, *args: Any) -> dict[str, Any]:
    """Run ``target(*args, queue)`` in a fresh process; return what it put on the queue."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def measure(n_users: int, n_items: int, k: int, args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    rates = matmul_gflops()
    best = max(rates.values())
    bound = best * 1e9 / (2 * n_items * args.dim)  # users per second
    print(f"  {n_users:,} users x {n_items:,} items, top-{k}: bound {bound:,.0f} users/s at {best:.0f} GFLOP/s")
    faiss_result = in_child(run_faiss, n_users, n_items, args.dim, k)
    print(f"  faiss IndexFlatIP: {faiss_result['users_per_s']:,.0f} users/s", flush=True)
    ours = in_child(run_export, n_users, n_items, args.dim, k, args.history, args.chunk, env)
    print(f"  our export: {ours['users_per_s']:,.0f} users/s (search alone {ours['search_users_per_s']:,.0f})")
    return {
        "users": n_users,
        "items": n_items,
        "k": k,
        "gflops": rates,
        "bound": bound,
        "faiss": faiss_result,
        "ours": ours,
        "vs_faiss": ours["users_per_s"] / faiss_result["users_per_s"],
        "vs_bound": ours["users_per_s"] / bound,
    }


def table(results: list[dict[str, Any]], args: argparse.Namespace) -> list[str]:
    lines = [
        "| users x items | k | (a) bound users/s | (b) faiss users/s | (c) export users/s | (c) search only "
        "| search path | export/faiss | export/bound | peak RSS faiss / export | output |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | --- |",
    ]
    for r in results:
        o, f = r["ours"], r["faiss"]
        lines.append(
            f"| {r['users']:,} x {r['items']:,} | {r['k']} | {r['bound']:,.0f} | {f['users_per_s']:,.0f} | "
            f"{o['users_per_s']:,.0f} | {o['search_users_per_s']:,.0f} | {o['path']} | {r['vs_faiss']:.2f} | "
            f"{r['vs_bound']:.2f} | "
            f"{f['peak_rss_mb']:,.0f} / {o['peak_rss_mb']:,.0f} MB | {o['rows']:,} rows, {o['parts']} parts, "
            f"{o['bytes'] / 1e6:,.0f} MB |"
        )
    return lines


def result_line(r: dict[str, Any]) -> str:
    return (
        f"RESULT export_vs_faiss={r['vs_faiss']:.2f} export_vs_bound={r['vs_bound']:.2f} "
        f"peak_rss_mb={r['ours']['peak_rss_mb']:.0f}"
    )


def update_results(text: str) -> None:
    current = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    start, end = "<!-- export -->", "<!-- /export -->"
    if start in current and end in current:
        current = current[: current.index(start)] + text + current[current.index(end) + len(end) :]
    else:
        current = current.rstrip() + "\n\n" + text + "\n"
    RESULTS.write_text(current)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000x20000,1000000x100000", help="users x items, comma separated")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--k", default="10,100", help="top-k values, comma separated; the first is the RESULT's")
    parser.add_argument("--history", type=int, default=20, help="history items masked per user")
    parser.add_argument("--chunk", type=int, default=1024, help="users per scoring chunk")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args(argv)
    sizes = [tuple(int(x) for x in s.split("x")) for s in args.sizes.split(",")]
    ks = [int(k) for k in args.k.split(",")]

    from recsys_lib.devstack.services import LOCAL_S3_CREDENTIALS, REGION, start_s3, stop_pid

    with tempfile.TemporaryDirectory(prefix="export-bench-") as state:
        s3 = start_s3(state, [BUCKET])
        env = {**LOCAL_S3_CREDENTIALS, "AWS_DEFAULT_REGION": REGION, "AWS_ENDPOINT_URL_S3": s3.url}
        try:
            results = []
            for n_users, n_items in sizes:
                for k in ks:
                    results.append(measure(n_users, n_items, k, args, env))
        finally:
            stop_pid(s3.pid)

    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    command = "python benchmarks/export.py" + (" " + shlex.join(sys.argv[1:]) if sys.argv[1:] else "")
    rates = results[-1]["gflops"]
    bf16 = bf16_gflops()
    headline = next(r for r in results if r["users"] == sizes[-1][0] and r["k"] == ks[0])
    lines = [
        "<!-- export -->",
        "## Batch export: our export vs FAISS vs the compute bound",
        "",
        f"`{command}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores "
        f"({cpu_name()}), {gpu}; d = {args.dim}, "
        f"{args.history} history items masked per user (ours only), chunks of {args.chunk} users; "
        f"square sgemm numpy {rates['numpy']:.0f} / torch {rates['torch']:.0f} GFLOP/s (bf16 in torch: "
        f"{bf16:.0f} GFLOP/s). Search path: the one the index settled on after timing both on its first chunks.",
        "",
        *table(results, args),
        "",
        f"`{result_line(headline)}` (largest size, k = {ks[0]})",
        "<!-- /export -->",
    ]
    print("\n".join(lines[4:-1]))
    if not args.no_write:
        update_results("\n".join(lines))
    print(result_line(headline))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
