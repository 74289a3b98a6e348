"""A/B measurements of candidate speed-ups, each against the current library in one run.

    python benchmarks/candidates.py              # all candidates, 5 rounds of 10,000 images
    python benchmarks/candidates.py --quick      # a smoke run
    python benchmarks/candidates.py --only threads,channels_last

Candidates are local patched copies (subclasses, wrappers, monkeypatches) of
``fashion_optim.training`` and ``fashion_optim.data``; nothing in ``src/`` changes. Each
is timed in the same rounds as the unpatched baseline, in a rotating order, and reported
as the median of the per-round ratios (candidate / baseline; > 1 is faster). Results go to
``benchmarks/results/candidates.json``; ``benchmarks/README.md`` keeps the conclusions.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch
from _bench import (
    interleave,
    make_trainer,
    median,
    num_threads,
    paired_ratios,
)

from fashion_optim import data as fdata
from fashion_optim.training import (
    Trainer,
    TrainingDivergedError,
    atomic_write,
    step_scheduler_batch,
    step_scheduler_epoch,
)

HERE = Path(__file__).resolve().parent
CL = torch.channels_last

# --------------------------------------------------------------------------- patched copies


class ChannelsLastLoader:
    """Wraps a loader; yields the images in ``channels_last`` (what the proposed
    ``Trainer`` change does to each batch with ``x.to(device, memory_format=...)``)."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def __len__(self) -> int:
        return len(self.loader)

    @property
    def dataset_size(self) -> int:
        return self.loader.dataset_size

    def set_epoch(self, epoch: int) -> None:
        self.loader.set_epoch(epoch)

    def __iter__(self) -> Iterator:
        for x, y in self.loader:
            yield x.contiguous(memory_format=CL), y


def channels_last(trainer: Trainer) -> Trainer:
    trainer.model.to(memory_format=CL)
    return trainer


def patch_channels_last() -> None:
    """Monkeypatch the library the way the proposed ``training.py`` change works: every
    ``Trainer`` puts its model in ``channels_last``, every ``ArrayLoader`` batch too.
    (For ``run.py --patch channels_last``; irreversible within the process.)"""
    init = Trainer.__init__
    prepare = fdata.ArrayLoader._prepare

    def patched_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.model.to(memory_format=CL)

    def patched_prepare(self, x):
        x = prepare(self, x)
        return x.contiguous(memory_format=CL) if x.ndim == 4 else x

    Trainer.__init__ = patched_init
    fdata.ArrayLoader._prepare = patched_prepare


#: Library-wide patches ``run.py --patch NAME`` can apply before measuring.
PATCHES = {"channels_last": patch_channels_last}


def pool_then_relu(trainer: Trainer) -> Trainer:
    """Swap each ReLU with the max-pool after it (a ``models.py`` change, not asked for:
    max and ReLU commute, so the outputs and gradients are the same, with the ReLU on a
    quarter of the values). The parameter names do not change."""
    f = trainer.model.features
    f[1], f[2] = f[2], f[1]
    f[4], f[5] = f[5], f[4]
    return trainer


class NoSyncTrainer(Trainer):
    """``Trainer`` whose epoch keeps the per-step loss and correct count as tensors and
    converts them once at the end of the epoch (no ``float()``/``int()`` per step).

    The divergence check moves to the end of the epoch, which changes behaviour; this
    copy exists only to measure what the per-step conversions cost on the CPU.
    """

    def _train_epoch(self, train_loader, val_loader, interval, num_batches, bar, last_epoch):
        if hasattr(train_loader, "set_epoch"):
            train_loader.set_epoch(self.epoch)
        self.model.train()
        start = time.perf_counter()
        epoch_lr = self.lr
        losses, lrs, sizes = [], [], []
        correct = torch.zeros((), dtype=torch.int64)
        for i, (x, y) in enumerate(train_loader):
            if i == 0:
                self._check_batch(x, y)
            x, y = x.to(self.device), y.to(self.device)
            lrs.append(self.lr)
            self.optimizer.zero_grad(set_to_none=True)
            logits = self.model(x)
            loss = self.loss_fn(logits, y)
            loss.backward()
            for rec in self.recorders:
                rec.after_backward(self)
            self.optimizer.step()
            self.step += 1
            self.is_last_step = self.epoch + 1 == last_epoch and i + 1 == num_batches
            for rec in self.recorders:
                rec.after_step(self)
            if interval == "batch":
                step_scheduler_batch(self.scheduler, self.epoch, i, num_batches)
            losses.append(loss.detach())
            correct += (logits.detach().argmax(1) == y).sum()
            sizes.append(len(y))
            bar.update(1)
        values = torch.stack(losses).tolist()
        for i, value in enumerate(values):
            if not math.isfinite(value):
                raise TrainingDivergedError(self.epoch + 1, i + 1, value, lrs[i])
        count = sum(sizes)
        train_loss = sum(v * n for v, n in zip(values, sizes, strict=True)) / count
        train_acc = int(correct) / count
        self.history.batch_loss.extend(values)
        self.history.batch_lr.extend(lrs)
        if val_loader is not None:
            val_loss, val_acc = self.evaluate(val_loader)
        else:
            val_loss, val_acc = math.nan, math.nan
        if interval == "epoch":
            step_scheduler_epoch(self.scheduler, val_loss if val_loader is not None else train_loss)
        h = self.history
        h.train_loss.append(train_loss)
        h.train_acc.append(train_acc)
        h.val_loss.append(val_loss)
        h.val_acc.append(val_acc)
        h.lr.append(epoch_lr)
        h.epoch_time.append(time.perf_counter() - start)
        self.epoch += 1


