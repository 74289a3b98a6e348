"""The executors' scaling on a warm pool, and their start-up cost apart.

``experiments.run_many`` computes what a batch lacks on an executor. This trains one
batch like the build's (several runs of at least one epoch on 10,000 images), fresh, in a
temporary result cache, three ways:

``local_1``
    ``run_many(jobs, workers=1)``: one run after the other, in this process;
``local_2``
    ``run_many(jobs, workers=2)``: two local worker processes, kept from one batch to the
    next as the build keeps them;
``dask_2``
    ``run_many(jobs, executor=client.get_executor())`` on a
    ``distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True)``.

Start-up is measured apart, before the rounds: the LocalCluster's start
(``cluster_start_s``) and, for each pool, the first batch of two tiny runs on its cold
workers (``local_2_first_batch_s``, ``dask_first_batch_s``: the workers import torch and
load the data). The rounds that follow find every pool warm. Each round trains every
variant once, in a rotating order; the speed-ups (``local_1 / local_2`` and ``local_1 /
dask_2`` wall times; about 2 is what two cores can give) are per round, summarised by the
median. The three must give bitwise-equal histories and test metrics: an invariant of the
library, asserted.

    python benchmarks/executors.py                  # 6 runs of 1 epoch on 10,000 images, 3 rounds
    python benchmarks/executors.py --tiny           # a check that it runs (seconds)

``run.py`` runs it too (``--skip-executors`` to leave it out). Needs ``distributed``
(``pip install -e '.[dask]'``). Results go to ``benchmarks/results/executors.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bench import interleave, median, paired_ratios

from fashion_optim import experiments
from fashion_optim.experiments import Result, Spec
from fashion_optim.files import atomic_write

HERE = Path(__file__).resolve().parent

#: The ratios reported: name -> (numerator, denominator), both wall times.
RATIOS = {"local_2_vs_local_1": ("local_2", "local_1"), "dask_2_vs_local_2": ("dask_2", "local_2")}


def make_jobs(n: int, epochs: int, images: int, val: int) -> list[tuple[Spec, int]]:
    """``n`` small runs of plain SGD, each with its own learning rate and seed."""
    return [
        (Spec(f"bench-{i}", lr=0.01 * (i + 1), epochs=epochs, train_subset=images,
              val_subset=val), i)
        for i in range(n)
    ]  # fmt: skip


@contextmanager
def environ(**values: str | None) -> Iterator[None]:
    """Set (or, with None, unset) environment variables for the body, then restore them."""
    before = {k: os.environ.get(k) for k in values}
    for k, v in values.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def same(a: list[Result], b: list[Result]) -> bool:
    """Bitwise-equal histories and test metrics, run by run."""
    return all(
        x.history.same_as(y.history) and (x.test_loss, x.test_acc) == (y.test_loss, y.test_acc)
        for x, y in zip(a, b, strict=True)
    )


def measure_executors(
    jobs: int = 6, epochs: int = 1, images: int = 10000, val: int = 2000, rounds: int = 3
) -> dict[str, Any]:
    """Start-up costs, wall times of one batch on each warm executor, the speed-ups and
    the equality check."""
    import distributed

    batch = make_jobs(jobs, epochs, images, val)
    starter = make_jobs(2, 1, 256, 100)  # tiny: what a cold pool's first batch costs
    experiments.get_splits()  # this process loads the data once, outside the timings
    results: dict[str, list[Result]] = {}
    train_s: dict[str, list[float]] = {}

    def timed(name: str, jobs=batch, *, record: bool = True, **where: Any) -> float:
        start = time.perf_counter()
        out = experiments.run_many(jobs, fresh=True, progress=False, **where)
        wall = time.perf_counter() - start
        if any(r.from_cache for r in out):
            raise AssertionError(f"{name}: a fresh run came from the cache")
        if not record:
            return wall
        if name in results and not same(out, results[name]):
            raise AssertionError(f"{name} gave different bits from one round to the next")
        results[name] = out
        train_s.setdefault(name, []).append(sum(r.meta["wall_time"] for r in out))
        return wall

    # FASHION_OPTIM_EXECUTOR would send the local variants to a scheduler: unset here.
    with (
        tempfile.TemporaryDirectory(prefix="fashion-optim-bench-cache-") as cache,
        environ(FASHION_OPTIM_CACHE=cache, FASHION_OPTIM_EXECUTOR=None),
    ):
        start = time.perf_counter()
        cluster = distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            silence_logs=logging.ERROR,  # not the nanny's "killing" warnings at close
        )
        client = distributed.Client(cluster, set_as_default=False)
        cluster_start = time.perf_counter() - start
        try:
            executor = client.get_executor()
            dask_first = timed("dask_2", starter, record=False, executor=executor)
            # after the cluster's start, which sets variables in this process's
            # environment: a change there restarts the kept local workers
            local_first = timed("local_2", starter, record=False, workers=2)
            variants: dict[str, Callable[[bool], float]] = {
                "local_1": lambda _: timed("local_1", workers=1),
                "local_2": lambda _: timed("local_2", workers=2),
                "dask_2": lambda _: timed("dask_2", executor=executor),
            }
            walls = interleave(variants, rounds, warmup=False)
        finally:
            client.close()
            cluster.close()

    equal = {name: same(results[name], results["local_1"]) for name in ("local_2", "dask_2")}
    if not all(equal.values()):  # an invariant of the library, not a measurement
        raise AssertionError(f"the executors gave different histories: {equal}")
    ratios = {
        name: paired_ratios(walls[a], walls[b]) for name, (a, b) in RATIOS.items()
    }  # fmt: skip
    speedups = {
        name: paired_ratios(walls["local_1"], walls[name]) for name in ("local_2", "dask_2")
    }
    return {
        "jobs": jobs,
        "epochs": epochs,
        "train_images": images,
        "val_images": val,
        "rounds": rounds,
        "startup": {
            "local_2_first_batch_s": local_first,
            "cluster_start_s": cluster_start,
            "dask_first_batch_s": dask_first,
        },
        "wall_s": walls,
        "runs_own_train_s": train_s,
        "median_wall_s": {k: median(v) for k, v in walls.items()},
        "speedup": {k: {"samples": v, "median": median(v)} for k, v in speedups.items()},
        "ratios": {k: {"samples": v, "median": median(v)} for k, v in ratios.items()},
        "bitwise_equal_to_local_1": equal,
        "load_average_end": list(os.getloadavg()),
    }


def describe(res: dict[str, Any]) -> list[str]:
    """Readable lines of a :func:`measure_executors` result."""
    labels = {
        "local_1": "run_many(workers=1)",
        "local_2": "run_many(workers=2) (warm)",
        "dask_2": "LocalCluster, 2 workers (warm)",
    }
    up = res["startup"]
    lines = [
        f"{res['jobs']} runs of {res['epochs']} epoch(s) on {res['train_images']:,} images "
        f"({res['val_images']:,} validation), {res['rounds']} round(s)",
        f"  start-up: 2 local workers' first (tiny) batch {up['local_2_first_batch_s']:.1f} s; "
        f"LocalCluster start {up['cluster_start_s']:.1f} s, its first (tiny) batch "
        f"{up['dask_first_batch_s']:.1f} s",
    ]
    for key, label in labels.items():
        own = median(res["runs_own_train_s"][key])
        lines.append(
            f"  {label:<32} {res['median_wall_s'][key]:6.1f} s wall "
            f"({own:.1f} s in the runs' own training)"
        )
    for key, r in res["speedup"].items():
        samples = ", ".join(f"{v:.2f}" for v in r["samples"])
        lines.append(f"  speed-up of {key} over local_1 {r['median']:6.2f} (per round: {samples})")
    for key, r in res["ratios"].items():
        samples = ", ".join(f"{v:.2f}" for v in r["samples"])
        lines.append(f"  {key:<32} {r['median']:6.2f} (per round: {samples})")
    lines.append(f"  bitwise equal to workers=1: {res['bitwise_equal_to_local_1']}")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--jobs", type=int, default=6, help="runs per batch (default 6)")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--images", type=int, default=10000, help="training images per run")
    p.add_argument("--val", type=int, default=2000, help="validation images per run")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument(
        "--tiny", action="store_true", help="2 runs on 256 images, 1 round: a check that it runs"
    )
    p.add_argument("--out", type=Path, default=HERE / "results" / "executors.json")
    args = p.parse_args(argv)
    if args.tiny:
        args.jobs, args.images, args.val, args.rounds = 2, 256, 100, 1
    for name in ("jobs", "epochs", "images", "val", "rounds"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be >= 1, got {getattr(args, name)}.")
    res = measure_executors(args.jobs, args.epochs, args.images, args.val, args.rounds)
    print("\n".join(describe(res)))
    text = json.dumps(res, indent=2).encode()
    atomic_write(args.out, lambda fh: fh.write(text))
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
