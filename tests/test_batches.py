"""Batches: the stratified splits, their normalisation, and the in-memory loader."""

from __future__ import annotations

import math

import pytest
import torch

from fashion_optim import batches as fb
from fashion_optim.batches import ArrayLoader, stratified_subset


def test_splits_disjoint_and_stratified(fashion, splits):
    assert len(splits.train_labels) == 50000 and len(splits.val_labels) == 10000
    assert torch.bincount(splits.train_labels).tolist() == [5000] * 10
    assert torch.bincount(splits.val_labels).tolist() == [1000] * 10
    # disjoint, and together every original training image exactly once
    both = torch.cat([splits.train_index, splits.val_index])
    assert torch.equal(both.sort().values, torch.arange(60000))
    assert torch.equal(splits.val_images, fashion.train_images[splits.val_index])
    assert torch.equal(splits.train_labels, fashion.train_labels[splits.train_index])
    # normalisation statistics come from the training split only
    pixels = splits.train_images.double() / 255
    assert splits.mean == pytest.approx(float(pixels.mean()))
    assert splits.std == pytest.approx(float(pixels.std()))
    assert splits.mean != pytest.approx(float(fashion.train_images.double().mean() / 255), abs=0)


def test_split_is_fixed_by_seed(fashion):
    a = fb.make_splits(fashion, split_seed=0)
    b = fb.make_splits(fashion, split_seed=0)
    c = fb.make_splits(fashion, split_seed=1)
    assert torch.equal(a.val_labels, b.val_labels) and torch.equal(a.val_images, b.val_images)
    assert not torch.equal(a.val_images, c.val_images)


def test_stratified_subset():
    labels = torch.arange(10).repeat(100)
    idx = stratified_subset(labels, 250, seed=0)
    assert len(set(idx.tolist())) == 250
    counts = torch.bincount(labels[idx], minlength=10)
    assert counts.max() - counts.min() <= 1
    assert torch.equal(idx, stratified_subset(labels, 250, seed=0))
    with pytest.raises(ValueError, match=r"subset size must be in \[1, 1000\]"):
        stratified_subset(labels, 0)


def test_loader_normalises_and_shuffles_deterministically():
    images = torch.arange(10 * 28 * 28).reshape(10, 28, 28).remainder(256).to(torch.uint8)
    labels = torch.arange(10)
    loader = ArrayLoader(images, labels, batch_size=4, shuffle=True, seed=1, mean=0.5, std=0.25)
    assert len(loader) == 3
    batches = list(loader)
    assert [len(y) for _, y in batches] == [4, 4, 2]
    x, y = batches[0]
    assert x.shape == (4, 1, 28, 28) and x.dtype == torch.float32
    expected = (images[y].float() / 255 - 0.5) / 0.25
    torch.testing.assert_close(x[:, 0], expected)
    order = torch.cat([y for _, y in batches])
    assert sorted(order.tolist()) == list(range(10))
    assert torch.equal(order, torch.cat([y for _, y in loader]))  # same epoch, same order
    loader.set_epoch(1)
    assert not torch.equal(order, torch.cat([y for _, y in loader]))
    loader.set_epoch(0)
    assert torch.equal(order, torch.cat([y for _, y in loader]))


def test_loader_rejects_bad_input():
    images = torch.zeros(4, 28, 28, dtype=torch.uint8)
    with pytest.raises(TypeError, match="int64"):
        ArrayLoader(images, torch.zeros(4, dtype=torch.int32))
    with pytest.raises(ValueError, match="4 images but 3 labels"):
        ArrayLoader(images, torch.zeros(3, dtype=torch.int64))
    with pytest.raises(TypeError, match="uint8 or floating point"):
        ArrayLoader(images.int(), torch.zeros(4, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"shape \[N, H, W\]"):
        ArrayLoader(torch.zeros(4, 28, dtype=torch.uint8), torch.zeros(4, dtype=torch.int64))


def test_splits_loader_subset(splits):
    loader = splits.loader("train", batch_size=100, subset=1000, seed=0)
    assert loader.dataset_size == 1000 and len(loader) == 10
    assert torch.bincount(loader.labels).tolist() == [100] * 10
    with pytest.raises(ValueError, match="part must be"):
        splits.loader("validation")


@pytest.mark.parametrize("values", [[0], [255, 255], [0, 255], None])
def test_pixel_moments_match_float64_mean_and_std(values):
    if values is None:
        images = torch.randint(0, 256, (64, 1, 28, 28), generator=torch.Generator().manual_seed(0))
        images = images.to(torch.uint8)
    else:
        images = torch.tensor(values, dtype=torch.uint8)
    pixels = images.double() / 255
    mean, std = fb._pixel_moments(images)
    assert mean == pytest.approx(float(pixels.mean()), rel=1e-12, abs=1e-15)
    expected_std = float(pixels.std()) if pixels.numel() > 1 else math.nan
    if math.isnan(expected_std):
        assert math.isnan(std)
    else:
        assert std == pytest.approx(expected_std, rel=1e-12, abs=1e-15)
