"""Live serving benchmark: `recsys serve` against `mlflow models serve`, same model, same run.

    .venv/bin/pip install -c constraints.txt -e '.[bench]'     # locust
    .venv/bin/python benchmarks/serve.py                       # about 25 min on 2 cores
    .venv/bin/python benchmarks/serve.py --models mf_bpr --duration 5 --trials 1   # a quick look

For each model (SASRec and MF-BPR at their default config, d = 64) over a synthetic shop of
``--items`` items (100k) and ``--users`` users with 50 events each:

- the model is built with untrained weights (the work per request, and so the latency, does not
  depend on their values), bundled, and saved twice: as a bundle folder and as the MLflow pyfunc
  model the registry would hold (``save_pyfunc``, exactly what ``log_and_register`` logs);
- ``recsys serve --bundle`` and ``mlflow models serve --env-manager local`` run as processes, one
  ``--workers`` uvicorn worker processes each (2: one per core), with the same ``OMP_NUM_THREADS``
  (1; printed);
- locust (FastHttpUser, headless, its own process on the same 2 cores) drives each at concurrency
  1, 8 and 32, back to back (a closed loop), for ``--duration`` seconds per cell after a warm-up;
  trials interleave the two servers (ours, mlflow, ours, mlflow, ...); each cell is the median of
  ``--trials`` trials, with the spread (min-max) printed;
- then ours alone at just over 300 requests/s of independent arrivals: 32 locust users (a site's
  frontends, each with its keep-alive connection), each waiting an exponential time of mean 95 ms
  after each answer (about Poisson arrivals; the rate reached is printed and must be >= 300). Measured here:
  300 users at 1/s each, same rate, gave p99 290 ms against 28-45 ms for 30 users at 10/s, the
  difference being locust's own cost on the shared cores, so the cell uses few clients.

Our requests: ``/recommend {user_id, recent_items: 50 items, k: 10}`` (a known user's stored
history plus 50 session items: SASRec scores them all). MLflow's pyfunc takes user ids only (no
session): ``/invocations {user_id}`` with ``k = 10``, the easier job. Locust reports latencies in
whole milliseconds.

Ends with ``RESULT serve_rps_at_p99_20ms=<x> vs_mlflow_serve=<y>``: x is SASRec's highest
throughput among our cells (concurrency levels and the fixed rate) whose median p99 is at most
20 ms, y the lowest ratio, over concurrency levels and models, of our throughput to mlflow's at
the same concurrency (the issue asks for "at equal p99"; the table shows both p99s).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
from machine import cpu_name

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
LOCUSTFILE = Path(__file__).with_name("serve_locust.py")
CONCURRENCY = (1, 8, 32)
FIXED_RATE = 300
RATE_CLIENTS = 32
CLIENT_RATE = 10.5
"""Each client waits an exponential time of mean 1 / 10.5 s after each answer: with answers of a
few milliseconds the rate reached is just over 300/s (32 at 10/s reached only 292)."""
HISTORY, SESSION, K = 50, 50, 10


def shop(n_users: int, n_items: int, seed: int = 0):
    """A FeatureSet of ``n_users`` x ``HISTORY`` events over ``n_items`` items (Zipf-ish popularity)."""
    from recsys_lib import schema
    from recsys_lib.config import FeaturesConfig
    from recsys_lib.features import build_features

    rng = np.random.default_rng(seed)
    n = n_users * HISTORY
    popularity = 1.0 / np.arange(1, n_items + 1) ** 0.8
    items = rng.choice(n_items, size=n, p=popularity / popularity.sum())
    width = len(str(n_items))
    events = pd.DataFrame(
        {
            schema.USER_ID: np.char.add("u", np.repeat(np.arange(n_users), HISTORY).astype(str)),
            schema.ITEM_ID: np.char.add("i", np.char.zfill(items.astype(str), width)),
            schema.EVENT_TYPE: rng.choice([schema.VIEW, schema.ADD_TO_CART, schema.PURCHASE], n, p=[0.8, 0.15, 0.05]),
            schema.TIMESTAMP: pd.Timestamp("2026-09-01", tz="UTC")
            + pd.to_timedelta(rng.integers(0, 60 * 86400, n), "s"),
        }
    )
    catalogue = pd.DataFrame(
        {
            schema.ITEM_ID: np.char.add("i", np.char.zfill(np.arange(n_items).astype(str), width)),
            schema.CATEGORY: np.char.add("c", (np.arange(n_items) % 50).astype(str)),
        }
    )
    return build_features(events, catalogue, FeaturesConfig())


def save_model(name: str, features, folder: Path) -> tuple[Path, Path]:
    """The model as a bundle folder and as an MLflow pyfunc model folder."""
    from recsys_lib.config import ModelConfig
    from recsys_lib.models import create_model
    from recsys_lib.registry.mlflow_registry import save_pyfunc
    from recsys_lib.serving import ModelBundle

    model = create_model(ModelConfig(name=name), features.n_users, features.n_items)  # untrained weights
    bundle = ModelBundle.from_training(model, features, note="benchmarks/serve.py, untrained weights")
    bundle_dir = bundle.save(folder / f"{name}-bundle")
    pyfunc_dir = folder / f"{name}-pyfunc"
    save_pyfunc(bundle, bundle_dir, pyfunc_dir, [str(u) for u in features.user_ids[:3]])
    return bundle_dir, pyfunc_dir


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A server process on 127.0.0.1, its request path and body maker."""

    def __init__(self, label: str, command: list[str], port: int, path: str, env: dict[str, str], log: Path):
        self.label, self.port, self.path = label, port, path
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        with log.open("w") as out:
            self.process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)

    def wait(self, body: dict, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.label} exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.post(self.url + self.path, json=body, timeout=30).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.label} did not answer within {timeout}s: {self.log.read_text()[-2000:]}")
            time.sleep(0.5)

    def warm(self, bodies: list[dict], n: int = 200) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            for body in bodies[:n]:
                assert client.post(self.path, json=body).status_code == 200

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def run_locust(server: Server, bodies_file: Path, users: int, seconds: int, rate: float, out: Path) -> dict:
    """One locust run; returns requests/s, failures and p50/p95/p99 (ms) of the aggregate."""
    prefix = out / f"{server.label}-{users}-{rate:g}-{time.monotonic_ns()}"
    env = {**os.environ, "SERVE_BENCH_BODIES": str(bodies_file), "SERVE_BENCH_PATH": server.path}
    env["SERVE_BENCH_RATE"] = str(rate)
    spawn = users if rate == 0 else 16  # paced users start over two seconds, not in one burst
    command = [str(BIN / "locust"), "-f", str(LOCUSTFILE), "--headless", "-u", str(users), "-r", str(spawn)]
    command += ["-t", f"{seconds}s", "--host", server.url, "--csv", str(prefix), "--only-summary"]
    command += ["--loglevel", "WARNING", "--stop-timeout", "5"]
    subprocess.run(command, env=env, check=False, capture_output=True, timeout=seconds + 120)
    with open(f"{prefix}_stats.csv") as f:
        row = next(r for r in csv.DictReader(f) if r["Name"] == "Aggregated")
    return {
        "rps": float(row["Requests/s"]),
        "failures": int(row["Failure Count"]),
        "requests": int(row["Request Count"]),
        "p50": float(row["50%"]),
        "p95": float(row["95%"]),
        "p99": float(row["99%"]),
    }


