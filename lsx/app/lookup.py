"""Lookup page logic (``pages/3_lookup.py``): the cluster metrics of the model card, the search
database, uploads, the lookup itself, the details of one upload, its place on the map, and text
search. Searching a run's latent stores is :mod:`lsx.app.lookup_store`; the cluster space is
:mod:`lsx.app.cluster_space`. Pages stay thin: they call the functions here.

Caches follow ``lsx.app.cache``: bounded ``st.cache_data`` with str/int keys, values produced by
lsx only; the model comes from ``cache.load_run`` and is never changed. Uploads are decoded and
checked per file (``lsx.data.uploads``): a bad file gets its own message and the others go on.
"""

from __future__ import annotations

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
    grouping_ratio,
    in_sphere_rates,
    knn_accuracy,
    linear_probe_accuracy,
    nearest_center_accuracy,
    overlap_warnings,
)
from lsx.analysis.embedding import encode_array, reconstruct_array
from lsx.analysis.lookup import (
    ImageLookup,
    adapt_images,
    lookup_images,
    ood_verdict,
    place_by_neighbours,
    prediction_rows,
    summary_row,
)
from lsx.analysis.text_search import QueryError, build_vocabulary, text_search
from lsx.app import cache, state
from lsx.app.cluster_space import GALLERY_PX, all_latents, ood_detector, space
from lsx.app.dataset_map import latent_map
from lsx.app.lookup_store import STORE_PREFIX, look_up_in_store, run_stores, store_gallery
from lsx.data import DATASETS, Dataset, load_dataset
from lsx.data.images import MAX_BYTES
from lsx.data.uploads import (
    DECODE_BUDGET_PIXELS,
    DECODE_WINDOW_S,
    MAX_UPLOAD_FILES,
    PreparedImage,
    decode_cost,
    pixels_spent,
    prepare_upload,
    type_error,
)
from lsx.data.vocabulary import vocabulary_for
from lsx.errors import LsxError
from lsx.viz.clusters import add_queries, distance_profile
from lsx.viz.images import decode_triptych, scale_for, to_uint8
from lsx.viz.latent import latent_scatter

MAP_CAP = 3000  # training points drawn under the uploads


# ------------------------------------------------------------------------------ cached data


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


# ------------------------------------------------------------------------------ uploads


@dataclass(frozen=True, eq=False)
class Upload:
    """One uploaded file: prepared for the model, or the reason it was not (``deferred``: over
    the session's decode budget, read on a later run)."""

    name: str
    prepared: PreparedImage | None
    error: str | None
    deferred: bool = False


@st.cache_data(max_entries=256, show_spinner=False)
def _prepare(file_id: str, name: str, input_shape: tuple[int, ...], _data: bytes) -> Upload:
    """Decode one file (keyed by Streamlit's file id: the bytes are not hashed)."""
    try:
        return Upload(name, prepare_upload(_data, tuple(input_shape), name=name), None)
    except LsxError as err:
        return Upload(name, None, str(err))


def prepare_files(files: Sequence[Any] | None, input_shape: tuple[int, ...]) -> list[Upload]:
    """Every uploaded file prepared or rejected with its own message (type and size checked
    here), within the session's decode budget: a new file whose pixels would take this session
    past ``DECODE_BUDGET_PIXELS`` in ``DECODE_WINDOW_S`` is deferred (:func:`budget_notice`)."""
    now = time.monotonic()
    log = [
        (t, px)
        for t, px in st.session_state.get(state.LU_DECODE_LOG, ())
        if now - t < DECODE_WINDOW_S
    ]
    known = dict(st.session_state.get(state.LU_DECODED, ()))
    decoded: dict[str, int] = {}
    out = []
    for f in list(files or [])[:MAX_UPLOAD_FILES]:
        data, file_id = f.getvalue(), str(f.file_id)
        msg = type_error(f.name)
        if msg is None and len(data) > MAX_BYTES:
            msg = (
                f"{f.name} is {len(data) / 1e6:.1f} MB; lsx reads at most {MAX_BYTES / 1e6:.0f} MB."
            )
        if msg is not None:
            out.append(Upload(f.name, None, msg))
            continue
        if file_id not in known:  # a new file: decoding it costs server time
            cost = decode_cost(data, tuple(input_shape))
            if cost and pixels_spent(log, now) + cost > DECODE_BUDGET_PIXELS:
                out.append(Upload(f.name, None, f"{cost / 1e6:.0f} MP", deferred=True))
                continue
            log.append((now, cost))
            known[file_id] = cost
        decoded[file_id] = known[file_id]
        out.append(_prepare(file_id, f.name, tuple(input_shape), data))
    st.session_state[state.LU_DECODE_LOG] = tuple(log)  # the last minute's decodes only
    st.session_state[state.LU_DECODED] = tuple(decoded.items())  # only the files still uploaded
    return out


