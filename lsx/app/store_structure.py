"""Structure of a latent store on the Latent map: clusters and outlier scores found without labels,
what the gallery shows (the map's selection, a cluster, the top outliers), and drift against
another store of the same checkpoint.

The math is :mod:`lsx.analysis.structure`; the per-store cache :mod:`lsx.latents.structure`.
Clusters and scores are computed by the app's one background worker (the projection worker, so
they never compete with a UMAP fit for the cores) and read back from ``<store>/structure/``; the
drift test runs in the results thread and is kept in memory.
"""

from __future__ import annotations

import math
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from lsx.analysis.drift import NOVEL_QUANTILE, drift_test
from lsx.analysis.structure import cluster_table, near_duplicate_groups, top_share
from lsx.app import background, state, widgets
from lsx.app.cache import projection_jobs
from lsx.errors import LsxError
from lsx.latents.store import open_store
from lsx.latents.structure import StoreStructure, cached_store_structure

TOP_OUTLIERS = 0.01  # "the top 1 % outliers"
EXEMPLARS = 6
CLUSTERS_SHOWN = 12  # exemplar rows drawn for the largest clusters
GALLERY_MAP, GALLERY_OUTLIERS, GALLERY_CLUSTER = "map selection", "top 1 % outliers", "a cluster"
DRIFT_MAP_POINTS = 3_000  # per set, on the drift map
DUPLICATE_SHARE = 0.05  # default threshold: this share of the median kNN distance
GROUPS_SHOWN, DUPLICATES_SHOWN = 5, 8  # groups drawn, images per group
NOVELTY_HOVER = "id %{customdata}<br>novelty %{marker.color:.4g}<extra></extra>"


def structure_job(path: str, version: int, k: int | None) -> Future | None:
    """None when the store's clusters and scores are on disk; else their background job."""
    return projection_jobs().job(
        ("structure", path, version, k),
        lambda: cached_store_structure(open_store(Path(path)), 0, k, compute=False)[0] is not None,
        lambda: cached_store_structure(open_store(Path(path)), 0, k),
    )


@st.cache_resource(max_entries=4, show_spinner="Reading the clusters ...")
def structure(path: str, version: int, k: int | None) -> StoreStructure:
    """The store's structure (from disk; computed here only if the folder is read-only)."""
    return cached_store_structure(open_store(Path(path)), 0, k)[0]


def wait_for_structure(job: Future, n: int) -> None:
    background.wait_notice(
        [job],
        f"Finding clusters (k-means in latent space) and outlier scores of {n:,} points in the "
        "background (then kept in the store's folder). The map is coloured by label meanwhile.",
        label="clusters and outlier scores",
    )


def k_choice() -> int | None:
    """Sidebar: the number of clusters, or None (chosen by silhouette)."""
    auto = st.sidebar.toggle(
        "Choose k by silhouette", key=state.LMS_K_AUTO,
        help="k-means on the latents for k = 2..12, keeping the k with the highest silhouette "
        "(fitted on a sample; every point is then assigned to its nearest centre).",
    )  # fmt: skip
    if auto:
        return None
    return int(st.sidebar.number_input("Clusters (k)", 1, 100, step=1, key=state.LMS_K))


@st.cache_data(max_entries=8, show_spinner=False)
def _table(path: str, version: int, k: int | None) -> list[dict[str, Any]]:
    store, found = open_store(Path(path)), structure(path, version, k)
    names = store.label_names[store.primary]
    rows = cluster_table(store.z, found.labels, found.centres, np.asarray(store.y), EXEMPLARS)
    return [
        {
            "cluster": r.cluster,
            "size": r.size,
            "share": round(r.share, 4),
            f"majority {store.primary}": names[r.majority] if r.majority is not None else "",
            "purity": None if math.isnan(r.purity) else round(r.purity, 3),
            "exemplars": list(r.exemplars),
        }
        for r in rows
    ]


