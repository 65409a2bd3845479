"""The Latent map page's view of a latent store (10^4-10^6 points): tiered projections cached in
the store, a scatter or density rendering, and a gallery of selected images read lazily from the
source. The map of the run's own dataset is :mod:`lsx.app.dataset_map`.

Two layers:

- plain functions (no Streamlit calls; ``bench/scale.py`` uses them): the map frame and figure
  of a store; the tiered projection itself is cached by :func:`lsx.latents.cached_store_projection`
  under ``<store>/projections/`` (re-exported here).
- Streamlit wrappers: bounded caches keyed by the store path and its manifest's mtime, the
  background fit (the worker of :mod:`lsx.app.cache`, PCA shown meanwhile), and
  :func:`store_view`, which renders the page section. ``z`` is never loaded into session state:
  the store's arrays are memory maps, shared read-only by every session.
"""

from __future__ import annotations

import html
import time
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from lsx.analysis.projection import sample_per_class
from lsx.analysis.tiers import EXACT_MAX, plan_projection
from lsx.app import pointmap, set_tags, state, store_structure, widgets
from lsx.app.cache import embedding_sets, projection_jobs, store_entries
from lsx.app.store_colors import (  # noqa: F401  (re-exported: the page, benches and tests)
    COLOR_NAMES,
    STRUCTURE_COLORS,
    ColorValues,
    color_label,
    color_options,
    color_values,
)
from lsx.app.store_export import export_frame, export_panel  # noqa: F401
from lsx.data.lazy import FOLDER_PREFIX, open_source
from lsx.embeddings import (
    MODEL_KIND,
    EmbeddingSet,
    images_for_app,
    store_path,
)
from lsx.errors import LsxError
from lsx.latents.projections import cached_store_projection  # noqa: F401  (re-exported for the page and tests)
from lsx.latents.store import MANIFEST_NAME, LatentStore, open_store
from lsx.tags import read_tags
from lsx.viz.density import (
    CONTOUR_BINS,
    DensityGrid,
    add_density_contours,
    contour_lines,
    density_grid,
    density_map,
)
from lsx.viz.latent import latent_scatter
from lsx.viz.pointmap import decode_points, encode_points

# Up to this many points every point is a WebGL marker with box/lasso; above it, a density
# raster of all plus a per-class sample. At 50,000 the chart is about 0.8 MB of JSON.
SCATTER_MAX = 50_000
DENSITY_SAMPLE = 5_000  # selectable points drawn over the raster
GALLERY_CAP = 32
RENDERERS = {"webgl": "WebGL: every point", "plotly": "Plotly"}
RENDERER_HELP = (
    "WebGL draws every point: hover any point, zoom and pan (wheel, drag) at full resolution, "
    "lasso or box any region. Plotly draws every point up to 50,000; above, a density raster "
    "with 5,000 selectable markers."
)
AXIS_PREFIX = {"pca": "PC", "umap": "UMAP", "tsne": "t-SNE"}
_SLOT = ("method", "n_components", "seed", "params", "tier")  # same map, maybe another store

# ------------------------------------------------------------------------------ map frame


@dataclass(frozen=True, eq=False)
class StoreFrame:
    """What the store map needs for one view (cached; small even at 10^6 points)."""

    coords: np.ndarray  # (n_shown, 2) points drawn as markers
    ids: np.ndarray  # (n_shown,) int64 store rows
    codes: np.ndarray  # (n_shown,) class codes of the colour (floats when continuous)
    categories: tuple[str, ...] | None  # None: continuous colour
    color_title: str
    grid: DensityGrid | None  # every point, when the map is a density raster
    n_shown: int
    n_total: int
    tier_text: str
    method: str
    manifest: dict[str, Any]


