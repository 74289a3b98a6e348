"""Per page wall and CPU time of a build: a table logged when the build ends, and
``timings.json`` beside the HTML folder (``docs/_build/timings.json``).

A page's CPU time is this process's (and its finished children's, such as a note page's
kernel and the workers that kernel started) plus what each computation done for it in a
kept worker process, or on a Dask cluster, reported from there
(:func:`fashion_optim.experiments.worker_cpu_time`). The gallery's examples are timed
through sphinx-gallery's ``reset_modules`` hook (:func:`gallery_example`), before and
after each one; the other pages (the note's, the home page...) from the moment Sphinx
reads them to their doctree (myst-nb executes them in between), listed when that took at
least half a second.
"""

from __future__ import annotations

import json
import os
import resource
import time
from pathlib import Path
from typing import Any

from sphinx.util import logging

from fashion_optim.experiments import worker_cpu_time

logger = logging.getLogger(__name__)

# page -> {"wall": seconds, "cpu": seconds}; a page being timed -> (wall, cpu) at its start
TIMES: dict[str, dict[str, float]] = {}
_STARTED: dict[str, tuple[float, float]] = {}


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime + worker_cpu_time()


def start(page: str) -> None:
    _STARTED[page] = (time.perf_counter(), _cpu())


def stop(page: str) -> None:
    if page in _STARTED:
        wall, cpu = _STARTED.pop(page)
        TIMES[page] = {"wall": time.perf_counter() - wall, "cpu": _cpu() - cpu}


def gallery_example(gallery_conf: dict, fname: Any, when: str) -> None:
    """sphinx-gallery's ``reset_modules`` hook (with ``reset_modules_order`` "both")."""
    if fname is None:  # entering a folder of examples
        return
    page = f"auto_gallery/{Path(fname).stem}"
    (start if when == "before" else stop)(page)


def _source_read(app, docname: str, source: list[str]) -> None:
    # the gallery's pages are timed while their examples run; the API pages run nothing
    if not docname.startswith(("auto_gallery/", "api/")):
        start(docname)


def _doctree_read(app, doctree) -> None:
    stop(app.env.docname)
    # a page that executes nothing (a few milliseconds to parse) is left out of the table
    if TIMES.get(app.env.docname, {}).get("wall", 1.0) < 0.5:
        del TIMES[app.env.docname]


def summary(cores: int) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """One row per timed page, and the totals, with each page's share of ``cores``."""
    rows = [
        {
            "page": page,
            "wall_s": round(t["wall"], 2),
            "cpu_s": round(t["cpu"], 2),
            "utilisation": round(t["cpu"] / t["wall"] / cores, 3) if t["wall"] > 0 else 0.0,
        }
        for page, t in sorted(TIMES.items())
    ]
    wall = sum(t["wall"] for t in TIMES.values())
    cpu = sum(t["cpu"] for t in TIMES.values())
    total = {
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "cores": cores,
        "utilisation": round(cpu / wall / cores, 3) if wall > 0 else 0.0,
    }
    return rows, total


def _build_finished(app, exception) -> None:
    if exception is not None or not TIMES:
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    rows, total = summary(cores or 1)
    width = max(len(r["page"]) for r in rows)
    lines = [f"{'page':<{width}}  {'wall s':>8}  {'CPU s':>8}  {'of cores':>8}"]
    for r in rows:
        lines.append(
            f"{r['page']:<{width}}  {r['wall_s']:>8.1f}  {r['cpu_s']:>8.1f}  "
            f"{r['utilisation']:>8.0%}"
        )
    lines.append(
        f"{'all timed pages':<{width}}  {total['wall_s']:>8.1f}  {total['cpu_s']:>8.1f}  "
        f"{total['utilisation']:>8.0%}"
    )
    logger.info("page timings (CPU: this process, its children and the workers' jobs):")
    for line in lines:
        logger.info(line)
    path = Path(app.outdir).parent / "timings.json"
    path.write_text(json.dumps({"pages": rows, "total": total}, indent=1) + "\n")
    logger.info(f"page timings written to {path}")


def setup(app) -> dict[str, Any]:
    app.connect("source-read", _source_read)
    app.connect("doctree-read", _doctree_read)
    app.connect("build-finished", _build_finished)
    return {"parallel_read_safe": False, "parallel_write_safe": True}
