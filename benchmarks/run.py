"""fashion-optim benchmarks: training throughput, the float32 ceiling, evaluation, memory,
the executors' overhead and scaling, and site build times. Run by ``nox -s bench``; not part
of the tests.

    python benchmarks/run.py                 # everything (the full site build is slow)
    python benchmarks/run.py --skip-site     # all but the site builds
    python benchmarks/run.py --quick --skip-site   # a short smoke run of each part
    python benchmarks/run.py --site quick --dry-run   # print the site build commands

Throughputs are measured in alternation within this one run (rounds, rotating order)
and summarised by medians; targets are checked on ratios measured side by side, so a
busy machine slows both sides. The results go to ``--out`` (JSON, written atomically)
and a short table is printed. ``benchmarks/README.md`` explains each number.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch
from _bench import (
    Reference,
    analytic_train_flops,
    ceiling_gflops,
    counted_train_flops,
    evaluate_images_per_s,
    interleave,
    median,
    paired_ratios,
    trainer_images_per_s,
)

from fashion_optim.batches import make_splits
from fashion_optim.files import atomic_write
from fashion_optim.models import LeNet

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

#: The targets of issue 7 (see the README): name -> (comparison, threshold, unit).
TARGETS: dict[str, tuple[str, float, str]] = {
    "trainer_vs_reference_b64": (">=", 3.0, ">= 3x"),
    "ceiling_fraction_b128": (">=", 0.15, ">= 15%"),
    "site_full_cold_s": ("<", 20 * 60.0, "< 20 min"),
    "site_quick_cold_s": ("<", 5 * 60.0, "< 5 min"),
    "site_warm_s": ("<", 90.0, "< 90 s"),
    "experiment_peak_rss_mib": ("<", 2048.0, "< 2 GiB"),
}

#: Extra environment of the subprocesses (``--threads`` sets OMP_NUM_THREADS here).
CHILD_ENV: dict[str, str] = {}


# --------------------------------------------------------------------------- throughput


def measure_throughput(rounds: int, images: int, eval_rounds: int) -> dict[str, Any]:
    """Trainer vs the reference loop at batch 64 and 128, the note's recorders, the
    matmul ceiling and evaluation, all interleaved in the same rounds."""
    splits = make_splits()
    ref = Reference(splits.mean, splits.std)
    warm = max(images // 10, 512)
    ceilings: list[dict[str, float]] = []

    def record_ceiling(warm_up: bool) -> float:
        c = ceiling_gflops(2048, repeats=1 if warm_up else 3)
        if not warm_up:
            ceilings.append(c)
        return c["ceiling"]

    try:
        variants = {
            "trainer_b64": lambda w: trainer_images_per_s(splits, 64, warm if w else images),
            "trainer_b128": lambda w: trainer_images_per_s(splits, 128, warm if w else images),
            "trainer_b128_recorders": lambda w: trainer_images_per_s(
                splits, 128, warm if w else images, record=True
            ),
            "reference_b64": lambda w: ref.images_per_s(64, warm if w else images),
            "reference_b128": lambda w: ref.images_per_s(128, warm if w else images),
            "evaluate_b1000": lambda w: max(
                evaluate_images_per_s(splits, 1000) for _ in range(1 if w else eval_rounds)
            ),
            "matmul_gflops": record_ceiling,
        }
        values = interleave(variants, rounds)
    finally:
        ref.close()

    model = LeNet()
    analytic = analytic_train_flops(model)
    counted = counted_train_flops(model)
    flops = analytic["train"]
    out: dict[str, Any] = {
        "images_per_measurement": images,
        "rounds": rounds,
        "threads": torch.get_num_threads(),
        "samples": values,
        "ceiling_detail": ceilings,
        "median": {k: median(v) for k, v in values.items()},
        "flops_per_image": {"analytic": analytic, "flop_counter": counted, "used": flops},
    }
    ratios = {
        "trainer_vs_reference_b64": paired_ratios(values["trainer_b64"], values["reference_b64"]),
        "trainer_vs_reference_b128": paired_ratios(
            values["trainer_b128"], values["reference_b128"]
        ),
        "recorders_vs_plain_b128": paired_ratios(
            values["trainer_b128_recorders"], values["trainer_b128"]
        ),
    }
    for b in (64, 128):
        ratios[f"ceiling_fraction_b{b}"] = [
            ips * flops / (g * 1e9)
            for ips, g in zip(values[f"trainer_b{b}"], values["matmul_gflops"], strict=True)
        ]
    out["ratios"] = {k: {"samples": v, "median": median(v)} for k, v in ratios.items()}
    out["training_gflops_b128"] = median(values["trainer_b128"]) * flops / 1e9
    return out


# --------------------------------------------------------------------------- memory


def rss_command(command: list[str]) -> list[str]:
    return [sys.executable, str(HERE / "_rss.py"), *command]


def run_measured(command: list[str], env: dict[str, str], timeout: float | None) -> dict:
    """Run ``command`` under ``_rss.py``; return its wall time, peak RSS and status."""
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            rss_command(command),
            env={**os.environ, **CHILD_ENV, **env},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"timed out after {timeout:.0f} s", "wall_s": timeout}
    lines = proc.stdout.strip().splitlines()
    try:
        report = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        report = {"returncode": proc.returncode, "wall_s": time.perf_counter() - start}
    report["ok"] = report.get("returncode") == 0
    if not report["ok"]:
        report["stderr_tail"] = proc.stderr[-3000:]
    return report


def experiment_command(profile: str) -> list[str]:
    # The CLI's ``run`` is experiments.run(NAMED[name], seed, profile=..., fresh=True).
    return [
        sys.executable, "-m", "fashion_optim", "run", "momentum",
        "--profile", profile, "--seed", "0", "--fresh", "--no-progress",
    ]  # fmt: skip


def measure_memory(profile: str, dry_run: bool) -> dict[str, Any]:
    """Peak RSS of one experiment (the note's "momentum" run, seed 0) from a fresh cache."""
    with tempfile.TemporaryDirectory(prefix="fashion-optim-bench-cache-") as cache:
        env = {"FASHION_OPTIM_CACHE": cache}
        cmd = experiment_command(profile)
        if dry_run:
            print("memory:", _shell(rss_command(cmd), env))
            return {"profile": profile, "dry_run": True}
        report = run_measured(cmd, env, timeout=3600)
    return {"profile": profile, "command": shlex.join(cmd), **report}


# --------------------------------------------------------------------------- site


def sphinx_build() -> list[str]:
    """The sphinx-build of this interpreter's environment."""
    exe = Path(sys.executable).with_name("sphinx-build")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "sphinx"]


