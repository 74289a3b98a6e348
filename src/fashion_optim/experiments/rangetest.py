"""The computation behind a cached learning-rate range test (its code is part of the
test's cache key, see :mod:`~fashion_optim.experiments.cache`)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import lr_finder
from ..models import make_model
from . import train as _train
from .specs import RunConfig, build_optimizer
from .train import TRAIN_THREADS, threads

__all__ = ["compute_range_test"]


def compute_range_test(
    cfg: RunConfig,
    seed: int,
    *,
    start_lr: float,
    end_lr: float,
    num_iter: int,
    smooth: float,
    progress: bool | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Run :func:`fashion_optim.lr_finder.range_test` on ``cfg``'s model and optimizer, built
    with ``seed`` as a run builds them; return the arrays and metadata of a cache entry."""
    splits = _train.get_splits()
    train = splits.loader("train", cfg.batch_size, seed=seed, subset=cfg.train_subset)
    with threads(TRAIN_THREADS):
        torch.manual_seed(seed)
        model = make_model("lenet", dropout=cfg.dropout)
        optimizer = build_optimizer(cfg, model.parameters(), lr=start_lr)
        start = time.perf_counter()
        res = lr_finder.range_test(
            model,
            nn.CrossEntropyLoss(),
            optimizer,
            train,
            start_lr=start_lr,
            end_lr=end_lr,
            num_iter=num_iter,
            smooth=smooth,
            progress=progress,
        )
    arrays = {"lrs": res.lrs, "losses": res.losses, "smoothed": res.smoothed}
    meta = {
        "suggested_lr": res.suggested_lr,
        "lr_min": res.lr_min,
        "lr_max": res.lr_max,
        "diverged": res.diverged,
        "stopped_at": res.stopped_at,
        "step_mode": res.step_mode,
        "wall_time": time.perf_counter() - start,
    }
    return arrays, meta
