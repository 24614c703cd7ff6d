"""Scale benchmark: synthetic shops landed as daily partitions, retrained end to end by `recsys retrain`.

    .venv/bin/python benchmarks/scale.py                                  # 1M, 10M and 50M events
    .venv/bin/python benchmarks/scale.py --events 1000000,4000000         # smaller sizes

For each size: a seeded synthetic shop (about 24 events per shopper, users = events / 24, items =
users / 10, 90 days) is landed as ``raw/<dataset>/events/dt=<day>/`` partitions plus a catalogue
snapshot on a local S3 endpoint (a moto server process, with an MLflow server beside it), then
``recsys retrain`` runs as its own process with the default model and epochs (the landing is not
timed). The child's resident memory is sampled every 0.2 s; a stage's peak is the highest RSS seen
between the end of the stage before it and its own end (the process keeps what earlier stages
allocated unless it was freed: ``recsys retrain`` hands freed memory back between stages, and the
table shows what each stage still held after that). Prints one table per size, then each stage's growth exponent
between the two largest sizes, measured against its natural unit of work: events for ingest,
validation, features and training; users x items for the full-catalogue scoring of evaluation
(``register``) and ``export``; users for ``publish``. Ends with

    RESULT events=<largest> retrain_minutes=<x> peak_rss_gb=<y> worst_stage_exponent=<z>

Each size runs once (a retrain at these sizes takes minutes to an hour on 2 cores); this is a scale
curve, not a comparison, so no peer and no repeated trials.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psutil
from machine import cpu_name

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
END = datetime(2026, 11, 1, tzinfo=UTC)
DS = "2026-11-01"
STAGE_LINE = re.compile(r"^(\w+)\s+([\d.]+)s\s")
UNITS = {
    "ingest_snapshot": "events",
    "validate": "events",
    "build_features": "events",
    "train": "events",
    "evaluate_and_register": "users x items",
    "export": "users x items",
    "publish": "users",
}


@dataclass
class Run:
    events: int
    users: int
    items: int
    stages: dict[str, tuple[float, float, float]] = field(default_factory=dict)  # stage -> (seconds, peak, after) RSS
    wall_s: float = 0.0
    land_s: float = 0.0

    def unit(self, stage: str) -> float:
        kind = UNITS.get(stage, "events")
        return {"events": self.events, "users": self.users, "users x items": self.users * self.items}[kind]


def land(store_env: dict[str, str], dataset: str, n_events: int, seed: int) -> tuple[int, int, int, float]:
    """Generate and land the shop in a child process (its memory is not the retrain's); returns
    (events, users, items, seconds)."""
    n_users = max(1000, n_events // 24)
    n_items = max(200, n_users // 10)
    code = (
        "import sys; from datetime import datetime, UTC\n"
        "from recsys_lib.sources import write_landings\n"
        "from recsys_lib.sources.synthetic import generate_shop\n"
        "from recsys_lib.storage import ObjectStore\n"
        f"events, items = generate_shop(n_users={n_users}, n_items={n_items}, n_categories=20, n_brands=200, "
        f"days=90, end=datetime.fromisoformat('{END.isoformat()}'), seed={seed})\n"
        f"write_landings(ObjectStore('recsys'), '{dataset}', events, items)\n"
        "print(len(events), events['user_id'].nunique(), len(items))\n"
    )
    start = time.perf_counter()
    out = subprocess.run(
        [str(BIN / "python"), "-c", code], env=store_env, capture_output=True, text=True, check=True, cwd=ROOT
    )
    events, users, items = (int(x) for x in out.stdout.split())
    return events, users, items, time.perf_counter() - start


def retrain(
    store_env: dict[str, str], dataset: str, extra: list[str], log_path: Path | None = None
) -> tuple[dict[str, tuple[float, float]], float]:
    """``recsys retrain`` in a child process; per stage (seconds, peak RSS bytes), and the wall time.
    The child's log (stderr) goes to ``log_path`` when given."""
    cmd = [str(BIN / "recsys"), "retrain", "--dataset", dataset, "--ds", DS, *extra]
    log = open(log_path, "w") if log_path else subprocess.DEVNULL  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(cmd, env=store_env, stdout=subprocess.PIPE, stderr=log, text=True, cwd=ROOT)
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        process = psutil.Process(proc.pid)
        while not done.is_set():
            try:
                peak[0] = max(peak[0], process.memory_info().rss)
            except psutil.Error:
                return
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stages: dict[str, tuple[float, float]] = {}
    start = time.perf_counter()
    assert proc.stdout is not None
    for line in proc.stdout:
        print(f"    {line.rstrip()[:160]}", flush=True)
        match = STAGE_LINE.match(line)
        if match and match.group(1) != "total":
            try:  # the stage line is printed once the stage has released what it freed
                after = float(psutil.Process(proc.pid).memory_info().rss)
            except psutil.Error:
                after = math.nan
            stages[match.group(1)] = (float(match.group(2)), float(peak[0]), after)
            peak[0] = 0
    rc = proc.wait()
    if log_path:
        log.close()
    done.set()
    sampler.join()
    if rc:
        raise SystemExit(f"recsys retrain failed with exit status {rc} on dataset {dataset}")
    return stages, time.perf_counter() - start


def table(run: Run) -> list[str]:
    lines = [
        f"**{run.events:,} events** ({run.users:,} users x {run.items:,} items, 90 daily landings; landing took "
        f"{run.land_s:.0f} s, not counted): retrain {run.wall_s / 60:.1f} min",
        "",
        "| stage | seconds | peak RSS GB | bytes per event at peak | RSS held after the stage GB |",
        "|---|---:|---:|---:|---:|",
    ]
    for stage, (seconds, rss, after) in run.stages.items():
        lines.append(f"| {stage} | {seconds:.1f} | {rss / 2**30:.2f} | {rss / run.events:,.0f} | {after / 2**30:.2f} |")
    return lines


def exponents(small: Run, large: Run) -> dict[str, float]:
    """log(time ratio) / log(unit-of-work ratio) per stage, between two sizes."""
    out = {}
    for stage, (seconds, *_) in large.stages.items():
        before = small.stages.get(stage, (0.0,))[0]
        ratio = large.unit(stage) / small.unit(stage)
        if before > 0 and seconds > 0 and ratio > 1:
            out[stage] = math.log(seconds / before) / math.log(ratio)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", default="1000000,10000000,50000000", help="sizes, comma separated")
    parser.add_argument("--set", action="append", default=[], help="extra `recsys retrain --set` overrides")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--log-dir", type=Path, help="keep each retrain's log (per-epoch lines) as retrain-<events>.log here"
    )
    args = parser.parse_args(argv)
    from recsys_lib.devstack.services import start_stack, stop_stack

    sizes = [int(x) for x in args.events.split(",")]
    extra = [a for kv in args.set for a in ("--set", kv)]
    print(
        f"# {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores ({cpu_name()}), "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB; sizes {sizes}; overrides {args.set or 'none'}"
    )
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="recsys-scale-") as state:
        stack = start_stack(Path(state), bucket="recsys")
        env = {**os.environ, **stack.client_env(), "PYTHONUNBUFFERED": "1"}
        if args.log_dir:
            args.log_dir.mkdir(parents=True, exist_ok=True)  # before landing: a missing folder once lost a run
        try:
            for n in sizes:
                dataset = f"scale-{n}"
                print(f"\n## {n:,} events: landing ...", flush=True)
                events, users, items, land_s = land(env, dataset, n, args.seed)
                run = Run(events, users, items, land_s=land_s)
                print(f"  landed {events:,} events, {users:,} users, {items:,} items in {land_s:.0f} s", flush=True)
                log_path = args.log_dir / f"retrain-{n}.log" if args.log_dir else None
                run.stages, run.wall_s = retrain(env, dataset, extra, log_path)
                runs.append(run)
                print("\n".join(table(run)), flush=True)
        finally:
            stop_stack(stack)
    worst = ("none", float("nan"))
    if len(runs) >= 2:
        growth = exponents(runs[-2], runs[-1])
        print(f"\n## Growth between {runs[-2].events:,} and {runs[-1].events:,} events (target: exponent <= 1.15)")
        print("| stage | unit of work | exponent |\n|---|---|---:|")
        for stage, value in growth.items():
            print(f"| {stage} | {UNITS.get(stage, 'events')} | {value:.2f} |")
        if growth:
            worst = max(growth.items(), key=lambda kv: kv[1])
        print(f"worst stage: {worst[0]}")
    largest = runs[-1]
    peak = max(rss for _, rss, _ in largest.stages.values())
    print(
        f"RESULT events={largest.events} retrain_minutes={largest.wall_s / 60:.1f} peak_rss_gb={peak / 2**30:.2f}"
        f" worst_stage_exponent={worst[1]:.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
