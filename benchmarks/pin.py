"""What pinning the CPU kernels to AVX2 (fashion_optim.pin) costs, and what it changes.

The pin is set once per process, before torch loads, so each variant trains in a child
process of its own: pinned (the default) and unpinned (``FASHION_OPTIM_PIN=off``), in
alternation, ``--rounds`` times, within this one run. Each child trains the same small
run (LeNet, one thread, ``--images`` training images, ``--epochs`` epochs, seed 0) and
reports its training speed, the torch kernels it used and a hash of everything the run
produced (per-epoch and per-batch history, test predictions). Printed: the median
pinned/unpinned speed ratio, and whether the bits are the same within each variant and
across the two.

    python benchmarks/pin.py                 # 3 rounds, 4,096 images, 2 epochs
    python benchmarks/pin.py --rounds 5 --images 8192
    python benchmarks/pin.py --each --rounds 1   # also each variable alone: which move bits
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time


def child(images: int, epochs: int) -> None:
    import fashion_optim  # noqa: F401  (first: the pin, or not)
    from fashion_optim import pin
    from fashion_optim.experiments import Spec
    from fashion_optim.experiments.train import train

    cfg = Spec(
        "pin bench", lr=0.05, optimizer_kwargs={"momentum": 0.9}, epochs=epochs,
        batch_size=128, train_subset=images, val_subset=1000,
    ).resolve("full")  # fmt: skip
    arrays, meta = train(cfg, 0, progress=False)
    digest = hashlib.sha256()
    for name in sorted(arrays):
        if name != "history/epoch_time":
            digest.update(name.encode() + arrays[name].tobytes())
    status = pin.status()
    print(
        json.dumps(
            {
                "images_per_s": epochs * meta["train_size"] / meta["wall_time"],
                "sha": digest.hexdigest()[:16],
                "test_acc": meta["test_acc"],
                "kernels": status["torch_capability"],
                "state": status["state"],
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--images", type=int, default=4096)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument(
        "--each", action="store_true", help="also each of the pin's variables alone"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.images, args.epochs)
        return
    from fashion_optim import pin  # (this process trains nothing: its own pin is moot)

    variables = pin.settings()
    variants = {"pinned": {pin.ENV_PIN: "on"}, "unpinned": {pin.ENV_PIN: "off"}}
    if args.each:
        variants |= {f"only {k}": {pin.ENV_PIN: "off", k: v} for k, v in variables.items()}
    runs: dict[str, list[dict]] = {name: [] for name in variants}
    start = time.perf_counter()
    for r in range(args.rounds):
        shift = r % len(variants)
        order = list(variants)[shift:] + list(variants)[:shift]
        for name in order:
            # the child decides, not this process's environment
            env = {k: v for k, v in os.environ.items() if k not in variables}
            env.update(variants[name])
            argv = [__file__, "--child", "--images", str(args.images), "--epochs", str(args.epochs)]
            out = subprocess.run(
                [sys.executable, *argv], env=env, capture_output=True, text=True, check=True
            )
            runs[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
    ratios = [
        p["images_per_s"] / u["images_per_s"]
        for p, u in zip(runs["pinned"], runs["unpinned"], strict=True)
    ]
    pinned_bits = {v["sha"] for v in runs["pinned"]}
    for name, values in runs.items():
        speeds = [v["images_per_s"] for v in values]
        shas = sorted({v["sha"] for v in values})
        same = (
            "one round"
            if len(values) == 1
            else "repeatable"
            if len(shas) == 1
            else "NOT repeatable"
        )
        print(
            f"{name:33} kernels {values[0]['kernels']:7} {statistics.median(speeds):6.0f} "
            f"images/s, test acc {values[0]['test_acc']:.4f}, bits {', '.join(shas)} ({same}"
            f"{', = pinned' if set(shas) == pinned_bits else ''})"
        )
    same = {v["sha"] for v in runs["pinned"]} == {v["sha"] for v in runs["unpinned"]}
    print(
        f"pinned / unpinned speed: {statistics.median(ratios):.3f} (median of "
        f"{', '.join(f'{r:.3f}' for r in ratios)}); pinned and unpinned bits "
        f"{'equal' if same else 'differ'} on this processor ({time.perf_counter() - start:.0f} s)"
    )


if __name__ == "__main__":
    main()