def budget_notice(uploads: list[Upload]) -> None:
    """One message for the files deferred by the decode budget: how many, why, what to do."""
    waiting = [u for u in uploads if u.deferred]
    if not waiting:
        return
    now = time.monotonic()
    log = st.session_state.get(state.LU_DECODE_LOG, ())
    oldest = min((t for t, _ in log), default=now)
    wait = max(1, int(DECODE_WINDOW_S - (now - oldest)) + 1)
    names = ", ".join(u.name for u in waiting[:5]) + (" ..." if len(waiting) > 5 else "")
    st.error(
        f"{len(waiting)} of {len(uploads)} images were not decoded ({names}): this session has "
        f"decoded {pixels_spent(log, now) / 1e6:.0f} megapixels of uploads in the last "
        f"{DECODE_WINDOW_S:.0f} s, and each session may decode at most "
        f"{DECODE_BUDGET_PIXELS / 1e6:.0f} MP a minute so the server stays responsive for "
        f"everyone. They are read when the page next runs after about {wait} s (change any "
        "setting); or upload fewer or smaller images."
    )


def uploader() -> list[Any]:
    """The file uploader. It accepts every file type (``type=None``): a file of another type is
    refused in Python with a visible message (:func:`lsx.data.uploads.type_error`), where
    Streamlit's own ``type=`` filter would only show an icon whose reason appears on hover."""
    files = st.file_uploader(
        "Images (PNG, JPEG, WebP, BMP)",
        type=None,
        accept_multiple_files=True,
        key=state.LU_UPLOADS,
        max_upload_size=max(1, int(MAX_BYTES // 1_000_000)),
        help=f"Up to {MAX_UPLOAD_FILES} files of at most {MAX_BYTES // 1_000_000} MB each; "
        f"each session decodes at most {DECODE_BUDGET_PIXELS // 1_000_000} megapixels a minute.",
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
        z_train, _ = cache.embedding(run_dir, sha, ds.content_hash, "train")
        detector = ood_detector(run_dir, sha, ds.content_hash)
        return lookup_images(model, sp, x, z_db, k, detector=detector, z_train=z_train)
    return look_up_in_store(run_dir, sha, ds.content_hash, x, spec, k)


def results_table(uploads: list[Upload], result: ImageLookup | None) -> None:
    """One row per file: its OOD verdict first, then its nearest class, or why it could not be
    read. Flagged uploads are named above the table with a red badge."""
    rows, j = [], 0
    for u in uploads:
        if u.prepared is None:
            status = f"not decoded yet: over this session's decode budget ({u.error})"
            rows.append({"file": u.name, "status": status if u.deferred else u.error})
            continue
        row = {"file": u.name, "status": "ok", **summary_row(result, j)}
        row["notes"] = "; ".join(u.prepared.notes)
        rows.append(row)
        j += 1
    for u in uploads:
        if u.error and not u.deferred:
            st.error(u.error)
    budget_notice(uploads)
    flagged = [r["file"] for r in rows if r.get("verdict") == "out of distribution"]
    if flagged:
        st.badge(f"{len(flagged)} of {j} out of distribution", color="red", icon=":material/block:")
        st.markdown(
            "**Out of distribution:** " + ", ".join(flagged[:10])
            + (f" and {len(flagged) - 10} more" if len(flagged) > 10 else "")
            + ". These images are unlike the data the model was trained on: their nearest "
            "class is shown, but it is not a prediction to trust."
        )  # fmt: skip
    st.dataframe(rows, hide_index=True)
    if result is not None and result.detector is not None:
        st.caption(f"OOD rule: {result.detector.rule} (the run's test split).")


def verdict_card(result: ImageLookup, i: int) -> None:
    """The OOD verdict of upload ``i``, shown before anything else about it: a flagged upload
    leads with "out of distribution" and its nearest class comes second."""
    v = ood_verdict(result, i)
    score = (
        "" if v["score"] is None else f" · score {v['score']:.2f} (threshold {v['threshold']:.2f})"
    )
    if v["ood"]:
        st.badge("out of distribution", color="red", icon=":material/block:")
        why = "".join(f"\n- {r}" for r in v["reasons"])
        st.markdown(
            f"**Out of distribution**{score}. Nearest class would be {v['nearest']}, but this "
            f"image is unlike the data the model was trained on:{why}"
        )
    else:
        st.badge("in distribution", color="green", icon=":material/check:")
        st.markdown(f"**{v['nearest']}**{score}")


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
    verdict_card(result, i)
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
    frame = latent_map(
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
    z_all = all_latents(run_dir, sha, ds.content_hash)
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
    if sp.rule == RULE_CONFIGURED and m["overlaps"]:  # centroid "spheres" are not configured
        with st.expander(f"{len(m['overlaps'])} sphere overlaps (configured spheres)"):
            st.warning("\n".join(f"- {w}" for w in m["overlaps"]))
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
