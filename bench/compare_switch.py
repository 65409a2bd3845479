"""Compare page, switching a cold pair to UMAP/t-SNE: the request, the background fits, the rerun.

    python bench/compare_switch.py                 # UMAP, a temporary scratch folder
    python bench/compare_switch.py --method tsne --workdir /tmp/scratch

The spatial pair demo-ae-spatial-mnist5k vs demo-dae-spatial-mnist5k (5,000 points, latents
64x7x7 = 3,136-D) is copied without its projection caches; then, server side under Streamlit's
AppTest: the cold PCA request, the request that switches to the method (answered with PCA while the
fits run in the background worker), the background fits, and the rerun that shows the new map.
Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import wait
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout, uninstalled
PAIR = ("demo-ae-spatial-mnist5k", "demo-dae-spatial-mnist5k")


def timed(fn, *args, **kwargs) -> float:
    start = time.perf_counter()
    fn(*args, **kwargs)
    return round(time.perf_counter() - start, 2)


def caption(at) -> str:
    return next(c.value for c in at.caption if "of each latent space" in c.value)[:20]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", choices=("umap", "tsne"), default="umap")
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temp folder")
    args = parser.parse_args(argv)
    from streamlit.testing.v1 import AppTest  # noqa: TID251  (a benchmark of the app)

    from lsx.app import state
    from lsx.app.cache import projection_jobs

    root = Path(tempfile.mkdtemp(prefix="lsx-compare-", dir=args.workdir))
    for name in PAIR:
        ignore = shutil.ignore_patterns("projection-*")
        shutil.copytree(ROOT / "checkpoints" / name, root / name, ignore=ignore)
    os.environ["LSX_TORCH_THREADS"] = "1"
    os.environ[state.CHECKPOINTS_ENV] = str(root)
    at = AppTest.from_file(str(ROOT / "pages" / "7_compare.py"), default_timeout=600)
    at.session_state[state.CMP_A] = str(root / PAIR[0])
    at.session_state[state.CMP_B] = str(root / PAIR[1])
    out: dict = {"pair": PAIR, "method": args.method, "load_avg_before": os.getloadavg()[0]}
    out["pca_cold_request_s"] = timed(at.run, timeout=600)
    at.session_state[state.CMP_METHOD] = args.method
    out["switch_request_s"] = timed(at.run, timeout=600)
    out["notice"] = at.info[0].value[:70] if at.info else None
    out["caption"] = caption(at)
    futures = [f for k, f in projection_jobs().futures.items() if k[0] == "compare"]
    out["waited_for_fits_s"] = timed(wait, futures, timeout=900)
    out["background_fit_s"] = [round(f.result(), 2) for f in futures]
    out["rerun_after_fits_s"] = timed(at.run, timeout=600)
    out["caption_after"] = caption(at)
    out["load_avg_after"] = os.getloadavg()[0]
    shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
