"""Latent map page logic (``pages/2_latent_map.py``): the sidebar controls of the dataset map and
the choice between the run's dataset and one of its latent stores, the cluster additions
(centres and spheres, cluster sanity table) and the decode panel's sample picker.

The map's points come from :mod:`lsx.app.dataset_map` (the run's dataset) or
:mod:`lsx.app.store_map` (a latent store); the cluster space from :mod:`lsx.app.cluster_space`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import streamlit as st

from lsx.analysis import PROJECTIONS
from lsx.analysis.atoms import has_atoms, has_codebook
from lsx.analysis.clusters import COLOR_KINDS, RULE_CONFIGURED, center_overlay, cluster_sanity
from lsx.app import cache, state
from lsx.app.cluster_space import GALLERY_PX, all_labels, all_latents, space
from lsx.app.store_map import run_stores
from lsx.app.widgets import projection_form, spread
from lsx.data import Dataset
from lsx.errors import LsxError
from lsx.viz.clusters import add_centers
from lsx.viz.images import decode_triptych, pair_tiles, scale_for, to_uint8

SPLITS = ("all", "train", "test")  # "all" = train then test, one projection for both
MISASSIGNED_SHOWN = 8
GALLERY_CAP = 32


# ------------------------------------------------------------------------------ controls


@dataclass(frozen=True)
class MapSettings:
    """What the latent-map controls ask for (the arguments of ``dataset_map.latent_map``)."""

    method: str
    n_components: int
    seed: int
    split: str
    color: str
    cap: int


def color_options(
    label_names: Mapping[str, Sequence[str]], dominant_atom: bool = False
) -> list[str]:
    """The colour choices of the latent map.

    Parameters
    ----------
    label_names : mapping attribute -> class names
    dominant_atom : bool, default=False
        Add ``atom`` (each sample's dominant atom or code; scvae and vqvae runs).

    Returns
    -------
    list of str
        ``label:<attr>`` per label attribute, then ``error`` and ``latent`` (one latent
        dimension, picked with a number input), then the cluster colourings
        ``predicted:<attr>``, ``in_sphere:<attr>``, ``correct:<attr>`` (lsx.app.cluster_space).
    """
    clusters = [f"{kind}:{attr}" for kind in COLOR_KINDS for attr in label_names]
    atom = ["atom"] if dominant_atom else []  # lsx.app.atoms.dominant_colors
    return (
        [f"label:{attr}" for attr in label_names] + ["error", "latent"] + atom + clusters + ["tag"]
    )


def color_label(option: str) -> str:
    """Human name of a colour choice (``"label: digit"``, ``"reconstruction error"``, ...).

    Parameters
    ----------
    option : str
        One of :func:`color_options`.

    Returns
    -------
    str
    """
    if option.startswith("label:"):
        return f"label: {option[6:]}"
    kind, _, attr = option.partition(":")
    if kind in COLOR_KINDS:
        return f"{COLOR_KINDS[kind]}: {attr}"
    names = {"error": "reconstruction error", "latent": "a latent dimension", "tag": "tag"}
    return {**names, "atom": "dominant atom"}.get(option, option)


def map_controls(label_names: Mapping[str, Sequence[str]], n_latent: int) -> MapSettings:
    """Sidebar controls of the latent map: projection form, 3-D, split, colour, point cap.

    The projection (method, seed) sits in a form because UMAP and t-SNE take a while; view
    options apply at once. Keys are ``state.LM_*``.

    Parameters
    ----------
    label_names : mapping attribute -> class names
        The dataset's label attributes (``Dataset.label_names``).
    n_latent : int
        Latent coordinates per sample (for the "latent dimension" colour).

    Returns
    -------
    MapSettings
    """
    run_dir = st.session_state.get(state.RUN_DIR)
    if run_dir:  # the page has loaded this run already: both calls are cache hits
        model, _ = cache.load_run(run_dir, cache.weights_version(run_dir))
        options = color_options(label_names, has_atoms(model) or has_codebook(model))
    else:
        options = color_options(label_names)
    asked = st.session_state.get(state.LM_COLOR)
    if asked not in options:
        if asked is not None:  # e.g. from a link: say so, then show the default
            st.warning(f"Colour {str(asked)[:60]!r} is not available for this run; showing "
                       f"{color_label(options[0])}.")  # fmt: skip
        st.session_state[state.LM_COLOR] = options[0]
    dim = int(st.session_state[state.LM_LATENT_DIM])
    if not 0 <= dim < n_latent:
        st.warning(f"Latent dimension {dim} is out of range (0..{n_latent - 1}); showing "
                   f"{min(max(dim, 0), n_latent - 1)}.")  # fmt: skip
        st.session_state[state.LM_LATENT_DIM] = min(max(dim, 0), n_latent - 1)
    with st.sidebar:
        st.subheader("Map")
        projection_form(
            "lm_projection_form", state.LM_METHOD, state.LM_SEED,
            "\n\n".join(f"**{k}**: {spec.summary}" for k, spec in PROJECTIONS.items()),
        )  # fmt: skip
        st.toggle("3-D", key=state.LM_3D, help="A 3-D scatter you can rotate (selection: click).")
        st.radio("Split", SPLITS, key=state.LM_SPLIT, horizontal=True)
        st.selectbox("Colour by", options, key=state.LM_COLOR, format_func=color_label)
        color = st.session_state[state.LM_COLOR]
        if color == "latent":
            st.number_input(
                f"Latent dimension (0 – {n_latent - 1})",
                min_value=0,
                max_value=n_latent - 1,
                step=1,
                key=state.LM_LATENT_DIM,
            )
            color = f"latent:{int(st.session_state[state.LM_LATENT_DIM])}"
        st.number_input(
            "Max points",
            min_value=100,
            max_value=50_000,  # WebGL + lasso stay fluid up to ~5e4 markers
            step=500,
            key=state.LM_CAP,
            help="Above this, each class keeps its share of a per-class sample (seed 0). For "
            "more points, encode the data into a store (Large datasets page): its map draws a "
            "density raster of all of them.",
        )
    return MapSettings(
        method=str(st.session_state[state.LM_METHOD]),
        n_components=3 if st.session_state[state.LM_3D] else 2,
        seed=int(st.session_state[state.LM_SEED]),
        split=str(st.session_state[state.LM_SPLIT]),
        color=color,
        cap=int(st.session_state[state.LM_CAP]),
    )


def map_source(run_dir: str) -> tuple[str, str | None] | None:
    """Sidebar choice of what the latent map shows: the run's dataset or one of its latent stores.

    Shown only when the run has stores (``python -m lsx encode``). Key ``state.LM_SOURCE``.

    Returns
    -------
    None for the run's dataset, else ``(store path, reason it is not usable or None)``.
    """
    stores = run_stores(run_dir)
    if not stores:
        return None
    labels = {"": "the run's dataset", **{path: label for path, label, _ in stores}}
    if st.session_state.get(state.LM_SOURCE) not in labels:
        st.session_state[state.LM_SOURCE] = ""
    st.sidebar.selectbox(
        "Map of",
        list(labels),
        key=state.LM_SOURCE,
        format_func=labels.__getitem__,
        help="A latent store is a run's encoding of a whole image source "
        "(`python -m lsx encode`), memory-mapped; it can hold millions of points.",
    )
    chosen = st.session_state[state.LM_SOURCE]
    return next(((p, why) for p, _, why in stores if p == chosen), None)


def sample_id_input(n_train: int, n_test: int) -> int:
    """Number input of a sample id (train ids first, then test), kept in range across runs.

    Parameters
    ----------
    n_train, n_test : int
        Split sizes of the run's dataset.

    Returns
    -------
    int
        The chosen id in ``0 .. n_train + n_test - 1``.
    """
    n_all = n_train + n_test
    current = int(st.session_state.get(state.LM_DECODE_ID) or 0)
    st.session_state[state.LM_DECODE_ID] = min(max(current, 0), n_all - 1)
    st.number_input(
        f"Sample id (0–{n_train - 1} train, {n_train}–{n_all - 1} test)",
        min_value=0,
        max_value=n_all - 1,
        step=1,
        key=state.LM_DECODE_ID,
        help="Hover a point on the map to see its id.",
    )
    return int(st.session_state[state.LM_DECODE_ID])


def selection_gallery(run_dir: str, sha: str, ds: Dataset, ids: Sequence[int], source: str) -> None:
    """The selected inputs beside their reconstructions (spread over the selection)."""
    st.subheader("Selection")
    if not ids:
        st.caption(
            "Drag a box or lasso on the map (2-D), click a point, or pick a tag in the sidebar "
            "to see the inputs beside their reconstructions (left: input, right: reconstruction)."
        )
        return
    try:
        shown = spread(list(ids), GALLERY_CAP)
        x, x_hat, captions = cache.samples(run_dir, sha, ds.content_hash, shown)
    except LsxError as err:
        st.error(str(err))
        return
    st.caption(
        f"Showing {len(shown)} of {len(ids)} selected ({source}; spread over the selection; "
        "left: input, right: reconstruction)."
    )
    st.image(pair_tiles(x, x_hat), caption=captions, output_format="PNG")


def decode_panel(run_dir: str, sha: str, ds: Dataset) -> None:
    """One sample's input, reconstruction and residual, picked by id."""
    st.subheader("Decode a sample")
    sample_id = sample_id_input(len(ds.x_train), len(ds.x_test))
    try:
        x, x_hat, captions = cache.samples(run_dir, sha, ds.content_hash, (sample_id,))
    except LsxError as err:
        st.error(str(err))
        return
    images, labels, summary = decode_triptych(x[0], x_hat[0])
    st.caption(f"Sample {captions[0]} · {summary}")
    st.image(images, caption=labels, output_format="PNG")


# ------------------------------------------------------------------------------ clusters


@st.cache_data(max_entries=16, show_spinner=False)
def _overlay(
    run_dir: str, sha: str, data_hash: str, method: str, n_comp: int, seed: int, attr: str
):
    ds, _ = cache.run_dataset(run_dir)
    coords, _ = cache.projection(run_dir, sha, data_hash, method, n_comp, seed)
    z = all_latents(run_dir, sha, data_hash)
    return center_overlay(space(run_dir, sha, data_hash), z, coords, all_labels(ds), attr)


def add_overlay(
    fig: Any,
    run_dir: str,
    sha: str,
    ds: Dataset,
    method: str,
    n_components: int,
    seed: int,
    color: str,
) -> None:
    """Sidebar toggle; when on, draw the centres and spheres of the coloured attribute."""
    sp = space(run_dir, sha, ds.content_hash)
    if st.session_state.get(state.LM_CENTERS) is None:  # first view: on for configured runs
        st.session_state[state.LM_CENTERS] = sp.rule == RULE_CONFIGURED
    st.sidebar.toggle(
        "Centres and spheres",
        key=state.LM_CENTERS,
        help="Configured centres for sae runs; class centroids otherwise.",
    )
    if not st.session_state[state.LM_CENTERS]:
        return
    attr = color.partition(":")[2]
    attr = attr if attr in ds.label_names else ds.primary
    ov = _overlay(run_dir, sha, ds.content_hash, method, n_components, seed, attr)
    add_centers(fig, ov)
    st.caption(f"Centres of **{attr}** ({sp.description}); {ov.note}.")


def sanity_section(run_dir: str, sha: str, ds: Dataset, split: str) -> None:
    """Cluster sanity in latent space: purity, recall, in-sphere, margin per cluster, and the
    misassigned points ranked by how confidently they are wrong."""
    st.subheader("Cluster sanity (in latent space, not 2-D)")
    attrs = list(ds.label_names)
    if st.session_state.get(state.LM_SANITY_ATTR) not in attrs:
        st.session_state[state.LM_SANITY_ATTR] = attrs[0]
    if len(attrs) > 1:
        st.radio("Attribute", attrs, key=state.LM_SANITY_ATTR, horizontal=True)
    attr = st.session_state[state.LM_SANITY_ATTR]
    sp = space(run_dir, sha, ds.content_hash)
    z, labels = all_latents(run_dir, sha, ds.content_hash), all_labels(ds)
    n_train = len(ds.x_train)
    ids = (
        np.arange(len(z))
        if split == "all"
        else (np.arange(n_train) if split == "train" else np.arange(n_train, len(z)))
    )
    report = cluster_sanity(sp, z[ids], {a: v[ids] for a, v in labels.items()}, attr)
    st.caption(f"Rule: {sp.description} · {split} split · {len(ids):,} points")
    st.dataframe(report.rows, hide_index=True)
    n_wrong = len(report.misassigned)
    st.markdown(f"**{n_wrong:,} misassigned points**, most confident mistakes first")
    if not n_wrong:
        return
    names = sp.attribute(attr)[1].class_names
    top = ids[report.misassigned[:MISASSIGNED_SHOWN]]
    rows = [
        {"id": int(i), "true": names[t], "assigned": names[p], "margin": round(float(m), 4)}
        for i, t, p, m in zip(top, report.true, report.pred, report.margin, strict=False)
    ]
    st.dataframe(rows, hide_index=True)
    if not st.toggle("Show their images", key=state.LM_MISASSIGNED_IMAGES):
        return
    x, _, _ = cache.samples(run_dir, sha, ds.content_hash, tuple(int(i) for i in top))
    s = scale_for(x.shape[2], GALLERY_PX)
    st.image(
        [to_uint8(img, scale=s) for img in x],
        caption=[f"id {r['id']}: {r['true']}→{r['assigned']}" for r in rows],
        output_format="PNG",
    )
