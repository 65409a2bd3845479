"""Numbers of issue 12 (latent interaction), printed as one JSON object.

    python bench/interaction.py                 # all three (about 30 s on 2 cores)
    python bench/interaction.py --save-images   # also docs/img/traversal.png, interpolation.png

Sections (server side, model and latents already loaded, as in the app after its first view;
median of ``--repeats`` runs after 3 warm-ups):

- ``decode_anywhere``: one click on the ``demo-vae-mnist5k`` PCA and t-SNE-style (local rule)
  maps: inverse projection (PCA exact / 8-NN local rule over 5,000 points, extrapolation
  distance) + decode + tile + PNG encode. Target < 150 ms.
- ``traversal``: a 16 x 11 grid on ``demo-vae-mnist5k`` (16 principal directions of the 16-D
  latent, -3..+3 std): directions + 176 latents + decode + tile + PNG encode. Target < 500 ms.
- ``export``: 100,000 rows (16-D latents, 2-D map, error, label, tag) to Parquet bytes
  (``lsx.export.export_table`` + ``table_bytes``). Target < 2 s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, uninstalled

from lsx.analysis import decode_array, encode_array, project
from lsx.analysis.generate import (
    interpolate,
    inverse_project,
    pca_basis,
    traversal_directions,
    traverse,
)
from lsx.checkpoint import load_checkpoint, read_header
from lsx.data import load_dataset
from lsx.export import export_table, table_bytes
from lsx.viz.generate import image_grid, png_bytes

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "checkpoints" / "demo-vae-mnist5k"
IMG = ROOT / "docs" / "img"


def _median_ms(fn, repeats: int) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return round(1000 * statistics.median(times), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--save-images", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("LSX_TORCH_THREADS", "2")))
    model, _ = load_checkpoint(RUN)
    model.eval().requires_grad_(False)
    data = read_header(RUN)["data"]
    ds = load_dataset(
        data["spec"], image_size=data.get("image_size"), seed=int(data.get("seed", 0))
    )
    z = encode_array(model, np.concatenate([ds.x_train, ds.x_test]))  # (5000, 16)
    coords = project(z, "pca", 2, seed=0)
    basis = pca_basis(z, 2, 0)
    rng = np.random.default_rng(0)
    lo, hi = coords.min(axis=0), coords.max(axis=0)

    def click(method: str) -> bytes:
        point = lo + rng.random(2) * (hi - lo)
        inv = inverse_project(point[None], coords, z, method, basis=basis)
        return png_bytes(image_grid(decode_array(model, inv.z), scale=3))

    def grid() -> np.ndarray:
        dirs, _ = traversal_directions(z, "pca", n=16)
        lat = traverse(z.mean(0), dirs, np.linspace(-3, 3, 11)).reshape(-1, z.shape[1])
        return image_grid(decode_array(model, lat).reshape(16, 11, 1, 28, 28))

    n = 100_000
    big = {
        "ids": np.arange(n), "z": rng.normal(size=(n, 16)).astype(np.float32),
        "coords": rng.normal(size=(n, 2)).astype(np.float32),
        "err": rng.random(n).astype(np.float32),
        "labels": {"digit": np.asarray(list("0123456789"), dtype=object)[np.arange(n) % 10]},
    }  # fmt: skip
    report = {
        "machine": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "cpus": os.cpu_count(),
        },  # fmt: skip
        "run": RUN.name,
        "decode_anywhere_pca_ms": _median_ms(lambda: click("pca"), args.repeats),
        "decode_anywhere_local_rule_ms": _median_ms(lambda: click("tsne"), args.repeats),
        "traversal_16x11_ms": _median_ms(lambda: png_bytes(grid()), args.repeats),
        "export_100k_parquet_ms": _median_ms(
            lambda: table_bytes(
                export_table(
                    big["ids"], 80_000, big["labels"], big["z"], big["coords"], big["err"], "tag"
                ),
                "parquet",
            ),  # fmt: skip
            max(3, args.repeats // 4),
        ),
        "targets_ms": {"decode_anywhere": 150, "traversal_16x11": 500, "export_100k_parquet": 2000},
    }
    if args.save_images:
        IMG.mkdir(parents=True, exist_ok=True)
        dirs, _ = traversal_directions(z, "pca", n=6)
        trav = decode_array(
            model, traverse(z.mean(0), dirs, np.linspace(-3, 3, 11)).reshape(-1, 16)
        )
        (IMG / "traversal.png").write_bytes(
            png_bytes(image_grid(trav.reshape(6, 11, 1, 28, 28), scale=2))
        )
        y = np.concatenate([ds.y_train, ds.y_test])
        a, b = int(np.flatnonzero(y == 1)[0]), int(np.flatnonzero(y == 7)[0])
        rows = [decode_array(model, interpolate(z[i], z[j], 10, m)) for i, j, m in
                ((a, b, "linear"), (a, b, "slerp"))]  # fmt: skip
        (IMG / "interpolation.png").write_bytes(png_bytes(image_grid(np.stack(rows), scale=2)))
        report["images"] = {p.name: p.stat().st_size for p in sorted(IMG.glob("*.png"))}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
