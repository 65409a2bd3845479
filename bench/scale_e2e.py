"""End to end at 1,000,000 images, in one process: store a dataset, train, encode, project, map.

    python bench/scale_e2e.py                    # 1,000,000 images of 16x16, latent dim 16
    python bench/scale_e2e.py --n 100000 --latent-dim 64

Stages (each timed; ``peak_rss_mb`` after each is the process's peak so far, ``ru_maxrss``):

1. ``write``: ``python -m lsx synth-npy``'s labelled synthetic images (10 classes: a class
   pattern, shifted, plus noise; uint8 1x16x16) written chunk by chunk to ``images.npy`` +
   ``images.labels.npy`` (:func:`lsx.data.synthetic.write_pattern_npy`);
2. ``train``: ``python -m lsx train --data npy:images.npy`` (run in this process, 1 thread): an
   MLP autoencoder, ``--epochs`` epochs, read lazily batch by batch;
3. ``encode``: ``python -m lsx encode`` of all rows into a latent store (streamed to disk);
4. ``project``: the store's tiered UMAP (fit on a stratified 50,000-point sample, the rest placed
   by their 15 nearest fitted neighbours) through the Latent map's projection cache;
5. ``page``: the Latent map page on that store under Streamlit's AppTest, server side: as after a
   restart (disk cache only) and warm, with the chart's JSON payload (bench/scale.py's
   ``bench_page``).

The issue's targets: the whole path under 8 GiB RSS; the map page under 3 s warm at 1M points.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, uninstalled
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/scale.py: bench_page


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def stage(out: dict[str, Any], name: str, fn, *args, **kwargs) -> Any:
    start = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):  # lsx commands print; stdout is the JSON
        result = fn(*args, **kwargs)
    out[name] = {"seconds": round(time.perf_counter() - start, 2), "peak_rss_mb": peak_rss_mb()}
    print(json.dumps({name: out[name]}), file=sys.stderr, flush=True)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--latent-dim", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temp folder")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    from lsx.cli import main as lsx_main
    from lsx.data.synthetic import write_pattern_npy
    from lsx.latents.store import list_stores

    out: dict[str, Any] = {"n": args.n, "latent_dim": args.latent_dim, "epochs": args.epochs}
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        root = Path(tmp)
        images = root / "images.npy"
        stage(out, "write", write_pattern_npy, images, args.n)
        out["dataset_mb_uint8"] = round(images.stat().st_size / 2**20, 1)
        out["dataset_mb_float32"] = round(args.n * 256 * 4 / 2**20, 1)
        train = ["train", "--model", "ae", "--data", f"npy:{images}", "--epochs", str(args.epochs)]
        train += ["--batch-size", "1024", "--latent-dim", str(args.latent_dim), "--out", str(root)]
        rc = stage(out, "train", lsx_main, [*train, "--name", "e2e", "--no-progress"])
        assert rc == 0, rc
        run_dir = root / "e2e"
        encode = ["encode", "--run", str(run_dir), "--data", f"npy:{images}"]
        rc = stage(out, "encode", lsx_main, [*encode, "--batch-size", "4096"])
        assert rc == 0, rc
        out["encode"]["rows_per_s"] = round(args.n / out["encode"]["seconds"])
        (store,) = list_stores(run_dir)
        from lsx.latents.projections import cached_store_projection

        _, manifest, _ = stage(out, "project", cached_store_projection, store, "umap", seed=0)
        out["project"]["manifest"] = {
            k: v for k, v in manifest.items() if k not in ("versions", "store", "knn")
        }
        from scale import bench_page  # bench/scale.py

        page = stage(out, "page", bench_page, root, run_dir, store.path, ["umap"])
        out["page"].update(page["umap"])
    out["peak_rss_mb"] = peak_rss_mb()
    out["peak_rss_under_8_gib"] = out["peak_rss_mb"] < 8 * 1024
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
