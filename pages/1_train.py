"""Train: train a model from the browser and watch its latent space form, epoch by epoch.

The form is generated from the chosen kind's config dataclass and from TrainConfig; the job runs
``python -m lsx train`` in a subprocess, so this page (and every other) stays responsive. The live
view polls the run folder every 2 s: progress with ETA, loss and metric curves, aligned latent
snapshots, the log; Cancel stops the job with a checkpoint, Resume continues it.
"""

from __future__ import annotations

import streamlit as st

from lsx.app import state, train_form, train_page, widgets
from lsx.errors import LsxError
from lsx.models import MODELS

state.init("Train")
widgets.run_picker()
st.title("Train")

st.subheader("Progress")
run_dir = train_page.run_chooser()
if run_dir is not None:
    train_page.live_panel(run_dir)

st.subheader("New run")
left, right = st.columns([1, 2])
kind = left.selectbox(
    "Model kind",
    list(MODELS),
    key=state.TR_KIND,
    format_func=lambda k: f"{k} · {MODELS[k].summary}",
)
with right:
    try:
        data, image_size = train_page.dataset_picker()
    except train_form.MissingPath as err:  # the folder or .npy choice without a path yet
        st.info(str(err))
        data = None
    except LsxError as err:  # e.g. a path outside the app's data folders
        st.error(str(err))
        data = None
if data is not None:
    try:
        train_page.new_run_form(kind, data, image_size)
    except LsxError as err:  # e.g. a missing folder or .npy file, a pickled array
        st.error(str(err))
