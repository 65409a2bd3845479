"""App logic of the Lookup page and of the Latent map's cluster additions (centres and spheres,
cluster colourings, sanity table). Pages stay thin: they call the functions here.

Caches follow ``lsx.app.cache``: bounded ``st.cache_data`` with str/int keys, values produced by
lsx only; the model comes from ``cache.load_run`` and is never changed. Uploads are decoded and
checked per file (``lsx.data.uploads``): a bad file gets its own message and the others go on.

Lookup also searches a run's latent stores (``lsx.latents``, 10^5-10^6 images): the kNN index
over a store's ``z`` is built once per store version and shared by every session
(``st.cache_resource``; queries only read it), the store's arrays stay read-only memory maps, and
the neighbours' images are read from the store's source on demand.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from lsx.analysis.clusters import (
    RULE_CONFIGURED,
    STABILITY_NAME,
    ClusterSpace,
    center_overlay,
    cluster_sanity,
    cluster_space,
    color_codes,
    grouping_ratio,
    in_sphere_rates,
    knn_accuracy,
    linear_probe_accuracy,
    nearest_center_accuracy,
    overlap_warnings,
)
from lsx.analysis.embedding import encode_array, reconstruct_array
from lsx.analysis.knn import HNSW_EF_SEARCH, HNSW_M, KnnIndex, build_index
from lsx.analysis.lookup import (
    ImageLookup,
    adapt_images,
    lookup_images,
    place_by_neighbours,
    prediction_rows,
    summary_row,
)
from lsx.analysis.text_search import QueryError, build_vocabulary, text_search
from lsx.app import cache, state
from lsx.data import DATASETS, Dataset, load_dataset
from lsx.data.images import MAX_BYTES
from lsx.data.uploads import MAX_UPLOAD_FILES, UPLOAD_EXTENSIONS, PreparedImage, prepare_upload
from lsx.data.vocabulary import vocabulary_for
from lsx.errors import LsxError
from lsx.latents.store import MANIFEST_NAME, LatentStore, open_store
from lsx.viz.clusters import add_centers, add_queries, distance_profile
from lsx.viz.images import decode_triptych, scale_for, to_uint8
from lsx.viz.latent import latent_scatter

MAP_CAP = 3000  # training points drawn under the uploads
MISASSIGNED_SHOWN = 8
GALLERY_PX = 56
STORE_PREFIX = "store:"  # "Search in" value of a latent store: the prefix + its folder


# ------------------------------------------------------------------------------ cached data


@st.cache_data(max_entries=16, show_spinner="Locating the clusters ...")
def space(run_dir: str, sha: str, data_hash: str) -> ClusterSpace:
    """The run's cluster space (configured centres, or training centroids), calibrated."""
    model, _ = cache.load_run(run_dir, sha)
    ds, _ = cache.run_dataset(run_dir)
    z_train, _ = cache.embedding(run_dir, sha, data_hash, "train")
    return cluster_space(model, z_train, ds.labels_train, ds.label_names)


def _all_latents(run_dir: str, sha: str, data_hash: str) -> np.ndarray:
    return np.concatenate([cache.embedding(run_dir, sha, data_hash, s)[0] for s in cache.SPLITS])


def _all_labels(ds: Dataset) -> dict[str, np.ndarray]:
    return {a: np.concatenate([ds.labels_train[a], ds.labels_test[a]]) for a in ds.label_names}


