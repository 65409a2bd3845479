"""Lookup page logic for a run's latent stores (``lsx.latents``, 10^5-10^6 images): the stores
offered as "Search in" choices, the kNN index over a store's ``z``, the lookup of uploads in it
and the gallery of their nearest store images. The rest of the page is :mod:`lsx.app.lookup`.

The index is built once per store version and shared by every session (``st.cache_resource``;
queries only read it), the store's arrays stay read-only memory maps, and the neighbours' images
are read from the store's source on demand.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st

from lsx.analysis.knn import HNSW_EF_SEARCH, HNSW_M, KnnIndex, build_index
from lsx.analysis.lookup import ImageLookup, adapt_images, lookup_images
from lsx.app import cache, state
from lsx.app.cluster_space import GALLERY_PX, ood_detector, space
from lsx.data.lazy import FOLDER_PREFIX, LAZY_PREFIXES, open_source
from lsx.data.uploads import MAX_UPLOAD_FILES
from lsx.errors import LsxError
from lsx.latents.store import MANIFEST_NAME, LatentStore, open_store
from lsx.viz.images import scale_for, to_uint8

STORE_PREFIX = "store:"  # "Search in" value of a latent store: the prefix + its folder


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
    index = build_index(store.z, n_queries=MAX_UPLOAD_FILES, threads=state.configure_torch())
    return StoreSearch(store, index, time.perf_counter() - start)


def store_search(sha: str, choice: str) -> StoreSearch:
    """The cached search of the store named by a "Search in" value (``STORE_PREFIX + path``)."""
    path = choice[len(STORE_PREFIX) :]
    return _store_search(path, _manifest_key(path), sha)


def _source_stamp(spec: str) -> str:
    """Cheap freshness of a lazy source's path (size, mtime), so a moved file is noticed."""
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


@st.cache_data(max_entries=16, show_spinner="Searching the latent store ...")
def _store_lookup(
    run_dir: str, sha: str, data_hash: str, choice: str, key: str, digest: str, k: int, *, _x
) -> tuple[ImageLookup, float]:
    """One lookup of these uploads (``digest`` of their pixels) in a store, kept so that reruns
    (choosing another upload's details) do not search 10^6 vectors again."""
    model, _ = cache.load_run(run_dir, sha)
    search = store_search(sha, choice)
    start = time.perf_counter()
    z_train, _ = cache.embedding(run_dir, sha, data_hash, "train")
    result = lookup_images(
        model, space(run_dir, sha, data_hash), _x, search.index, k,
        detector=ood_detector(run_dir, sha, data_hash), z_train=z_train,
    )  # fmt: skip
    return result, time.perf_counter() - start


def look_up_in_store(
    run_dir: str, sha: str, data_hash: str, x: np.ndarray, choice: str, k: int
) -> ImageLookup:
    """Lookup of the prepared uploads ``x`` in the store named by ``choice``, kept per uploads'
    pixels; a caption says which search ran and how long it took."""
    search = store_search(sha, choice)
    digest = hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest()
    key = _manifest_key(choice[len(STORE_PREFIX) :])
    result, seconds = _store_lookup(run_dir, sha, data_hash, choice, key, digest, k, _x=x)
    st.caption(
        f"Searched **{search.description}** of `{search.store.path.name}`: {len(x)} upload(s) "
        f"encoded and looked up in {1e3 * seconds:.0f} ms (kept for these uploads); the index "
        f"was built once for this store version in {search.build_s:.2f} s. Predicted clusters "
        "come from the run's own cluster space."
    )
    return result
