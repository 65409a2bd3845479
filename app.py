"""lsx home: which trained autoencoders are here, and how do I train one?

Run with ``streamlit run app.py``. Pages in ``pages/`` are discovered automatically; each one
calls ``state.init()`` and ``widgets.run_picker()`` itself (house-style.md section 2).
"""

from __future__ import annotations

import streamlit as st

from lsx import __version__
from lsx.app import cache, state, widgets

state.init("Home")
widgets.run_picker()

st.title("lsx · latent-space explorer")
st.markdown(
    "Train an autoencoder on a small image dataset or your own image folder, then explore its "
    "latent space: where each input lands, how well it is reconstructed, and what the decoder "
    "makes of any point."
)

root = state.checkpoints_root()
runs, skipped = cache.runs(root)

st.subheader("Runs")
if runs:
    st.caption(f"{len(runs)} valid run(s) in `{root}`. Pick one in the sidebar, then open a page.")
    st.dataframe(widgets.run_rows(runs), hide_index=True)
    st.page_link(
        "pages/2_latent_map.py", label="Open the latent map", icon=":material/scatter_plot:"
    )
else:
    st.info(
        f"No trained runs in `{root}` yet. Train one with the command below, or point the "
        f"`{state.CHECKPOINTS_ENV}` environment variable at a folder of runs."
    )
if skipped:
    st.warning(
        f"Skipped {len(skipped)} entr{'y' if len(skipped) == 1 else 'ies'} that are not valid "
        "runs: " + "; ".join(f"`{name}` ({reason})" for name, reason in skipped)
    )

st.subheader("Train a run")
st.code(widgets.TRAIN_COMMAND, language="bash")
st.caption(
    f"Kinds: {widgets.registry_list('kinds')}; datasets: {widgets.registry_list('datasets')}, "
    f"`folder:PATH`. The run lands in `{root}/`. `python -m lsx --help` lists every option."
)
st.caption(f"lsx {__version__}")
