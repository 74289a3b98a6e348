"""The computation behind a run: train one :class:`RunConfig` with one seed.

This module and what it imports is the code a run's result depends on: its source
(without docstrings) is part of every run's cache key. It knows nothing of caches,
processes or executors, so none of those can change a result.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import pin
from ..data import Splits, make_splits
from ..models import make_model
from ..training import Recorder, Trainer, resolve_device
from .specs import RunConfig, build_optimizer, build_scheduler

__all__ = ["DIVERGE_THRESHOLD", "TRAIN_THREADS", "environment", "get_splits", "threads", "train"]

#: The CPU threads every training run uses (``torch.set_num_threads`` while it trains).
#: Fixed, so that a result does not depend on the machine's number of cores: a sum split
#: over two threads rounds differently.
TRAIN_THREADS = 1

#: A run stops with :class:`~fashion_optim.training.TrainingDivergedError` when a
#: mini-batch loss exceeds this multiple of its first one (about 2.3 for ten classes).
DIVERGE_THRESHOLD = 100.0


@cache
def get_splits() -> Splits:
    """The data splits, loaded and verified once per process."""
    return make_splits()


def environment() -> dict[str, Any]:
    """Versions and hardware of this process, for the record."""
    import torchvision

    device = resolve_device("auto")
    return {
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "device": str(device),
        "device_name": (
            torch.cuda.get_device_name(device)
            if device.type == "cuda"
            else platform.processor() or platform.machine()
        ),
        "threads": torch.get_num_threads(),
        "pin": pin.status(),  # the kernels this process trained with, checked here
    }


@contextmanager
def threads(n: int = TRAIN_THREADS) -> Iterator[None]:
    """Run the body with ``torch.set_num_threads(n)``, then restore the caller's count."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train(
    cfg: RunConfig,
    seed: int,
    *,
    progress: bool | None = None,
    extra_recorders: Sequence[Recorder] = (),
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Train ``cfg`` with ``seed`` on :data:`TRAIN_THREADS` thread; return the arrays
    (``history/*``, ``record/*``, ``predictions/test``: the predicted class of each
    test image, in the test set's order) and the metadata (test metrics, sizes, wall time) that
    a cache entry holds.

    ``extra_recorders`` watch the run without changing it (a progress reporter).
    """
    with threads(TRAIN_THREADS):
        splits = get_splits()
        train_loader = splits.loader("train", cfg.batch_size, seed=seed, subset=cfg.train_subset)
        val = splits.loader("val", 1000, subset=cfg.val_subset)
        test = splits.loader("test", 1000)
        torch.manual_seed(seed)  # same seed, same initial weights, whatever the optimizer
        model = make_model("lenet", dropout=cfg.dropout)
        optimizer = build_optimizer(cfg, model.parameters())
        scheduler = build_scheduler(cfg, optimizer, len(train_loader))
        recorders = cfg.record.recorders()
        trainer = Trainer(
            model,
            nn.CrossEntropyLoss(),
            optimizer,
            scheduler,
            seed=seed,
            recorders=[*recorders, *extra_recorders],
            progress=progress,
            diverge_threshold=DIVERGE_THRESHOLD,
        )
        start = time.perf_counter()
        history = trainer.fit(train_loader, val, epochs=cfg.epochs)
        test_loss, test_acc, predictions = trainer.evaluate_predictions(test)
        arrays: dict[str, np.ndarray] = {"predictions/test": predictions}
        for rec in recorders:
            arrays.update({f"record/{k}": v for k, v in rec.result().items()})
        for k, v in history.to_dict().items():
            arrays[f"history/{k}"] = np.asarray(v, dtype=np.float64)
        meta = {
            "seed": seed,
            "test_loss": test_loss,
            "test_acc": test_acc,
            "wall_time": time.perf_counter() - start,
            "train_size": train_loader.dataset_size,
            "val_size": val.dataset_size,
            "steps_per_epoch": len(train_loader),
            "environment": environment(),
        }
        return arrays, meta
