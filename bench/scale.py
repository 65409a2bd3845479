"""Scale bench: projection tiers, kNN latency and the store map page at 10^4-10^6 points; JSON.

    python bench/scale.py                                  # 10k, 100k, 1M; dims 16 and 64
    python bench/scale.py --sizes 10000 100000 --dims 16   # a shorter run
    python bench/scale.py --quick                          # 5k and 20k, dim 16: a smoke run
    python bench/scale.py --only map --sizes 10000 50000 100000 1000000 --dims 16
                                                           # the map page only (no UMAP, kNN)

For each dimension and size: clustered synthetic latents (10 Gaussian blobs, labelled) are
written chunk by chunk to a latent-store folder (memory-mapped ``z.npy``, as ``lsx encode``
writes it), then

- ``pca_s``: the tiered PCA (:func:`lsx.analysis.tiers.project_tiered`);
- ``umap_exact_s``: plain umap-learn (``umap.UMAP(random_state=0)``, what lsx's exact tier
  calls), only up to ``--exact-umap-max`` points; numba's JIT is paid once beforehand;
- ``umap_tiered``: lsx's tiered UMAP through the store's projection cache
  (:func:`lsx.latents.cached_store_projection`), with its seconds per stage;
- ``compare``: where both ran on the same points, time ratio and sklearn trustworthiness
  (k=10) of both maps on a fixed random subset of ``--trust-subset`` points;
- ``knn``: exact (FAISS flat) vs HNSW over all points: build, 1 query, 1000 queries, and the
  recall@10 of HNSW against exact on those 1000 queries;
- ``page``: the Latent map page on that store under Streamlit's AppTest, server side: cold
  (nothing cached: the PCA is computed and written), disk-warm (memory caches cleared, as after
  a restart), warm (median of 5 reruns), and the chart's JSON payload in bytes; also for the
  UMAP map when it was computed;
- ``peak_rss_mb``: the process's peak resident set so far (``ru_maxrss``; it only grows).

``--only map`` writes the store and measures only ``page`` for PCA (cold, disk-warm, warm,
payload), with the tier the page chose (``scatter`` up to ``SCATTER_MAX`` points, else
``density``) and the payload per point shown.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import resource
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, uninstalled

from lsx.analysis.knn import build_index  # noqa: E402
from lsx.analysis.tiers import project_tiered  # noqa: E402
from lsx.cache import library_versions  # noqa: E402
from lsx.latents.store import FORMAT_VERSION, MANIFEST_NAME, STORES_DIR, open_store  # noqa: E402

PAGE = Path(__file__).resolve().parents[1] / "pages" / "2_latent_map.py"
CHUNK = 100_000
WARM_RUNS = 5  # reruns of a warm page; the median is reported


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def timed(fn, *args, **kwargs) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, round(time.perf_counter() - start, 3)


def make_run(root: Path) -> Path:
    """A tiny untrained run (the page needs one; the store does not depend on it)."""
    import torch

    from lsx.checkpoint import save_checkpoint
    from lsx.data import load_dataset
    from lsx.models import build_model, make_config
    from lsx.train import data_info

    ds = load_dataset("digits")
    torch.manual_seed(0)
    config = make_config("vae", input_shape=ds.input_shape, latent_dim=3, hidden_dim=16)
    run_dir = root / "bench-run"
    save_checkpoint(build_model(config), config, run_dir, train={"epochs": 1}, data=data_info(ds))
    return run_dir


def write_store(run_dir: Path, n: int, dim: int, seed: int = 0) -> Path:
    """Labelled blobs written chunk by chunk as a latent-store folder (bounded memory)."""
    from lsx.checkpoint import weights_sha256

    d = run_dir / STORES_DIR / f"blobs-{n}-{dim}"
    d.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=6.0, size=(10, dim)).astype(np.float32)
    z = np.lib.format.open_memmap(d / "z.npy", mode="w+", dtype=np.float32, shape=(n, dim))
    y = rng.integers(0, 10, n).astype(np.int64)
    for start in range(0, n, CHUNK):
        part = y[start : start + CHUNK]
        z[start : start + len(part)] = centers[part] + rng.normal(size=(len(part), dim))
    z.flush()
    del z
    np.save(d / "labels-class.npy", y)
    np.save(d / "rows.npy", np.arange(n, dtype=np.int64))
    np.save(d / "recon_error.npy", np.zeros(n, dtype=np.float32))
    names = [f"blob {i}" for i in range(10)]
    manifest = {
        "format_version": FORMAT_VERSION,
        "checkpoint_sha": weights_sha256(run_dir),
        "model_kind": "vae",
        "latent_shape": [dim],
        "source": {"spec": f"npy:/bench/{n}.npy", "hash": f"blobs-{n}-{dim}", "n": n,
                   "label_names": {"class": names}},
        "split": "all",
        "n": n,
        "dim": dim,
        "rows_done": n,
        "complete": True,
    }  # fmt: skip
    (d / MANIFEST_NAME).write_text(json.dumps(manifest))
    return d


def bench_knn(z: np.ndarray, threads: int) -> dict[str, Any]:
    rng = np.random.default_rng(1)
    queries = np.asarray(z[np.sort(rng.choice(len(z), 1000, replace=False))]) + 0.01
    out: dict[str, Any] = {"threads": threads}
    ids = {}
    for method in ("exact", "hnsw"):
        index, out[f"{method}_build_s"] = timed(build_index, z, method=method, threads=threads)
        _, out[f"{method}_1_query_s"] = timed(index.query, queries[:1], 10)
        (ids[method], _), out[f"{method}_1000_queries_s"] = timed(index.query, queries, 10)
        del index
    hits = [len(set(a) & set(b)) for a, b in zip(ids["hnsw"], ids["exact"], strict=True)]
    out["hnsw_recall_at_10"] = round(float(np.mean(hits)) / 10, 4)
    return out


def bench_page(root: Path, run_dir: Path, store_dir: Path, methods: list[str]) -> dict[str, Any]:
    """Server-side time of the Latent map page on a store (AppTest), and its chart payload."""
    import streamlit as st  # noqa: TID251  (a benchmark of the app)
    from streamlit.testing.v1 import AppTest  # noqa: TID251

    from lsx.app import state

    os.environ[state.CHECKPOINTS_ENV] = str(root)
    out: dict[str, Any] = {}
    for method in methods:
        st.cache_data.clear()
        st.cache_resource.clear()
        rows: dict[str, Any] = {}
        at = AppTest.from_file(str(PAGE), default_timeout=600)
        at.session_state[state.RUN_DIR] = str(run_dir)
        at.session_state[state.LM_SOURCE] = str(store_dir)
        at.session_state[state.LMS_METHOD] = method
        at.session_state[state.LMS_RENDERER] = "plotly"  # the WebGL map: bench/pointmap.py
        has_cache = any((store_dir / "projections").glob(f"{method}-*.json"))
        _, rows["disk_warm_s" if has_cache else "cold_s"] = timed(at.run, timeout=600)
        assert not at.exception, at.exception
        warm = [timed(at.run, timeout=600)[1] for _ in range(WARM_RUNS)]
        rows["warm_s"] = round(float(np.median(warm)), 3)  # one rerun is noisy on a shared CPU
        (chart,) = at.get("plotly_chart")
        rows["payload_bytes"] = len(chart.proto.spec)
        spec = json.loads(chart.proto.spec)
        rows["tier"] = "density" if spec["layout"].get("images") else "scatter"
        rows["markers"] = sum(_length(t.get("x")) for t in spec["data"])
        rows["payload_bytes_per_marker"] = round(rows["payload_bytes"] / max(rows["markers"], 1), 1)
        rows["headline"] = next(m.value for m in at.markdown if m.value.startswith("Showing"))
        rows["tier_text"] = next(m.value for m in at.markdown if m.value.startswith("**Projection"))
        if not has_cache:  # cold done; now as after a server restart
            st.cache_data.clear()
            st.cache_resource.clear()
            at = AppTest.from_file(str(PAGE), default_timeout=600)
            at.session_state[state.RUN_DIR] = str(run_dir)
            at.session_state[state.LM_SOURCE] = str(store_dir)
            at.session_state[state.LMS_METHOD] = method
            at.session_state[state.LMS_RENDERER] = "plotly"
            _, rows["disk_warm_s"] = timed(at.run, timeout=600)
        out[method] = rows
    return out


def _length(values: Any) -> int:
    """Points in a Plotly JSON array: a list, or ``{"dtype", "bdata"}`` (base64 binary)."""
    if isinstance(values, dict):
        return len(np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"]))
    return len(values or [])


def bench_map(root: Path, run_dir: Path, n: int, dim: int) -> dict[str, Any]:
    """``--only map``: the store and the map page on it (PCA), nothing else."""
    store_dir, write_s = timed(write_store, run_dir, n, dim)
    row: dict[str, Any] = {"n": n, "dim": dim, "write_store_s": write_s}
    row["page"] = bench_page(root, run_dir, store_dir, ["pca"])
    row["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(row), file=sys.stderr, flush=True)
    return row


def trust(z: np.ndarray, coords: np.ndarray, subset: np.ndarray) -> float:
    from sklearn.manifold import trustworthiness

    return round(float(trustworthiness(np.asarray(z[subset]), coords[subset], n_neighbors=10)), 4)


def bench_size(root: Path, run_dir: Path, n: int, dim: int, args) -> dict[str, Any]:
    import umap

    from lsx.latents.projections import cached_store_projection

    store_dir, write_s = timed(write_store, run_dir, n, dim)
    store = open_store(store_dir)
    row: dict[str, Any] = {"n": n, "dim": dim, "write_store_s": write_s}
    (_, info), row["pca_s"] = timed(project_tiered, store.z, "pca", labels=np.asarray(store.y))
    row["pca_tier"] = info["tier"]
    coords: dict[str, np.ndarray] = {}
    if n <= args.exact_umap_max:
        plain = umap.UMAP(n_neighbors=15, min_dist=0.1, random_state=0, n_jobs=1)
        coords["plain"], row["umap_exact_s"] = timed(plain.fit_transform, np.asarray(store.z))
    (coords["tiered"], manifest, _), seconds = timed(cached_store_projection, store, "umap")
    info = manifest["info"]
    row["umap_tiered"] = {
        "total_s": seconds,
        "tier": info["tier"],
        "n_fit": info["n_fit"],
        "stages_s": info["seconds"],
        "knn": (info["placement"] or {}).get("knn"),
    }
    if "plain" in coords:
        subset = np.sort(np.random.default_rng(7).choice(n, min(n, args.trust_subset), False))
        row["compare"] = {
            "trust_subset": len(subset),
            "time_ratio_tiered_over_plain": round(seconds / row["umap_exact_s"], 3),
            "trustworthiness_plain_umap": trust(store.z, coords["plain"], subset),
            "trustworthiness_tiered": trust(store.z, coords["tiered"], subset),
        }
    row["peak_rss_mb_after_projections"] = peak_rss_mb()
    if n <= args.knn_max:
        row["knn"] = bench_knn(store.z, args.threads)
    row["page"] = bench_page(root, run_dir, store_dir, ["pca", "umap"])
    row["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(row), file=sys.stderr, flush=True)  # progress: one line per size
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--dims", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--exact-umap-max", type=int, default=100_000)
    parser.add_argument("--knn-max", type=int, default=1_000_000, help="largest kNN database")
    parser.add_argument("--trust-subset", type=int, default=5000)
    parser.add_argument("--threads", type=int, default=2, help="FAISS threads of the kNN rows")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--only", choices=("all", "map"), default="all", help="map: the map page part only"
    )
    parser.add_argument("--out", type=Path, help="also write the JSON here (after every size)")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.dims = [5000, 20_000], [16]
    warnings.filterwarnings("ignore")
    import logging

    logging.getLogger("streamlit").setLevel(logging.ERROR)
    result: dict[str, Any] = {
        "bench": "scale",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "versions": library_versions(),
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "rows": [],
    }
    from lsx.app.store_map import DENSITY_SAMPLE, SCATTER_MAX

    result["map"] = {"scatter_max": SCATTER_MAX, "density_sample": DENSITY_SAMPLE}
    if args.only == "map":
        with tempfile.TemporaryDirectory() as tmp:
            run_dir = make_run(Path(tmp))
            for dim in args.dims:
                for n in args.sizes:
                    result["rows"].append(bench_map(Path(tmp), run_dir, n, dim))
        result["peak_rss_mb"] = peak_rss_mb()
        if args.out:
            args.out.write_text(json.dumps(result, indent=2))
        print(json.dumps(result, indent=2))
        return
    import umap
    from sklearn.datasets import make_blobs

    z, _ = make_blobs(5000, n_features=16, centers=10, random_state=0)
    _, result["umap_jit_warmup_s"] = timed(
        umap.UMAP(random_state=0, n_jobs=1).fit_transform, z.astype(np.float32)
    )  # both kNN paths of umap-learn compile once per process
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        run_dir = make_run(root)
        for dim in args.dims:
            for n in args.sizes:
                result["rows"].append(bench_size(root, run_dir, n, dim, args))
                if args.out:
                    args.out.write_text(json.dumps(result, indent=2))
    result["peak_rss_mb"] = peak_rss_mb()
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
