"""The data's splits, and the in-memory loader that serves their mini-batches.

:func:`make_splits` holds out a stratified validation set from Fashion-MNIST's training
images (:func:`stratified_subset`) and measures the training pixels' moments;
:class:`ArrayLoader` serves shuffled, normalised mini-batches from tensors in memory, the
same order for the same seed and epoch. Finding and verifying the files is
:mod:`fashion_optim.data`'s.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from .data import FashionMNIST, load_fashion_mnist

__all__ = ["ArrayLoader", "Splits", "make_splits", "stratified_subset"]


# --------------------------------------------------------------------------- splits


@dataclass(frozen=True)
class Splits:
    """Train / validation / test tensors and the training split's normalisation.

    ``mean`` and ``std`` are computed on the training split only (pixel values in [0, 1]).
    ``train_index`` and ``val_index`` are the rows of the 60,000 original training images
    that went to each part.
    """

    train_images: torch.Tensor
    train_labels: torch.Tensor
    val_images: torch.Tensor
    val_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    mean: float
    std: float
    train_index: torch.Tensor
    val_index: torch.Tensor
    data_checksum: str = ""

    def loader(
        self,
        part: str,
        batch_size: int = 128,
        *,
        shuffle: bool | None = None,
        seed: int = 0,
        subset: int | None = None,
    ) -> ArrayLoader:
        """An :class:`ArrayLoader` over ``part`` ("train", "val" or "test").

        ``subset`` keeps a stratified subset of that many images (same seed, same subset).
        Shuffling defaults to on for "train" and off otherwise.
        """
        if part not in ("train", "val", "test"):
            raise ValueError(f"part must be 'train', 'val' or 'test', got {part!r}.")
        images = getattr(self, f"{part}_images")
        labels = getattr(self, f"{part}_labels")
        if subset is not None:
            idx = stratified_subset(labels, subset, seed=seed)
            images, labels = images[idx], labels[idx]
        return ArrayLoader(
            images,
            labels,
            batch_size=batch_size,
            shuffle=(part == "train") if shuffle is None else shuffle,
            seed=seed,
            mean=self.mean,
            std=self.std,
        )


def stratified_subset(labels: torch.Tensor, size: int, *, seed: int = 0) -> torch.Tensor:
    """Indices of a class-balanced random subset of ``size`` items, in a random order."""
    n = len(labels)
    if not 0 < size <= n:
        raise ValueError(f"subset size must be in [1, {n}], got {size}.")
    if size == n:
        return torch.arange(n)
    gen = torch.Generator().manual_seed(seed)
    classes = torch.unique(labels)
    per_class = [torch.nonzero(labels == c).flatten() for c in classes]
    # Largest-remainder allocation so class shares match the full set.
    counts = np.array([len(ix) for ix in per_class], dtype=float)
    quota = counts / counts.sum() * size
    take = np.floor(quota).astype(int)
    for i in np.argsort(-(quota - take), kind="stable")[: size - take.sum()]:
        take[i] += 1
    chosen = [
        ix[torch.randperm(len(ix), generator=gen)[:k]]
        for ix, k in zip(per_class, take, strict=True)
    ]
    out = torch.cat(chosen)
    return out[torch.randperm(len(out), generator=gen)]


def _pixel_moments(images: torch.Tensor) -> tuple[float, float]:
    """Mean and sample standard deviation of ``images / 255`` for ``uint8`` images.

    Computed from the 256-bin histogram of the pixel values: exact up to the rounding of
    the final float64 sums, without a float64 copy of the pixels (which took 300 MiB for
    the 50,000 training images and set the peak memory of an experiment).
    """
    counts = torch.bincount(images.reshape(-1), minlength=256).double()
    values = torch.arange(256, dtype=torch.float64) / 255.0
    n = counts.sum()
    mean = (counts * values).sum() / n
    var = (counts * (values - mean) ** 2).sum() / (n - 1)
    return float(mean), float(var.sqrt())


def make_splits(
    data: FashionMNIST | None = None, *, val_size: int = 10_000, split_seed: int = 0
) -> Splits:
    """Split the 60,000 training images into train and validation, stratified by class.

    The 10,000 test images stay held out. The split is fixed by ``split_seed``.
    """
    if data is None:
        data = load_fashion_mnist()
    n = len(data.train_labels)
    if not 0 < val_size < n:
        raise ValueError(f"val_size must be in [1, {n - 1}], got {val_size}.")
    val_idx = stratified_subset(data.train_labels, val_size, seed=split_seed)
    mask = torch.ones(n, dtype=torch.bool)
    mask[val_idx] = False
    train_idx = torch.nonzero(mask).flatten()
    val_idx = val_idx.sort().values
    train_images = data.train_images[train_idx]
    mean, std = _pixel_moments(train_images)
    return Splits(
        train_images=train_images,
        train_labels=data.train_labels[train_idx],
        val_images=data.train_images[val_idx],
        val_labels=data.train_labels[val_idx],
        test_images=data.test_images,
        test_labels=data.test_labels,
        mean=mean,
        std=std,
        train_index=train_idx,
        val_index=val_idx,
        data_checksum=data.checksum,
    )


# --------------------------------------------------------------------------- loader


class ArrayLoader:
    """Mini-batches from in-memory ``uint8`` images, normalised on the fly.

    No per-item Python work and no PIL conversion: a batch is one fancy-index, one cast
    and one affine map. Shuffling is deterministic: the order of epoch ``e`` depends only
    on ``seed`` and ``e`` (see :meth:`set_epoch`), so a resumed run sees the same batches.

    Parameters
    ----------
    images : torch.Tensor
        ``uint8`` of shape ``[N, 28, 28]`` (or ``[N, 1, 28, 28]``), or float of shape
        ``[N, 1, H, W]`` already normalised (then ``mean``/``std`` are not applied).
    labels : torch.Tensor
        ``int64`` of shape ``[N]``.
    batch_size : int
    shuffle : bool
    seed : int
    mean, std : float
        Applied to ``images / 255`` when the images are ``uint8``.
    drop_last : bool
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int = 128,
        *,
        shuffle: bool = False,
        seed: int = 0,
        mean: float = 0.0,
        std: float = 1.0,
        drop_last: bool = False,
    ) -> None:
        if not isinstance(images, torch.Tensor) or not isinstance(labels, torch.Tensor):
            raise TypeError("images and labels must be torch tensors.")
        if images.dtype == torch.uint8:
            if images.ndim == 3:
                images = images.unsqueeze(1)
        elif not images.is_floating_point():
            raise TypeError(f"images must be uint8 or floating point, got {images.dtype}.")
        if images.ndim != 4:
            raise ValueError(
                f"images must have shape [N, H, W] (uint8) or [N, C, H, W], got "
                f"{tuple(images.shape)}."
            )
        if labels.dtype != torch.int64 or labels.ndim != 1:
            raise TypeError(
                f"labels must be a 1-d int64 tensor, got {labels.dtype} of shape "
                f"{tuple(labels.shape)}; use labels.long()."
            )
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels.")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
        if std <= 0:
            raise ValueError(f"std must be > 0, got {std}.")
        self.images = images
        self.labels = labels
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.seed = seed
        self.mean = mean
        self.std = std
        self.drop_last = drop_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the shuffling order: epoch ``e`` always gives the same order."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        n = len(self.labels)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    @property
    def dataset_size(self) -> int:
        return len(self.labels)

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.uint8:
            return (x.float() * (1.0 / 255.0) - self.mean) / self.std
        return x

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.labels)
        if self.shuffle:
            gen = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            order = torch.randperm(n, generator=gen)
        else:
            order = None
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            stop = min(start + self.batch_size, n)
            if order is None:
                x, y = self.images[start:stop], self.labels[start:stop]
            else:
                idx = order[start:stop]
                x, y = self.images[idx], self.labels[idx]
            yield self._prepare(x), y
