"""A/B measurements of candidate changes to the library, each against the library as it is.

    python benchmarks/candidates.py              # all of it, 5 rounds of 10,000 images
    python benchmarks/candidates.py --quick      # a smoke run
    python benchmarks/candidates.py --only training,determinism

A candidate is never a copy of library code. It is either a **hook**: one attribute of
``fashion_optim`` (a method or a function) wrapped or replaced for the duration of a
measurement (:data:`HOOKS`, :func:`hooked`), so it always patches the code of today; or a
**parameter** the library already takes (``SGD(foreach=True)``, an evaluation batch
size). Each is timed in the same rounds as the unpatched library, in a rotating order, and
reported as the median of the per-round ratios (candidate / baseline; > 1 is faster).
Results go to ``benchmarks/results/candidates.json``; ``benchmarks/README.md`` keeps the
conclusions, including those of the candidates that landed and were deleted from here.

``run.py --patch NAME`` and ``profile_fit.py --patch NAME`` install the same hooks.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch
from _bench import (
    evaluate_images_per_s,
    interleave,
    make_trainer,
    median,
    paired_ratios,
    trainer_images_per_s,
)

from fashion_optim import batches as fdata
from fashion_optim import models
from fashion_optim.files import atomic_write

HERE = Path(__file__).resolve().parent

# --------------------------------------------------------------------------- hooks
# Each hook is (owner in fashion_optim, attribute, wrap): ``wrap(original)`` returns what
# replaces the attribute while the hook is on. None copies the code it patches.


def _fused_prepare(original: Callable) -> Callable:
    """``ArrayLoader._prepare`` in one allocation instead of three:
    ``(x - 255 mean) * 1 / (255 std)`` in place; other dtypes go to the original."""

    def _prepare(self: fdata.ArrayLoader, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.uint8:
            return x.float().sub_(255.0 * self.mean).mul_(1.0 / (255.0 * self.std))
        return original(self, x)

    return _prepare


def _prenormalised(original: Callable) -> Callable:
    """``ArrayLoader.__init__`` that normalises all its images to float32 once (50,000 x
    784 x 4 B = 157 MB for the training split); a batch is then a fancy-index only
    (``_prepare`` passes float images through)."""

    def __init__(self: fdata.ArrayLoader, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.images = self._prepare(self.images)

    return __init__


def _pool_then_relu(original: Callable) -> Callable:
    """``LeNet.__init__`` that puts each ReLU after the max-pool instead of before it.
    Max and ReLU commute, so outputs and gradients are the same, with the ReLU on a
    quarter of the values; the parameter names do not change."""

    def __init__(self: models.LeNet, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        f = self.features
        f[1], f[2] = f[2], f[1]
        f[4], f[5] = f[5], f[4]

    return __init__


HOOKS: dict[str, tuple[type, str, Callable[[Callable], Callable]]] = {
    "fused_prepare": (fdata.ArrayLoader, "_prepare", _fused_prepare),
    "prenormalised": (fdata.ArrayLoader, "__init__", _prenormalised),
    "pool_then_relu": (models.LeNet, "__init__", _pool_then_relu),
}


def install(name: str) -> None:
    """Turn hook ``name`` on for the rest of the process (``run.py --patch``)."""
    owner, attr, wrap = HOOKS[name]
    setattr(owner, attr, wrap(getattr(owner, attr)))


@contextmanager
def hooked(*names: str) -> Iterator[None]:
    """Turn the hooks ``names`` on for the body, then restore the library's own code."""
    saved = [(HOOKS[n][0], HOOKS[n][1], HOOKS[n][0].__dict__[HOOKS[n][1]]) for n in names]
    for name in names:
        install(name)
    try:
        yield
    finally:
        for owner, attr, original in reversed(saved):
            setattr(owner, attr, original)


# --------------------------------------------------------------------------- measurements


def fit_rate(splits: fdata.Splits, batch: int, images: int, *hooks: str, **params: Any) -> float:
    """Images/s of one epoch of ``Trainer.fit`` with ``hooks`` on and ``params``
    (``record``, ``foreach``) passed to :func:`_bench.trainer_images_per_s`."""
    with hooked(*hooks):
        return trainer_images_per_s(splits, batch, images, **params)


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


def cand_training(splits, rounds, images, batch) -> dict:
    def n(w):
        return 512 if w else images

    variants: dict[str, Callable[[bool], float]] = {
        "baseline": lambda w: fit_rate(splits, batch, n(w)),
        "sgd_foreach": lambda w: fit_rate(splits, batch, n(w), foreach=True),
    }
    for name in HOOKS:
        variants[name] = lambda w, h=name: fit_rate(splits, batch, n(w), h)
    return compare(variants, rounds)


def cand_loader_share(splits, images, batch) -> dict:
    """Seconds to iterate the loader alone vs one epoch of fit over it."""
    loader = splits.loader("train", batch, subset=images)
    t0 = time.perf_counter()
    for _ in loader:
        pass
    alone = time.perf_counter() - t0
    fit = images / fit_rate(splits, batch, images)
    return {"loader_s": alone, "fit_s": fit, "share": alone / fit}


def cand_eval(splits, rounds) -> dict:
    """Evaluation batch sizes (a parameter), relative to the library's 1000."""
    variants = {f"b{b}": lambda w, b=b: evaluate_images_per_s(splits, b)
                for b in (1000, 250, 500, 2000, 5000)}  # fmt: skip
    return compare(variants, rounds)


def cand_determinism(splits, images) -> dict:
    """Is each hooked run bitwise repeatable, and how far are its losses from today's?"""

    def history(*hooks: str):
        with hooked(*hooks):
            loader = splits.loader("train", 128, subset=images)
            return make_trainer().fit(loader, epochs=1)

    def diff(a, b):
        return max(abs(x - y) for x, y in zip(a.batch_loss, b.batch_loss, strict=True))

    base = history()
    out = {}
    for name in HOOKS:
        h, again = history(name), history(name)
        out[name] = {
            "bitwise_repeatable": h.same_as(again),
            "bitwise_equal_to_library": h.same_as(base),
            "max_abs_batch_loss_diff": diff(h, base),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--rounds", type=int, default=None)
    p.add_argument("--images", type=int, default=None)
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads first")
    p.add_argument(
        "--only",
        default="training,loader,eval,determinism",
        help="comma-separated subset of: training,loader,eval,determinism",
    )
    p.add_argument("--out", type=Path, default=HERE / "results" / "candidates.json")
    args = p.parse_args(argv)
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

    if "training" in only:
        for batch in (64, 128):
            res[f"training_b{batch}"] = cand_training(splits, rounds, images, batch)
            show(f"training, batch {batch}", res[f"training_b{batch}"])
    if "loader" in only:
        res["loader_share_b128"] = cand_loader_share(splits, images, 128)
        print("\nloader alone / fit, batch 128:", res["loader_share_b128"])
    if "eval" in only:
        res["evaluate"] = cand_eval(splits, rounds)
        show("evaluate", res["evaluate"])
    if "determinism" in only:
        res["determinism"] = cand_determinism(splits, min(images, 2000))
        print("\ndeterminism:", json.dumps(res["determinism"], indent=2))
    res["meta"]["load_average_end"] = list(os.getloadavg())
    text = json.dumps(res, indent=2).encode()
    atomic_write(args.out, lambda fh: fh.write(text))
    print(f"\nwritten to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