def site_command(src: Path, out: Path) -> list[str]:
    # The same flags as `nox -s docs`; -E: a fresh environment every build.
    return [
        *sphinx_build(), "-b", "html", "-n", "-W", "--keep-going", "-T", "-E", str(src), str(out),
    ]  # fmt: skip


_GENERATED = (
    "_build", "auto_gallery", "api", "gen_modules", "jupyter_execute", "sg_execution_times.rst",
)  # fmt: skip


def copy_sources(dest: Path) -> Path:
    """Copy ``docs/`` and ``gallery/`` (without build outputs) into ``dest``.

    The build writes into its source folder (sphinx-gallery's ``auto_gallery``, the API
    pages, the offline inventories), so building the working tree itself would clobber a
    developer's build running at the same time.
    """
    shutil.copytree(ROOT / "docs", dest / "docs", ignore=shutil.ignore_patterns(*_GENERATED))
    shutil.copytree(ROOT / "gallery", dest / "gallery")
    return dest / "docs"


def site_plan(which: str) -> list[tuple[str, str, str]]:
    """(result name, profile, cache slot) of each build, in order. A warm rebuild reuses
    the cache the cold build of the same profile just filled."""
    plan = []
    if which in ("quick", "all"):
        plan.append(("site_quick_cold_s", "quick", "quick"))
    if which in ("full", "all"):
        plan.append(("site_full_cold_s", "full", "full"))
    warm = "full" if which in ("full", "all") else "quick"
    plan.append(("site_warm_s", warm, warm))
    return plan


def measure_site(which: str, dry_run: bool, timeout: float) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="fashion-optim-bench-site-") as tmp:
        tmp_path = Path(tmp)
        caches = {slot: tmp_path / f"cache-{slot}" for slot in ("quick", "full")}
        for name, profile, slot in site_plan(which):
            tree = tmp_path / f"tree-{slot}"
            if not tree.exists():
                copy_sources(tree)
            src, out = tree / "docs", tmp_path / f"html-{slot}"
            env = {"FASHION_OPTIM_PROFILE": profile, "FASHION_OPTIM_CACHE": str(caches[slot])}
            cmd = site_command(src, out)
            if dry_run:
                print(f"{name}:", _shell(rss_command(cmd), env))
                results[name] = {"profile": profile, "dry_run": True}
                continue
            print(f"  {name}: building ({profile} profile)...", flush=True)
            report = run_measured(cmd, env, timeout=timeout)
            html = out / "index.html"
            report["ok"] = report["ok"] and html.is_file()
            results[name] = {"profile": profile, "command": shlex.join(cmd), **report}
        if dry_run:
            # What can be checked without building: the copies and the executable.
            for tree in tmp_path.glob("tree-*"):
                if not (tree / "docs" / "conf.py").is_file():
                    raise SystemExit(f"the sources copy {tree} has no docs/conf.py")
            version = subprocess.run(
                [*sphinx_build(), "--version"], capture_output=True, text=True, check=True
            )
            print(f"(sources copied and checked in {tmp_path}; {version.stdout.strip()})")
    return results


