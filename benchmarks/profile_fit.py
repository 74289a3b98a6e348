"""Profile one epoch of ``Trainer.fit`` (for py-spy or torch.profiler).

    py-spy record --native -o benchmarks/results/fit.svg -- \
        python benchmarks/profile_fit.py --batch-size 64
    python benchmarks/profile_fit.py --torch-profiler   # operator table

Options choose the batch size, the number of images, the threads, the recorders and
candidate hooks (``--patch NAME``, from ``candidates.HOOKS``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))

from _bench import make_trainer

from fashion_optim.batches import make_splits


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--images", type=int, default=20_000)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--record", action="store_true", help="the note's recorders")
    p.add_argument(
        "--patch",
        action="append",
        default=[],
        help="turn on a hook from candidates.HOOKS first (repeatable)",
    )
    p.add_argument("--torch-profiler", action="store_true", help="print torch's op table")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.patch:
        from candidates import HOOKS, install

        for name in args.patch:
            if name not in HOOKS:
                p.error(f"unknown patch {name!r}; valid choices: {sorted(HOOKS)}")
            install(name)
    splits = make_splits()
    loader = splits.loader("train", args.batch_size, subset=args.images)
    trainer = make_trainer(record=args.record)
    trainer.fit(splits.loader("train", args.batch_size, subset=2000), epochs=1)  # warm-up
    t0 = time.perf_counter()
    if args.torch_profiler:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU]) as prof:
            trainer.fit(loader, epochs=args.epochs)
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=30))
    else:
        trainer.fit(loader, epochs=args.epochs)
    dt = time.perf_counter() - t0
    print(f"{args.epochs * loader.dataset_size / dt:,.0f} images/s "
          f"(batch {args.batch_size}, {torch.get_num_threads()} threads, "
          f"patches {args.patch or 'none'})")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
