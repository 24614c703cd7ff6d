"""Our SASRec against RecBole 1.2.1's, in one run on one machine: seconds per training epoch at the
same dimensions, and the validation NDCG@10 each reaches within the same training-time budget.

    .venv/bin/python benchmarks/recbole_speed.py                    # 10-minute budget, 2 threads
    .venv/bin/python benchmarks/recbole_speed.py --budget-minutes 3 --no-write

RecBole is installed into its own virtualenv (``--venv``, default ``.venv-recbole``; created on
the first run: ``recbole==1.2.1``, the project's torch version, ``numpy<2`` and ``pandas<3``,
which RecBole 1.2.1 predates), never into the project's. Each side runs in a child process of
its own environment (``benchmarks/recbole_child.py`` for RecBole), both with the same torch threads
(pinned and printed), on Amazon Beauty read from ../shared/datasets (leave-one-out: each user's
last item is test and never scored here, the one before is validation).

Both train SASRec with full-softmax cross-entropy, hidden size 64, 2 layers, 2 heads, dropout 0.5,
feed-forward 256, max length 50, batch 256, Adam at 1e-3 (RecBole's defaults, DESIGN.md section
11). An epoch is one pass over every training target on both sides: RecBole feeds each prefix of a
user's sequence as its own sample, we feed each sequence once with the loss at every position.

The epochs are interleaved: whichever side has trained for less time so far runs its next epoch,
so both meet the machine in the same state. After each epoch each side validates with full ranking
over every item, the user's train items masked (timed apart, not counted in the budget). A side
stops when its next epoch would overrun the budget, but runs at least ``--min-epochs`` epochs so
its seconds per epoch is a median of at least three. Prints a table, updates its section of
benchmarks/RESULTS.md, and ends with one line:

    RESULT sasrec_epoch_vs_recbole=<RecBole s/epoch over ours> ndcg_at_equal_time_vs_recbole=<ours over RecBole>
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from machine import cpu_name, replace_section

ROOT = Path(__file__).resolve().parent.parent
BEAUTY = ROOT.parent / "shared" / "datasets" / "amazon_beauty_s3rec_5core" / "Beauty.txt"
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
#: RecBole 1.2.1 predates numpy 2 (it calls ``np.float``) and pandas 3 (its in-place ``fillna`` on a
#: column does nothing under copy-on-write), so its environment keeps both below those majors.
RECBOLE = ["recbole==1.2.1", "numpy<2", "pandas<3"]
MARK = "@@ "

#: RecBole's SASRec defaults with its cross-entropy loss, the setting of DESIGN.md section 11.
SETTINGS = {
    "dim": 64,
    "layers": 2,
    "heads": 2,
    "dropout": 0.5,
    "max_length": 50,
    "batch_size": 256,
    "learning_rate": 1e-3,
    "seed": 42,
}


def ensure_venv(venv: Path) -> Path:
    """The python of RecBole's virtualenv, created and filled on first use."""
    import torch

    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import recbole, torch; print(recbole.__version__, torch.__version__)"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    print(f"installing {' '.join(RECBOLE)} into {venv} (its own virtualenv) ...", file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    ours = torch.__version__.split("+")[0]  # the same torch as the project's, so only the libraries differ
    install = [str(python), "-m", "pip", "install", "--quiet", *RECBOLE, f"torch=={ours}"]
    subprocess.run(install, check=True)
    subprocess.run(probe, check=True)
    return python


def write_atomic_file(beauty: Path, data_dir: Path) -> None:
    """Beauty.txt (``user item item ...`` per line, in order) as RecBole's atomic ``Beauty.inter``,
    each interaction's position in its user's sequence as the timestamp."""
    folder = data_dir / "Beauty"
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "Beauty.inter").open("w") as out:
        out.write("user_id:token\titem_id:token\ttimestamp:float\n")
        for line in beauty.read_text().splitlines():
            user, *items = line.split()
            out.writelines(f"{user}\t{item}\t{position}\n" for position, item in enumerate(items))