def median_cell(trials: list[dict]) -> dict:
    """Median of each figure over trials, the spread of rps and p99, failures summed."""
    cell = {key: statistics.median(t[key] for t in trials) for key in ("rps", "p50", "p95", "p99")}
    cell["rps_spread"] = (min(t["rps"] for t in trials), max(t["rps"] for t in trials))
    cell["p99_spread"] = (min(t["p99"] for t in trials), max(t["p99"] for t in trials))
    cell["failures"] = sum(t["failures"] for t in trials)
    cell["requests"] = sum(t["requests"] for t in trials)
    return cell


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="sasrec,mf_bpr")
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--duration", type=int, default=15, help="seconds per locust run")
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of both servers")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes of both servers")
    args = parser.parse_args()

    started = datetime.now(UTC)
    print(f"# {shlex.join(sys.argv)}\n# {started:%Y-%m-%d %H:%M} UTC, {cpu_name()}, {os.cpu_count()} cores")
    print(f"# both servers: {args.workers} uvicorn worker(s), OMP_NUM_THREADS={args.threads}; locust on the same cores")
    work = Path(tempfile.mkdtemp(prefix="serve-bench-"))
    t0 = time.perf_counter()
    features = shop(args.users, args.items)
    print(f"# shop: {features.n_users:,} users x {features.n_items:,} items built in {time.perf_counter() - t0:.0f}s")
    rng = np.random.default_rng(1)
    users = [str(u) for u in features.user_ids[rng.integers(0, features.n_users, 2000)]]
    sessions = features.item_ids[rng.integers(0, features.n_items, (2000, SESSION))]
    ours_bodies = [
        {"user_id": u, "recent_items": [str(i) for i in s], "k": K} for u, s in zip(users, sessions, strict=True)
    ]
    peer_bodies = [{"dataframe_split": {"columns": ["user_id"], "data": [[u]]}, "params": {"k": K}} for u in users]
    files = {"ours": work / "ours.json", "mlflow": work / "mlflow.json"}
    files["ours"].write_text(json.dumps(ours_bodies))
    files["mlflow"].write_text(json.dumps(peer_bodies))
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    env.pop("MLFLOW_TRACKING_URI", None)

    table: list[tuple[str, str, str, dict]] = []
    for name in args.models.split(","):
        bundle_dir, pyfunc_dir = save_model(name, features, work)
        ours_port, peer_port = free_port(), free_port()
        recsys_serve = ["serve", "--bundle", str(bundle_dir), "--workers", str(args.workers)]
        ours = Server(
            "ours",
            [str(BIN / "recsys"), *recsys_serve, "--port", str(ours_port)],
            ours_port,
            "/recommend",
            env,
            work / f"{name}-ours.log",
        )
        peer_env = {**env, "PATH": f"{BIN}:{env.get('PATH', '')}"}  # mlflow execs `uvicorn` from PATH
        mlflow_serve = ["models", "serve", "-m", str(pyfunc_dir), "--env-manager", "local", "-w", str(args.workers)]
        peer = Server(
            "mlflow",
            [str(BIN / "mlflow"), *mlflow_serve, "--host", "127.0.0.1", "-p", str(peer_port)],
            peer_port,
            "/invocations",
            peer_env,
            work / f"{name}-mlflow.log",
        )
        try:
            for server, bodies in ((ours, ours_bodies), (peer, peer_bodies)):
                server.wait(bodies[0])
                server.warm(bodies)
            trials: dict[tuple[str, str], list[dict]] = {}
            for trial in range(args.trials):
                for users_n in CONCURRENCY:
                    for server in (ours, peer):
                        found = run_locust(server, files[server.label], users_n, args.duration, 0, work)
                        trials.setdefault((server.label, f"c={users_n}"), []).append(found)
                        print(f"  {name} trial {trial + 1} {server.label:6s} c={users_n:<3d} {found}", flush=True)
                # 32 clients (a site's frontends) asking with exponential think times: about Poisson
                # arrivals at just over 300/s (the wait follows each answer)
                found = run_locust(ours, files["ours"], RATE_CLIENTS, args.duration, CLIENT_RATE, work)
                trials.setdefault(("ours", f"{FIXED_RATE}/s"), []).append(found)
                print(f"  {name} trial {trial + 1} ours   {FIXED_RATE}/s {found}", flush=True)
            for (label, load), found in trials.items():
                table.append((name, label, load, median_cell(found)))
            metrics = httpx.get(ours.url + "/metrics", timeout=30).text  # one worker's
            sizes = {
                key: float(next(line.split()[-1] for line in metrics.splitlines() if line.startswith(key)))
                for key in ("recsys_batch_size_sum", "recsys_batch_size_count")
            }
            mean = sizes["recsys_batch_size_sum"] / max(sizes["recsys_batch_size_count"], 1)
            print(f"  {name}: requests per scored batch, one worker over the whole run: {mean:.2f}", flush=True)
        finally:
            ours.stop()
            peer.stop()

    print("\n| model | server | load | req/s (min-max) | p50 ms | p95 ms | p99 ms (min-max) | failed |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, label, load, c in table:
        print(
            f"| {name} | {label} | {load} | {c['rps']:.0f} ({c['rps_spread'][0]:.0f}-{c['rps_spread'][1]:.0f}) "
            f"| {c['p50']:.0f} | {c['p95']:.0f} | {c['p99']:.0f} ({c['p99_spread'][0]:.0f}-{c['p99_spread'][1]:.0f}) "
            f"| {c['failures']} of {c['requests']} |"
        )
    cells = {(n, lbl, load): c for n, lbl, load, c in table}
    sasrec = [c for (n, lbl, _), c in cells.items() if n == "sasrec" and lbl == "ours" and c["p99"] <= 20]
    best = max((c["rps"] for c in sasrec), default=0.0)
    ratios = [
        cells[(n, "ours", load)]["rps"] / max(cells[(n, "mlflow", load)]["rps"], 1e-9)
        for (n, lbl, load) in cells
        if lbl == "mlflow"
    ]
    print(
        f"\n# {(time.perf_counter() - t0) / 60:.1f} min; per-model ratio ours/mlflow by concurrency: "
        f"{[round(r, 2) for r in ratios]}"
    )
    print(f"RESULT serve_rps_at_p99_20ms={best:.0f} vs_mlflow_serve={min(ratios, default=0.0):.2f}")


if __name__ == "__main__":
    main()
