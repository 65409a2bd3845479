"""``python -m lsx search``: look images up, or search by text, in a run's latent space.

    python -m lsx search --run checkpoints/demo-sae-textures --text "red stripes"
    python -m lsx search --run checkpoints/demo-sae-mnist5k --image my_digit.png other.jpg
    python -m lsx search --run checkpoints/demo-sae-mnist5k --image x.png --in digits --json

Labels come from the nearest configured centre for ``sae`` runs and from class centroids of the
training latents for every other kind (said in the output). Text search needs an ``sae`` run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HELP = "look images up or search by text in a run's latent space (sae: no decoder, no classifier)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", type=Path, required=True, help="run folder")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--text", help='a query of class names, e.g. "red stripes"')
    what.add_argument("--image", nargs="+", type=Path, help="image files (PNG, JPEG, WebP, BMP)")
    parser.add_argument("-k", type=int, default=8, help="results / neighbours per image")
    parser.add_argument("--in", dest="db", default="", help="search another built-in dataset")
    parser.add_argument("--vocabulary", type=Path, help="synonyms JSON (phrase -> class name)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from lsx.analysis.clusters import cluster_space
    from lsx.analysis.embedding import encode_array
    from lsx.analysis.lookup import adapt_images, lookup_images, ood_verdict, prediction_rows
    from lsx.analysis.ood import fit_detector
    from lsx.analysis.text_search import build_vocabulary, text_search
    from lsx.checkpoint import load_checkpoint, read_header
    from lsx.data import load_dataset
    from lsx.data.uploads import prepare_upload
    from lsx.data.vocabulary import read_vocabulary, vocabulary_for
    from lsx.errors import ConfigError, LsxError

    torch.set_num_threads(1)
    if args.k < 1:
        raise ConfigError(f"-k must be at least 1; got {args.k}.")
    model, config = load_checkpoint(args.run)
    model.requires_grad_(False)
    data = read_header(args.run).get("data") or {}
    if not data.get("spec"):
        raise ConfigError(f"{args.run} records no dataset; lsx cannot tell its classes.")
    ds = load_dataset(data["spec"], image_size=data.get("image_size"))
    z_train = encode_array(model, ds.x_train)
    space = cluster_space(model, z_train, ds.labels_train, ds.label_names)
    out: dict[str, Any] = {"run": str(args.run), "rule": space.description}
    if args.text is not None:
        if space.rule != "configured":
            raise ConfigError(
                f"Text search maps class names to configured centres; {args.run} is a "
                f"{config.kind} run without a configuration. Use an sae run."
            )
        if args.vocabulary:
            synonyms = read_vocabulary(args.vocabulary)
        else:
            synonyms, _ = vocabulary_for(args.run, ds.spec)
        x_all = np.concatenate([ds.x_train, ds.x_test])
        res = text_search(
            space, encode_array(model, x_all), args.text, build_vocabulary(space, synonyms), args.k
        )
        labels = _labels(ds, "all")
        out["query"] = res.query
        out["inside_every_named_sphere"] = res.n_inside
        out["results"] = [
            {"id": int(i), "label": labels[i], "distance": round(float(d), 4)}
            for i, d in zip(res.ids, res.distances, strict=True)
        ]
    else:
        if args.db:
            other = load_dataset(args.db)
            z_db = encode_array(model, adapt_images(other.x_train, tuple(config.input_shape)))
            db_labels = _labels(other, "train")
        else:
            z_db, db_labels = z_train, _labels(ds, "train")
        detector = fit_detector(model, ds.x_test, z_train, space=space)  # OOD, on held-out data
        images = []
        for path in args.image:
            try:
                prep = prepare_upload(path.read_bytes(), config.input_shape, name=path.name)
            except (OSError, LsxError) as err:  # per file: report and go on
                images.append({"file": str(path), "error": str(err)})
                continue
            found = lookup_images(
                model, space, prep.x[None], z_db, args.k, detector=detector, z_train=z_train
            )
            images.append(
                {
                    "file": str(path),
                    "ood": ood_verdict(found, 0),
                    "notes": list(prep.notes),
                    "prediction": prediction_rows(found, 0),
                    "neighbours": [
                        {"id": int(i), "label": db_labels[i], "distance": round(float(d), 4)}
                        for i, d in zip(
                            found.neighbour_ids[0], found.neighbour_dist[0], strict=True
                        )
                    ],
                }
            )
        out["images"] = images
    if args.json:
        print(json.dumps(out, indent=2, default=str))
    else:
        _print(out)
    return 1 if any("error" in i for i in out.get("images", [])) else 0


def _labels(ds: Any, split: str) -> list[str]:
    """Every attribute's class name per sample, e.g. ``"stripes red"`` (train ids, then test)."""
    import numpy as np

    splits = ("train", "test") if split == "all" else (split,)
    cols = [
        np.concatenate(
            [np.asarray(names, dtype=object)[getattr(ds, f"labels_{s}")[a]] for s in splits]
        )
        for a, names in ds.label_names.items()
    ]
    return [" ".join(parts) for parts in zip(*cols, strict=True)]


def _print(out: dict[str, Any]) -> None:
    print(f"{out['run']} · labels by {out['rule']}")
    if "query" in out:
        q = " + ".join(f"{a} = {c}" for a, c in out["query"].items())
        print(f"query: {q} · {out['inside_every_named_sphere']} images inside every named sphere")
        for r in out["results"]:
            print(f"  id {r['id']:>6}  {r['label']:<12} distance {r['distance']}")
        return
    for img in out["images"]:
        if "error" in img:
            print(f"{img['file']}: {img['error']}", file=sys.stderr)
            continue
        print(img["file"] + ("  (" + "; ".join(img["notes"]) + ")" if img["notes"] else ""))
        v = img["ood"]
        if v["ood"]:
            print(
                f"  OUT OF DISTRIBUTION (score {v['score']:.2f} > {v['threshold']:.2f}): "
                + "; ".join(v["reasons"])
                + f". Nearest class would be {v['nearest']}."
            )
        else:
            print(f"  in distribution (score {v['score']:.2f} <= {v['threshold']:.2f})")
        for p in img["prediction"]:
            flags = " ".join(
                f for f, on in (("in-sphere", p["in sphere"]), ("OOD", p["OOD"])) if on
            )
            print(
                f"  {p['attribute']}: {p['predicted']}  distance {p['distance']}  margin "
                f"{p['margin']}  percentile {p['percentile']}  {flags}"
            )
        near = ", ".join(f"{n['label']} (#{n['id']})" for n in img["neighbours"])
        print(f"  nearest: {near}")
