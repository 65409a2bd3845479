"""Manifold: is each model's latent manifold smooth or stratified as the input gets noisier?

CAE (ae), DAE and VAE checkpoints side by side: rank of the three mode covariances of each latent
tensor versus the perturbation level, strata per level, singular spectra, principal subspaces in
the Hilbert space, one sample's path on the latent map, decoder smoothness along a latent path,
global descriptors and a computed verdict per model (docs/methods.md; lsx interpretations).
"""

from __future__ import annotations

import streamlit as st

from lsx.app import manifold as mp
from lsx.app import state, widgets
from lsx.errors import LsxError
from lsx.viz import manifold as mv

state.init("Manifold")
widgets.run_picker()
st.title("Latent manifold under input perturbation")
st.caption(mp.INTRO)
runs = mp.pick_runs()
if not runs:
    widgets.no_run_message()
    st.info("Pick up to three checkpoints under **Compare** in the sidebar (CAE, DAE and VAE).")
    st.stop()
try:
    settings = mp.settings_form()
    results = mp.sweeps(runs, settings)
except LsxError as err:
    st.error(str(err))
    st.stop()

mp.verdict_cards(results)
for note in mp.vector_notes(results):
    st.info(note)
spatial = {name: r for name, r in results.items() if r.spatial}
level_title = mp.level_title(results)
if spatial:
    summaries = mp.summaries(spatial)
    st.plotly_chart(mv.rank_curves(summaries, level_title))
    st.plotly_chart(mv.strata_histograms(summaries, level_title))
    with st.expander("Strata and rank table"):
        st.dataframe(mp.strata_rows(spatial), hide_index=True)
    if st.toggle("Singular-spectrum heatmaps", key=state.MF_SPECTRA):
        st.plotly_chart(mv.spectrum_heatmaps(spatial))
else:
    st.info("No checkpoint with a spatial latent is selected: ranks and strata need one.")

st.plotly_chart(mv.subspace_curves(results))
with st.expander("Subspace-angle table"):
    st.dataframe(mp.subspace_rows(results), hide_index=True)

n_test = mp.n_test(runs)
st.subheader("One sample as the noise grows")
sample = mp.id_input("Test image", state.MF_SAMPLE, min(n_test, settings.n_images))
st.plotly_chart(mv.trajectories(results, sample))

st.subheader("Smoothness along a latent path")
left, right = st.columns(2)
with left:
    a = mp.id_input("Image A (test id)", state.MF_PATH_A, n_test)
with right:
    b = mp.id_input("Image B (test id)", state.MF_PATH_B, n_test)
try:
    profiles = mp.paths(runs, a, b, settings)
except LsxError as err:
    st.error(str(err))
else:
    st.plotly_chart(mv.path_profiles(profiles))
    for name, profile in profiles.items():
        changes = (
            "" if profile.n_rank_changes is None else f", {profile.n_rank_changes} rank changes"
        )
        st.image(
            mv.path_strip(profile),
            caption=f"{name}: decoded path A → B (spike ratio {profile.spike_ratio:.2f}{changes})",
        )

st.subheader("Global descriptors (any latent)")
if st.toggle(
    "Effective rank, participation ratio, intrinsic dimension, trustworthiness",
    key=state.MF_DESCRIPTORS,
    help="On up to 1,000 test latents per model; a few seconds each the first time.",
):
    try:
        st.dataframe(mp.descriptor_rows(runs), hide_index=True)
    except LsxError as err:
        st.error(str(err))
with st.expander("What is computed, and what is an lsx interpretation"):
    st.markdown(mp.METHOD_NOTE)