def _shell(cmd: list[str], env: dict[str, str]) -> str:
    env = {**CHILD_ENV, **env}
    return " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()) + " " + shlex.join(cmd)


# --------------------------------------------------------------------------- report


def check_targets(results: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, float | None] = {}
    thr = results.get("throughput")
    if thr:
        values["trainer_vs_reference_b64"] = thr["ratios"]["trainer_vs_reference_b64"]["median"]
        values["ceiling_fraction_b128"] = thr["ratios"]["ceiling_fraction_b128"]["median"]
    site = results.get("site", {})
    for name in ("site_full_cold_s", "site_quick_cold_s", "site_warm_s"):
        entry = site.get(name)
        if entry and entry.get("ok"):
            values[name] = entry["wall_s"]
    mem = results.get("memory")
    if mem and mem.get("ok"):
        values["experiment_peak_rss_mib"] = mem["maxrss_mib"]
    out = {}
    for name, (op, limit, text) in TARGETS.items():
        v = values.get(name)
        met = None if v is None else (v >= limit if op == ">=" else v < limit)
        out[name] = {"value": v, "target": text, "met": met}
    if mem and mem.get("ok") and mem["profile"] != "full":
        out["experiment_peak_rss_mib"]["note"] = f"{mem['profile']} profile, not full"
    if site.get("site_warm_s", {}).get("profile") == "quick":
        out["site_warm_s"]["note"] = "quick profile"
    return out


