"""Shared pieces of the benchmarks: timing, FLOP counts, the reference loop, the ceiling.

Everything here measures *within one process and one run*: the machine is shared, so an
absolute number means little, while the ratio of two variants measured in alternation,
repeated and summarised by the median, is stable. See ``benchmarks/README.md``.
"""

from __future__ import annotations

import math
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn

from fashion_optim import batches
from fashion_optim import data as fdata
from fashion_optim.experiments import NOTE_RECORD
from fashion_optim.experiments.train import threads
from fashion_optim.models import LeNet
from fashion_optim.training import Trainer

# --------------------------------------------------------------------------- timing


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else math.nan


def interleave(
    variants: dict[str, Callable[[bool], float]], rounds: int, *, warmup: bool = True
) -> dict[str, list[float]]:
    """Call every variant once per round, in a rotating order; return each one's values.

    ``variants[name](warm_up)`` returns one measurement (e.g. images/s); it is first
    called once with ``True`` (a short untimed warm-up), then ``rounds`` times with
    ``False``. Rotating the order spreads a slow spell of the machine over all variants
    instead of one.
    """
    names = list(variants)
    if warmup:
        for name in names:
            variants[name](True)
    out: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            out[name].append(variants[name](False))
    return out


def paired_ratios(a: Sequence[float], b: Sequence[float]) -> list[float]:
    """Per-round ratios a/b (the two were measured side by side in each round)."""
    return [x / y for x, y in zip(a, b, strict=True)]


# --------------------------------------------------------------------------- FLOPs


def analytic_train_flops(model: nn.Module, image_shape=(1, 28, 28)) -> dict[str, float]:
    """Training FLOPs per image from the layer shapes.

    Forward multiply-accumulates of every convolution and linear layer (found with
    forward hooks on one image), x2 FLOPs per MAC, x3 for forward + backward (the usual
    convention: the backward pass computes the gradients of the inputs and of the
    weights, each about one forward's worth).
    """
    macs: dict[str, int] = {}
    hooks = []

    def hook(name):
        def fn(mod, inp, out):
            if isinstance(mod, nn.Conv2d):
                k = (mod.in_channels // mod.groups) * math.prod(mod.kernel_size)
                macs[name] = out[0].numel() * k
            elif isinstance(mod, nn.Linear):
                macs[name] = mod.in_features * mod.out_features

        return fn

    for name, mod in model.named_modules():
        if isinstance(mod, nn.Conv2d | nn.Linear):
            hooks.append(mod.register_forward_hook(hook(name)))
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, *image_shape))
    model.train(was_training)
    for h in hooks:
        h.remove()
    forward = 2 * sum(macs.values())
    return {"forward_macs": sum(macs.values()), "forward": forward, "train": 3 * forward}


def counted_train_flops(model: nn.Module, batch: int = 64) -> dict[str, float] | None:
    """Training FLOPs per image from :class:`torch.utils.flop_counter.FlopCounterMode`.

    Counts what the dispatcher really runs: the first convolution gets no input-gradient
    (the images do not require a gradient), so this is a little under the x3 rule.
    Returns None if the counter does not work here.
    """
    try:
        from torch.utils.flop_counter import FlopCounterMode
    except ImportError:  # pragma: no cover - very old torch
        return None
    x = torch.randn(batch, 1, 28, 28)
    y = torch.randint(0, 10, (batch,))
    loss_fn = nn.CrossEntropyLoss()
    try:
        with FlopCounterMode(display=False) as fwd:
            loss = loss_fn(model(x), y)
        forward = fwd.get_total_flops()
        with FlopCounterMode(display=False) as bwd:
            loss.backward()
        backward = bwd.get_total_flops()
    except Exception:
        return None
    model.zero_grad(set_to_none=True)
    return {
        "forward": forward / batch,
        "backward": backward / batch,
        "train": (forward + backward) / batch,
    }


# --------------------------------------------------------------------------- ceiling


def matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    """float32 GFLOP/s of ``n x n @ n x n`` (2 n^3 FLOPs each), median of ``repeats``,
    with the current number of threads."""
    a = torch.randn(n, n)
    b = torch.randn(n, n)
    c = torch.empty(n, n)
    torch.mm(a, b, out=c)  # warm-up: MKL picks its kernels, pages are touched
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b, out=c)
        times.append(time.perf_counter() - t0)
    return 2 * n**3 / median(times) / 1e9