@st.cache_data(max_entries=16, show_spinner="Computing the cluster metrics ...")
def metrics(run_dir: str, sha: str, data_hash: str) -> dict[str, Any]:
    """Test-split metrics of the model card: nearest-centre, kNN and linear-probe accuracy per
    attribute, in-sphere rate per class, sphere overlaps, and the seeds study if saved."""
    ds, _ = cache.run_dataset(run_dir)
    sp = space(run_dir, sha, data_hash)
    z_tr, _ = cache.embedding(run_dir, sha, data_hash, "train")
    z_te, _ = cache.embedding(run_dir, sha, data_hash, "test")
    nearest = nearest_center_accuracy(sp, z_te, ds.labels_test)
    rows = [
        {
            "attribute": a,
            "nearest centre": nearest[a],
            "kNN (k=5)": knn_accuracy(z_tr, ds.labels_train[a], z_te, ds.labels_test[a]),
            "linear probe": linear_probe_accuracy(
                z_tr, ds.labels_train[a], z_te, ds.labels_test[a]
            ),
        }
        for a in ds.label_names
    ]
    rates = in_sphere_rates(sp, z_te, ds.labels_test)
    spheres = [
        {"attribute": a, "class": name, "in sphere": float(rates[a][c])}
        for a, names in ds.label_names.items()
        for c, name in enumerate(names)
    ]
    stability = None
    path = Path(run_dir) / STABILITY_NAME
    if path.is_file():
        try:
            stability = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            stability = None
    held = [c for c in range(len(sp.attributes[0].active)) if not sp.attributes[0].active[c]]
    unseen = None
    if len(held) >= 2:  # the paper's claim: unseen classes still form tight groups
        y = ds.labels_test[sp.attributes[0].name]
        seen = [c for c in np.unique(y) if c not in held]
        g_held, g_seen = grouping_ratio(z_te, y, held), grouping_ratio(z_te, y, seen)
        unseen = [
            {"classes": "held out (never trained on)", "intra / inter distance": g_held.ratio,
             "5-NN purity": g_held.knn_purity},
            {"classes": "seen", "intra / inter distance": g_seen.ratio,
             "5-NN purity": g_seen.knn_purity},
        ]  # fmt: skip
    return {
        "accuracy": rows,
        "spheres": spheres,
        "overlaps": overlap_warnings(sp),
        "stability": stability,
        "unseen": unseen,
    }


@st.cache_data(max_entries=8, show_spinner="Encoding the search database ...")
def database(run_dir: str, sha: str, data_hash: str, spec: str) -> tuple[np.ndarray, list[str]]:
    """Latents and captions of the search database: the run's training images (``spec=""``) or
    another built-in dataset's training images adapted to the model (cross-dataset search)."""
    ds, _ = cache.run_dataset(run_dir)
    if not spec:
        z, _ = cache.embedding(run_dir, sha, data_hash, "train")
        names = np.asarray(ds.class_names, dtype=object)[ds.y_train]
        return z, [f"train #{i} · {n}" for i, n in enumerate(names)]
    model, config = cache.load_run(run_dir, sha)
    other = load_dataset(spec)
    z = encode_array(model, adapt_images(other.x_train, tuple(config.input_shape)))
    names = np.asarray(other.class_names, dtype=object)[other.y_train]
    return z, [f"{spec} #{i} · {n}" for i, n in enumerate(names)]


def database_images(run_dir: str, sha: str, spec: str, ids: Sequence[int]) -> np.ndarray:
    """Images of database rows, as the model sees them."""
    ds, _ = cache.run_dataset(run_dir)
    if not spec:
        return ds.x_train[np.asarray(ids, dtype=np.int64)]
    _, config = cache.load_run(run_dir, sha)
    other = load_dataset(spec)
    return adapt_images(other.x_train[np.asarray(ids, dtype=np.int64)], tuple(config.input_shape))


# ------------------------------------------------------------------------------ latent stores


@dataclass(frozen=True, eq=False)
class StoreSearch:
    """A latent store opened read-only and the kNN index over its ``z`` (built once)."""

    store: LatentStore
    index: KnnIndex
    build_s: float

    @property
    def description(self) -> str:
        """Which search runs, e.g. ``exact (FAISS flat) over 1,000,000 vectors``."""
        n = f"{self.index.n_db:,} vectors"
        if self.index.method == "hnsw":
            return f"HNSW (approximate; FAISS, M={HNSW_M}, efSearch={HNSW_EF_SEARCH}) over {n}"
        return f"exact ({'FAISS flat' if self.index.backend == 'faiss' else 'NumPy'}) over {n}"


