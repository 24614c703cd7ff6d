"""Is Lightning's own loop (validation step, EarlyStopping, ModelCheckpoint, MLFlowLogger) slower
per epoch than the hand-made epoch callback it replaced? Same data, same models, same seeds and
threads, the two code versions interleaved in one run.

    .venv/bin/python benchmarks/training_loop.py                    # before = the commit before the loop
    .venv/bin/python benchmarks/training_loop.py --before <rev> --trials 3 --epochs 5

Each trial trains every model once with each version (a fresh process each, alternating which goes
first), on Amazon Beauty (leave-one-out, ../shared/datasets) with the settings of
benchmarks/quality.py, capped at ``--epochs`` epochs and validated every epoch so the validation
path is measured too. "s/epoch" is training only (each version's own ``epoch_seconds``); "fit s" is
the whole ``fit`` (training, validation, best-weight keeping). Both versions must reach the same
validation NDCG@10 at every epoch. Ends with

    RESULT loop_epoch_ratio_max=<after / before, the worst model> loop_fit_ratio_max=<...> same_results=<yes|no>
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
#: The commit whose parent still had the hand-made epoch callback.
LOOP_COMMIT = "a2b5938"
THREADS = 2


def _worker(models: list[str], epochs: int) -> None:
    """Train each of ``models`` on Beauty with whatever ``recsys_lib`` is on the path; print JSON."""
    import torch

    sys.path.insert(0, str(BENCH))
    from quality import load_beauty, variants

    from recsys_lib.config import ModelConfig, TrainConfig
    from recsys_lib.models import create_model

    torch.set_num_threads(THREADS)
    features = load_beauty()
    by_label = {v.label: v for v in variants("beauty")}
    out = {}
    for label in models:
        variant = by_label[label]
        train_fields = {**variant.train_fields, "epochs": epochs, "validate_every": 1, "patience": None}
        config = ModelConfig.model_validate({"name": variant.model, "embedding_dim": 64, **variant.model_fields})
        train = TrainConfig.model_validate({"seed": 42, "accelerator": "cpu", **train_fields})
        model = create_model(config, features.n_users, features.n_items)
        started = time.perf_counter()
        model.fit(features, train)
        fit = time.perf_counter() - started
        history = model.history
        out[label] = {
            "epoch_seconds": statistics.mean(h["epoch_seconds"] for h in history),
            "fit_seconds": fit,
            "val_ndcg_at_10": [round(h["val_ndcg_at_10"], 10) for h in history],
        }
    print("JSON " + json.dumps(out))


def _export(rev: str, into: Path) -> Path:
    """The tree of ``rev`` (git archive) under ``into``, with this checkout's compiled kernel."""
    archive = into / "tree.tar"
    subprocess.run(["git", "archive", "--format=tar", "-o", str(archive), rev], cwd=REPO, check=True)
    tree = into / rev
    with tarfile.open(archive) as tar:
        tar.extractall(tree, filter="data")
    for built in (REPO / "recsys_lib" / "search").glob("_fused_scan*.so"):
        (tree / "recsys_lib" / "search" / built.name).write_bytes(built.read_bytes())
    return tree


def _run(tree: Path, models: list[str], epochs: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": str(THREADS), "MKL_NUM_THREADS": str(THREADS)}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--epochs", str(epochs), "--models", *models]
    done = subprocess.run(cmd, env=env, cwd=tempfile.gettempdir(), capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"worker on {tree} failed:\n{done.stderr[-3000:]}")
    [line] = [x for x in done.stdout.splitlines() if x.startswith("JSON ")]
    return json.loads(line[5:])


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} [{min(values):.2f}-{max(values):.2f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", default=f"{LOOP_COMMIT}^", help="the version to compare with")
    parser.add_argument("--after", default="HEAD")
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--models", nargs="+", default=["mf_bpr", "sasrec sampled softmax"])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args.models, args.epochs)
        return
    with tempfile.TemporaryDirectory(prefix="recsys-loop-") as scratch:
        trees = {side: _export(rev, Path(scratch)) for side, rev in (("before", args.before), ("after", args.after))}
        results: dict[str, list[dict]] = {"before": [], "after": []}
        for trial in range(args.trials):
            order = ("before", "after") if trial % 2 == 0 else ("after", "before")
            for side in order:
                results[side].append(_run(trees[side], args.models, args.epochs))
                print(f"trial {trial + 1}/{args.trials} {side} done", file=sys.stderr, flush=True)
    print(f"# {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; before={args.before} after={args.after}; torch threads {THREADS}")
    print(f"# Beauty, {args.epochs} epochs validated every epoch, {args.trials} interleaved trials, median [min-max]")
    print("| model | s/epoch before | s/epoch after | ratio | fit s before | fit s after | ratio | same val NDCG |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    epoch_ratios, fit_ratios, same_all = [], [], True
    for model in args.models:
        cells = {}
        for side in ("before", "after"):
            cells[side] = (
                [r[model]["epoch_seconds"] for r in results[side]],
                [r[model]["fit_seconds"] for r in results[side]],
            )
        epoch_ratio = statistics.median(cells["after"][0]) / statistics.median(cells["before"][0])
        fit_ratio = statistics.median(cells["after"][1]) / statistics.median(cells["before"][1])
        same = all(
            a[model]["val_ndcg_at_10"] == b[model]["val_ndcg_at_10"]
            for a in results["after"]
            for b in results["before"]
        )
        epoch_ratios.append(epoch_ratio)
        fit_ratios.append(fit_ratio)
        same_all &= same
        print(
            f"| {model} | {_spread(cells['before'][0])} | {_spread(cells['after'][0])} | {epoch_ratio:.2f} | "
            f"{_spread(cells['before'][1])} | {_spread(cells['after'][1])} | {fit_ratio:.2f} | "
            f"{'yes' if same else 'no'} |"
        )
    print(
        f"RESULT loop_epoch_ratio_max={max(epoch_ratios):.3f} loop_fit_ratio_max={max(fit_ratios):.3f} "
        f"same_results={'yes' if same_all else 'no'}"
    )


if __name__ == "__main__":
    main()