def fused_prepare(self: fdata.ArrayLoader, x: torch.Tensor) -> torch.Tensor:
    """One allocation instead of three: ``(x - 255 mean) * 1 / (255 std)`` in place."""
    if x.dtype == torch.uint8:
        return x.float().sub_(255.0 * self.mean).mul_(1.0 / (255.0 * self.std))
    return x


class PrenormalisedLoader(fdata.ArrayLoader):
    """Normalise all images to float32 once (50,000 x 784 x 4 B = 157 MB), then batches
    are a fancy-index only."""

    def __init__(self, images, labels, **kwargs) -> None:
        super().__init__(images, labels, **kwargs)
        self.images = self._prepare(self.images)


# --------------------------------------------------------------------------- helpers


def fit_rate(
    splits: fdata.Splits,
    batch: int,
    images: int,
    *,
    trainer_cls: type[Trainer] = Trainer,
    cl: bool = False,
    foreach: bool | None = None,
    loader_cls: type | None = None,
    record: bool = False,
    swap: bool = False,
) -> float:
    """Images/s of one epoch of ``fit`` with the given patches."""
    loader = splits.loader("train", batch, subset=images)
    if loader_cls is not None:
        loader = loader_cls(
            loader.images, loader.labels, batch_size=batch, shuffle=True, mean=loader.mean,
            std=loader.std,
        )  # fmt: skip
    trainer = make_trainer(record=record)
    if trainer_cls is not Trainer or foreach is not None:
        torch.manual_seed(0)
        model = trainer.model
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, foreach=foreach)
        trainer = trainer_cls(
            model, trainer.loss_fn, opt, device="cpu", recorders=trainer.recorders,
            progress=False,
        )  # fmt: skip
    if cl:
        channels_last(trainer)
        loader = ChannelsLastLoader(loader)
    if swap:
        pool_then_relu(trainer)
    t0 = time.perf_counter()
    trainer.fit(loader, epochs=1)
    return images / (time.perf_counter() - t0)


def with_patch(obj: Any, name: str, value: Any, fn: Callable[[], float]) -> float:
    before = getattr(obj, name)
    setattr(obj, name, value)
    try:
        return fn()
    finally:
        setattr(obj, name, before)


def compare(variants: dict[str, Callable[[bool], float]], rounds: int) -> dict[str, Any]:
    """Interleave; ratios of every variant to the first one (the baseline)."""
    values = interleave(variants, rounds)
    base = next(iter(values))
    return {
        name: {
            "samples": v,
            "median": median(v),
            "ratio_to_baseline": median(paired_ratios(v, values[base])),
        }
        for name, v in values.items()
    }


# --------------------------------------------------------------------------- candidates


def cand_threads(splits, rounds, images) -> dict:
    out = {}
    for batch in (64, 128):

        def run(n, w, b=batch):
            with num_threads(n):
                return fit_rate(splits, b, 512 if w else images)

        out[f"b{batch}"] = compare(
            {"threads_2": lambda w, r=run: r(2, w), "threads_1": lambda w, r=run: r(1, w)},
            rounds,
        )
    return out


