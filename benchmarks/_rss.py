"""Run a command and report its wall time and peak memory as one JSON line.

    python benchmarks/_rss.py COMMAND [ARGS...]

This wrapper imports nothing heavy and has no other children, so
``getrusage(RUSAGE_CHILDREN).ru_maxrss`` after the command is that command's own peak
resident set (the largest of it and its descendants, on Linux in KiB). The command's
output goes to this process's standard error; the JSON line is the only thing written
to standard output.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    rc = subprocess.run(argv, stdout=sys.stderr, check=False).returncode
    wall = time.perf_counter() - t0
    maxrss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss is in KiB on Linux and in bytes on macOS.
    kib = maxrss / 1024 if sys.platform == "darwin" else maxrss
    print(json.dumps({"returncode": rc, "wall_s": wall, "maxrss_mib": kib / 1024}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
