"""``python -m lsx import-embeddings``: vectors made elsewhere as an embedding set (no model).

    python -m lsx import-embeddings --latents clip.parquet --label-column label --name clip
    python -m lsx import-embeddings --latents z.npy --labels y.npy --images npy:/data/x.npy --name z

The set is written into the runs folder (``--out``), where the app lists it beside the runs; see
:mod:`lsx.embeddings` and docs/embeddings.md.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from lsx.commands import DEFAULT_ROOT

HELP = "import embeddings made elsewhere (.npy or Parquet) to explore them without a model"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--latents", type=Path, required=True, help="*.npy (n, d) or *.parquet")
    parser.add_argument("--name", required=True, help="the embedding set's folder name")
    parser.add_argument("--labels", type=Path, default=None, help="*.npy, *.txt or *.csv")
    parser.add_argument("--label-column", default=None, help="label column of the Parquet file")
    parser.add_argument(
        "--vector-column", default=None, help="vector column (default: the only list column)"
    )
    parser.add_argument(
        "--images",
        default=None,
        help="one image per vector: npy:PATH, folder:PATH or a built-in dataset name",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_ROOT, help="the runs folder")
    parser.add_argument("--overwrite", action="store_true", help="replace a set of that name")


def run(args: argparse.Namespace) -> int:
    from lsx.embeddings import import_embeddings, load_embedding_set

    start = time.perf_counter()
    folder = import_embeddings(
        args.out,
        args.name,
        args.latents,
        labels=args.labels,
        label_column=args.label_column,
        vector_column=args.vector_column,
        images=args.images,
        overwrite=args.overwrite,
    )
    emb = load_embedding_set(folder)
    colours = ", ".join(f"{a} ({len(v)} classes)" for a, v in emb.label_names.items())
    print(
        f"{emb.n:,} vectors of dimension {emb.dim} in {time.perf_counter() - start:.1f} s -> "
        f"{folder}\ncolours: {colours}\nimages: {emb.images or 'none'}\n"
        f"open it in the app (Latent map, Lookup, Compare): streamlit run app.py"
    )
    return 0