def make_frame(
    store: LatentStore, coords: np.ndarray, manifest: dict[str, Any], color: str | ColorValues
) -> StoreFrame:
    """Points and colours of a store map: all points up to ``SCATTER_MAX``, else a density grid
    of all plus a per-class sample of ``DENSITY_SAMPLE`` (seed 0). ``color``: a label attribute
    or a :class:`ColorValues` (continuous colours: a grey raster, the sample by primary label).

    No per-point hover strings: the figure's hover is a template over the ids in ``customdata``
    and the class (the trace's name), so the payload is about 16 bytes per point (float32 x and
    y, int32 id, sent as binary); the reconstruction error is in the selection's captions.
    """
    if isinstance(color, str):
        color = color_values(store, f"label:{color}")
    codes_all = np.asarray(color.values)  # (n,) read from the memmap once
    n = store.n
    dense = n > SCATTER_MAX
    cats = color.categories
    by = codes_all if cats is not None else np.asarray(store.y)  # sampled per class of this
    keep = sample_per_class(by, DENSITY_SAMPLE, seed=0) if dense else np.arange(n)
    grid = None
    if dense:
        grid = (
            density_grid(coords, codes_all, n_classes=len(cats)) if cats else density_grid(coords)
        )
    return StoreFrame(
        coords=np.asarray(coords[keep], dtype=np.float32),
        ids=keep.astype(np.int32 if n < 2**31 else np.int64),  # 4 bytes per id in the chart
        codes=codes_all[keep] if cats is not None else codes_all[keep].astype(np.float32),
        categories=cats,
        color_title=color.title,
        grid=grid,
        n_shown=len(keep),
        n_total=n,
        tier_text=tier_text(manifest),
        method=str(manifest.get("method")),
        manifest=manifest,
    )


def hover_template(attr: str, class_name: str | None, continuous: bool = False) -> str:
    """Hover of one trace: the point's id (its ``customdata``) and its class or value.

    ``class_name`` None (one trace coloured by code, > 30 classes): the code is shown;
    ``continuous``: the value.
    """
    if continuous:
        label = "%{marker.color:.4g}"
    else:
        label = html.escape(class_name) if class_name is not None else "code %{marker.color}"
    return f"id %{{customdata}}<br>{html.escape(attr)}: {label}<extra></extra>"


def store_figure(frame: StoreFrame, uirevision: str | None = None) -> go.Figure:
    """Scattergl of every point (scatter tier) or density raster + sample (density tier).

    One ``Scattergl`` trace per class (up to 30 classes); every trace's hover is a template
    (:func:`hover_template`), never one string per point.
    """
    prefix = AXIS_PREFIX.get(frame.method, frame.method)
    common = dict(
        categories=frame.categories,
        color_title=frame.color_title,
        axis_titles=(f"{prefix} 1", f"{prefix} 2"),
        uirevision=uirevision,
    )
    if frame.grid is None:
        fig = latent_scatter(frame.coords, frame.ids, color=frame.codes, **common)
    else:
        fig = density_map(frame.grid, frame.coords, frame.ids, sample_codes=frame.codes, **common)
    for trace in fig.data:
        trace.hovertemplate = hover_template(
            frame.color_title, trace.name, continuous=frame.categories is None
        )
    return fig


def headline(frame: StoreFrame) -> str:
    """``Showing N of M points ...`` with how they are drawn."""
    if frame.grid is None:
        return f"Showing **{frame.n_shown:,}** of **{frame.n_total:,}** points (all, selectable)"
    return (
        f"Showing **{frame.n_shown:,}** of **{frame.n_total:,}** points as selectable markers "
        f"(a per-class sample) over a density raster of all **{frame.n_total:,}**"
    )


# ------------------------------------------------------------------------------ Streamlit


def run_stores(run_dir: str) -> list[tuple[str, str, str | None]]:
    """``(path, label, reason or None)`` per store of the run; reason set when not usable."""
    return [
        (e.path, f"{e.name} ({e.n:,} × {e.dim})" if e.reason is None else f"{e.name} (not usable)",
         e.reason)
        for e in store_entries(run_dir)
    ]  # fmt: skip


def store_version(path: str) -> int:
    """The store's version: its manifest's mtime (0 when unreadable); part of every cache key."""
    try:
        return (Path(path) / MANIFEST_NAME).stat().st_mtime_ns
    except OSError:
        return 0


@st.cache_resource(max_entries=4, show_spinner=False)
def _open(path: str, version: int) -> LatentStore:
    return open_store(Path(path))  # read-only memmaps, shared by every session


def _fit_in_background(path: str, method: str, seed: int) -> float:
    """Runs in the worker thread: lsx only, no Streamlit calls."""
    start = time.perf_counter()
    cached_store_projection(open_store(Path(path)), method, 2, seed)
    return time.perf_counter() - start


