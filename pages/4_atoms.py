"""Atoms: which dictionary atoms does a sparse-coding model use, how sparse are its codes, does a
VQ-VAE use its codebook as well, and what do the patch codes segment in a photo?

For an ``scvae`` run: usage histogram (dead atoms marked), atom gallery (what each atom does:
its decoded effect and its top activating patches), co-activation and
per-class heat maps, L0/L1 distributions, and the comparison with a ``vqvae`` run (and the other
way round). Every statistic covers the whole chosen split (a per-class sample is shown first
while the whole split is coded in the background). The segmentation view works for any
run: it clusters the patch codes of a built-in or uploaded photo.
"""

from __future__ import annotations

import streamlit as st

from lsx.app import atoms, cache, segmentation, state, widgets
from lsx.errors import LsxError
from lsx.models import MODELS

state.init("Atoms")
widgets.run_picker()
st.title("Atoms")
run_dir = widgets.selected_run()

try:
    sha, _, config, ds, data_warning = cache.open_run(run_dir)
    split = atoms.split_control()
    c, job = atoms.coded(run_dir, sha, ds.content_hash, split)  # a sample first, then all
except LsxError as err:
    st.error(str(err))
    st.stop()

if data_warning:
    st.warning(data_warning)
info = atoms.run_info(run_dir)
if c is None:
    st.info(
        f"This run is a `{config.kind}`; atom and code statistics need an `scvae` or `vqvae` run "
        "(e.g. `demo-scvae-mnist5k`). The segmentation view below works for any run."
    )
else:
    spec, stats = MODELS[config.kind], c.stats  # the registry: its dictionary, sparse codes?
    if job is not None:
        atoms.wait_for_split(job, c, split)
    st.markdown(
        f"**{len(stats.counts)} {spec.dictionary}** over **{stats.n_positions:,}** latent "
        f"positions ({split} split of `{ds.spec}`, "
        + (f"{len(c.ids):,} of {c.n_total:,} images)." if c.partial else "every image).")
    )
    try:
        atoms.summary(stats)
        y, class_names = atoms.labels_of(run_dir, split, c.ids)
        tabs = st.tabs(["Gallery", "Heat maps", "Sparsity", "scvae vs vqvae"])
        with tabs[0]:
            atoms.gallery_panel(run_dir, sha, ds.content_hash, split, c)
        with tabs[1]:
            atoms.heatmap_panels(stats, class_names)
        with tabs[2]:
            if spec.sparse_codes:
                atoms.sparsity_panel(stats, y, class_names)
            else:
                st.caption("A VQ-VAE uses exactly one code per position: L0 is 1 everywhere.")
        with tabs[3]:
            if info is not None:
                atoms.comparison_panel(info, stats, split)
    except LsxError as err:
        st.error(str(err))
    st.caption(
        "The **Latent map** page can colour every sample by its dominant atom "
        "(Colour by → dominant atom)."
    )

st.header("Segmentation by patch codes")
st.caption(
    "The image is cut into tiles of the model's input size; every latent grid cell of a tile is "
    "one patch, its (sparse) code is clustered with k-means, and the cluster map is upsampled."
)
try:
    segmentation.segmentation_view(run_dir, sha)
except LsxError as err:
    st.error(str(err))