def _short(spec: str, width: int = 48) -> str:
    return spec if len(spec) <= width else f"{spec[:6]}…{spec[-(width - 7) :]}"


def run_stores(run_dir: str) -> list[tuple[str, str, str | None]]:
    """``(choice value, label, reason or None)`` per latent store of the run; a reason (stale,
    incomplete, corrupt) means it is not searched."""
    return [
        (STORE_PREFIX + e.path,
         f"store: {e.name}" + (f" ({e.n:,} images, {_short(e.spec)})" if e.reason is None else ""),
         e.reason)
        for e in cache.store_entries(run_dir)
    ]  # fmt: skip


def _manifest_key(path: str) -> str:
    """sha256 of the store's manifest: it changes whenever the store is encoded again."""
    try:
        return hashlib.sha256((Path(path) / MANIFEST_NAME).read_bytes()).hexdigest()
    except OSError:
        return "missing"


@st.cache_resource(
    max_entries=2, show_spinner="Indexing the latent store (once per store version) ..."
)
def _store_search(path: str, manifest_key: str, sha: str) -> StoreSearch:
    """Open the store (refused when stale) and index its ``z``: read from the memory map once by
    the build; queries only read the index, so one index serves every session."""
    store = open_store(Path(path), checkpoint_sha=sha)
    start = time.perf_counter()
    index = build_index(store.z, n_queries=MAX_UPLOAD_FILES, threads=cache.configure_torch())
    return StoreSearch(store, index, time.perf_counter() - start)


def store_search(sha: str, choice: str) -> StoreSearch:
    """The cached search of the store named by a "Search in" value (``STORE_PREFIX + path``)."""
    path = choice[len(STORE_PREFIX) :]
    return _store_search(path, _manifest_key(path), sha)


def _source_stamp(spec: str) -> str:
    """Cheap freshness of a lazy source's path (size, mtime), so a moved file is noticed."""
    from lsx.data.lazy import LAZY_PREFIXES

    prefix = next((p for p in LAZY_PREFIXES if spec.startswith(p)), None)
    if prefix is None:
        return ""  # a built-in dataset
    try:
        stat = Path(spec[len(prefix) :].strip()).stat()
    except OSError:
        return "missing"
    return f"{stat.st_size}:{stat.st_mtime_ns}"


@st.cache_data(max_entries=32, show_spinner="Reading the neighbours' images ...")
def store_images(
    path: str, manifest_key: str, source_stamp: str, ids: tuple[int, ...], shape: tuple[int, ...]
) -> tuple[np.ndarray | None, str | None]:
    """Images of store rows read lazily from the store's source, as the model sees them; or
    None and what went wrong (source moved, changed or unreadable) and what to do."""
    from lsx.data.lazy import FOLDER_PREFIX, open_source

    store = open_store(Path(path))
    size = store.manifest["source"].get("input_shape", [None])[-1]
    redo = (
        "Put it back where it was, or encode the data from its new place (Large datasets page, "
        "or `python -m lsx encode --run RUN --data SPEC`) and search that store"
    )
    try:
        source = open_source(
            store.spec, image_size=size if store.spec.startswith(FOLDER_PREFIX) else None
        )
        if source.content_hash != store.source_hash:
            return None, f"the source {store.spec!r} changed since it was encoded. {redo}."
        x = source.read(np.asarray(store.rows[np.asarray(ids, dtype=np.int64)]))
    except (LsxError, OSError) as err:
        return None, f"the source {store.spec!r} cannot be read ({err}). {redo}."
    return (x if x.shape[1:] == tuple(shape) else adapt_images(x, tuple(shape))), None