def gallery_ids(found: StoreStructure | None, map_ids: list[int]) -> list[int]:
    """What the gallery shows: the map's selection, the top 1 % outliers or one cluster."""
    if found is None:
        return map_ids
    choice = st.radio(
        "Show", (GALLERY_MAP, GALLERY_OUTLIERS, GALLERY_CLUSTER), key=state.LMS_GALLERY,
        horizontal=True,
        help="Outliers: the highest kNN-distance scores in latent space (every point, not only "
        "those drawn on the map).",
    )  # fmt: skip
    if choice == GALLERY_OUTLIERS:
        return top_share(found.outlier, TOP_OUTLIERS).tolist()
    if choice == GALLERY_CLUSTER:
        c = st.selectbox("Cluster", range(found.k), key=state.LMS_GALLERY_CLUSTER)
        return np.flatnonzero(found.labels == int(c or 0)).tolist()
    return map_ids


def clusters_section(path: str, version: int, k: int | None, images: Any) -> None:
    """Cluster table (sizes, majority label, purity) and each cluster's exemplar images.

    ``images(ids)`` returns ``(x or None, captions, why)`` (the store map's image reader).
    """
    found = structure(path, version, k)
    st.subheader("Clusters (k-means in latent space, not on the 2-D map)")
    st.caption(found.note)
    rows = _table(path, version, k)
    st.dataframe([{k_: v for k_, v in r.items() if k_ != "exemplars"} for r in rows],
                 hide_index=True)  # fmt: skip
    if not st.toggle("Show exemplars (nearest to each centre)", key=state.LMS_EXEMPLARS):
        return
    _image_groups(
        [(f"**Cluster {r['cluster']}** · {r['size']:,} points", r["exemplars"])
         for r in rows[:CLUSTERS_SHOWN]],
        images,
    )  # fmt: skip


def _image_groups(groups: list[tuple[str, list[int]]], images: Any) -> None:
    """A title and a row of images per group of store rows (``images``: the store's reader,
    ``ids -> (x or None, captions, why)``); the ids and the reason when there are no images."""
    for title, ids in groups:
        x, captions, why = images(tuple(ids))
        st.markdown(title)
        if x is None:
            st.caption(f"ids {list(ids)}; images not shown: {why}.")
        else:
            widgets.image_row(x, captions)


# ------------------------------------------------------------------------------ near-duplicates


def _duplicates(path: str, threshold: float) -> dict[str, Any]:
    """Runs in the results thread: near-duplicate groups of every row."""
    groups = near_duplicate_groups(open_store(Path(path)).z, threshold, threads=1)
    sizes = np.bincount(groups[groups >= 0]) if (groups >= 0).any() else np.zeros(0, int)
    members = [np.flatnonzero(groups == g)[:DUPLICATES_SHOWN].tolist() for g in range(len(sizes))]
    return {"n_groups": len(sizes), "n_points": int(sizes.sum()), "sizes": sizes.tolist(),
            "members": members[:GROUPS_SHOWN]}  # fmt: skip


def duplicates_section(path: str, version: int, found: StoreStructure, images: Any) -> None:
    """Groups of points closer than a distance in latent space (copies, near-copies)."""
    with st.expander("Near-duplicates (points closer than a distance in latent space)"):
        typical = found.outlier_median  # the typical distance to 10 neighbours
        if st.session_state.get(state.LMS_DUP_THRESHOLD) is None:
            st.session_state[state.LMS_DUP_THRESHOLD] = round(typical * DUPLICATE_SHARE, 6)
        threshold = st.number_input(
            "Distance at most", min_value=0.0, format="%.6f", key=state.LMS_DUP_THRESHOLD,
            help=f"Default: {DUPLICATE_SHARE:.0%} of the median outlier score (a typical "
            f"distance to the 10 nearest neighbours, here {typical:.4g}).",
        )  # fmt: skip
        if not st.toggle("Find them", key=state.LMS_DUP_FIND):
            return
        key = ("duplicates", path, version, float(threshold))
        out, job = background.results().get(key, lambda: _duplicates(path, float(threshold)))
        if job is not None:
            background.wait_notice([job], "Finding near-duplicates in the background.",
                                   label="near-duplicates")  # fmt: skip
            return
        st.markdown(f"**{out['n_groups']:,} groups** holding **{out['n_points']:,} points**.")
        _image_groups(
            [(f"**Group {g}** · {out['sizes'][g]:,} points", ids)
             for g, ids in enumerate(out["members"])],
            images,
        )  # fmt: skip


# ------------------------------------------------------------------------------ drift