def ours_child(beauty: Path, threads: int, settings: dict[str, Any]) -> None:
    """Our side of the protocol (see recbole_child.py): SASRec through ``Recommender.fit``, held
    between epochs by its ``on_epoch_end`` callback until the parent asks for the next one."""
    import torch

    from recsys_lib import schema
    from recsys_lib.config import FeaturesConfig, ModelConfig, TrainConfig
    from recsys_lib.features import build_features
    from recsys_lib.models import create_model
    from recsys_lib.sources.sequences import parse_sequences, sequence_tables

    torch.set_num_threads(threads)
    started = time.perf_counter()
    tables = sequence_tables(parse_sequences(beauty.read_text(), beauty.name))
    features = build_features(tables.events, tables.items, FeaturesConfig(split="leave_one_out"))
    model_config = ModelConfig.model_validate(
        {
            "name": "sasrec",
            "embedding_dim": settings["dim"],
            "sequential": {
                "loss": "full_softmax",
                "n_layers": settings["layers"],
                "n_heads": settings["heads"],
                "dropout": settings["dropout"],
                "max_length": settings["max_length"],
            },
        }
    )
    train = TrainConfig(
        epochs=1000,  # the parent decides when to stop
        batch_size=settings["batch_size"],
        learning_rate=settings["learning_rate"],
        weight_decay=0.0,
        seed=settings["seed"],
        validate_every=1,
        validation_users=None,  # every validation user, as RecBole validates
        patience=None,
        accelerator="cpu",
    )
    model = create_model(model_config, features.n_users, features.n_items)
    _say(
        {
            "ready": True,
            "side": "recsys_lib SASRec",
            "torch": torch.__version__,
            "numpy": __import__("numpy").__version__,
            "threads": torch.get_num_threads(),
            "interop_threads": torch.get_num_interop_threads(),
            "parallel": torch.__config__.parallel_info().splitlines()[:6],
            "users": features.n_users,
            "items": features.n_items,
            # every train interaction but each user's first is a target
            "train_targets": len(features.train) - features.train[schema.USER_IDX].nunique(),
            "setup_s": time.perf_counter() - started,
        }
    )

    class Stop(Exception):
        pass

    last = [time.perf_counter()]

    def next_epoch() -> None:
        if sys.stdin.readline().strip() != "epoch":
            raise Stop
        last[0] = time.perf_counter()

    def on_epoch_end(epoch: int, metrics: dict[str, float]) -> None:
        wall = time.perf_counter() - last[0]  # training + validation of this epoch
        train_s = metrics["epoch_seconds"]
        _say(
            {
                "epoch": epoch,
                "train_s": train_s,
                "val_s": wall - train_s,
                "val_ndcg": metrics["val_ndcg_at_10"],
                "loss": metrics["train_loss"],
            }
        )
        next_epoch()

    try:
        next_epoch()
        model.fit(features, train, on_epoch_end=on_epoch_end)
    except Stop:
        return


def _say(message: dict[str, Any]) -> None:
    print(MARK + json.dumps(message), flush=True)


@dataclass
class Side:
    """One child process and the epochs it has reported."""

    name: str
    process: subprocess.Popen[str]
    info: dict[str, Any] = field(default_factory=dict)
    epochs: list[dict[str, float]] = field(default_factory=list)

    @classmethod
    def start(cls, name: str, command: list[str]) -> Side:
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        side = cls(name, process)
        side.info = side._read()
        return side

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if MARK in line:  # anywhere: a progress bar may have left a line open
                message: dict[str, Any] = json.loads(line[line.index(MARK) + len(MARK) :])
                return message
        raise RuntimeError(f"{self.name} exited with code {self.process.wait()} before answering")

    def epoch(self) -> dict[str, float]:
        assert self.process.stdin is not None
        self.process.stdin.write("epoch\n")
        self.process.stdin.flush()
        result = self._read()
        self.epochs.append(result)
        print(
            f"  {self.name} epoch {len(self.epochs)}: train {result['train_s']:.1f} s, validate "
            f"{result['val_s']:.1f} s, val NDCG@10 {result['val_ndcg']:.4f}",
            file=sys.stderr,
            flush=True,
        )
        return result

    def stop(self) -> None:
        """Ask the child to stop; kill it if it is still running two minutes later (mid-epoch)."""
        assert self.process.stdin is not None
        try:
            self.process.stdin.write("stop\n")
            self.process.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        try:
            self.process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    @property
    def trained_s(self) -> float:
        return sum(e["train_s"] for e in self.epochs)

    def wants_more(self, budget_s: float, min_epochs: int) -> bool:
        """Another epoch while fewer than ``min_epochs`` ran, or while the next (as long as the
        median so far) still ends inside the budget."""
        if len(self.epochs) < min_epochs:
            return True
        return self.trained_s + self.epoch_median() <= budget_s

    def epoch_median(self) -> float:
        return statistics.median(e["train_s"] for e in self.epochs)

    def best_within(self, budget_s: float) -> tuple[float, int, float]:
        """(best validation NDCG@10, its epoch, training seconds to it) among the epochs that
        ended inside the budget."""
        best, at, elapsed, total = 0.0, 0, 0.0, 0.0
        for number, e in enumerate(self.epochs, start=1):
            total += e["train_s"]
            if total > budget_s:
                break
            if e["val_ndcg"] > best:
                best, at, elapsed = e["val_ndcg"], number, total
        return best, at, elapsed


