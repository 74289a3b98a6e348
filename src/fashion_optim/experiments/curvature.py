"""The cached kind "sharpness": the largest eigenvalue of the Hessian of the training
loss at some snapshots of a run, by the Lanczos method on Hessian-vector products
(:func:`~fashion_optim.curvature.top_hessian_eigenvalue`, ``which="largest"``). Its
configuration, its parts (one snapshot each, on one thread, in any process) and its
typed result are stated here; its code is part of its cache key (see
:mod:`~fashion_optim.experiments.cache`)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .. import curvature
from ..batches import ArrayLoader, stratified_subset
from ..models import model_with_weights
from . import train as _train
from .train import TRAIN_THREADS, threads

__all__ = ["Checkpoint", "Sharpness", "SharpnessTask", "sharpness_batch"]


def sharpness_batch(
    seed: int, train_subset: int | None, images: int, subset_seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed, class-stratified sample of ``images`` of the training images a run of
    ``seed`` trained on (its ``train_subset``, or the whole training split), drawn with
    ``subset_seed`` and normalised as training normalises them: the images the loss's
    Hessian is measured on."""
    splits = _train.get_splits()
    x, y = splits.train_images, splits.train_labels
    if train_subset is not None:
        idx = stratified_subset(y, train_subset, seed=seed)  # the run's own subset
        x, y = x[idx], y[idx]
    idx = stratified_subset(y, images, seed=subset_seed)
    loader = ArrayLoader(x[idx], y[idx], images, mean=splits.mean, std=splits.std)
    return next(iter(loader))


def _model_at(weights: np.ndarray) -> torch.nn.Module:
    """The CNN with its parameters set to a copy of ``weights`` (``[P]``, flat)."""
    return model_with_weights(weights)


@dataclass(frozen=True)
class Checkpoint:
    """A part of a sharpness entry: :math:`\\lambda_{max}` of the loss's Hessian at one
    snapshot's ``weights``, on one thread."""

    weights: np.ndarray = field(repr=False)
    step: int
    seed: int
    train_subset: int | None
    images: int
    subset_seed: int
    max_iter: int
    tol: float
    start_seed: int
    label: str = ""

    @property
    def cost(self) -> int:
        return self.max_iter * self.images

    def compute(self, **_: Any) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        start = time.perf_counter()
        x, y = sharpness_batch(self.seed, self.train_subset, self.images, self.subset_seed)
        with threads(TRAIN_THREADS):
            est = curvature.top_hessian_eigenvalue(
                _model_at(self.weights),
                x,
                y,
                max_iter=self.max_iter,
                tol=self.tol,
                seed=self.start_seed,
                which="largest",
            )
        return {"history": np.asarray(est.history, dtype=np.float64)}, {
            "value": est.value,
            "iterations": est.iterations,
            "converged": est.converged,
            "wall_time": time.perf_counter() - start,
        }


@dataclass
class Sharpness:
    """The largest Hessian eigenvalue of a run's training loss at some of its snapshots.

    Attributes
    ----------
    steps : numpy.ndarray
        ``[k]`` optimizer steps of the snapshots measured.
    values : numpy.ndarray
        ``[k]`` :math:`\\lambda_{max}` at each (nat per squared weight unit).
    converged : numpy.ndarray
        ``[k]`` bool: whether the Ritz residual fell to the relative ``tol`` within
        ``max_iter`` Hessian-vector products.
    iterations : numpy.ndarray
        ``[k]`` Hessian-vector products used at each.
    history : numpy.ndarray
        ``[k, max_iter]`` the estimate after each product (NaN after the last); it only
        grows towards :math:`\\lambda_{max}`.
    images : int
        The training images the loss is measured on (a fixed stratified sample).
    max_iter : int
    tol : float
    wall_time : float
        Seconds the estimates took, summed over the snapshots.
    """

    steps: np.ndarray
    values: np.ndarray
    converged: np.ndarray
    iterations: np.ndarray
    history: np.ndarray
    images: int
    max_iter: int
    tol: float
    wall_time: float


@dataclass(frozen=True)
class SharpnessTask:
    """The kind ``"sharpness"``: :math:`\\lambda_{max}` at the snapshots ``steps`` of a run
    (keyed on the run's own key), on a fixed sample of its training images."""

    kind = "sharpness"
    run_key: str
    steps: tuple[int, ...]
    weights: tuple[np.ndarray, ...] = field(repr=False)
    seed: int
    train_subset: int | None
    images: int
    subset_seed: int
    max_iter: int
    tol: float
    start_seed: int
    name: str = ""

    @property
    def label(self) -> str:
        return f"the sharpness of a run ({self.name}) at {len(self.steps)} snapshots"

    @property
    def cost(self) -> int:
        return len(self.steps) * self.max_iter * self.images

    def key_config(self) -> dict[str, Any]:
        return {
            "run": self.run_key,
            "steps": [int(s) for s in self.steps],
            "images": self.images,
            "subset_seed": self.subset_seed,
            "max_iter": self.max_iter,
            "tol": self.tol,
            "start_seed": self.start_seed,
            "threads": TRAIN_THREADS,
        }

    def plan(self, lookup: Any) -> list[Checkpoint]:
        return [
            Checkpoint(
                w,
                int(step),
                self.seed,
                self.train_subset,
                self.images,
                self.subset_seed,
                self.max_iter,
                self.tol,
                self.start_seed,
                self.label,
            )
            for step, w in zip(self.steps, self.weights, strict=True)
        ]

    def merge(self, parts: Sequence[tuple[dict, dict]]) -> tuple[dict, dict]:
        history = np.full((len(parts), self.max_iter), np.nan)
        for i, (arrays, _) in enumerate(parts):
            history[i, : len(arrays["history"])] = arrays["history"]
        metas = [meta for _, meta in parts]
        arrays = {
            "steps": np.asarray(self.steps, dtype=np.int64),
            "values": np.array([m["value"] for m in metas], dtype=np.float64),
            "converged": np.array([m["converged"] for m in metas], dtype=bool),
            "iterations": np.array([m["iterations"] for m in metas], dtype=np.int64),
            "history": history,
        }
        return arrays, {"wall_time": float(sum(m["wall_time"] for m in metas))}

    def load(self, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> Sharpness:
        return Sharpness(
            steps=arrays["steps"],
            values=arrays["values"],
            converged=arrays["converged"],
            iterations=arrays["iterations"],
            history=arrays["history"],
            images=self.images,
            max_iter=self.max_iter,
            tol=self.tol,
            wall_time=float(meta["wall_time"]),
        )
