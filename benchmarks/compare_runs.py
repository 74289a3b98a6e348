"""Compare every cached run and range test of two result caches, bit for bit.

Entries are matched by their configuration, not their key (which hashes the code), so
the caches of two versions of the library can be compared: a refactoring that changes no
result gives equal arrays and test metrics (wall-clock times aside).

Usage: python benchmarks/compare_runs.py CACHE_BEFORE CACHE_AFTER
Exit status: 0 when every run found in both is equal, 1 otherwise.
"""

import json
import sys
from pathlib import Path

import numpy as np


def load(root, kind):
    out = {}
    for path in Path(root, kind).glob("*.npz"):
        with np.load(path, allow_pickle=False) as npz:
            meta = json.loads(npz["meta"].tobytes().decode())
            arrays = {k: npz[k] for k in npz.files if k != "meta"}
        cfg = json.dumps(meta["config"], sort_keys=True, default=str)
        out[cfg] = (arrays, meta)
    return out


status = 0
for kind in ("run", "range_test"):
    a, b = load(sys.argv[1], kind), load(sys.argv[2], kind)
    common = sorted(set(a) & set(b))
    diff = []
    for cfg in common:
        (aa, am), (ba, bm) = a[cfg], b[cfg]
        keys = [k for k in aa if "time" not in k]  # wall-clock times differ by nature
        same = aa.keys() == ba.keys() and all(np.array_equal(aa[k], ba[k]) for k in keys)
        for field in ("test_acc", "test_loss", "suggested_lr", "lr_max", "lr_min"):
            if field in am and am[field] != bm.get(field):
                same = False
        if not same:
            diff.append(cfg)
    print(
        f"{kind}: {len(a)} before, {len(b)} after, {len(common)} matched by config, "
        f"{len(diff)} differ; only before: {len(set(a) - set(b))}, "
        f"only after: {len(set(b) - set(a))}"
    )
    for cfg in diff:
        print("  DIFFERS:", cfg[:200])
    status |= bool(diff)
sys.exit(status)
