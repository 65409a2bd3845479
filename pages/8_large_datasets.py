"""Large datasets: encode a dataset too big for memory into a latent store, streamed to disk.

A store holds one latent vector per image (memory-mapped ``.npy`` files, never loaded whole); the
Latent map opens it through its sidebar choice **Map of**, with projection and rendering tiers
for 10^5 to 10^6 points. The encode runs in the background; stopping it keeps the rows so far.
"""

from __future__ import annotations

import streamlit as st

from lsx.app import large_datasets, state, widgets
from lsx.errors import LsxError

state.init("Large datasets")
widgets.run_picker()
st.title("Large datasets")
run_dir = widgets.selected_run()
st.markdown(
    "Encode a dataset with this run into a **latent store**: the images are read in batches "
    "(lazily from a `.npy` file or an image folder), each batch is encoded and written to disk, "
    "so a million images need no more memory than one batch. Then open the store on the "
    "**Latent map** (sidebar: **Map of**). From a terminal: "
    f"`python -m lsx encode --run {run_dir} --data npy:/path/images.npy`."
)

try:
    header_spec = large_datasets.run_data_spec(run_dir)
except LsxError as err:
    st.error(str(err))
    st.stop()

st.subheader("Stores of this run")
rows = large_datasets.store_rows(run_dir)
if rows:
    st.dataframe(rows, hide_index=True)
else:
    st.info("This run has no latent store yet. Encode one below.")

st.subheader("Encode a dataset")
large_datasets.encode_form(run_dir, header_spec)
st.subheader("Encodes started here")
large_datasets.jobs_panel(str(run_dir))