def ceiling_gflops(n: int = 2048, repeats: int = 3) -> dict[str, float]:
    """The machine's float32 ceiling: the matmul rate with every core and with one
    thread (on a busy machine one thread can win); ``ceiling`` is the larger."""
    cores = os.cpu_count() or 1
    with threads(cores):
        all_cores = matmul_gflops(n, repeats)
    with threads(1):
        one = matmul_gflops(n, repeats)
    return {"all_cores": all_cores, "one_thread": one, "ceiling": max(all_cores, one)}


# --------------------------------------------------------------------------- training


def make_trainer(record: bool = False, seed: int = 0, foreach: bool | None = None) -> Trainer:
    """The note's model and optimizer (SGD + momentum, lr 0.01), no progress bar.

    ``foreach`` is passed to ``torch.optim.SGD`` (None: torch's default)."""
    torch.manual_seed(seed)
    model = LeNet()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, foreach=foreach)
    recorders = NOTE_RECORD.recorders() if record else ()
    return Trainer(
        model, nn.CrossEntropyLoss(), opt, device="cpu", seed=seed, recorders=recorders,
        progress=False,
    )  # fmt: skip


def trainer_images_per_s(
    splits: batches.Splits,
    batch_size: int,
    images: int,
    *,
    record: bool = False,
    seed: int = 0,
    foreach: bool | None = None,
) -> float:
    """Images/s of one epoch of :meth:`Trainer.fit` over a stratified subset of
    ``images`` training images (loader built outside the timed part)."""
    loader = splits.loader("train", batch_size, seed=seed, subset=images)
    trainer = make_trainer(record=record, seed=seed, foreach=foreach)
    t0 = time.perf_counter()
    trainer.fit(loader, epochs=1)
    return loader.dataset_size / (time.perf_counter() - t0)


def evaluate_images_per_s(splits: batches.Splits, batch_size: int = 1000) -> float:
    """Images/s of :meth:`Trainer.evaluate` over the 10,000 test images."""
    loader = splits.loader("test", batch_size)
    trainer = make_trainer()
    t0 = time.perf_counter()
    trainer.evaluate(loader)
    return loader.dataset_size / (time.perf_counter() - t0)


def torchvision_root(tmp: Path) -> Path:
    """A folder in torchvision's ``FashionMNIST/raw`` layout, from the verified data.

    The uncompressed idx bytes of the files :func:`fashion_optim.data.load_fashion_mnist`
    found are written there, so torchvision needs no network (and checks nothing).
    """
    source = fdata.load_fashion_mnist().source
    raw = tmp / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name in fdata.FILES:
        found = fdata._find_file(source, name)
        if found is None:
            raise FileNotFoundError(f"{name} vanished from {source}")
        (raw / name).write_bytes(fdata._read_bytes(found))
    return tmp


class Reference:
    """What most tutorials do: torchvision's ``FashionMNIST`` Dataset with
    ``ToTensor()`` + ``Normalize()`` and a ``DataLoader`` (``num_workers=0``,
    ``shuffle=True``), and the textbook loop with ``loss.item()`` each step."""

    def __init__(self, mean: float, std: float) -> None:
        from torchvision import datasets, transforms

        self._tmp = tempfile.TemporaryDirectory(prefix="fashion-optim-bench-")
        root = torchvision_root(Path(self._tmp.name))
        tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((mean,), (std,))])
        self.dataset = datasets.FashionMNIST(str(root), train=True, download=False, transform=tf)

    def close(self) -> None:
        self._tmp.cleanup()

    def images_per_s(self, batch_size: int, images: int, seed: int = 0) -> float:
        torch.manual_seed(seed)
        model = LeNet()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        loss_fn = nn.CrossEntropyLoss()
        loader = torch.utils.data.DataLoader(
            self.dataset, batch_size=batch_size, shuffle=True, num_workers=0
        )
        steps = -(-images // batch_size)
        model.train()
        seen, running = 0, 0.0
        t0 = time.perf_counter()
        for i, (x, y) in enumerate(loader):
            if i == steps:
                break
            opt.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
            running += loss.item()
            seen += len(y)
        return seen / (time.perf_counter() - t0)
