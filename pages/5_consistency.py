"""Consistency: does the encoder give an input and its harmless transforms (small rotations,
shifts, crops ...) the same posterior, and is the posterior healthy (active units, mutual
information, NLL)? Compare a VAE with a CR-VAE (docs/methods.md).
"""

from __future__ import annotations

import streamlit as st

from lsx.app import consistency as co
from lsx.app import state, widgets
from lsx.errors import LsxError
from lsx.viz.consistency import gallery_tiles, pair_map, score_distributions

state.init("Consistency")
widgets.run_picker()
st.title("Consistency")
run_dir = widgets.selected_run()

settings = co.controls(run_dir)
try:
    res = co.results(run_dir, settings)
except LsxError as err:
    st.error(str(err))
    st.stop()

for r in res:
    if r.warning:
        st.warning(r.warning)
for alarm in co.collapse_alarms(res, settings.alarm):
    st.error(alarm, icon=":material/warning:")
first = res[0].report
st.markdown(
    f"**{first.n_points}** test points (a per-class sample) · transform set "
    f"**{first.transform_set}** at strength {settings.strength:g} · one random draw per point "
    f"and transform (seed {settings.seed}); every run sees the same points and draws."
)
for note in co.deterministic_notes(res):
    st.caption(note)

st.subheader("Posterior health and consistency, side by side")
co.wait_for_nll(res)  # the NLL runs in the background: the rest is shown now
rows = co.table(res)
st.dataframe(rows, hide_index=True, width="stretch", height=35 * (len(rows) + 1) + 3)
st.caption(
    "AU: dimensions whose posterior mean varies over the data (Cov > threshold). MI: "
    "aggregate-posterior estimate (at most log n). NLL: importance-sampled with q(z|x), "
    "nats per image. Accuracy: logistic regression on posterior means, fit on the train split, "
    "scored on these test points. Pair KL: KL(q(z|t(x)) || q(z|x)); displacement: "
    "||mu(t(x)) - mu(x)|| / median distance between two test points; kNN kept: share of a "
    "point's 10 latent neighbours that stay its neighbours after t."
)

st.subheader("Augmented pairs on the latent map")
st.caption(
    "Each segment joins a test point (white dot) to its transform (cross), one colour per "
    "transform; PCA of each run's posterior means. Short segments = a consistent encoder."
)
for col, r in zip(st.columns(len(res)), res, strict=True):
    p = r.pairs
    with col:
        fig = pair_map(p.background, p.origin, p.moved, ids=p.ids,
                       title=f"{r.name} (PCA keeps {p.explained:.0%} of the variance)")  # fmt: skip
        st.plotly_chart(fig, key=f"co_map_{r.name}")

st.subheader("Distributions per transform")
metric = st.radio(
    "Score", list(co.METRICS), key=state.CO_METRIC, horizontal=True,
    format_func=co.METRICS.get,
)  # fmt: skip
data = co.distributions(res, metric)
if data:
    st.plotly_chart(score_distributions(data, y_title=co.METRICS[metric]), key="co_dist")
else:
    st.info("No pair KL for deterministic encoders; choose **displacement**.")

st.subheader("An input, its transforms and their reconstructions")
sample = st.number_input("Test sample id", 0, 10**6, step=1, key=state.CO_SAMPLE)
for r in res:
    try:
        names, images, recon = co.gallery(
            r.run_dir, r.sha, int(sample), settings.transforms, settings.strength, settings.seed
        )
    except LsxError as err:
        st.error(str(err))
        break
    st.markdown(f"**{r.name}**: top, the input and its transforms; bottom, the reconstructions")
    st.image(gallery_tiles(images, recon), caption=names, output_format="PNG")
