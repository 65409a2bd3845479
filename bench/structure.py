"""Clusters, outlier scores, near-duplicates and drift at scale; print JSON.

    python bench/structure.py                     # 10^5 and 10^6 points x 16 dims
    python bench/structure.py --sizes 100000      # a quick run

Synthetic latents: 10 Gaussian blobs (centres N(0, 6^2), spread 1) in 16 dimensions, float32,
in a memory-mapped ``.npy`` like a latent store's ``z``. Per size, in this process: k-means with
the silhouette sweep (k = 2..12) and assignment of every point, its adjusted Rand index against
the planted blobs; outlier scores of every point (kNN distance, k = 10, reference sample of
10^5); near-duplicate groups (at 10^5 only: a kNN graph of every point); a drift test of a
shifted half against the other (MMD, 200 permutations, 1,000 points per side, plus novelty of
every new point). Target (issue 14): clusters at 10^6 x 16 in < 2 min on 2 cores.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout, uninstalled
DIM = 16
K = 10
CHUNK = 200_000


def write_blobs(path: Path, n: int, seed: int = 0) -> np.ndarray:
    """n points of K blobs in DIM dims written through a memory map; returns the blob ids."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 6, size=(K, DIM))
    y = rng.integers(0, K, size=n)
    z = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, DIM))
    for start in range(0, n, CHUNK):
        stop = min(start + CHUNK, n)
        z[start:stop] = centres[y[start:stop]] + rng.normal(size=(stop - start, DIM))
    z.flush()
    del z
    return y


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def measure(n: int, threads: int, tmp: Path) -> dict[str, Any]:
    from sklearn.metrics import adjusted_rand_score

    from lsx.analysis.drift import drift_test
    from lsx.analysis.structure import (
        fit_clusters,
        near_duplicate_groups,
        outlier_scores,
    )

    path = tmp / f"z{n}.npy"
    y = write_blobs(path, n)
    z = np.load(path, mmap_mode="r", allow_pickle=False)
    row: dict[str, Any] = {"n": n, "dim": DIM, "planted_clusters": K}
    t = time.perf_counter()
    cl = fit_clusters(z, seed=0)
    row["clusters_s"] = round(time.perf_counter() - t, 2)
    row["clusters_k"] = cl.k
    row["clusters_ari"] = round(float(adjusted_rand_score(y, cl.labels)), 4)
    row["clusters_n_fit"] = cl.n_fit
    t = time.perf_counter()
    scores = outlier_scores(z, threads=threads)
    row["outlier_scores_s"] = round(time.perf_counter() - t, 2)
    row["outlier_scores_finite"] = bool(np.isfinite(scores).all())
    if n <= 100_000:
        t = time.perf_counter()
        groups = near_duplicate_groups(z, threshold=0.05, threads=threads)
        row["near_duplicates_s"] = round(time.perf_counter() - t, 2)
        row["near_duplicate_points"] = int((groups >= 0).sum())
    half = n // 2
    shifted = np.asarray(z[half:]) + np.float32(0.5)
    t = time.perf_counter()
    drift = drift_test(z[:half], shifted, seed=0, threads=threads)
    row["drift_s"] = round(time.perf_counter() - t, 2)
    row["drift_p_value_shift_0_5"] = drift.p_value
    row["drift_share_novel"] = round(drift.share_novel, 4)
    row["peak_rss_mib"] = _rss_mib()
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--threads", type=int, default=2, help="FAISS threads")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="lsx-bench-structure-") as tmp:
        for n in args.sizes:
            rows.append(measure(n, args.threads, Path(tmp)))
            print(json.dumps(rows[-1]), file=sys.stderr)
    import sklearn

    print(json.dumps({
        "bench": "structure",
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "cpu_count": os.cpu_count(),
        "threads": args.threads,
        "load_avg_1m_at_end": round(os.getloadavg()[0], 2),
        "rows": rows,
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
