"""Throughput of training several runs at once in worker processes, against one process.

``experiments.run_many`` trains the runs the cache lacks in ``default_workers()``
processes of one thread each. This measures, in one run and in alternating rounds, the
same batch of runs trained three ways:

``one process, N threads``
    what the library did before: one run after the other, torch's default threads
    (the cores), in this process;
``one process, 1 thread``
    ``run_many(workers=1)``: one run after the other, one thread each;
``W workers, 1 thread each``
    ``run_many(workers=W)``: the default now.

Each round trains every variant on the same jobs (fresh, in a temporary cache) and
records runs per minute; the ratios are per round, summarised by the median. The
results go to ``benchmarks/results/workers.json`` (written atomically).

    python benchmarks/workers.py                  # 4 runs of 1 epoch on 10,000 images
    python benchmarks/workers.py --jobs 6 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _bench import interleave, median, num_threads, paired_ratios

from fashion_optim import experiments
from fashion_optim.training import atomic_write


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--jobs", type=int, default=4, help="runs per batch (default 4)")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--images", type=int, default=10000, help="training images per run")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--workers", type=int, default=None, help="default: default_workers()")
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "workers.json"))
    args = p.parse_args(argv)
    for name in ("jobs", "epochs", "images", "rounds"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be >= 1, got {getattr(args, name)}.")
    workers = args.workers or experiments.default_workers()
    if workers < 2:
        p.error(
            f"--workers is {workers}: nothing to compare. This machine allows one worker "
            "(or FASHION_OPTIM_WORKERS=1); pass --workers 2 to measure anyway."
        )
    cores = torch.get_num_threads()
    spec = experiments.NAMED["momentum"].replace(
        name="benchmark", epochs=args.epochs, train_subset=args.images, record=experiments.Record()
    )
    jobs = [(spec, seed) for seed in range(args.jobs)]
    experiments.get_splits()  # load the data once, outside the timings

    def timed(train) -> float:
        with tempfile.TemporaryDirectory() as tmp:
            os.environ["FASHION_OPTIM_CACHE"] = tmp
            start = time.perf_counter()
            train()
            return len(jobs) / (time.perf_counter() - start) * 60  # runs per minute

    def serial_default_threads(warm: bool) -> float:
        def train():
            cfg = spec.resolve("full")
            with num_threads(cores):
                for _, seed in jobs[:1] if warm else jobs:
                    experiments._train_pinned(cfg, seed, spec, False, ())

        return timed(train)

    def pool(n: int):
        def variant(warm: bool) -> float:
            chosen = jobs[:1] if warm else jobs
            return timed(lambda: experiments.run_many(chosen, workers=n, fresh=True))

        return variant

    names = {
        "serial": f"one process, {cores} threads",
        "serial_1": "one process, 1 thread",
        "workers": f"{workers} workers, 1 thread each",
    }
    values = interleave(
        {"serial": serial_default_threads, "serial_1": pool(1), "workers": pool(workers)},
        args.rounds,
    )
    load = os.getloadavg()
    result = {
        "jobs": args.jobs,
        "epochs": args.epochs,
        "images": args.images,
        "workers": workers,
        "threads_default": cores,
        "runs_per_minute": values,
        "ratio_workers_vs_serial": paired_ratios(values["workers"], values["serial"]),
        "ratio_workers_vs_serial_1": paired_ratios(values["workers"], values["serial_1"]),
        "load_average_end": load,
    }
    print(
        f"{args.jobs} runs of {args.epochs} epoch(s) on {args.images:,} images, "
        f"{args.rounds} rounds"
    )
    for key, label in names.items():
        print(f"  {label:<28} {median(values[key]):6.2f} runs/min")
    for key in ("ratio_workers_vs_serial", "ratio_workers_vs_serial_1"):
        print(f"  {key:<28} x{median(result[key]):.2f} (per round: "
              f"{', '.join(f'{r:.2f}' for r in result[key])})")  # fmt: skip
    out = Path(args.out)
    text = json.dumps(result, indent=2).encode()
    atomic_write(out, lambda fh: fh.write(text))
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
