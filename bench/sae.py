"""Numbers of issue 3 (supervised AE with a configured latent space), printed as one JSON object.

    python bench/sae.py                          # everything (about 20-30 min on 1 CPU thread)
    python bench/sae.py --only accuracy --datasets digits --seeds 0 1 2
    python bench/sae.py --only latency textsearch
    python bench/sae.py --save                   # also write stability.json into the demo runs

Sections:

- ``accuracy``: per dataset (the ``demo-sae-*`` settings of ``lsx.demos``) and seed, train an
  ``sae`` in memory and report its nearest-centre test accuracy per attribute (no decoder, no
  classifier), its kNN and linear-probe accuracy, and the baseline: a plain ``ae`` with the same
  net, latent size, epochs and batch size, plus a logistic-regression probe on its latents.
  ``summary``: mean and sample standard deviation (ddof=1) over the seeds.
- ``unseen``: ``sae`` on mnist5k with digits 8 and 9 held out of training; intra- vs inter-group
  distance ratio (and 5-NN purity) of the held-out test digits in its latent space, against the
  same for seen digits and for the plain ``ae`` of seed 0 (which did see 8 and 9, unsupervised).
- ``latency``: one uploaded image (PNG bytes, and a 1200x900 JPEG) through decode + resize +
  encode + nearest centre + percentile/OOD + 8 nearest training images + map placement +
  reconstruction, model already loaded (``demo-sae-mnist5k``); median of 50 runs after 5 warm-ups.
  Then the whole Lookup page under AppTest (server side): the run that handles a first upload,
  and the median of 5 reruns with it (all figures, tables and galleries built again).
- ``textsearch``: parse + rank for one query over 5,000 points (mnist5k train + test, "three") and
  3,996 points (textures, "red stripes"); median of 200 runs.
- ``cross``: cross-dataset search with the mnist5k ``sae``: the 360 digits test images upscaled
  to 28x28 query the 4,000 mnist5k training images; precision@10 = share of retrieved images
  with the query's digit, against the same with ``demo-ae-mnist5k``. Plus which pattern the
  textures ``sae`` gives real texture-patches (brick, grass, gravel), for the record.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lsx.analysis.clusters import (  # noqa: E402
    STABILITY_NAME,
    cluster_space,
    grouping_ratio,
    knn_accuracy,
    linear_probe_accuracy,
    lookup,
    nearest_center_accuracy,
    place_by_neighbours,
)
from lsx.analysis.embedding import encode_array, reconstruct_array  # noqa: E402
from lsx.analysis.lookup import (  # noqa: E402
    adapt_images,
    cross_dataset_search,
    lookup_images,
    retrieval_precision,
)
from lsx.analysis.text_search import build_vocabulary, text_search  # noqa: E402
from lsx.checkpoint import load_checkpoint  # noqa: E402
from lsx.config import TrainConfig  # noqa: E402
from lsx.data import load_dataset  # noqa: E402
from lsx.data.uploads import prepare_upload  # noqa: E402
from lsx.data.vocabulary import BUILTIN  # noqa: E402
from lsx.demos import DEMOS  # noqa: E402
from lsx.models import build_model, dataset_fields, make_config  # noqa: E402
from lsx.train import Trainer  # noqa: E402

SECTIONS = ("accuracy", "unseen", "latency", "textsearch", "cross")
CHECKPOINTS = ROOT / "checkpoints"
SAE_DEMOS = {data: (model, train) for name, kind, data, model, train in DEMOS if kind == "sae"}


def train(kind: str, data: str, fields: dict, train_fields: dict, seed: int):
    ds = load_dataset(data)
    torch.manual_seed(seed)
    extra = {k: v for k, v in fields.items() if kind == "sae" or k in ("latent_dim", "hidden_dim")}
    config = make_config(kind, **{**dataset_fields(kind, ds), **extra})
    model = build_model(config)
    cfg = TrainConfig(seed=seed, device="cpu", threads=1, **train_fields)
    start = time.perf_counter()
    Trainer(model, ds, cfg).fit()
    return model.eval(), ds, time.perf_counter() - start


def accuracy(datasets: list[str], seeds: list[int]) -> dict:
    out: dict = {"runs": [], "summary": {}}
    for data in datasets:
        fields, train_fields = SAE_DEMOS[data]
        per_seed = []
        for seed in seeds:
            sae, ds, sae_s = train("sae", data, fields, train_fields, seed)
            ae, _, ae_s = train("ae", data, fields, train_fields, seed)
            z_tr, z_te = encode_array(sae, ds.x_train), encode_array(sae, ds.x_test)
            space = cluster_space(sae, z_tr, ds.labels_train, ds.label_names)
            nearest = nearest_center_accuracy(space, z_te, ds.labels_test)
            a_tr, a_te = encode_array(ae, ds.x_train), encode_array(ae, ds.x_test)
            row = {
                "dataset": data,
                "seed": seed,
                "sae_train_s": round(sae_s, 1),
                "ae_train_s": round(ae_s, 1),
            }
            for attr in ds.label_names:
                y_tr, y_te = ds.labels_train[attr], ds.labels_test[attr]
                row[attr] = {
                    "sae_nearest_centre": nearest[attr],
                    "sae_knn5": knn_accuracy(z_tr, y_tr, z_te, y_te),
                    "sae_linear_probe": linear_probe_accuracy(z_tr, y_tr, z_te, y_te, seed),
                    "ae_linear_probe": linear_probe_accuracy(a_tr, y_tr, a_te, y_te, seed),
                    "ae_knn5": knn_accuracy(a_tr, y_tr, a_te, y_te),
                }
            per_seed.append(row)
            out["runs"].append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
        summary = {}
        for attr in load_dataset(data).label_names:
            summary[attr] = {}
            for key in per_seed[0][attr]:
                values = [r[attr][key] for r in per_seed]
                sd = statistics.stdev(values) if len(values) > 1 else 0.0
                summary[attr][key] = {"mean": statistics.fmean(values), "std": sd, "values": values}
        out["summary"][data] = summary
    return out


def stability_rows(summary: dict) -> list[dict]:
    rows = []
    for attr, metrics in summary.items():
        for key, label in (
            ("sae_nearest_centre", "sae, nearest centre"),
            ("ae_linear_probe", "ae + linear classifier"),
        ):
            m = metrics[key]
            rows.append(
                {
                    "attribute": attr,
                    "model": label,
                    "mean accuracy": round(m["mean"], 4),
                    "std (ddof=1)": round(m["std"], 4),
                    "seeds": len(m["values"]),
                }
            )
    return rows


def unseen() -> dict:
    fields, train_fields = SAE_DEMOS["mnist5k"]
    held = (8, 9)
    sae, ds, secs = train("sae", "mnist5k", {**fields, "held_out": held}, train_fields, 0)
    ae, _, _ = train("ae", "mnist5k", fields, train_fields, 0)
    out = {"held_out": list(held), "sae_train_s": round(secs, 1)}
    y = ds.y_test
    for name, model in (("sae", sae), ("ae", ae)):
        z = encode_array(model, ds.x_test)
        h = grouping_ratio(z, y, held)
        s = grouping_ratio(z, y, (0, 1, 2, 3, 4, 5, 6, 7))
        out[name] = {
            "held_out_ratio": h.ratio,
            "held_out_knn5_purity": h.knn_purity,
            "seen_ratio": s.ratio,
            "seen_knn5_purity": s.knn_purity,
        }
    z_tr = encode_array(sae, ds.x_train)
    space = cluster_space(sae, z_tr, ds.labels_train, ds.label_names)
    out["sae_nearest_centre_seen"] = nearest_center_accuracy(
        space, encode_array(sae, ds.x_test), ds.labels_test
    )
    return out


def _median_ms(fn, repeats: int, warmup: int = 5) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return round(1000 * statistics.median(times), 2)


def latency() -> dict:
    from PIL import Image

    torch.set_num_threads(1)
    model, config = load_checkpoint(CHECKPOINTS / "demo-sae-mnist5k")
    model.requires_grad_(False)
    ds = load_dataset("mnist5k")
    z_tr = encode_array(model, ds.x_train)
    space = cluster_space(model, z_tr, ds.labels_train, ds.label_names)
    coords = z_tr[:, :2]  # any map: placement cost does not depend on the projection
    img = Image.fromarray((ds.x_test[0, 0] * 255).astype(np.uint8)).resize((280, 280))
    png = io.BytesIO()
    img.save(png, "PNG")
    photo = io.BytesIO()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (900, 1200, 3), dtype=np.uint8)).save(photo, "JPEG")

    def one(data: bytes) -> None:
        prep = prepare_upload(data, config.input_shape, name="upload")
        res = lookup_images(model, space, prep.x[None], z_tr, k=8)
        place_by_neighbours(res.z, z_tr, coords)
        reconstruct_array(model, prep.x[None])

    out = {
        "run": "demo-sae-mnist5k",
        "threads": torch.get_num_threads(),
        "database_points": len(z_tr),
        "png_280x280_ms": _median_ms(lambda: one(png.getvalue()), 50),
        "jpeg_1200x900_ms": _median_ms(lambda: one(photo.getvalue()), 50),
    }
    out.update(_page_latency(png.getvalue()))
    return out


def _page_latency(png: bytes) -> dict:
    """The Lookup page under AppTest (server side, no browser): a first upload after the page
    has loaded the model and encoded the data, then warm reruns with the upload in place."""
    import os

    from streamlit.testing.v1 import AppTest  # noqa: TID251  (a benchmark of the app)

    os.environ["LSX_CHECKPOINTS"] = str(CHECKPOINTS)
    os.environ["LSX_TORCH_THREADS"] = "1"
    at = AppTest.from_file(str(ROOT / "pages" / "3_lookup.py"), default_timeout=300)
    at.session_state["run_dir"] = str(CHECKPOINTS / "demo-sae-mnist5k")
    at.run()  # model load, encoding, PCA: not part of the per-upload latency
    at.file_uploader(key="lu_uploads").set_value(("one.png", png, "image/png"))
    start = time.perf_counter()
    at.run()
    first = time.perf_counter() - start
    assert not at.exception, at.exception
    times = []
    for _ in range(5):
        start = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - start)
    return {
        "page_first_upload_ms": round(1000 * first, 1),
        "page_rerun_with_upload_ms": round(1000 * statistics.median(times), 1),
    }


def textsearch() -> dict:
    out = {}
    for run, data, query in (
        ("demo-sae-mnist5k", "mnist5k", "three"),
        ("demo-sae-textures", "textures", "red stripes"),
    ):
        model, _ = load_checkpoint(CHECKPOINTS / run)
        ds = load_dataset(data)
        z_all = encode_array(model, np.concatenate([ds.x_train, ds.x_test]))
        space = cluster_space(
            model, encode_array(model, ds.x_train), ds.labels_train, ds.label_names
        )
        vocab = build_vocabulary(space, BUILTIN.get(data))
        res = text_search(space, z_all, query, vocab, k=12)
        labels = {
            a: np.concatenate([ds.labels_train[a], ds.labels_test[a]]) for a in ds.label_names
        }
        hits = [
            all(ds.label_names[a][labels[a][i]] == c for a, c in res.query.items()) for i in res.ids
        ]
        out[data] = {
            "points": len(z_all),
            "query": query,
            "parsed": res.query,
            "median_ms": _median_ms(
                lambda s=space, z=z_all, q=query, v=vocab: text_search(s, z, q, v, k=12), 200
            ),
            "top12_precision": float(np.mean(hits)),
            "inside_every_named_sphere": res.n_inside,
        }
    return out


def cross() -> dict:
    digits, mnist = load_dataset("digits"), load_dataset("mnist5k")
    out = {"query": "digits test (360, 8x8 upscaled to 28x28)", "database": "mnist5k train (4,000)"}
    for run in ("demo-sae-mnist5k", "demo-ae-mnist5k"):
        model, _ = load_checkpoint(CHECKPOINTS / run)
        ids, _ = cross_dataset_search(model, digits.x_test, mnist.x_train, k=10)
        out[f"{run}_precision_at_10"] = retrieval_precision(digits.y_test, mnist.y_train, ids)
    model, _ = load_checkpoint(CHECKPOINTS / "demo-sae-textures")
    tex, patches = load_dataset("textures"), load_dataset("texture-patches")
    space = cluster_space(
        model, encode_array(model, tex.x_train), tex.labels_train, tex.label_names
    )
    z = encode_array(model, adapt_images(patches.x_test, model.config.input_shape))
    res = lookup(space, z)
    table = {}
    for c, name in enumerate(patches.class_names):
        pred = res[0].pred[patches.y_test == c]
        counts = np.bincount(pred, minlength=len(tex.class_names))
        table[name] = {tex.class_names[k]: int(v) for k, v in enumerate(counts) if v}
    out["texture_patches_predicted_pattern"] = table
    out["texture_patches_ood_rate"] = float(np.mean(res[0].ood | res[1].ood))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", nargs="*", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--datasets", nargs="*", default=list(SAE_DEMOS), choices=list(SAE_DEMOS))
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    parser.add_argument("--save", action="store_true", help="write stability.json into demo runs")
    args = parser.parse_args()
    torch.set_num_threads(1)
    result: dict = {"torch_threads": 1}
    for section in args.only:
        start = time.perf_counter()
        if section == "accuracy":
            result[section] = accuracy(args.datasets, args.seeds)
            if args.save:
                for data, summary in result[section]["summary"].items():
                    path = CHECKPOINTS / f"demo-sae-{data}" / STABILITY_NAME
                    payload = {
                        "seeds": args.seeds,
                        "rows": stability_rows(summary),
                        "command": "python bench/sae.py --save",
                    }
                    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
        else:
            result[section] = globals()[section]()
        result[f"{section}_s"] = round(time.perf_counter() - start, 1)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