def store_gallery(run_dir: str, sha: str, choice: str, ids: np.ndarray, dist: np.ndarray) -> None:
    """The nearest store images of one upload; ids, labels and distances when the source is
    gone."""
    search = store_search(sha, choice)
    store = search.store
    idx = np.asarray(ids, dtype=np.int64)
    labels = {a: np.asarray(store.labels[a][idx]) for a in store.label_names}
    names = store.label_names[store.primary]
    st.markdown(f"**{len(idx)} nearest images** of `{store.path.name}` in latent space")
    _, config = cache.load_run(run_dir, sha)
    x, why = store_images(
        str(store.path), _manifest_key(str(store.path)), _source_stamp(store.spec),
        tuple(int(i) for i in idx), tuple(config.input_shape),
    )  # fmt: skip
    if x is None:
        st.warning(f"Images not shown: {why}. The neighbours' ids, labels and distances:")
        rows = np.asarray(store.rows[idx])
        st.dataframe(
            [
                {"store id": int(i), "source row": int(r), "distance": round(float(d), 4)}
                | {a: store.label_names[a][int(v[j])] for a, v in labels.items()}
                for j, (i, r, d) in enumerate(zip(idx, rows, dist, strict=True))
            ],
            hide_index=True,
        )
        return
    s = scale_for(x.shape[2], GALLERY_PX)
    y = labels[store.primary]
    st.image(
        [to_uint8(g, scale=s) for g in x],
        caption=[
            f"store #{i} · {names[int(c)]} · d {d:.3f}"
            for i, c, d in zip(idx, y, dist, strict=True)
        ],
        output_format="PNG",
    )


# ------------------------------------------------------------------------------ uploads


@dataclass(frozen=True, eq=False)
class Upload:
    """One uploaded file: prepared for the model, or the reason it was not."""

    name: str
    prepared: PreparedImage | None
    error: str | None


@st.cache_data(max_entries=256, show_spinner=False)
def _prepare(file_id: str, name: str, input_shape: tuple[int, ...], _data: bytes) -> Upload:
    """Decode one file (keyed by Streamlit's file id: the bytes are not hashed)."""
    try:
        return Upload(name, prepare_upload(_data, tuple(input_shape), name=name), None)
    except LsxError as err:
        return Upload(name, None, str(err))


def prepare_files(files: Sequence[Any] | None, input_shape: tuple[int, ...]) -> list[Upload]:
    """Every uploaded file prepared or rejected with its own message (size re-checked here)."""
    out = []
    for f in list(files or [])[:MAX_UPLOAD_FILES]:
        data = f.getvalue()
        if len(data) > MAX_BYTES:
            msg = (
                f"{f.name} is {len(data) / 1e6:.1f} MB; lsx reads at most {MAX_BYTES / 1e6:.0f} MB."
            )
            out.append(Upload(f.name, None, msg))
            continue
        out.append(_prepare(str(f.file_id), f.name, tuple(input_shape), data))
    return out