def run(beauty: Path, venv: Path, threads: int, budget_s: float, min_epochs: int) -> list[Side]:
    recbole_python = ensure_venv(venv)
    settings = json.dumps(SETTINGS)
    with tempfile.TemporaryDirectory(prefix="recbole-data-") as data_dir:
        write_atomic_file(beauty, Path(data_dir))
        os.environ.update({"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)})  # children inherit it
        here = str(Path(__file__).resolve())
        sides: list[Side] = []
        try:
            sides.append(
                Side.start(
                    "RecBole",
                    [
                        str(recbole_python),
                        str(Path(here).with_name("recbole_child.py")),
                        data_dir,
                        str(threads),
                        settings,
                    ],
                )
            )
            sides.append(
                Side.start("ours", [sys.executable, here, "--ours-child", str(beauty), str(threads), settings])
            )
            for side in sides:
                info = side.info
                print(
                    f"{side.name}: {info['side']}, torch {info['torch']}, numpy {info['numpy']}, "
                    f"{info['threads']} threads ({info['interop_threads']} inter-op), {info['users']:,} users, "
                    f"{info['items']:,} items, {info['train_targets']:,} train targets, "
                    f"set up in {info['setup_s']:.1f} s",
                    file=sys.stderr,
                    flush=True,
                )
            while True:
                waiting = [s for s in sides if s.wants_more(budget_s, min_epochs)]
                if not waiting:
                    break
                min(waiting, key=lambda s: s.trained_s).epoch()  # the side behind in training time goes next
        finally:
            for side in sides:
                side.stop()
    return sides


def table(sides: list[Side], budget_s: float) -> str:
    head = [
        "side",
        "torch threads",
        "epochs",
        "s/epoch median [min-max]",
        "validation s/epoch",
        f"best val NDCG@10 within {budget_s / 60:g} min",
        "at epoch",
        "train s to it",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for side in sides:
        seconds = [e["train_s"] for e in side.epochs]
        best, at, elapsed = side.best_within(budget_s)
        lines.append(
            f"| {side.info['side']} | {side.info['threads']} | {len(seconds)} | {side.epoch_median():.1f} "
            f"[{min(seconds):.1f}-{max(seconds):.1f}] | {statistics.median(e['val_s'] for e in side.epochs):.1f} | "
            f"{best:.4f} | {at} | {elapsed:.0f} |"
        )
    return "\n".join(lines)


def result_line(sides: list[Side], budget_s: float) -> str:
    recbole, ours = sides
    speed = recbole.epoch_median() / ours.epoch_median()
    theirs = recbole.best_within(budget_s)[0]  # 0 when not one epoch of theirs fits the budget
    quality = ours.best_within(budget_s)[0] / theirs if theirs else float("nan")
    return f"RESULT sasrec_epoch_vs_recbole={speed:.2f} ndcg_at_equal_time_vs_recbole={quality:.2f}"


def section(sides: list[Side], budget_s: float, command: str) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    recbole, ours = sides
    per_epoch = "\n".join(
        f"- {side.name}, val NDCG@10 by epoch: " + ", ".join(f"{e['val_ndcg']:.4f}" for e in side.epochs)
        for side in sides
    )
    return "\n".join(
        [
            "<!-- recbole_speed -->",
            "## SASRec against RecBole 1.2.1, one run (`benchmarks/recbole_speed.py`)",
            "",
            f"`{command}` on {when}, {os.cpu_count()} cores ({cpu_name()}), no GPU; RecBole in its own "
            f"virtualenv (torch {recbole.info['torch']}, numpy {recbole.info['numpy']}), ours in the project's "
            f"(torch {ours.info['torch']}, numpy {ours.info['numpy']}). Amazon Beauty, {ours.info['users']:,} "
            f"users, {ours.info['items']:,} items; full-softmax cross-entropy, hidden 64, 2 layers, 2 heads, "
            "dropout 0.5, max length 50, batch 256, Adam 1e-3, on both sides; epochs interleaved (the side behind "
            "in training time goes next); validation (full ranking, train items masked) timed apart and "
            "outside the budget.",
            "",
            table(sides, budget_s),
            "",
            per_epoch,
            "",
            f"`{result_line(sides, budget_s)}`",
            "<!-- /recbole_speed -->",
        ]
    )


def update_results(text: str) -> None:
    """Replace this section of RESULTS.md (or append it)."""
    replace_section(RESULTS, "recbole_speed", text)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--ours-child":
        ours_child(Path(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--beauty", type=Path, default=BEAUTY, help="Beauty.txt of the S3-Rec 5-core file")
    parser.add_argument("--venv", type=Path, default=ROOT / ".venv-recbole", help="RecBole's own virtualenv")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of each side")
    parser.add_argument("--budget-minutes", type=float, default=10.0, help="training time each side gets")
    parser.add_argument("--min-epochs", type=int, default=3, help="epochs each side runs at least")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()
    if not args.beauty.exists():
        sys.exit(f"recbole_speed: no Beauty file at {args.beauty}; pass --beauty PATH to Beauty.txt")
    command = "python benchmarks/recbole_speed.py " + shlex.join(sys.argv[1:])
    budget_s = args.budget_minutes * 60
    started = time.perf_counter()
    sides = run(args.beauty, args.venv, args.threads, budget_s, args.min_epochs)
    print(table(sides, budget_s))
    text = section(sides, budget_s, command.strip())
    if not args.no_write:
        update_results(text)
    print(f"wall {time.perf_counter() - started:.0f} s", file=sys.stderr)
    print(result_line(sides, budget_s), flush=True)


if __name__ == "__main__":
    main()
