"""Latent map: where does each input land in the latent space, and how well is it reconstructed?

Select points (box or lasso) to see them beside their reconstructions; the decode panel shows
any sample's input, reconstruction and residual. The map shows the run's dataset, or one of the
run's latent stores (up to millions of points: tiered projections, a density raster above
50,000 points; lsx.app.store_map). Cluster centres and spheres (configured for sae
runs, class centroids otherwise) and a cluster sanity table check the clusters in latent space.
"""

from __future__ import annotations

import streamlit as st

from lsx.app import cache, dataset_map, latent_map, state, store_map, widgets
from lsx.errors import LsxError
from lsx.viz.images import decode_triptych, pair_tiles
from lsx.viz.latent import latent_scatter

GALLERY_CAP = 32

state.init("Latent map")
widgets.run_picker()
st.title("Latent map")
run_dir = widgets.selected_run()
store = latent_map.map_source(run_dir)  # None: the run's dataset; else one of its latent stores
if store is not None:
    store_map.store_view(*store)
    st.stop()

try:
    sha, model, _, ds, data_warning = cache.open_run(run_dir)
    view = latent_map.map_controls(ds.label_names, cache.latent_numel(model))
    method = view.method
    job = cache.projection_job(run_dir, sha, ds.content_hash, method, view.n_components, view.seed)
    if job is not None:  # UMAP/t-SNE not cached yet: fitted off the request path, PCA meanwhile
        widgets.wait_for_projection(job, method, len(ds.x_train) + len(ds.x_test))
        method = "pca"
    frame = dataset_map.latent_map(
        run_dir, sha, ds.content_hash, method, view.n_components, view.seed,
        view.split, view.color, view.cap,
    )  # fmt: skip
except LsxError as err:
    st.error(str(err))
    st.stop()

if data_warning:
    st.warning(data_warning)
sampled = " (a per-class sample; raise **Max points** in the sidebar to see more)"
st.markdown(
    f"Showing **{frame.n_shown:,}** of **{frame.n_total:,}** points · {view.split} split · "
    f"{method.upper()} {view.n_components}-D · coloured by {frame.color_title}"
    + (sampled if frame.n_shown < frame.n_total else "")
)
fig = latent_scatter(
    frame.coords,
    frame.ids,
    color=frame.color,
    categories=frame.categories,
    color_title=frame.color_title,
    hover=frame.hover,
    axis_titles=frame.axis_titles,
    uirevision=f"{run_dir}|{method}|{view.n_components}|{view.seed}",
)
try:
    latent_map.add_overlay(fig, run_dir, sha, ds, method, view.n_components, view.seed, view.color)
except LsxError as err:
    st.warning(f"Centres not drawn: {err}")
event = st.plotly_chart(
    fig, key=state.LM_CHART, on_select="rerun", selection_mode=("points", "box", "lasso")
)
with st.expander("Projection manifest (method, parameters, seed, versions, cache)"):
    st.json(frame.manifest, expanded=1)

left, right = st.columns([3, 2], gap="large")
with left:
    st.subheader("Selection")
    ids = widgets.selected_ids(event, frame.ids)
    if not ids:
        st.caption(
            "Drag a box or lasso on the map (2-D) or click a point to see the inputs beside "
            "their reconstructions (left: input, right: reconstruction)."
        )
    else:
        try:
            shown = widgets.spread(ids, GALLERY_CAP)
            x, x_hat, captions = cache.samples(run_dir, sha, ds.content_hash, shown)
        except LsxError as err:
            st.error(str(err))
        else:
            st.caption(
                f"Showing {len(shown)} of {len(ids)} selected (spread over the selection; "
                "left: input, right: reconstruction)."
            )
            st.image(pair_tiles(x, x_hat), caption=captions, output_format="PNG")
with right:
    st.subheader("Decode a sample")
    sample_id = latent_map.sample_id_input(len(ds.x_train), len(ds.x_test))
    try:
        x, x_hat, captions = cache.samples(run_dir, sha, ds.content_hash, (sample_id,))
    except LsxError as err:
        st.error(str(err))
    else:
        images, labels, summary = decode_triptych(x[0], x_hat[0])
        st.caption(f"Sample {captions[0]} · {summary}")
        st.image(images, caption=labels, output_format="PNG")

try:
    latent_map.sanity_section(run_dir, sha, ds, view.split)
except LsxError as err:
    st.error(str(err))
