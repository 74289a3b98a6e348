"""Command line: ``python -m fashion_optim {data,run,cache} ...``."""

from __future__ import annotations

import argparse
import sys

__all__ = ["main"]


def _cmd_data(args: argparse.Namespace) -> int:
    from .data import DatasetCorruptError, DatasetNotFoundError, load_fashion_mnist

    try:
        data = load_fashion_mnist(root=args.root, download=True if args.download else False)
    except (DatasetNotFoundError, DatasetCorruptError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"Fashion-MNIST found in {data.source}")
    print(
        f"  train: {tuple(data.train_images.shape)} images, test: "
        f"{tuple(data.test_images.shape)} images, {len(data.classes)} classes"
    )
    print("  MD5 of the uncompressed idx files (all match the published ones):")
    for name, digest in data.checksums.items():
        print(f"    {digest}  {name}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m fashion_optim",
        description="fashion-optim: data check, named experiments and the result cache.",
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
        "--download",
        action="store_true",
        help="download through torchvision when no local copy is found",
    )
    p.set_defaults(func=_cmd_data)

    from .experiments import add_cli_commands

    add_cli_commands(sub)

    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