def cand_training(splits, rounds, images, batch) -> dict:
    def n(w):
        return 512 if w else images

    variants = {
        "baseline": lambda w: fit_rate(splits, batch, n(w)),
        "channels_last": lambda w: fit_rate(splits, batch, n(w), cl=True),
        "no_per_step_sync": lambda w: fit_rate(splits, batch, n(w), trainer_cls=NoSyncTrainer),
        "sgd_foreach": lambda w: fit_rate(splits, batch, n(w), foreach=True),
        "fused_prepare": lambda w: with_patch(
            fdata.ArrayLoader, "_prepare", fused_prepare, lambda: fit_rate(splits, batch, n(w))
        ),
        "prenormalised": lambda w: fit_rate(splits, batch, n(w), loader_cls=PrenormalisedLoader),
        "recorders": lambda w: fit_rate(splits, batch, n(w), record=True),
        "recorders_channels_last": lambda w: fit_rate(splits, batch, n(w), record=True, cl=True),
        "pool_then_relu": lambda w: fit_rate(splits, batch, n(w), swap=True),
        "channels_last_pool_then_relu": lambda w: fit_rate(splits, batch, n(w), cl=True, swap=True),
    }
    return compare(variants, rounds)


def cand_target(splits, rounds, images) -> dict:
    """The b64 target ratio (Trainer / reference DataLoader loop) with and without
    channels_last, all in the same rounds."""
    from _bench import Reference

    ref = Reference(splits.mean, splits.std)

    def n(w):
        return 512 if w else images

    try:
        out = {}
        for batch in (64, 128):
            table = compare(
                {
                    "reference": lambda w, b=batch: ref.images_per_s(b, n(w)),
                    "trainer": lambda w, b=batch: fit_rate(splits, b, n(w)),
                    "trainer_channels_last": lambda w, b=batch: fit_rate(splits, b, n(w), cl=True),
                },
                rounds,
            )
            out[f"b{batch}"] = table
    finally:
        ref.close()
    return out


def cand_loader_share(splits, images, batch) -> dict:
    """Seconds to iterate the loader alone vs one epoch of fit over it."""
    loader = splits.loader("train", batch, subset=images)
    t0 = time.perf_counter()
    for _ in loader:
        pass
    alone = time.perf_counter() - t0
    fit = images / fit_rate(splits, batch, images)
    return {"loader_s": alone, "fit_s": fit, "share": alone / fit}


def eval_rate(splits, batch, cl=False) -> float:
    loader = splits.loader("test", batch)
    trainer = make_trainer()
    if cl:
        channels_last(trainer)
        loader = ChannelsLastLoader(loader)
    t0 = time.perf_counter()
    trainer.evaluate(loader)
    return loader.dataset_size / (time.perf_counter() - t0)


def cand_eval(splits, rounds) -> dict:
    variants = {
        "b1000": lambda w: eval_rate(splits, 1000),
        "b250": lambda w: eval_rate(splits, 250),
        "b500": lambda w: eval_rate(splits, 500),
        "b2000": lambda w: eval_rate(splits, 2000),
        "b5000": lambda w: eval_rate(splits, 5000),
        "b1000_channels_last": lambda w: eval_rate(splits, 1000, cl=True),
    }
    return compare(variants, rounds)


def cand_determinism(splits, images) -> dict:
    """Are the patched runs repeatable, and how far are their losses from the current?"""

    def history(cl=False, swap=False):
        loader = splits.loader("train", 128, subset=images)
        trainer = make_trainer()
        if cl:
            channels_last(trainer)
            loader = ChannelsLastLoader(loader)
        if swap:
            pool_then_relu(trainer)
        return trainer.fit(loader, epochs=1)

    def diff(a, b):
        return max(abs(x - y) for x, y in zip(a.batch_loss, b.batch_loss, strict=True))

    base, cl, cl2, swap = history(), history(cl=True), history(cl=True), history(swap=True)
    return {
        "channels_last_bitwise_repeatable": cl.same_as(cl2),
        "channels_last_max_abs_batch_loss_diff": diff(cl, base),
        "pool_then_relu_bitwise_equal_to_current": swap.same_as(base),
        "pool_then_relu_max_abs_batch_loss_diff": diff(swap, base),
    }


def float64_moments(images: torch.Tensor) -> tuple[float, float]:
    """The pixel moments as ``make_splits`` computed them before the histogram (now
    ``fashion_optim.data._pixel_moments``): through a float64 copy of every pixel. The
    baseline of the memory candidates, patched in with :func:`_use_moments`."""
    pixels = images.double() / 255.0
    return float(pixels.mean()), float(pixels.std())


def _use_moments(mode: str) -> None:
    """``make_splits`` looks ``_pixel_moments`` up at call time: swap it per mode."""
    if mode == "float64":
        fdata._pixel_moments = float64_moments


def _splits_child(mode: str) -> None:
    _use_moments(mode)
    t0 = time.perf_counter()
    s = fdata.make_splits()
    print(json.dumps({"mean": s.mean, "std": s.std, "seconds": time.perf_counter() - t0}))


