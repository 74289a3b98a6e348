#!/usr/bin/env python
"""Compare the glued values of two builds of the fashion-optim site, page by page.

myst-nb writes PAGE.glue.json beside each executed notebook (in jupyter_execute/). This
script loads every *.glue.json under BASELINE_DIR and NEW_DIR, pairs them by their path
relative to each folder, and prints, per page, the glue names whose text/plain differs,
that are missing from the new build or new in it, and those whose kinds of output differ
(a figure glued without its image/png, say). Names of timings (wall time, seconds,
minutes, build time, dates) are ignored: they change from one build to the next.

Usage: python compare_glue.py BASELINE_DIR NEW_DIR
Exit status: 0 when every page matches, 1 on any difference, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

# Glue names that hold timings or dates, never compared.
TIMING_WORDS = {
    "wall", "walltime", "time", "times", "timing", "timings", "seconds", "secs", "minutes",
    "mins", "duration", "elapsed", "date", "dates", "built", "timestamp",
}  # fmt: skip


def is_timing(name: str) -> bool:
    """Whether a glue name holds a timing or a date ("wall_time", "build-time", ...)."""
    return bool(TIMING_WORDS & set(re.split(r"[_\W]+", name.lower())))


Glue = tuple[str | None, tuple[str, ...]]  # text/plain, and the MIME types glued


def load_pages(root: Path) -> dict[str, dict[str, Glue]]:
    """Page (relative path without .glue.json) -> {glue name: (text/plain, MIME types)}."""
    pages: dict[str, dict[str, Glue]] = {}
    where: dict[str, Path] = {}
    for path in sorted(root.rglob("*.glue.json")):
        page = path.relative_to(root).as_posix().removesuffix(".glue.json")
        # a build folder holds them under jupyter_execute/: the page is what follows it
        page = page.rpartition("jupyter_execute/")[2]
        if page in where:
            raise SystemExit(
                f"{root} holds the page {page!r} twice ({where[page]} and {path}): give the "
                "jupyter_execute folder of one build."
            )
        where[page] = path
        data = json.loads(path.read_text())
        pages[page] = {
            name: (out.get("data", {}).get("text/plain"), tuple(sorted(out.get("data", {}))))
            for name, out in data.items()
        }
    return pages


def compare(base: dict, new: dict) -> dict[str, list[str]]:
    """Per page, the lines that describe each difference (empty when none)."""
    report: dict[str, list[str]] = {}
    for page in sorted(set(base) | set(new)):
        lines = []
        if page not in new:
            lines.append("page missing from the new build")
        elif page not in base:
            lines.append("page new (not in the baseline)")
        else:
            b, n = base[page], new[page]
            for name in sorted(set(b) | set(n)):
                if is_timing(name):
                    continue
                if name not in n:
                    lines.append(f"missing: {name} (was {b[name][0]!s:.80})")
                elif name not in b:
                    lines.append(f"new:     {name} = {n[name][0]!s:.80}")
                elif b[name][0] != n[name][0]:
                    lines.append(f"differs: {name}: {b[name][0]!s:.80} -> {n[name][0]!s:.80}")
                elif b[name][1] != n[name][1]:
                    kinds = f"{', '.join(b[name][1])} -> {', '.join(n[name][1])}"
                    lines.append(f"differs: {name}: outputs {kinds}")
        report[page] = lines
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("baseline", type=Path, help="folder of the baseline's *.glue.json")
    parser.add_argument("new", type=Path, help="folder of the new build's *.glue.json")
    args = parser.parse_args(argv)
    for root in (args.baseline, args.new):
        if not root.is_dir():
            parser.error(f"{root} is not a folder")
    base, new = load_pages(args.baseline), load_pages(args.new)
    if not base or not new:
        empty = args.baseline if not base else args.new
        print(f"no *.glue.json under {empty}: is it the jupyter_execute folder of a build?")
        return 1
    report = compare(base, new)
    different = 0
    for page, lines in report.items():
        n_names = len(new.get(page, base.get(page, {})))
        print(f"{page}: {'OK' if not lines else f'{len(lines)} difference(s)'} ({n_names} names)")
        for line in lines:
            print(f"    {line}")
        different += bool(lines)
    print(f"{different} of {len(report)} page(s) differ" if different else "every page matches")
    return 1 if different else 0


if __name__ == "__main__":
    sys.exit(main())