def projection_job(path: str, method: str, seed: int) -> Future | None:
    """None when the store's projection is on disk; else its background job (started once).

    PCA is computed on the request path (about 1 s at 10^6 points, then cached on disk).
    """
    if method == "pca":
        return None
    version = store_version(path)
    return projection_jobs().job(  # the one projection worker of this process
        ("store", path, version, method, int(seed)),
        lambda: cached_store_projection(_open(path, version), method, 2, seed, compute=False)[2],
        lambda: _fit_in_background(path, method, int(seed)),
    )


def _colours(path: str, version: int, color: str, k: int | None) -> ColorValues:
    """The colour of every row: ``cluster`` and ``outlier`` read the store's structure for
    ``k`` (lsx.app.store_structure), ``tag`` the tags of the embedding set holding the store."""
    found = store_structure.structure(path, version, k) if color in STRUCTURE_COLORS else None
    tags = read_tags(set_tags.tags_dir(path)) if color == "tag" else None
    return color_values(_open(path, version), color, found, tags)


@st.cache_resource(max_entries=4, show_spinner="Loading the store's map ...")
def _projection(
    path: str, version: int, method: str, seed: int
) -> tuple[np.ndarray, dict[str, Any]]:
    """Every point's map coordinates (``<store>/projections/``, read once per view and shared
    by the frame, the WebGL payload and the contours) and the projection's manifest."""
    start = time.perf_counter()
    coords, manifest, hit = cached_store_projection(_open(path, version), method, 2, seed)
    manifest = {
        **manifest,
        "disk_cache": "hit" if hit else "miss",
        "load_or_compute_s": round(time.perf_counter() - start, 3),
    }
    return coords, manifest


def tier_text(manifest: dict[str, Any]) -> str:
    """How the projection was made, from its manifest ("exact PCA on 120,000 points", ...)."""
    return str(manifest.get("info", {}).get("describe", ""))


@st.cache_data(max_entries=8, show_spinner="Loading the store's map ...")
def store_frame(
    path: str,
    version: int,
    method: str,
    seed: int,
    color: str,
    k: int | None = None,
    tag_stamp: int = 0,
) -> StoreFrame:
    """The cached frame of one store view (projection from ``<store>/projections/``) coloured
    by ``color`` (:func:`_colours`; ``tag_stamp``: the tags' version, part of the key)."""
    coords, manifest = _projection(path, version, method, seed)
    return make_frame(_open(path, version), coords, manifest, _colours(path, version, color, k))


@st.cache_data(max_entries=16, show_spinner=False)
def store_images(
    path: str, version: int, ids: tuple[int, ...]
) -> tuple[np.ndarray | None, list[str], str | None]:
    """Images of store rows read from the store's source, captions, and why there are none."""
    store = _open(path, version)
    idx = np.asarray(ids, dtype=np.int64)
    names = store.label_names[store.primary]
    err = np.asarray(store.recon_error[idx])  # not on the map's hover: one string per point
    captions = [
        f"id {i} · {store.primary} {names[int(store.y[i])]}"
        + (f" · error {e:.3g}" if np.isfinite(e) else "")  # NaN: an embedding set, no decoder
        for i, e in zip(ids, err.tolist(), strict=True)
    ]
    if store.manifest.get("model_kind") == MODEL_KIND:  # an embedding set: images are optional
        spec = None if store.spec == "none" else store.spec
        if why := images_for_app(spec):
            return None, captions, why
    size = store.manifest["source"].get("input_shape", [None])[-1]
    try:
        source = open_source(
            store.spec, image_size=size if store.spec.startswith(FOLDER_PREFIX) else None
        )
        if source.content_hash != store.source_hash:
            return None, captions, f"the source {store.spec!r} changed since it was encoded"
        return source.read(np.asarray(store.rows[idx])), captions, None
    except (LsxError, OSError) as err:
        return None, captions, f"the source {store.spec!r} cannot be read ({err})"


@dataclass(frozen=True)
class StoreSettings:
    """What the store map's sidebar asks for."""

    method: str
    seed: int
    color: str  # an option of color_options (``latent:<d>`` for one dimension)
    k: int | None  # clusters; None: chosen by silhouette
    contours: bool
    renderer: str  # "webgl" or "plotly"


