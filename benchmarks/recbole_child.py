"""RecBole 1.2.1's SASRec on Amazon Beauty, one training epoch per request: the RecBole side of
``benchmarks/recbole_speed.py``, run by the python of RecBole's own virtualenv (it never imports
recsys_lib, and the project's environment never imports RecBole).

    <venv>/bin/python benchmarks/recbole_child.py <dir with Beauty/Beauty.inter> <threads> <settings json>

Speaks the line protocol of recbole_speed.py on stdout (lines starting ``@@ ``; RecBole's own
logging may print anything else): one ``ready`` message with versions and sizes, then for each
``epoch`` line read on stdin one epoch of training (timed alone) and one full-ranking validation
(timed apart), answered with their seconds and the validation NDCG@10; ``stop`` ends it.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from typing import Any


def say(message: dict[str, object]) -> None:
    print("@@ " + json.dumps(message), flush=True)


def main() -> None:
    data_dir, threads, settings = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
    del sys.argv[1:]  # RecBole's Config reads ``--key=value`` settings from the command line
    import torch

    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory(prefix="recbole-") as cwd:
        os.chdir(cwd)  # RecBole writes log_tensorboard/ and saved/ into the cwd
        serve(data_dir, settings)


def serve(data_dir: str, settings: dict[str, Any]) -> None:
    """Set RecBole's SASRec up on the data, say ``ready``, then answer ``epoch`` requests."""
    import numpy as np
    import recbole
    import torch
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.model.sequential_recommender import SASRec
    from recbole.trainer import Trainer
    from recbole.utils import init_seed

    started = time.perf_counter()
    config = Config(
        model="SASRec",
        dataset="Beauty",
        config_dict={
            "data_path": data_dir,
            "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
            "loss_type": "CE",
            "train_neg_sample_args": None,  # full-softmax cross-entropy over every item
            "hidden_size": settings["dim"],
            "inner_size": settings["dim"] * 4,
            "n_layers": settings["layers"],
            "n_heads": settings["heads"],
            "hidden_dropout_prob": settings["dropout"],
            "attn_dropout_prob": settings["dropout"],
            "MAX_ITEM_LIST_LENGTH": settings["max_length"],
            "train_batch_size": settings["batch_size"],
            "eval_batch_size": 4096,
            "learning_rate": settings["learning_rate"],
            "weight_decay": 0.0,
            "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "mode": "full", "group_by": "user"},
            "metrics": ["NDCG"],
            "topk": [10],
            "valid_metric": "NDCG@10",
            "seed": settings["seed"],
            "reproducibility": True,
            "show_progress": False,
            "gpu_id": "",
        },
    )
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    train_data, valid_data, _test = data_preparation(config, dataset)  # the test split is never scored
    model = SASRec(config, train_data.dataset).to(config["device"])
    trainer = Trainer(config, model)
    say(
        {
            "ready": True,
            "side": f"RecBole {recbole.__version__} SASRec",
            "torch": torch.__version__,
            "numpy": np.__version__,
            "threads": torch.get_num_threads(),
            "interop_threads": torch.get_num_interop_threads(),
            "parallel": torch.__config__.parallel_info().splitlines()[:6],
            "users": dataset.user_num - 1,  # RecBole's index 0 is padding
            "items": dataset.item_num - 1,
            "train_targets": len(train_data.dataset),  # one sample per prefix: one per target
            "setup_s": time.perf_counter() - started,
        }
    )
    for epoch, line in enumerate(sys.stdin):
        if line.strip() != "epoch":
            break
        tick = time.perf_counter()
        loss = trainer._train_epoch(train_data, epoch)  # RecBole's own epoch, as Trainer.fit runs it
        trained = time.perf_counter()
        score, _ = trainer._valid_epoch(valid_data)  # full ranking, the user's train items masked
        validated = time.perf_counter()
        say(
            {
                "epoch": epoch,
                "train_s": trained - tick,
                "val_s": validated - trained,
                "val_ndcg": float(score),
                "loss": float(loss if not isinstance(loss, tuple) else sum(loss)),
            }
        )


if __name__ == "__main__":
    main()
