"""Latent map: where does each input land in the latent space, how well is it reconstructed, and
what does the decoder make anywhere on the map?

Select points (box, lasso, click) or a tag to see them beside their reconstructions; click an
empty spot to decode it; traverse, interpolate, sample and edit in the generation panels
(lsx.app.generate); tag and export selections (lsx.app.tags); the URL holds the view
(lsx.app.share). The map shows the run's dataset, or one of its latent stores (lsx.app.store_map).
Cluster centres and a sanity table check the clusters in latent space.
"""

from __future__ import annotations

import streamlit as st

from lsx.app import cache, dataset_map, generate, latent_map, share, state, store_map, tags, widgets
from lsx.embeddings import store_path
from lsx.errors import LsxError
from lsx.viz.latent import latent_scatter

state.init("Latent map")
widgets.run_picker()  # picks ?run=<name> from the URL
url_problems = share.read_url()  # once per session, before the widgets: ?proj=&seed=&dims=...
st.title("Latent map")
for problem in url_problems:
    st.warning(problem)
run_dir = widgets.selected_run(embedding_sets=True)
if (emb := widgets.chosen_set()) is not None:  # vectors without a model: the store view
    st.caption(
        f"**{emb.name}** is an embedding set ({emb.n:,} vectors of dimension {emb.dim}, no "
        "model): reconstructions, decoding the map and the generation panels need a decoder, so "
        "they are not offered."
    )
    store_map.store_view(str(store_path(emb.path)), None, emb)
    st.stop()
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
    by_tag = view.color == tags.TAG_COLOR  # coloured after the cached frame (tags change often)
    frame = dataset_map.latent_map(
        run_dir, sha, ds.content_hash, method, view.n_components, view.seed,
        view.split, f"label:{ds.primary}" if by_tag else view.color, view.cap,
    )  # fmt: skip
    frame = tags.recolour(frame, run_dir) if by_tag else frame
except LsxError as err:
    st.error(str(err))
    st.stop()

if data_warning:
    st.warning(data_warning)
n_all = len(ds.x_train) + len(ds.x_test)
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
ctx = generate.Ctx(run_dir, sha, model, ds, method, view.n_components, view.seed)
try:
    latent_map.add_overlay(fig, run_dir, sha, ds, method, view.n_components, view.seed, view.color)
    generate.decorate(fig, ctx, frame.coords)
except LsxError as err:
    st.warning(f"Not drawn on the map: {err}")
event = st.plotly_chart(
    fig, key=state.LM_CHART, on_select="rerun", selection_mode=("points", "box", "lasso")
)
with st.expander("Projection manifest (method, parameters, seed, versions, cache)"):
    st.json(frame.manifest, expanded=1)
sel = tags.selection(event, frame, run_dir, n_all)
tags.tag_sidebar(run_dir, sel, n_all)

generate.panels(ctx, sel)
left, right = st.columns([3, 2], gap="large")
with left:
    latent_map.selection_gallery(run_dir, sha, ds, sel.ids, sel.source)
    tags.export_panel(run_dir, sha, ds, method, view.n_components, view.seed, sel)
with right:
    latent_map.decode_panel(run_dir, sha, ds)

try:
    latent_map.sanity_section(run_dir, sha, ds, view.split)
except LsxError as err:
    st.error(str(err))
share.write_url(run_dir, view.color, sel.tag, sel.ids)