def store_controls(store: LatentStore) -> StoreSettings:
    """Sidebar controls of a store map: projection (form), seed, colour, clusters, contours."""
    options = color_options(store)
    if st.session_state.get(state.LMS_COLOR) not in options:
        st.session_state[state.LMS_COLOR] = options[0]
    if not 0 <= int(st.session_state[state.LMS_LATENT_DIM]) < store.dim:
        st.session_state[state.LMS_LATENT_DIM] = 0
    with st.sidebar:
        st.subheader("Map of the store")
        widgets.projection_form(
            "lms_projection_form", state.LMS_METHOD, state.LMS_SEED,
            f"PCA is always offered and instant. UMAP and t-SNE are exact up to "
            f"{EXACT_MAX['umap']:,} and {EXACT_MAX['tsne']:,} points; above, fitted on a "
            "stratified sample and the other points placed by their nearest neighbours in "
            "latent space.",
        )  # fmt: skip
        st.selectbox("Colour by", options, key=state.LMS_COLOR, format_func=color_label,
                     help="Clusters and outlier scores are found in latent space (not on the "
                     "2-D map), without labels.")  # fmt: skip
        color = str(st.session_state[state.LMS_COLOR])
        if color == "latent":
            dim = st.number_input(f"Latent dimension (0 – {store.dim - 1})", 0, store.dim - 1,
                                  step=1, key=state.LMS_LATENT_DIM)  # fmt: skip
            color = f"latent:{int(dim)}"
        if st.session_state.get(state.LMS_RENDERER) not in RENDERERS:
            st.session_state[state.LMS_RENDERER] = "webgl" if store.n > SCATTER_MAX else "plotly"
        st.radio("Renderer", list(RENDERERS), key=state.LMS_RENDERER,
                 format_func=RENDERERS.__getitem__, help=RENDERER_HELP)  # fmt: skip
        renderer = str(st.session_state[state.LMS_RENDERER])
        st.toggle("Density contours", key=state.LMS_CONTOURS,
                  help="Lines of equal density over the map (every point counts).")  # fmt: skip
    k = store_structure.k_choice()
    return StoreSettings(
        str(st.session_state[state.LMS_METHOD]), int(st.session_state[state.LMS_SEED]), color,
        k, bool(st.session_state[state.LMS_CONTOURS]), renderer,
    )  # fmt: skip


def drift_candidates(path: str, emb: EmbeddingSet | None, dim: int) -> list[tuple[str, str]]:
    """``(store path, label)`` of the stores this one can be compared with: the run's other
    usable stores of the same dimension (for an embedding set, the other sets)."""
    if emb is None:
        entries = store_entries(Path(path).parent.parent)  # <run>/stores/<store>
        return [(e.path, f"{e.name} ({e.n:,} × {e.dim})") for e in entries
                if e.reason is None and e.path != path and e.dim == dim]  # fmt: skip
    sets, _ = embedding_sets(emb.path.parent)
    return [(str(store_path(s.path)), f"{s.name} ({s.n:,} × {s.dim})") for s in sets
            if s.dim == dim and s.path != emb.path]  # fmt: skip


