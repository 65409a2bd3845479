"""Compare: how do two checkpoints' latent spaces differ, in numbers and on one aligned map?

Both checkpoints encode the same samples. Numbers: per-point kNN Jaccard (which neighbourhoods
changed), linear CKA, Procrustes disparity, per-class centroid drift, reconstruction in common
units (MSE, PSNR) on the same samples, and both runs' final training metrics, subtracted only where
they share a unit. Select points in either map to highlight them in both and see their inputs
beside both reconstructions.
"""

from __future__ import annotations

import streamlit as st

from lsx.app import cache, compare, compare_frame, set_compare, state, widgets
from lsx.errors import LsxError
from lsx.viz.compare import drift_bars, jaccard_histogram

state.init("Compare")
widgets.run_picker()
st.title("Compare checkpoints")
runs, _ = cache.runs(state.checkpoints_root())
sets = set_compare.sets_of_root()
if set_compare.mode(bool(runs), sets) == "embedding sets":
    set_compare.view(sets)
    st.stop()
if not runs:
    widgets.no_run_message()
    st.stop()

info_a, info_b = compare.pick_pair(runs)
run_a, run_b = str(info_a.run_dir), str(info_b.run_dir)
try:
    choice = compare.pick_data(info_a, info_b)
    view = compare.controls()
    ds = compare_frame.dataset(choice)
    sha_a, sha_b = cache.weights_version(run_a), cache.weights_version(run_b)
    # UMAP/t-SNE not cached yet: fitted off the request path, the PCA comparison meanwhile
    runs_ab, shas = (run_a, run_b), (sha_a, sha_b)
    jobs = compare_frame.pending(runs_ab, shas, choice, ds.content_hash, view.method, view.cap)
    frame = compare_frame.comparison(
        run_a, sha_a, run_b, sha_b, choice.spec, choice.image_size, ds.content_hash,
        "pca" if jobs else view.method, view.k, view.cap,
    )  # fmt: skip
except LsxError as err:
    st.error(str(err))
    st.stop()

same = " · A and B are the same checkpoint: every number is at its identity value"
st.markdown(
    f"**{len(frame.ids):,}** of **{frame.n_total:,}** samples of `{choice.spec}` encoded by both"
    + (same if run_a == run_b else "")
)
if jobs:
    compare.wait_for_projections(jobs, view.method, len(frame.ids))
compare.numbers(frame)
selected = compare.selection(frame)
fig = compare.map_figure(frame, view, (info_a.name, info_b.name), ds.primary, selected)
st.plotly_chart(
    fig, key=state.CMP_CHART, on_select="rerun", selection_mode=("points", "box", "lasso")
)
st.caption(
    f"{frame.method.upper()} of each latent space. Both maps are standardised (centred, scaled "
    "to unit RMS distance from the centre), then B is rotated onto A (map Procrustes disparity "
    f"{frame.map_disparity:.3f}), so both fill their panels whatever the two latent scales. Box "
    "or lasso in either map: the same samples light up in both."
)
compare.manifests(frame, (info_a.name, info_b.name))

st.subheader("Selection")
compare.show_gallery(runs_ab, shas, choice, selected)

left, right = st.columns(2)
with left:
    st.subheader("Neighbourhood change")
    st.plotly_chart(jaccard_histogram(frame.jaccard, frame.k))
    st.caption(f"The {compare.RANKED} points whose neighbours changed most (select to highlight):")
    st.dataframe(
        compare.ranked_rows(frame), key=state.CMP_RANKED, on_select="rerun",
        selection_mode="multi-row", hide_index=True,
    )  # fmt: skip
with right:
    st.subheader("Per-class centroid drift")
    rows = compare.drift_rows(frame)
    classes, jaccards = [r["class"] for r in rows], [r["mean kNN Jaccard"] for r in rows]
    st.plotly_chart(drift_bars(classes, frame.drift.drift, jaccards))
    st.dataframe(rows, hide_index=True)

st.subheader("Reconstruction on the same samples")
st.dataframe(compare.reconstruction_rows(frame), hide_index=True)
st.caption(
    f"decode(encode(x)) of the {len(frame.ids):,} compared samples by each checkpoint, in units "
    "every kind shares: mean per-pixel MSE (lower is better) and mean PSNR (higher is better)."
)
st.subheader("Model cards and final metrics")
st.dataframe(compare.card_rows(info_a, info_b), hide_index=True)
st.dataframe(compare.metric_rows(info_a, info_b), hide_index=True)
st.caption(
    "Each run's last training record. B − A is given only where both runs log the metric in the "
    "same unit: a VAE's loss terms are in nats, an AE's in per-pixel MSE, and each kind's loss "
    "is its own objective ('comparable' says why not). Compare reconstruction in the table above."
)
