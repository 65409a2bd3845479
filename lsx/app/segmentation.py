"""App logic of the Atoms page's segmentation view (pages/4_atoms.py): pick a built-in photo or
upload images, cluster the model's patch codes with k-means, and show the segments over the
image. The math is in :mod:`lsx.analysis.segmentation`; the overlay in :mod:`lsx.viz.atoms`.
"""

from __future__ import annotations

import hashlib

import numpy as np
import streamlit as st

from lsx.analysis.segmentation import (
    MAX_K,
    MIN_K,
    PHOTOS,
    Segmentation,
    load_photo,
    resize_image,
    segment_image,
)
from lsx.app import cache, state
from lsx.data.images import decode_image, normalize_mode, to_array
from lsx.data.uploads import type_error
from lsx.errors import LsxError
from lsx.viz.atoms import segmentation_overlay

MAX_SIDE = 1024  # uploads are shrunk to this longest side before tiling


@st.cache_data(max_entries=8, show_spinner="Segmenting: encoding tiles and clustering ...")
def segment(
    run_dir: str, sha: str, source: str, _image: np.ndarray, k: int, seed: int, scale: float
) -> tuple[Segmentation, np.ndarray]:
    """Segmentation of an image and the image it saw. ``source`` is a built-in photo name
    (``_image`` None) or an upload's name and hash (``_image`` its pixels), the cache key."""
    model, _ = cache.load_run(run_dir, sha)
    image = resize_image(load_photo(source) if _image is None else _image, scale)
    return segment_image(model, image, k, seed=seed), image


def decode_upload(name: str, data: bytes) -> tuple[np.ndarray, list[str]]:
    """An uploaded file as a (C, H, W) float image at most MAX_SIDE on its longer side.

    Raises
    ------
    DatasetError
        The file is not a readable PNG/JPEG/WebP (decode_image's per-file message).
    """
    img = decode_image(data, name=name, draft_size=(MAX_SIDE, MAX_SIDE))
    flat, conversion = normalize_mode(img)
    notes = [f"{name}: {conversion}."] if conversion else []
    w, h = flat.size
    if max(w, h) > MAX_SIDE:
        f = MAX_SIDE / max(w, h)
        w, h = max(1, round(w * f)), max(1, round(h * f))
        notes.append(f"{name} was shrunk to {w}x{h} pixels (longer side {MAX_SIDE}).")
    return to_array(flat, size=(h, w), channels=1 if flat.mode == "L" else 3), notes


def image_choices() -> dict[str, tuple[np.ndarray | None, list[str]]]:
    """Built-in photos and the uploads that decoded, each with its conversion notes; every
    upload that does not decode gets its own error message."""
    files = st.file_uploader(  # every type reaches Python, which says why it refuses one
        "Or upload images (PNG, JPEG, WebP, BMP)",
        type=None,
        accept_multiple_files=True,
        key=state.AT_UPLOADS,
    )
    choices: dict[str, tuple[np.ndarray | None, list[str]]] = {p: (None, []) for p in PHOTOS}
    for f in files or []:
        refused = type_error(f.name, "the Atoms page")
        if refused:  # Streamlit's own type filter would only show an icon with a hover tooltip
            st.error(refused)
            continue
        data = f.getvalue()
        try:
            choices[f"upload:{f.name}:{hashlib.sha256(data).hexdigest()[:12]}"] = decode_upload(
                f.name, data
            )
        except LsxError as err:
            st.error(str(err))
    return choices


def choice_label(key: str) -> str:
    """``"china"``, or ``"upload: photo.png"`` for ``"upload:photo.png:<hash>"``."""
    return f"upload: {key[7:].rsplit(':', 1)[0]}" if key.startswith("upload:") else key


def segmentation_view(run_dir: str, sha: str) -> None:
    """Pick or upload an image, choose k, see the overlay."""
    choices = image_choices()
    if st.session_state.get(state.AT_PHOTO) not in choices:
        st.session_state[state.AT_PHOTO] = next(iter(choices))
    left, mid, right, last = st.columns(4)
    left.selectbox("Image", list(choices), key=state.AT_PHOTO, format_func=choice_label)
    mid.slider("Segments (k)", MIN_K, MAX_K, key=state.AT_K)
    right.select_slider(
        "Image scale",
        (0.25, 0.5, 0.75, 1.0),
        key=state.AT_SCALE,
        help="Shrink the image first, so one tile covers more of it.",
    )
    last.number_input("k-means seed", 0, 2**31 - 1, step=1, key=state.AT_SEED)
    source = str(st.session_state[state.AT_PHOTO])
    image, notes = choices[source]
    seg, seen = segment(
        run_dir,
        sha,
        source,
        image,
        int(st.session_state[state.AT_K]),
        int(st.session_state[state.AT_SEED]),
        float(st.session_state[state.AT_SCALE]),
    )
    for note in [*notes, *seg.notes]:
        st.info(note)
    _, h, w = seen.shape
    st.caption(
        f"{w}x{h} pixels · {seg.n_tiles} tiles · patches of {seg.patch[0]}x{seg.patch[1]} "
        f"pixels · k = {seg.k} · {seg.seconds:.2f} s"
    )
    a, b = st.columns(2)
    a.image(segmentation_overlay(seen, seg.labels), caption="segments over the image")
    b.image(segmentation_overlay(seen, seg.labels, alpha=1.0), caption="segment map")
