"""The command line: ``python -m fashion_optim {data,run,cache,compare,pin} ...``.

Every error is one message on standard error and a non-zero exit status, never a
traceback: 2 for a bad argument or setting, 1 for data that cannot be found or read.
"""

from __future__ import annotations

import argparse
import sys
import time

__all__ = ["build_parser", "main"]


def _cmd_data(args: argparse.Namespace) -> int:
    from .data import load_fashion_mnist

    data = load_fashion_mnist(root=args.root, download=True if args.download else False)
    print(f"Fashion-MNIST found in {data.source}")
    print(
        f"  train: {tuple(data.train_images.shape)} images, test: "
        f"{tuple(data.test_images.shape)} images, {len(data.classes)} classes"
    )
    print("  MD5 of the uncompressed idx files (all match the published ones):")
    for name, digest in data.checksums.items():
        print(f"    {digest}  {name}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from . import experiments as ex

    if args.name not in ex.NAMED:
        raise ValueError(f"unknown experiment {args.name!r}; valid choices: {sorted(ex.NAMED)}.")
    spec = ex.NAMED[args.name]
    prof = ex.current_profile(args.profile)
    seeds = args.seed or list(prof.seeds)
    twice = sorted({seed for seed in seeds if seeds.count(seed) > 1})
    if twice:
        raise ValueError(
            f"--seed {twice[0]} is given more than once; give each seed once (the mean and "
            "standard deviation are over distinct seeds)."
        )
    for seed in seeds:
        ex.check_seed(seed, "--seed")
    print(f"{spec.name}: profile {prof.name} ({prof.description}), seeds {seeds}")
    start = time.perf_counter()
    runs = ex.run_seeds(spec, seeds, profile=prof, fresh=args.fresh, progress=not args.no_progress)
    for r in runs.results:
        where = "cache" if r.from_cache else "trained"
        print(f"  seed {r.seed}: test acc {r.test_acc:.4f}  test loss {r.test_loss:.4f}  ({where})")
    (am, asd), (lm, lsd) = runs.test_acc, runs.test_loss
    print(
        f"  mean ± std over {len(seeds)} seeds: test acc {am:.4f} ± {asd:.4f}, test loss "
        f"{lm:.4f} ± {lsd:.4f} ({time.perf_counter() - start:.1f} s)"
    )
    return 0


def _cmd_cache(args: argparse.Namespace) -> int:
    from .experiments import cache

    if args.clear:
        root = cache.cache_dir()
        print(f"removed {cache.clear_cache()} entries from {root}")
        return 0
    info = cache.describe()
    total = sum(info["entries"].values())
    print(f"cache: {info['root']}")
    print(f"  {total} entries, {info['bytes'] / 2**20:.1f} MiB")
    for kind, count in info["entries"].items():
        print(f"    {kind:<13}{count:>5} entries, code hash {info['code'][kind]}")
    if not info["writable"]:
        print(
            f"warning: {info['root']} is not writable: results are computed but not kept; "
            f"set {cache.ENV_CACHE} to a writable folder.",
            file=sys.stderr,
        )
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from . import record

    a, b = record.read(args.a), record.read(args.b)
    result = record.compare(a, b)
    print(result.report(args.a, args.b))
    if result.equal:
        return 0
    if args.if_same_processor and not result.same_processor:
        print(
            "the records were built on different processors: the differences are shown, "
            "not failed (--if-same-processor)."
        )
        return 0
    return 1


def _cmd_pin(args: argparse.Namespace) -> int:
    import shlex

    from . import pin

    if args.export:
        for name, value in pin.settings().items():
            print(f"export {name}={shlex.quote(value)}")
        return 0
    state = pin.status()
    kernels = state["torch_capability"]
    print(f"{pin.describe()} (processor: {state['processor']}; torch uses {kernels})")
    for name, value in state["settings"].items():
        print(f"  {name}={'' if value is None else value}")
    if state["state"] == pin.ISA and not state["before_numpy"]:
        print("  (numpy was loaded before the pin in this process: its own part is not in force)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m fashion_optim",
        description="fashion-optim: data check, named experiments, the result cache, the "
        "comparison of two builds' records and the CPU kernels' pin.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser(
        "data",
        help="locate and verify Fashion-MNIST",
        description="Locate and verify Fashion-MNIST and print where it came from and the "
        "checksums. Ways to provide the data: --download (needs the network), Debian's "
        "package dataset-fashion-mnist, or a folder named by FASHION_OPTIM_DATA.",
    )
    p.add_argument(
        "--root",
        help="the only folder to use (default: FASHION_OPTIM_DATA, "
        "then the package cache, then Debian's folder)",
    )
    p.add_argument(
        "--download", action="store_true", help="download through torchvision if not found"
    )
    p.set_defaults(func=_cmd_data)

    r = sub.add_parser("run", help="train a named experiment (or load it from the cache)")
    r.add_argument("name", help="a named experiment, e.g. sgd, momentum, adam")
    r.add_argument(
        "--profile", default=None, help="full or quick (default: FASHION_OPTIM_PROFILE or full)"
    )
    r.add_argument(
        "--seed", type=int, action="append", help="repeatable; default: the profile's seeds"
    )
    r.add_argument("--fresh", action="store_true", help="ignore and overwrite cached results")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    r.set_defaults(func=_cmd_run)

    c = sub.add_parser("cache", help="show or clear the result cache")
    c.add_argument(
        "--clear",
        action="store_true",
        help="delete every cached result (only the cache's own files)",
    )
    c.set_defaults(func=_cmd_cache)

    m = sub.add_parser(
        "compare",
        help="compare two builds' records, number by number",
        description="Compare two records of the numbers a site build published (record.jsonl, "
        "or a built site's folder holding it): list every number that differs, by how much "
        "and whether beyond its printed digits. Exit status 0 when every number is bitwise "
        "equal (measurements of time are listed, never counted), 1 when one differs.",
    )
    m.add_argument("a", help="a record file or a built site's folder (e.g. the reference)")
    m.add_argument("b", help="another (e.g. docs/_build/html)")
    m.add_argument(
        "--if-same-processor",
        action="store_true",
        help="exit 1 on a difference only when both records were built on the same "
        "processor model (CI: another processor shows the comparison, no failure)",
    )
    m.set_defaults(func=_cmd_compare)

    q = sub.add_parser(
        "pin",
        help="show the CPU kernels' pin (fashion_optim.pin)",
        description="Show whether this process's CPU kernels are pinned to AVX2, and the "
        "variables that pin them. --export prints them as shell exports, for processes "
        "started outside Python's reach of the package, e.g. Dask workers: "
        'eval "$(python -m fashion_optim pin --export)"; dask worker ADDRESS.',
    )
    q.add_argument("--export", action="store_true", help="print `export NAME=VALUE` lines")
    q.set_defaults(func=_cmd_pin)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    from .data import DatasetCorruptError, DatasetNotFoundError
    from .experiments import CacheError, ExecutorError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (DatasetNotFoundError, DatasetCorruptError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (ValueError, CacheError, ExecutorError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: nothing half-written was kept.", file=sys.stderr)
        return 130
