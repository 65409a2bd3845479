"""Lookup: where does MY image land in this model's latent space, and what is it near?

Upload images (PNG, JPEG, WebP, BMP): each is shown first with its out-of-distribution verdict,
then as the model sees it, with its nearest cluster (distance, margin, percentile), its
reconstruction and residual, its nearest training images (or, searching one of the run's latent
stores, its nearest images among up to millions), and its place on the latent map. Configured
(sae) checkpoints also answer text queries such as "red stripes" without a language model.
"""

from __future__ import annotations

import streamlit as st

from lsx.app import cache, cluster_space, lookup, set_lookup, state, widgets
from lsx.errors import LsxError

state.init("Lookup")
widgets.run_picker()
st.title("Lookup")
run_dir = widgets.selected_run(embedding_sets=True)
if (emb := widgets.chosen_set()) is not None:
    set_lookup.view(emb)
    st.stop()

try:
    sha, _, config, ds, data_warning = cache.open_run(run_dir)
    space = cluster_space.space(run_dir, sha, ds.content_hash)
except LsxError as err:
    st.error(str(err))
    st.stop()

if data_warning:
    st.warning(data_warning)
c, h, w = config.input_shape
st.markdown(
    f"Model input: **{w}×{h} {'grey' if c == 1 else 'RGB'}** · labels by **{space.description}**"
)
try:
    lookup.metrics_card(run_dir, sha, ds)
    spec, k = lookup.search_controls(run_dir, ds)
except LsxError as err:
    st.error(str(err))
    st.stop()

files = lookup.uploader()
uploads = lookup.prepare_files(files, config.input_shape)
result = None
if uploads:
    try:
        result = lookup.look_up(run_dir, sha, ds, uploads, spec, k)
    except LsxError as err:
        st.error(str(err))
    lookup.results_table(uploads, result)
else:
    st.caption("Upload one or more images to look them up; the text search below works without.")

if result is not None:
    left, right = st.columns([3, 2], gap="large")
    with left:
        st.subheader("Details")
        try:
            lookup.details(run_dir, sha, ds, uploads, result, spec)
        except LsxError as err:
            st.error(str(err))
    with right:
        st.subheader("On the latent map")
        try:
            lookup.upload_map(run_dir, sha, ds, uploads, result)
        except LsxError as err:
            st.error(str(err))

try:
    lookup.text_search_box(run_dir, sha, ds, k)
except LsxError as err:
    st.error(str(err))
