"""The cached kind "range_test": the learning-rate range test of a run's model and
optimizer. Its configuration, its computation and its typed result
(:class:`~fashion_optim.lr_finder.RangeTestResult`) are stated here; its code is part of the
test's cache key (see :mod:`~fashion_optim.experiments.cache`)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import lr_finder
from ..models import make_model
from . import train as _train
from .specs import RunConfig, build_optimizer
from .train import TRAIN_THREADS, threads

__all__ = ["RangeTestTask", "compute_range_test"]


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


@dataclass(frozen=True)
class RangeTestTask:
    """The kind ``"range_test"``: ``cfg``'s model and optimizer, built with ``seed``,
    over a ramp of ``num_iter`` mini-batches from ``start_lr`` to ``end_lr``."""

    kind = "range_test"
    cfg: RunConfig
    seed: int
    start_lr: float
    end_lr: float
    num_iter: int
    smooth: float
    name: str = ""

    @property
    def label(self) -> str:
        return f"the range test of {self.name!r} (seed {self.seed})"

    @property
    def cost(self) -> int:
        return self.num_iter

    def key_config(self) -> dict[str, Any]:
        cfg = self.cfg
        return {
            "optimizer": cfg.optimizer,
            "optimizer_kwargs": cfg.optimizer_kwargs,
            "batch_size": cfg.batch_size,
            "dropout": cfg.dropout,
            "train_subset": cfg.train_subset,
            "start_lr": self.start_lr,
            "end_lr": self.end_lr,
            "num_iter": self.num_iter,
            "smooth": self.smooth,
            "seed": self.seed,
            "threads": TRAIN_THREADS,
        }

    def plan(self, lookup: Any) -> list[RangeTestTask]:
        return [self]

    def compute(self, **kwargs: Any) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return compute_range_test(
            self.cfg,
            self.seed,
            start_lr=self.start_lr,
            end_lr=self.end_lr,
            num_iter=self.num_iter,
            smooth=self.smooth,
            progress=kwargs.get("progress"),
        )

    def merge(self, parts: Sequence[tuple[dict, dict]]) -> tuple[dict, dict]:
        return parts[0]

    def load(
        self, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]
    ) -> lr_finder.RangeTestResult:
        return lr_finder.RangeTestResult(
            lrs=arrays["lrs"],
            losses=arrays["losses"],
            smoothed=arrays["smoothed"],
            suggested_lr=meta["suggested_lr"],
            lr_min=meta["lr_min"],
            lr_max=meta["lr_max"],
            diverged=meta["diverged"],
            stopped_at=meta["stopped_at"],
            step_mode=meta["step_mode"],
        )