def uploader() -> list[Any]:
    """The file uploader (extensions only in ``type``, so Streamlit also checks them)."""
    files = st.file_uploader(
        "Images (PNG, JPEG, WebP, BMP)",
        type=list(UPLOAD_EXTENSIONS),
        accept_multiple_files=True,
        key=state.LU_UPLOADS,
        max_upload_size=max(1, int(MAX_BYTES // 1_000_000)),
        help=f"Up to {MAX_UPLOAD_FILES} files of at most {MAX_BYTES // 1_000_000} MB each.",
    )
    files = list(files or [])
    if len(files) > MAX_UPLOAD_FILES:
        st.warning(f"{len(files)} files uploaded; the first {MAX_UPLOAD_FILES} are looked up.")
    return files


def search_controls(run_dir: str, ds: Dataset) -> tuple[str, int]:
    """Where to search (this run's data, another dataset, or one of the run's latent stores)
    and how many neighbours."""
    others = [name for name in DATASETS if name != ds.spec]
    stores = run_stores(run_dir)
    usable = {value: label for value, label, why in stores if why is None}
    options = ["", *others, *usable]
    chosen = st.session_state.get(state.LU_DB)
    if chosen not in options:  # e.g. a store deleted or made stale since it was chosen
        st.session_state[state.LU_DB] = ""
        if isinstance(chosen, str) and chosen.startswith(STORE_PREFIX):
            st.warning(
                f"The latent store {Path(chosen[len(STORE_PREFIX) :]).name} is no longer usable; "
                "searching the training split. See the Large datasets page."
            )
    left, right = st.columns([3, 1])
    left.selectbox(
        "Search in",
        options,
        key=state.LU_DB,
        format_func=lambda s: (
            usable.get(s)
            or (f"{s} (cross-dataset, adapted)" if s else f"{ds.spec} (training split)")
        ),
        help="Another dataset's images are resized and converted to the model's input. A latent "
        "store (Large datasets page) is searched with a kNN index built once per store.",
    )
    right.number_input("Neighbours", min_value=1, max_value=32, step=1, key=state.LU_K)
    stale = [(label, why) for _, label, why in stores if why is not None]
    if stale:
        with st.expander(f"{len(stale)} latent store(s) of this run not offered"):
            for label, why in stale:
                st.markdown(f"- **{label}**: {why}")
    return str(st.session_state[state.LU_DB]), int(st.session_state[state.LU_K])


def look_up(
    run_dir: str, sha: str, ds: Dataset, uploads: list[Upload], spec: str, k: int
) -> ImageLookup | None:
    """Lookup of every prepared upload against the database (None when none is usable)."""
    ok = [u.prepared for u in uploads if u.prepared is not None]
    if not ok:
        return None
    model, _ = cache.load_run(run_dir, sha)
    x = np.stack([p.x for p in ok])
    sp = space(run_dir, sha, ds.content_hash)
    if not spec.startswith(STORE_PREFIX):
        z_db, _ = database(run_dir, sha, ds.content_hash, spec)
        return lookup_images(model, sp, x, z_db, k)
    search = store_search(sha, spec)
    digest = hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest()
    key = _manifest_key(spec[len(STORE_PREFIX) :])
    result, seconds = _store_lookup(run_dir, sha, ds.content_hash, spec, key, digest, k, _x=x)
    st.caption(
        f"Searched **{search.description}** of `{search.store.path.name}`: {len(x)} upload(s) "
        f"encoded and looked up in {1e3 * seconds:.0f} ms (kept for these uploads); the index "
        f"was built once for this store version in {search.build_s:.2f} s. Predicted clusters "
        "come from the run's own cluster space."
    )
    return result


@st.cache_data(max_entries=16, show_spinner="Searching the latent store ...")
def _store_lookup(
    run_dir: str, sha: str, data_hash: str, choice: str, key: str, digest: str, k: int, *, _x
) -> tuple[ImageLookup, float]:
    """One lookup of these uploads (``digest`` of their pixels) in a store, kept so that reruns
    (choosing another upload's details) do not search 10^6 vectors again."""
    model, _ = cache.load_run(run_dir, sha)
    search = store_search(sha, choice)
    start = time.perf_counter()
    result = lookup_images(model, space(run_dir, sha, data_hash), _x, search.index, k)
    return result, time.perf_counter() - start


def results_table(uploads: list[Upload], result: ImageLookup | None) -> None:
    """One row per file: its prediction, or why it could not be read."""
    rows, j = [], 0
    for u in uploads:
        if u.prepared is None:
            rows.append({"file": u.name, "status": u.error})
            continue
        row = {"file": u.name, "status": "ok", **summary_row(result, j)}
        row["notes"] = "; ".join(u.prepared.notes)
        rows.append(row)
        j += 1
    for u in uploads:
        if u.error:
            st.error(u.error)
    st.dataframe(rows, hide_index=True)


def details(
    run_dir: str, sha: str, ds: Dataset, uploads: list[Upload], result: ImageLookup, spec: str
) -> None:
    """The chosen upload: as the model sees it, reconstruction, residual, prediction per
    attribute with distance profile, and its nearest database images."""
    ok = [u for u in uploads if u.prepared is not None]
    names = [f"{i + 1}. {u.name}" for i, u in enumerate(ok)]
    if st.session_state.get(state.LU_DETAIL) not in range(len(ok)):
        st.session_state[state.LU_DETAIL] = 0  # the file list changed
    st.selectbox("Details for", range(len(ok)), format_func=names.__getitem__, key=state.LU_DETAIL)
    i = int(st.session_state[state.LU_DETAIL])
    prep = ok[i].prepared
    model, _ = cache.load_run(run_dir, sha)
    x_hat = reconstruct_array(model, prep.x[None])[0]
    images, labels, summary = decode_triptych(prep.x, x_hat)
    st.image(images, caption=["as the model sees it", *labels[1:]], output_format="PNG")
    st.caption(
        f"{prep.format} {prep.source_size[0]}x{prep.source_size[1]} · {summary}"
        + ("".join(f"  \n- {n}" for n in prep.notes))
    )
    st.dataframe(prediction_rows(result, i), hide_index=True)
    sp = space(run_dir, sha, ds.content_hash)
    cols = st.columns(len(result.results))
    for col, res, attr in zip(cols, result.results, sp.attributes, strict=True):
        col.plotly_chart(distance_profile(res, i, attr.radii), key=f"lu_profile_{res.name}")
    ids = result.neighbour_ids[i]
    if spec.startswith(STORE_PREFIX):
        store_gallery(run_dir, sha, spec, ids, result.neighbour_dist[i])
        return
    _, captions = database(run_dir, sha, ds.content_hash, spec)
    gallery = database_images(run_dir, sha, spec, ids)
    s = scale_for(gallery.shape[2], GALLERY_PX)
    st.markdown(f"**{len(ids)} nearest images** in latent space")
    st.image(
        [to_uint8(g, scale=s) for g in gallery],
        caption=[
            f"{captions[j]} · d {d:.3f}" for j, d in zip(ids, result.neighbour_dist[i], strict=True)
        ],
        output_format="PNG",
    )


def upload_map(
    run_dir: str, sha: str, ds: Dataset, uploads: list[Upload], result: ImageLookup
) -> None:
    """PCA map of the training latents with the uploads placed by their latent neighbours."""
    frame = cache.latent_map(
        run_dir, sha, ds.content_hash, "pca", 2, 0, "train", f"label:{ds.primary}", MAP_CAP
    )  # fmt: skip
    coords, _ = cache.projection(run_dir, sha, ds.content_hash, "pca", 2, 0)
    z_train, _ = cache.embedding(run_dir, sha, ds.content_hash, "train")
    placed = place_by_neighbours(result.z, z_train, coords[: len(z_train)])
    fig = latent_scatter(
        frame.coords, frame.ids, color=frame.color, categories=frame.categories,
        color_title=frame.color_title, hover=frame.hover, axis_titles=frame.axis_titles, height=520,
    )  # fmt: skip
    names = [u.name for u in uploads if u.prepared is not None]
    add_queries(fig, placed, names)
    st.plotly_chart(fig, key="lu_map")
    st.caption(
        "Uploads (red stars) are placed at the mean map position of their 15 nearest training "
        "points in latent space (no re-fit, no UMAP.transform)."
    )


def text_search_box(run_dir: str, sha: str, ds: Dataset, k: int) -> None:
    """Text search without a language model, for configured checkpoints."""
    sp = space(run_dir, sha, ds.content_hash)
    st.subheader("Text search")
    if sp.rule != RULE_CONFIGURED:
        st.caption(
            "Text search maps class names to configured centres; this checkpoint has no "
            "configuration (train an `sae` run to use it)."
        )
        return
    try:
        synonyms, source = vocabulary_for(run_dir, ds.spec)
        vocab = build_vocabulary(sp, synonyms)
    except LsxError as err:
        st.warning(f"{err} Searching with class names only.")
        source, vocab = "none", build_vocabulary(sp)
    st.text_input("Query", key=state.LU_QUERY, placeholder="e.g. red stripes, checks, 3")
    st.caption(f"Vocabulary ({'synonyms: ' + source}): {vocab.listing()}")
    query = str(st.session_state[state.LU_QUERY] or "")
    if not query.strip():
        return
    z_all = _all_latents(run_dir, sha, ds.content_hash)
    try:
        res = text_search(sp, z_all, query, vocab, k=k)
    except QueryError as err:
        st.warning(str(err))
        return
    st.markdown(
        f"**{res.description}** · {res.n_inside:,} of {len(z_all):,} images lie inside every "
        "named sphere; the nearest ones:"
    )
    x, _, captions = cache.samples(run_dir, sha, ds.content_hash, tuple(int(i) for i in res.ids))
    s = scale_for(x.shape[2], GALLERY_PX)
    st.image(
        [to_uint8(img, scale=s) for img in x],
        caption=[f"{c} · d {d:.3f}" for c, d in zip(captions, res.distances, strict=True)],
        output_format="PNG",
    )


def metrics_card(run_dir: str, sha: str, ds: Dataset) -> None:
    """The cluster part of the model card, in an expander."""
    sp = space(run_dir, sha, ds.content_hash)
    m = metrics(run_dir, sha, ds.content_hash)
    for warning in m["overlaps"]:
        st.warning(warning)
    with st.expander(f"Cluster metrics (test split) · rule: {sp.description}"):
        st.dataframe(m["accuracy"], hide_index=True)
        st.dataframe(m["spheres"], hide_index=True, height=200)
        if m["unseen"]:
            st.markdown("**Unseen classes** (ratio < 1: the held-out classes still form groups)")
            st.dataframe(m["unseen"], hide_index=True)
        stab = m["stability"]
        if stab:
            st.markdown("**Stability over seeds** (bench/sae.py)")
            st.dataframe(stab.get("rows", []), hide_index=True)
        else:
            st.caption("No seeds study saved for this run (`python bench/sae.py --save`).")


def stability_line(run_dir: str | Path) -> str | None:
    """One model-card line from the run's saved seeds study (``stability.json``), if any."""
    path = Path(run_dir) / STABILITY_NAME
    try:
        rows = json.loads(path.read_text(encoding="utf-8")).get("rows", [])
    except (OSError, ValueError, AttributeError):
        return None
    parts = [
        f"{r['model']} ({r['attribute']}) {100 * r['mean accuracy']:.1f} ± "
        f"{100 * r['std (ddof=1)']:.1f} %"
        for r in rows
        if isinstance(r, dict) and {"model", "attribute", "mean accuracy", "std (ddof=1)"} <= set(r)
    ]
    if not parts:
        return None
    return f"test accuracy over {rows[0].get('seeds', '?')} seeds: " + " · ".join(parts)


# ------------------------------------------------------------------------------ latent map


def color_values(
    run_dir: str, sha: str, ds: Dataset, z: np.ndarray, key: str, keep: np.ndarray
) -> tuple[np.ndarray, tuple[str, ...], str]:
    """Latent-map colours for ``predicted:<attr>``, ``in_sphere:<attr>``, ``correct:<attr>``."""
    sp = space(run_dir, sha, ds.content_hash)
    labels = {a: v[keep] for a, v in _all_labels(ds).items()}
    codes, categories, title = color_codes(sp, z[keep], labels, key)
    return codes, categories, f"{title} · {sp.rule} rule"


@st.cache_data(max_entries=16, show_spinner=False)
def _overlay(
    run_dir: str, sha: str, data_hash: str, method: str, n_comp: int, seed: int, attr: str
):
    ds, _ = cache.run_dataset(run_dir)
    coords, _ = cache.projection(run_dir, sha, data_hash, method, n_comp, seed)
    z = _all_latents(run_dir, sha, data_hash)
    return center_overlay(space(run_dir, sha, data_hash), z, coords, _all_labels(ds), attr)


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
    z, labels = _all_latents(run_dir, sha, ds.content_hash), _all_labels(ds)
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