def print_table(results: dict[str, Any]) -> None:
    rows: list[tuple[str, str, str, str]] = []
    thr = results.get("throughput")
    if thr:
        m, r = thr["median"], thr["ratios"]
        for b in (64, 128):
            rows.append((f"Trainer.fit, batch {b}", f"{m[f'trainer_b{b}']:,.0f} img/s", "", ""))
            rows.append((f"reference DataLoader, batch {b}", f"{m[f'reference_b{b}']:,.0f} img/s",
                         "", ""))  # fmt: skip
        rows.append(("Trainer.fit + note recorders, b128",
                     f"{m['trainer_b128_recorders']:,.0f} img/s", "", ""))  # fmt: skip
        rows.append(("Trainer / reference, batch 128",
                     f"{r['trainer_vs_reference_b128']['median']:.2f}x", "", ""))  # fmt: skip
        rows.append(("evaluate (inference, batch 1000)", f"{m['evaluate_b1000']:,.0f} img/s",
                     "", ""))  # fmt: skip
        rows.append(("float32 matmul ceiling", f"{m['matmul_gflops']:.1f} GFLOP/s", "", ""))
        f = thr["flops_per_image"]
        rows.append(("training FLOPs per image", f"{f['used'] / 1e6:.2f} MFLOP", "", ""))
    ex = results.get("executors")
    if ex:
        w = ex["median_wall_s"]
        batch = f"{ex['jobs']} runs"
        rows.append((f"{batch}, run_many(workers=1)", f"{w['local_1']:.1f} s", "", ""))
        rows.append((f"{batch}, run_many(workers=2)", f"{w['local_2']:.1f} s", "", ""))
        rows.append((f"{batch}, Dask LocalCluster of 2 (warm)", f"{w['dask_2']:.1f} s", "", ""))
        r = ex["ratios"]
        rows.append(("wall, 2 local workers / 1", f"{r['local_2_vs_local_1']['median']:.2f}",
                     "", ""))  # fmt: skip
        rows.append(("wall, Dask / 2 local workers", f"{r['dask_2_vs_local_2']['median']:.2f}",
                     "", ""))  # fmt: skip
    labels = {
        "trainer_vs_reference_b64": ("Trainer / reference, batch 64", "{:.2f}x"),
        "ceiling_fraction_b128": ("fraction of the ceiling, batch 128", "{:.1%}"),
        "site_full_cold_s": ("site, full profile, empty cache", "{:.0f} s"),
        "site_quick_cold_s": ("site, quick profile, empty cache", "{:.0f} s"),
        "site_warm_s": ("site, rebuild with a warm cache", "{:.0f} s"),
        "experiment_peak_rss_mib": ("peak RSS of one experiment", "{:.0f} MiB"),
    }
    for name, t in results["targets"].items():
        label, fmt = labels[name]
        if t.get("note"):
            label += f" ({t['note']})"
        value = "not measured" if t["value"] is None else fmt.format(t["value"])
        met = {True: "yes", False: "NO", None: "-"}[t["met"]]
        rows.append((label, value, t["target"], met))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    head = ("measurement", "value", "target", "met")
    widths = [max(w, len(h)) for w, h in zip(widths, head, strict=True)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    print(line.format(*head))
    print(line.format(*("-" * w for w in widths)))
    for row in rows:
        print(line.format(*row))


def write_json(path: Path, results: dict[str, Any]) -> None:
    text = json.dumps(results, indent=2, default=str).encode()
    atomic_write(path, lambda fh: fh.write(text))  # temp file + os.replace


def load_average() -> list[float] | None:
    try:
        return list(os.getloadavg())
    except OSError:
        return None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="a short smoke run of every part")
    p.add_argument("--skip-site", action="store_true", help="no site builds")
    p.add_argument(
        "--site",
        choices=("quick", "full", "all"),
        default=None,
        help="which site builds (default: all; quick with --quick)",
    )
    p.add_argument("--skip-memory", action="store_true", help="no peak-memory experiment")
    p.add_argument("--skip-throughput", action="store_true", help="no throughput rounds")
    p.add_argument(
        "--skip-executors",
        action="store_true",
        help="no executor batch (run_many on 1 and 2 local workers and a Dask LocalCluster)",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print the site-build and memory commands (and check the sources copy) "
        "instead of running them",
    )
    p.add_argument("--rounds", type=int, default=None, help="default 5 (2 with --quick)")
    p.add_argument(
        "--images", type=int, default=None, help="images per measurement (10000; 2000 quick)"
    )
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads first")
    p.add_argument(
        "--patch",
        action="append",
        default=[],
        help="turn on a hook from candidates.HOOKS first (in this process only: the "
        "memory and site subprocesses are not patched, and the executor batch is left out)",
    )
    p.add_argument("--site-timeout", type=float, default=3600.0, help="seconds per build")
    p.add_argument("--out", type=Path, default=HERE / "results" / "latest.json")
    args = p.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
        CHILD_ENV["OMP_NUM_THREADS"] = str(args.threads)
    if args.patch:
        from candidates import HOOKS, install

        for name in args.patch:
            if name not in HOOKS:
                p.error(f"unknown patch {name!r}; valid choices: {sorted(HOOKS)}")
            install(name)
    rounds = args.rounds or (2 if args.quick else 5)
    images = args.images or (2000 if args.quick else 10_000)
    site = None if args.skip_site else (args.site or ("quick" if args.quick else "all"))
    results: dict[str, Any] = {
        "meta": {
            "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "argv": sys.argv[1:] if argv is None else argv,
            "quick": args.quick,
            "patches": args.patch,
            "torch": torch.__version__,
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "child_env": CHILD_ENV,
            "machine": platform.machine(),
            "load_average_start": load_average(),
        }
    }

    if args.dry_run:
        if not args.skip_memory:
            measure_memory("quick" if args.quick else "full", dry_run=True)
        if site:
            measure_site(site, dry_run=True, timeout=args.site_timeout)
        return 0

    t0 = time.perf_counter()
    if not args.skip_throughput:
        print(f"throughput: {rounds} rounds of {images:,} images per variant...", flush=True)
        results["throughput"] = measure_throughput(rounds, images, eval_rounds=3)
    if not args.skip_memory:
        profile = "quick" if args.quick else "full"
        print(f"memory: one {profile}-profile experiment in a subprocess...", flush=True)
        results["memory"] = measure_memory(profile, dry_run=False)
    if args.patch and not args.skip_executors:
        # workers=1 trains here (patched), the workers do not: they would differ.
        print("executors: left out with --patch (the worker processes are not patched)")
    elif not args.skip_executors:
        from executors import measure_executors

        print(
            "executors: one batch on 1 and 2 local workers and a Dask LocalCluster...", flush=True
        )
        results["executors"] = measure_executors()
    if site:
        print(f"site builds ({site})...", flush=True)
        results["site"] = measure_site(site, dry_run=False, timeout=args.site_timeout)
    results["meta"]["load_average_end"] = load_average()
    results["meta"]["seconds"] = time.perf_counter() - t0
    results["targets"] = check_targets(results)
    write_json(args.out, results)
    print()
    print_table(results)
    print(f"\nwritten to {args.out}")
    failed = [
        f"{k}: {v.get('error') or v.get('stderr_tail', '')[-500:]}"
        for k, v in {"memory": results.get("memory"), **results.get("site", {})}.items()
        if v and not v.get("ok", True)
    ]
    for f in failed:
        print(f"FAILED {f}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
