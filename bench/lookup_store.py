"""Lookup against a latent store: index build (once per store version) and per-upload latency;
print JSON.

    python bench/lookup_store.py                      # 1,000,000 x 64 store, 1 thread
    python bench/lookup_store.py --n 100000 --dim 16  # a quick run
    python bench/lookup_store.py --hnsw-n 1000000     # HNSW measured at 1M too (minutes)

The store folder is written directly in ``lsx.latents``'s format (``z.npy`` etc. through
``np.lib.format.open_memmap`` in chunks, then ``manifest.json``) and opened with
``lsx.latents.open_store``, exactly as the Lookup page opens it: encoding a million images
first would only time the encoder (``bench/encode.py`` does that). ``z`` is a mixture of 10
Gaussian clusters. The query is one "upload": a random 1x8x8 image encoded by a small untrained
MLP autoencoder (``ae``, latent 64 or the chosen dim), then searched, as the page does it
(:func:`lsx.analysis.lookup.lookup_images` with the cached index, minus cluster prediction).

Reported: store write and open time; the page's index (``build_index(z, n_queries=50)``, 50 =
the uploads cap: exact FAISS flat up to 4M rows) build time and per-upload latency (median of
``--repeats``, search alone and encode + search); the uncached cost (build + one query, what
every rerun would pay without the cached index); an HNSW index over the first ``--hnsw-n`` rows
(build, per-query latency, recall@8 against exact on 200 queries); peak RSS (VmHWM).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout, uninstalled
CHUNK = 100_000
K = 8
UPLOADS_CAP = 50  # lsx.data.uploads.MAX_UPLOAD_FILES: the page builds with n_queries = this


def _status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return round(int(line.split()[1]) / 1024, 1)
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def write_store(store_dir: Path, n: int, dim: int, seed: int = 0) -> None:
    """A complete latent store of n synthetic latents (10 Gaussian clusters), in chunks."""
    from lsx.files import atomic_write_json
    from lsx.latents.store import FORMAT_VERSION

    store_dir.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 3.0, size=(10, dim)).astype(np.float32)
    arrays = {
        "z.npy": ((n, dim), np.float32),
        "recon_error.npy": ((n,), np.float32),
        "rows.npy": ((n,), np.int64),
        "labels-class.npy": ((n,), np.int64),
    }
    maps = {
        name: np.lib.format.open_memmap(store_dir / name, mode="w+", dtype=dt, shape=shape)
        for name, (shape, dt) in arrays.items()
    }
    for start in range(0, n, CHUNK):
        stop = min(start + CHUNK, n)
        y = rng.integers(0, 10, size=stop - start)
        noise = rng.standard_normal((stop - start, dim), dtype=np.float32)
        maps["z.npy"][start:stop] = centres[y] + noise
        maps["recon_error.npy"][start:stop] = rng.random(stop - start, dtype=np.float32)
        maps["rows.npy"][start:stop] = np.arange(start, stop)
        maps["labels-class.npy"][start:stop] = y
    for a in maps.values():
        a.flush()
    maps.clear()
    atomic_write_json(
        store_dir / "manifest.json",
        {
            "format_version": FORMAT_VERSION,
            "checkpoint_sha": "synthetic",
            "model_kind": "ae",
            "latent_shape": [dim],
            "source": {
                "spec": "npy:/synthetic.npy",
                "hash": "synthetic",
                "n": n,
                "input_shape": [1, 8, 8],
                "label_names": {"class": [str(c) for c in range(10)]},
            },
            "split": "all",
            "n": n,
            "dim": dim,
            "rows_done": n,
            "complete": True,
        },
    )


def _median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return round(1e3 * statistics.median(times), 3)


def run(n: int, dim: int, threads: int, repeats: int, hnsw_n: int) -> dict[str, Any]:
    import torch

    from lsx.analysis.embedding import embed
    from lsx.analysis.knn import build_index
    from lsx.latents.store import open_store
    from lsx.models import build_model, make_config

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build_model(
        make_config("ae", input_shape=(1, 8, 8), latent_dim=dim, hidden_dim=64)
    ).eval()
    upload = np.random.default_rng(1).random((1, 1, 8, 8), dtype=np.float32)
    out: dict[str, Any] = {"n": n, "dim": dim, "threads": threads, "k": K}
    with tempfile.TemporaryDirectory() as tmp:
        store_dir = Path(tmp) / "stores" / "synthetic"
        start = time.perf_counter()
        write_store(store_dir, n, dim)
        out["store_write_s"] = round(time.perf_counter() - start, 2)
        start = time.perf_counter()
        store = open_store(store_dir)
        out["store_open_s"] = round(time.perf_counter() - start, 4)
        rss_before = _status_mib("VmRSS")

        start = time.perf_counter()
        index = build_index(store.z, n_queries=UPLOADS_CAP, threads=threads)
        out["index"] = index.info
        out["index_build_s"] = round(time.perf_counter() - start, 3)
        out["rss_index_mib"] = round(_status_mib("VmRSS") - rss_before, 1)
        z_q = embed(model, upload).z
        out["search_ms_per_upload"] = _median_ms(lambda: index.query(z_q, K), repeats)
        out["encode_and_search_ms_per_upload"] = _median_ms(
            lambda: index.query(embed(model, upload).z, K), repeats
        )
        z50 = embed(model, np.random.default_rng(2).random((50, 1, 8, 8), dtype=np.float32)).z
        out["search_ms_50_uploads"] = _median_ms(lambda: index.query(z50, K), max(3, repeats // 5))
        out["uncached_build_and_search_s"] = round(
            out["index_build_s"] + out["encode_and_search_ms_per_upload"] / 1e3, 3
        )

        if hnsw_n:
            m = min(hnsw_n, n)
            db = np.asarray(store.z[:m])
            start = time.perf_counter()
            hnsw = build_index(db, method="hnsw", threads=threads)
            build_s = time.perf_counter() - start
            rng = np.random.default_rng(3)
            q = db[rng.choice(m, 200, replace=False)] + rng.normal(0, 0.5, (200, dim)).astype(
                np.float32
            )
            exact_ids, _ = build_index(db, method="exact", threads=threads).query(q, K)
            approx_ids, _ = hnsw.query(q, K)
            recall = np.mean(
                [len(set(a) & set(e)) / K for a, e in zip(approx_ids, exact_ids, strict=True)]
            )
            out["hnsw"] = {
                "n": m,
                **{k: v for k, v in hnsw.info.items() if k not in ("n_db", "dim")},
                "build_s": round(build_s, 2),
                "search_ms_per_upload": _median_ms(lambda: hnsw.query(z_q, K), repeats),
                "recall_at_8": round(float(recall), 4),
            }
            del db, hnsw
        out["peak_rss_mib"] = _status_mib("VmHWM")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--hnsw-n", type=int, default=100_000, help="0 skips HNSW")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import faiss

    result = run(args.n, args.dim, args.threads, args.repeats, args.hnsw_n)
    result["machine"] = {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "faiss": faiss.__version__,
        "numpy": np.__version__,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