def _drift(ref_path: str, new_path: str) -> dict[str, Any]:
    """Runs in the results thread: the test, plus a PCA map of both samples."""
    from sklearn.decomposition import PCA

    ref, new = open_store(Path(ref_path)), open_store(Path(new_path))
    res = drift_test(ref.z, new.z, seed=0)
    rng = np.random.default_rng(0)
    a = rng.choice(ref.n, size=min(ref.n, DRIFT_MAP_POINTS), replace=False)
    b = rng.choice(new.n, size=min(new.n, DRIFT_MAP_POINTS), replace=False)
    za, zb = np.asarray(ref.z[np.sort(a)]), np.asarray(new.z[np.sort(b)])
    pca = PCA(2, random_state=0).fit(za)  # the reference's axes
    return {
        "result": res,
        "ref_xy": pca.transform(za),
        "new_xy": pca.transform(zb),
        "new_ids": np.sort(b),
        "new_novelty": res.novelty[np.sort(b)],
    }


def drift_section(path: str, others: list[tuple[str, str]]) -> None:
    """Compare this store (the reference) with another store of the same checkpoint."""
    st.subheader("Drift: another dataset against this one")
    if not others:
        st.caption(
            "Encode a second dataset or folder with this run (`python -m lsx encode --run-dir "
            "RUN --data SPEC`) to compare it with this one: novelty of each new point, new "
            "clusters, and a two-sample test."
        )
        return
    labels = dict(others)
    if st.session_state.get(state.LMS_DRIFT) not in ("", *labels):
        st.session_state[state.LMS_DRIFT] = ""
    new_path = st.selectbox(
        "New dataset", ["", *labels], key=state.LMS_DRIFT,
        format_func=lambda p: "(choose a store)" if not p else labels[p],
    )  # fmt: skip
    if not new_path:
        return
    try:
        stamp = tuple((Path(p) / "manifest.json").stat().st_mtime_ns for p in (path, new_path))
        out, job = background.results().get(("drift", path, new_path, stamp),
                                            lambda: _drift(path, new_path))  # fmt: skip
    except (LsxError, OSError) as err:
        st.error(f"Drift not computed: {err}")
        return
    if job is not None:
        background.wait_notice([job], "Testing for drift in the background.", label="drift")
        return
    _drift_report(out, labels[new_path])


def _drift_report(out: dict[str, Any], new_label: str) -> None:
    import plotly.graph_objects as go

    res = out["result"]
    c = st.columns(4)
    c[0].metric("MMD² (permutation test)", f"{res.statistic:.4g}")
    c[1].metric("p-value", f"{res.p_value:.3g}")
    c[2].metric("Novel new points", f"{res.share_novel:.1%}",
                help=f"kNN distance to this dataset above its own {NOVEL_QUANTILE:.0%} quantile "
                f"(about {1 - NOVEL_QUANTILE:.0%} without drift).")  # fmt: skip
    c[3].metric("In clusters this set lacks", f"{res.share_in_novel_clusters:.1%}")
    verdict = "differ" if res.p_value < 0.05 else "are not shown to differ"
    st.caption(
        f"The two latent distributions {verdict} at α = 0.05 (MMD with a Gaussian kernel, "
        f"{res.n_permutations} permutations, {res.n_ref:,} + {res.n_new:,} points sampled). "
        f"Clusters of the pooled sample: {res.k_clusters}; the reference lacks "
        f"{len(res.novel_clusters)} of them."
    )
    fig = go.Figure([
        go.Scattergl(x=out["ref_xy"][:, 0], y=out["ref_xy"][:, 1], mode="markers",
                     name="reference", marker=dict(color="#bbbbbb", size=4), hoverinfo="skip"),
        go.Scattergl(x=out["new_xy"][:, 0], y=out["new_xy"][:, 1], mode="markers",
                     name=new_label, customdata=out["new_ids"],
                     marker=dict(color=out["new_novelty"], colorscale="Viridis", size=5,
                                 showscale=True, colorbar=dict(title="novelty")),
                     hovertemplate=NOVELTY_HOVER),
    ])  # fmt: skip
    fig.update_layout(height=480, xaxis_title="PC 1 (reference)", yaxis_title="PC 2 (reference)")
    st.plotly_chart(fig, key="lms_drift_chart")
