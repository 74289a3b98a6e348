"""What recording Adam's layer quantiles costs the shared Adam run.

``NAMED["adam"]`` records, beside the note's probes (``NOTE_RECORD``), per layer the
quantiles over its weights of Adam's adapted step and effective rate
(``Record(layer_quantiles=...)``, ``recorders.AdamQuantileRecorder``). This trains the
same spec, on a subset and a few epochs, with the note's probes only (``plain``: what
the run recorded before) and with the layer quantiles every ``k`` steps (``every_k``),
in rounds with a rotating order, on ``TRAIN_THREADS`` thread as the build does, and
reports the per-round ratio ``every_k / plain`` of the training time (``Trainer.fit``
without the validation pass: the strictest ratio, since evaluation does not pay for the
recorder), summarised by the median; and the same for the run as the build trains it
(``experiments.train.train``: fit with validation, then the test set) with the spec's
own record. Ratios of CPU time (``time.process_time``: one training thread, so the work
done) and of wall time are both reported: on a shared machine the wall time of a few
seconds' run moves by 2x with the other jobs, the CPU time much less.

    python benchmarks/adam_quantiles.py                 # 10,000 images, 2 epochs, 5 rounds
    python benchmarks/adam_quantiles.py --every 1 2 5 --rounds 3

Results go to ``benchmarks/results/adam_quantiles.json``; ``README.md`` has the numbers.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bench import interleave, median, paired_ratios
from torch import nn

from fashion_optim.experiments import ADAM_RECORD, NAMED, NOTE_RECORD, Record
from fashion_optim.experiments.specs import build_optimizer
from fashion_optim.experiments.train import TRAIN_THREADS, get_splits, threads, train
from fashion_optim.files import atomic_write
from fashion_optim.models import make_model
from fashion_optim.training import Trainer

HERE = Path(__file__).resolve().parent


#: Wall times of every timed call, by variant (the ratios use CPU times).
WALL: dict[str, list[float]] = {}


def fit_seconds(record: Record, epochs: int, images: int, seed: int = 0) -> float:
    """CPU seconds of ``Trainer.fit`` (no validation pass) of ``NAMED["adam"]`` with
    ``record``, set up as ``experiments.train.train`` does; the loader is built first.
    The wall time goes to :data:`WALL` under ``"last"``."""
    cfg = NAMED["adam"].replace(record=record, epochs=epochs, train_subset=images).resolve()
    with threads(TRAIN_THREADS):
        loader = get_splits().loader("train", cfg.batch_size, seed=seed, subset=images)
        model = make_model("lenet", dropout=cfg.dropout)
        trainer = Trainer(
            model, nn.CrossEntropyLoss(), build_optimizer(cfg, model.parameters()),
            seed=seed, recorders=record.recorders(), progress=False,
        )  # fmt: skip
        start, cpu = time.perf_counter(), time.process_time()
        trainer.fit(loader, epochs=epochs)
        WALL["last"] = [time.perf_counter() - start]
        return time.process_time() - cpu


def run_seconds(record: Record, epochs: int, images: int, seed: int = 0) -> float:
    """CPU seconds of the run as the build trains it (``experiments.train.train``: fit
    with validation, then the test set); its own wall time goes to :data:`WALL`."""
    cfg = NAMED["adam"].replace(record=record, epochs=epochs, train_subset=images).resolve()
    cpu = time.process_time()
    WALL["last"] = [float(train(cfg, seed, progress=False)[1]["wall_time"])]
    return time.process_time() - cpu


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=10_000, help="training images per run")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--every", type=int, nargs="+", default=None, help="default: the spec's")
    p.add_argument("--out", type=Path, default=HERE / "results" / "adam_quantiles.json")
    args = p.parse_args(argv)
    levels, spec_every = ADAM_RECORD.layer_quantiles, ADAM_RECORD.layer_quantiles_every
    everies = args.every or [spec_every]
    get_splits()  # load and verify the data before anything is timed
    size = {"images": args.images, "epochs": args.epochs}
    variants: dict[str, Any] = {"plain": lambda w: fit_seconds(NOTE_RECORD, **size)}
    for k in everies:
        record = dataclasses.replace(ADAM_RECORD, layer_quantiles_every=k)
        variants[f"every_{k}"] = lambda w, r=record: fit_seconds(r, **size)
    variants["run_plain"] = lambda w: run_seconds(NOTE_RECORD, **size)
    variants["run_adam_record"] = lambda w: run_seconds(ADAM_RECORD, **size)
    warm = {"images": 1000, "epochs": 1}

    def timed(name: str, fn: Any) -> Any:
        def call(warm_up: bool) -> float:
            if warm_up:  # a short untimed run of the same code
                record = NOTE_RECORD if name.endswith("plain") else ADAM_RECORD
                return fit_seconds(record, **warm)
            value = fn(False)
            WALL.setdefault(name, []).extend(WALL.pop("last"))
            return value

        return call

    pairs = {f"every_{k}_vs_plain": (f"every_{k}", "plain") for k in everies}
    pairs["run_adam_record_vs_plain"] = ("run_adam_record", "run_plain")
    load_start = list(os.getloadavg())
    t0 = time.perf_counter()
    values = interleave({n: timed(n, f) for n, f in variants.items()}, args.rounds)
    ratios = {
        clock: {
            name: {"samples": (r := paired_ratios(times[a], times[b])), "median": median(r)}
            for name, (a, b) in pairs.items()
        }
        for clock, times in (("cpu", values), ("wall", WALL))
    }
    results = {
        "meta": {
            "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            **size,
            "rounds": args.rounds,
            "levels": list(levels),
            "spec_every": spec_every,
            "threads": TRAIN_THREADS,
            "load_average_start": load_start,
            "load_average_end": list(os.getloadavg()),
            "seconds": time.perf_counter() - t0,
        },
        "cpu_seconds": values,
        "wall_seconds": WALL,
        "ratios": ratios,
    }
    atomic_write(args.out, lambda fh: fh.write(json.dumps(results, indent=2).encode()))
    print(f"{args.rounds} rounds of {args.images:,} images x {args.epochs} epochs, "
          f"load {load_start[0]:.1f} -> {results['meta']['load_average_end'][0]:.1f}")  # fmt: skip
    for name, v in values.items():
        print(f"  {name:<16} CPU {median(v):6.2f} s, wall {median(WALL[name]):6.2f} s (medians)")
    for clock in ("cpu", "wall"):
        for name, r in ratios[clock].items():
            samples = ", ".join(f"{x:.3f}" for x in r["samples"])
            print(f"  {clock:<4} {name:<26} median {r['median']:.3f}  (rounds: {samples})")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
