"""Time the projections and the projection cache on synthetic latent vectors; print JSON.

    python bench/projection.py                   # 1,000 and 5,000 points, dim 16
    python bench/projection.py --quick           # 500 points, short t-SNE: a smoke run
    python bench/projection.py --sizes 2000 10000 --dim 32

UMAP is timed twice per size in one process: the first fit pays numba's JIT (the exact-kNN path
below 4,096 points, NNDescent from 4,096 on), the second does not. Every fit
is seeded (lsx's default, reproducible, single-threaded UMAP). The cache rows time
``lsx.cache.cached_projection`` on a miss (UMAP fit + write) and on a hit (read + verify).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.datasets import make_blobs

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, uninstalled

from lsx.analysis import project  # noqa: E402
from lsx.cache import cached_projection, library_versions  # noqa: E402


def _timed(fn, *args, **kwargs) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, round(time.perf_counter() - start, 3)


def bench_size(n: int, dim: int, tsne_iter: int, cache_dir: Path) -> dict[str, Any]:
    z, _ = make_blobs(n_samples=n, n_features=dim, centers=10, cluster_std=2.0, random_state=0)
    z = z.astype(np.float32)
    row: dict[str, Any] = {"n": n, "dim": dim}
    _, row["pca_s"] = _timed(project, z, "pca")
    _, row["umap_first_s"] = _timed(project, z, "umap")
    _, row["umap_second_s"] = _timed(project, z, "umap")
    _, row["tsne_s"] = _timed(project, z, "tsne", max_iter=tsne_iter)
    request = {"z": z, "checkpoint_sha": "bench", "data_hash": f"blobs-{n}-{dim}", "split": "all"}
    (_, _, hit), row["cache_miss_umap_s"] = _timed(
        cached_projection, cache_dir, method="umap", **request
    )
    assert not hit
    (_, _, hit), row["cache_hit_s"] = _timed(cached_projection, cache_dir, method="umap", **request)
    assert hit
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--dim", type=int, default=16)
    parser.add_argument("--quick", action="store_true", help="500 points, t-SNE max_iter=250")
    args = parser.parse_args(argv)
    sizes, tsne_iter = ([500], 250) if args.quick else (args.sizes, 1000)

    start = time.perf_counter()
    import umap  # noqa: F401  (timed apart from the first fit)

    umap_import_s = round(time.perf_counter() - start, 3)
    with tempfile.TemporaryDirectory(prefix="lsx-bench-") as tmp:
        rows = [bench_size(n, args.dim, tsne_iter, Path(tmp)) for n in sizes]
    report = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "versions": library_versions(),
        "umap_import_s": umap_import_s,
        "tsne_max_iter": tsne_iter,
        "results": rows,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