def _experiment_child(mode: str, profile: str) -> None:
    from fashion_optim import experiments

    _use_moments(mode)
    experiments.run(experiments.NAMED["momentum"], 0, fresh=True, profile=profile)


def cand_experiment_memory(profile: str) -> dict:
    """Peak RSS of one whole experiment (as ``run.py`` measures it), with the moments of
    :func:`float64_moments` and now, each in its own process with a temporary cache."""
    out = {}
    for mode in ("float64", "current"):
        with tempfile.TemporaryDirectory(prefix="fashion-optim-bench-cache-") as cache:
            cmd = [sys.executable, str(HERE / "_rss.py"), sys.executable, __file__,
                   "--experiment-child", mode, profile]  # fmt: skip
            proc = subprocess.run(
                cmd, capture_output=True, text=True, check=True,
                env={**os.environ, "FASHION_OPTIM_CACHE": cache,
                     "OMP_NUM_THREADS": str(torch.get_num_threads())},
            )  # fmt: skip
        out[mode] = {"profile": profile, **json.loads(proc.stdout.strip().splitlines()[-1])}
    return out


def cand_splits_memory() -> dict:
    """Peak RSS (and time) of a process that loads the data and makes the splits, with
    :func:`float64_moments` and now. Each in its own process under ``_rss.py``."""
    out = {}
    for mode in ("float64", "current"):
        cmd = [sys.executable, str(HERE / "_rss.py"), sys.executable, __file__,
               "--splits-child", mode]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
        child = json.loads(proc.stderr.strip().splitlines()[-1])
        out[mode] = {**json.loads(proc.stdout.strip().splitlines()[-1]), **child}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--rounds", type=int, default=None)
    p.add_argument("--images", type=int, default=None)
    p.add_argument("--threads", type=int, default=None, help="for all but the threads test")
    p.add_argument(
        "--only",
        default="threads,target,training,loader,eval,determinism,memory",
        help="comma-separated subset of: threads,target,training,loader,eval,determinism,memory",
    )
    p.add_argument("--out", type=Path, default=HERE / "results" / "candidates.json")
    p.add_argument("--splits-child", choices=("float64", "current"), help=argparse.SUPPRESS)
    p.add_argument("--experiment-child", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.splits_child:
        _splits_child(args.splits_child)
        return 0
    if args.experiment_child:
        _experiment_child(*args.experiment_child)
        return 0
    rounds = args.rounds or (2 if args.quick else 5)
    images = args.images or (2000 if args.quick else 10_000)
    only = set(args.only.split(","))
    if args.threads:
        torch.set_num_threads(args.threads)
    splits = fdata.make_splits()
    res: dict[str, Any] = {
        "meta": {
            "rounds": rounds,
            "images": images,
            "threads": torch.get_num_threads(),
            "load_average_start": list(os.getloadavg()),
        }
    }

    def show(title, table):
        print(f"\n{title}")
        for name, r in table.items():
            print(f"  {name:<26} {r['median']:>9,.0f} img/s   x{r['ratio_to_baseline']:.2f}")

    if "threads" in only:
        res["threads"] = cand_threads(splits, rounds, images)
        for b, table in res["threads"].items():
            show(f"threads, {b}", table)
    if "training" in only:
        for batch in (64, 128):
            res[f"training_b{batch}"] = cand_training(splits, rounds, images, batch)
            show(f"training, batch {batch}", res[f"training_b{batch}"])
    if "target" in only:
        res["target"] = cand_target(splits, rounds, images)
        for b, table in res["target"].items():
            show(f"target ratio (x = over the reference loop), {b}", table)
    if "loader" in only:
        res["loader_share_b128"] = cand_loader_share(splits, images, 128)
        print("\nloader alone / fit, batch 128:", res["loader_share_b128"])
    if "eval" in only:
        res["evaluate"] = cand_eval(splits, rounds)
        show("evaluate", res["evaluate"])
    if "determinism" in only:
        res["determinism"] = cand_determinism(splits, min(images, 2000))
        print("\ndeterminism:", res["determinism"])
    if "memory" in only:
        res["splits_memory"] = cand_splits_memory()
        print("\nsplits memory:", res["splits_memory"])
        res["experiment_memory"] = cand_experiment_memory("quick" if args.quick else "full")
        print("\nexperiment memory:", res["experiment_memory"])
    res["meta"]["load_average_end"] = list(os.getloadavg())
    text = json.dumps(res, indent=2).encode()
    atomic_write(args.out, lambda fh: fh.write(text))
    print(f"\nwritten to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