def store_view(path: str, reason: str | None, emb: EmbeddingSet | None = None) -> None:
    """Render the map of one latent store (its rows are its ids): tier, map (WebGL or Plotly),
    manifest, the gallery of the selection, a cluster or the top outliers, tags, exports,
    clusters, near-duplicates and drift. ``emb``: the embedding set the store belongs to (its
    name, metadata in exports, other sets for drift)."""
    if reason is not None:
        st.warning(f"This latent store cannot be shown: {reason}")
        return
    try:
        version = store_version(path)
        store = _open(path, version)
        view = store_controls(store)
        method, color = view.method, view.color
        job = projection_job(path, method, view.seed)
        if job is not None:  # fitted off the request path; PCA meanwhile
            widgets.wait_for_projection(job, method, plan_projection(store.n, method).n_fit)
            method = "pca"
        wants = (
            color in STRUCTURE_COLORS
            or st.session_state[state.LMS_GALLERY] != (store_structure.GALLERY_MAP)
            or bool(st.session_state[state.LMS_EXEMPLARS])
        )
        s_job = store_structure.structure_job(path, version, view.k) if wants else None
        if s_job is not None:  # found off the request path; coloured by label meanwhile
            store_structure.wait_for_structure(s_job, store.n)
            color = color_options(store)[0] if color in STRUCTURE_COLORS else color
        found = (
            store_structure.structure(path, version, view.k) if wants and s_job is None else None
        )
        stamp = set_tags.tags_stamp(set_tags.tags_dir(path)) if color == "tag" else 0
        _, manifest = _projection(path, version, method, view.seed)
        if view.renderer == "webgl":  # every point: no Plotly frame (raster, sample) is built
            args = (path, version, method, view.seed, color, view.k, stamp, view.contours)
            payload, drawn, title = webgl_data(*args)
            shown = f"Showing **all {store.n:,}** points (WebGL: hover, zoom, lasso)"
        else:
            frame = store_frame(path, version, method, view.seed, color, view.k, stamp)
            shown, title = headline(frame), frame.color_title
    except LsxError as err:
        st.error(str(err))
        return
    st.markdown(f"**Projection:** {tier_text(manifest)} · PCA is always offered.")
    st.markdown(shown + f" · {method.upper()} 2-D · coloured by {title}")
    if view.renderer == "webgl":
        sel = pointmap.point_map(payload, key=state.LMS_POINTMAP)
        ids = pointmap.selection_ids(sel, drawn, f"{path}|{method}|{view.seed}")
    else:
        ids = _plotly(path, version, method, view, frame)
    with st.expander("Projection manifest (tier, sample, placement, seconds, cache)"):
        st.json(manifest, expanded=1)
    st.subheader("Selection")
    ids = store_structure.gallery_ids(found, ids)  # the map's, a cluster or the outliers
    ids = set_tags.tag_panel(set_tags.tags_dir(path), store.n, ids)
    if found is None and s_job is None:
        st.caption("Colour by cluster or outlier score (sidebar) to find clusters and outliers; "
                   "then the gallery can show a cluster or the top 1 % outliers.")  # fmt: skip
    _gallery(path, version, ids)
    if ids:
        export_panel(path, method, view.seed, ids, found)
    if found is not None:
        images = lambda shown: store_images(path, version, shown)  # noqa: E731
        store_structure.clusters_section(path, version, view.k, images)
        store_structure.duplicates_section(path, version, found, images)
    store_structure.drift_section(path, drift_candidates(path, emb, store.dim))


def _plotly(
    path: str, version: int, method: str, view: StoreSettings, frame: StoreFrame
) -> list[int]:
    """The Plotly map (every point up to ``SCATTER_MAX``, else raster + sample); selected ids."""
    fig = store_figure(frame, uirevision=f"{path}|{method}|{view.seed}")
    if view.contours:
        try:
            add_density_contours(fig, _contour_grid(path, version, method, view.seed))
        except LsxError as err:
            st.warning(f"Density contours not drawn: {err}")
    event = st.plotly_chart(
        fig, key=state.LMS_CHART, on_select="rerun", selection_mode=("points", "box", "lasso")
    )
    return widgets.selected_ids(event, frame.ids)


@st.cache_resource(max_entries=4, show_spinner="Packing every point for the WebGL map ...")
def webgl_data(
    path: str,
    version: int,
    method: str,
    seed: int,
    color: str,
    k: int | None,
    tag_stamp: int = 0,
    contours: bool = False,
) -> tuple[bytes, np.ndarray, str]:
    """The WebGL map's payload of every point (with the density contours when asked), their
    coordinates as drawn (quantised) and what the colour is."""
    coords, _ = _projection(path, version, method, seed)
    cv = _colours(path, version, color, k)
    extra: dict[str, Any] = {"view": f"{path}|{method}|{seed}"}
    if contours:
        extra["contours"] = contour_lines(density_grid(coords, bins=CONTOUR_BINS))
    payload = encode_points(coords, cv.values, categories=cv.categories, title=cv.title,
                            extra=extra)  # fmt: skip
    return payload, decode_points(payload)[1], cv.title  # as drawn: read back, not recomputed


@st.cache_data(max_entries=8, show_spinner=False)
def _contour_grid(path: str, version: int, method: str, seed: int) -> DensityGrid:
    """Counts of every point of the map on the contours' coarse grid (small; cached)."""
    return density_grid(_projection(path, version, method, seed)[0], bins=CONTOUR_BINS)


def _gallery(path: str, version: int, ids: list[int]) -> None:
    if not ids:
        st.caption("Drag a box or lasso on the map, or click a point, to see the images.")
        return
    shown = widgets.spread(ids, GALLERY_CAP)
    x, captions, why = store_images(path, version, shown)
    st.caption(f"Showing {len(shown)} of {len(ids)} selected (spread over the selection).")
    if x is None:
        st.warning(f"Images not shown: {why}. The selected ids and labels:")
        st.dataframe({"selected": captions}, hide_index=True)
    else:
        widgets.image_row(x, captions)
