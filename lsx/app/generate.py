"""Generation panels of the Latent map page: decode anywhere (click an empty spot), traversal
grid, interpolation (strip + path on the map), sampling, attribute arithmetic; every decoded
grid downloads as PNG.

The math is :mod:`lsx.analysis.generate`; decoding is :func:`lsx.analysis.decode_array`; the
click grid and picture tiling are :mod:`lsx.viz.generate`. One panel is open at a time (a radio),
so a rerun decodes only what is shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import streamlit as st
from torch import nn

from lsx.analysis import decode_array
from lsx.analysis.generate import (
    attribute_vector,
    check_decodable,
    forward_project,
    interpolate,
    inverse_project,
    pca_basis,
    sample_latents,
    traversal_directions,
    traverse,
)
from lsx.app import cache, state
from lsx.app.cluster_space import all_labels, all_latents, space
from lsx.app.tags import Selection, tags_of
from lsx.data import Dataset
from lsx.errors import ConfigError, LsxError
from lsx.models import MODELS
from lsx.viz.generate import GRID_ID, add_click_grid, add_mark, add_path, click_grid, image_grid
from lsx.viz.generate import png_bytes as png
from lsx.viz.images import scale_for

PANELS = {
    "off": "off",
    "decode": "Decode anywhere",
    "traverse": "Traverse",
    "interpolate": "Interpolate",
    "sample": "Sample",
    "edit": "Attribute arithmetic",
}
TILE_PX = 56  # pixels per decoded tile
N_COLUMNS = 11  # traversal columns: -k .. +k in 11 steps
MAX_ROWS = 16


@dataclass(frozen=True, eq=False)
class Ctx:
    """What every panel needs: the run, its model and data, and the map in view."""

    run_dir: str
    sha: str
    model: nn.Module
    ds: Dataset
    method: str
    n_components: int
    seed: int

    @property
    def data_hash(self) -> str:
        return self.ds.content_hash

    def z(self) -> np.ndarray:
        return all_latents(self.run_dir, self.sha, self.data_hash)

    def coords(self) -> np.ndarray:
        args = (self.run_dir, self.sha, self.data_hash, self.method, self.n_components, self.seed)
        return cache.projection(*args)[0]

    def basis(self) -> tuple[np.ndarray, np.ndarray] | None:
        if self.method != "pca":
            return None
        return _basis(self.run_dir, self.sha, self.data_hash, self.n_components, self.seed)

    def decode(self, z: np.ndarray) -> np.ndarray:
        check_decodable(self.model, z.shape[-1])
        return decode_array(self.model, z.reshape(-1, z.shape[-1])).reshape(
            *z.shape[:-1], *self.model.config.input_shape
        )


@st.cache_data(max_entries=8, show_spinner=False)
def _basis(run_dir: str, sha: str, data_hash: str, n_comp: int, seed: int):
    return pca_basis(all_latents(run_dir, sha, data_hash), n_comp, seed)


def _keep_in(key: str, options: list[str]) -> None:
    if st.session_state.get(key) not in options:
        st.session_state[key] = options[0]


def _show(ctx: Ctx, images: np.ndarray, caption: str, name: str) -> None:
    """A decoded grid as one picture, its caption and a PNG download button."""
    picture = image_grid(images, scale=scale_for(images.shape[-2], TILE_PX))
    st.image(picture, caption=caption, output_format="PNG")
    st.download_button("Download PNG", png(picture), file_name=f"{name}.png", mime="image/png",
                       key=f"lm_png_{name}")  # fmt: skip


def _clicked(event: Any) -> tuple[float, float] | None:
    """Map position of a click on the grid (or the centre of a box over an empty spot)."""
    try:
        sel = event["selection"]
    except (KeyError, TypeError):
        return None
    pts = [p for p in sel.get("points") or [] if isinstance(p, dict)]
    data = [p for p in pts if p.get("customdata") not in (GRID_ID, [GRID_ID])]
    grid = [p for p in pts if p.get("customdata") in (GRID_ID, [GRID_ID])]
    if data:
        return None  # a selection of data points: the gallery shows them
    if grid:
        return float(np.mean([p["x"] for p in grid])), float(np.mean([p["y"] for p in grid]))
    boxes = sel.get("box") or []
    if boxes and "x" in boxes[0] and "y" in boxes[0]:
        return float(np.mean(boxes[0]["x"])), float(np.mean(boxes[0]["y"]))
    return None


def decorate(fig: Any, ctx: Ctx, shown_coords: np.ndarray) -> None:
    """Add the click grid, the decoded spot and the interpolation path to a 2-D map."""
    if ctx.n_components != 2:
        return
    panel = st.session_state[state.LM_GEN_PANEL]
    if panel == "decode":
        add_click_grid(fig, click_grid(shown_coords))
        click = _clicked(st.session_state.get(state.LM_CHART))
        if click is not None and click != st.session_state[state.LM_GEN_CLICK]:
            st.session_state[state.LM_GEN_CLICK] = click  # a new click moves x/y once
            st.session_state[state.LM_GEN_X], st.session_state[state.LM_GEN_Y] = click
        add_mark(fig, (st.session_state[state.LM_GEN_X], st.session_state[state.LM_GEN_Y]))
    if panel == "interpolate":
        try:
            z_path, _ = _path(ctx)
        except LsxError:
            return  # the panel says why
        add_path(fig, forward_project(z_path, ctx.z(), ctx.coords(), ctx.method,
                                      basis=ctx.basis()))  # fmt: skip


def panels(ctx: Ctx, sel: Selection) -> None:
    """The panel picker and the open panel; errors show as messages, the page keeps serving."""
    st.subheader("Generate from the latent space")
    st.radio("Panel", list(PANELS), key=state.LM_GEN_PANEL, horizontal=True,
             format_func=PANELS.__getitem__, label_visibility="collapsed")  # fmt: skip
    panel = st.session_state[state.LM_GEN_PANEL]
    draw = {
        "decode": _decode_panel,
        "traverse": _traverse_panel,
        "interpolate": _interpolate_panel,
        "sample": _sample_panel,
        "edit": _edit_panel,
    }
    if panel in draw:
        try:
            draw[panel](ctx, sel)
        except LsxError as err:
            st.error(str(err))


def _decode_panel(ctx: Ctx, sel: Selection) -> None:
    if ctx.n_components != 2:
        st.info("Decode anywhere works on the 2-D map: switch **3-D** off in the sidebar.")
        return
    st.caption("Drag a small box over an empty spot of the map (or type a position) to decode it.")
    a, b = st.columns(2)
    a.number_input("x", key=state.LM_GEN_X, format="%.4f")
    b.number_input("y", key=state.LM_GEN_Y, format="%.4f")
    point = np.array([[st.session_state[state.LM_GEN_X], st.session_state[state.LM_GEN_Y]]])
    coords, z = ctx.coords(), ctx.z()
    inv = inverse_project(point, coords, z, ctx.method, basis=ctx.basis())
    image = ctx.decode(inv.z)
    where = (
        f"**extrapolation**: {inv.distance[0]:.3g} from the nearest data point (beyond "
        f"{inv.threshold:.3g}, the 99th percentile of the data's spacing)"
        if inv.extrapolated[0]
        else f"{inv.distance[0]:.3g} from the nearest data point (inside the data)"
    )
    st.markdown(f"Rule: {inv.rule}  \nPosition ({point[0, 0]:.3g}, {point[0, 1]:.3g}): {where}")
    if ctx.method == "umap":
        st.caption(
            "UMAP maps are cached without their fitted model, so lsx uses the local rule; the "
            "Python API takes a fitted model (umap_model=) for inverse_transform."
        )
    _show(ctx, image, "decoded here", "decoded")


def parse_dims(text: str, n_latent: int) -> list[int]:
    """``"0-7"`` or ``"0,3,5"`` -> dimension indices; ConfigError when out of range."""
    if not str(text).strip():
        return list(range(min(8, n_latent)))
    out: list[int] = []
    try:
        for part in (p.strip() for p in str(text).split(",") if p.strip()):
            lo, _, hi = part.partition("-")
            out += list(range(int(lo), int(hi) + 1)) if hi else [int(lo)]
    except ValueError as err:
        raise ConfigError(f"Dimensions must look like 0-7 or 0,3,5; got {text!r}.") from err
    bad = [i for i in out if not 0 <= i < n_latent]
    if bad or not out:
        raise ConfigError(
            f"Latent dimension(s) {bad[:5] or text!r} out of range: this latent has dimensions "
            f"0..{n_latent - 1}."
        )
    return list(dict.fromkeys(out))[:MAX_ROWS]


def _base(ctx: Ctx, z: np.ndarray) -> tuple[np.ndarray, str]:
    n = len(z)
    st.number_input("Start: sample id (-1 = the mean latent)", min_value=-1, max_value=n - 1,
                    step=1, key=state.LM_GEN_BASE)  # fmt: skip
    i = int(st.session_state[state.LM_GEN_BASE])
    return (z.mean(axis=0), "the mean latent") if i < 0 else (z[i], f"sample {i}")


def _traverse_panel(ctx: Ctx, sel: Selection) -> None:
    z = ctx.z()
    spec = MODELS[ctx.model.config.kind]
    spatial = len(ctx.model.latent_shape) > 1
    kinds = ["pca"] if spatial else ["dims", "pca"]
    kinds += ["active"] if spec.has_posterior and not spatial else []
    kinds += ["centres"] if spec.has_centres else []
    if st.session_state[state.LM_GEN_KIND] not in kinds:
        st.session_state[state.LM_GEN_KIND] = kinds[0]
    labels = {"dims": "latent dimensions", "pca": "principal directions",
              "active": "active units (VAE)", "centres": "centre to centre (sae)"}  # fmt: skip
    st.radio("Rows", kinds, key=state.LM_GEN_KIND, horizontal=True, format_func=labels.get)
    kind = st.session_state[state.LM_GEN_KIND]
    if kind == "centres":
        return _centres(ctx, z)
    if kind == "dims":
        st.text_input(
            f"Dimensions (0 – {z.shape[1] - 1}; e.g. 0-3 or 0,5)",
            key=state.LM_GEN_DIMS,
            placeholder="the first 8",
        )
    st.slider("Range (± standard deviations)", 0.5, 5.0, key=state.LM_GEN_RANGE, step=0.5)
    start, name = _base(ctx, z)
    dims = parse_dims(st.session_state[state.LM_GEN_DIMS], z.shape[1]) if kind == "dims" else None
    dirs, rows = traversal_directions(z, kind, dims, n=MAX_ROWS)
    k = float(st.session_state[state.LM_GEN_RANGE])
    grid = traverse(start, dirs, np.linspace(-k, k, N_COLUMNS))
    caption = f"From {name}: rows {', '.join(rows)}; columns -{k:g} .. +{k:g} std"
    _show(ctx, ctx.decode(grid), caption, "traversal")


def _centres(ctx: Ctx, z: np.ndarray) -> None:
    sp = space(ctx.run_dir, ctx.sha, ctx.data_hash)
    _, attr = sp.attribute(ctx.ds.primary)
    if sp.pool is not None:
        raise ConfigError("Centre walks need a flat latent; this sae run has a spatial latent.")
    names = list(attr.class_names)
    _keep_in(state.LM_GEN_CLASS, names)
    st.selectbox("From the centre of", names, key=state.LM_GEN_CLASS)
    a = names.index(st.session_state.get(state.LM_GEN_CLASS) or names[0])
    start = z.mean(axis=0)
    start[attr.lo : attr.hi] = attr.centers[a]
    dirs = np.zeros((len(names), z.shape[1]))
    dirs[:, attr.lo : attr.hi] = attr.centers - attr.centers[a]
    keep = [i for i in range(len(names)) if i != a]
    grid = traverse(start, dirs[keep], np.linspace(0.0, 1.0, N_COLUMNS))
    rows = ", ".join(names[i] for i in keep)
    _show(ctx, ctx.decode(grid), f"From centre {names[a]} towards {rows}", "centres")


def _path(ctx: Ctx) -> tuple[np.ndarray, str]:
    z = ctx.z()
    a, b = int(st.session_state[state.LM_GEN_A]), int(st.session_state[state.LM_GEN_B])
    bad = [i for i in (a, b) if not 0 <= i < len(z)]
    if bad:
        raise ConfigError(f"Sample id(s) {bad} out of range; ids are 0..{len(z) - 1}.")
    steps, mode = int(st.session_state[state.LM_GEN_STEPS]), st.session_state[state.LM_GEN_MODE]
    return interpolate(z[a], z[b], steps, mode), f"{mode} path from sample {a} to sample {b}"


def _take_ends(ids: tuple[int, ...]) -> None:
    st.session_state[state.LM_GEN_A], st.session_state[state.LM_GEN_B] = ids[0], ids[1]


def _interpolate_panel(ctx: Ctx, sel: Selection) -> None:
    n = len(ctx.z())
    a, b, c, d = st.columns(4)
    a.number_input("A (sample id)", 0, n - 1, key=state.LM_GEN_A, step=1)
    b.number_input("B (sample id)", 0, n - 1, key=state.LM_GEN_B, step=1)
    c.slider("Steps", 3, 16, key=state.LM_GEN_STEPS)
    d.radio("Path", ["linear", "slerp"], key=state.LM_GEN_MODE, horizontal=True)
    if len(sel.ids) >= 2:
        st.button(f"A, B = the first two of the {sel.source} ({sel.ids[0]}, {sel.ids[1]})",
                  on_click=_take_ends, args=(sel.ids,))  # fmt: skip
    z_path, caption = _path(ctx)
    _show(ctx, ctx.decode(z_path), caption + " (drawn on the map)", "interpolation")


def _sample_panel(ctx: Ctx, sel: Selection) -> None:
    a, b = st.columns(2)
    a.number_input("Samples", 1, 64, key=state.LM_GEN_N, step=1)
    b.number_input("Seed", 0, 2**31 - 1, key=state.LM_GEN_SEED, step=1)
    n, seed = int(st.session_state[state.LM_GEN_N]), int(st.session_state[state.LM_GEN_SEED])
    z_train, _ = cache.embedding(ctx.run_dir, ctx.sha, ctx.data_hash, "train")
    sphere, z_fit = None, z_train
    if MODELS[ctx.model.config.kind].has_centres:
        sp = space(ctx.run_dir, ctx.sha, ctx.data_hash)
        _, attr = sp.attribute(ctx.ds.primary)
        names = list(attr.class_names)
        _keep_in(state.LM_GEN_CLASS, names)
        st.selectbox("Inside the sphere of class", names, key=state.LM_GEN_CLASS)
        c = names.index(st.session_state.get(state.LM_GEN_CLASS) or names[0])
        if sp.pool is None:
            sphere = (attr.centers[c], float(attr.radii[c]), attr.lo, attr.hi)
            z_fit = z_train[ctx.ds.labels_train[ctx.ds.primary] == c]
    s = sample_latents(ctx.model, n, seed, z_fit=z_fit, sphere=sphere)
    cols = int(np.ceil(np.sqrt(n)))
    images = ctx.decode(s.z)
    pad = np.ones((cols * int(np.ceil(n / cols)) - n, *images.shape[1:]), dtype=images.dtype)
    grid = np.concatenate([images, pad]).reshape(-1, cols, *images.shape[1:])
    _show(ctx, grid, f"{n} samples from {s.rule} (seed {seed})", "samples")


def _edit_panel(ctx: Ctx, sel: Selection) -> None:
    z, labels = ctx.z(), all_labels(ctx.ds)
    names = ctx.ds.label_names[ctx.ds.primary]
    groups = {f"class:{c}": labels[ctx.ds.primary] == i for i, c in enumerate(names)}
    for tag, ids in tags_of(ctx.run_dir).items():
        groups[f"tag:{tag}"] = np.isin(np.arange(len(z)), ids)
    options = list(groups)
    for key, default in ((state.LM_GEN_EDIT_A, 1), (state.LM_GEN_EDIT_B, 0)):
        if st.session_state.get(key) not in options:
            st.session_state[key] = options[min(default, len(options) - 1)]
    a, b = st.columns(2)
    a.selectbox("A (towards)", options, key=state.LM_GEN_EDIT_A)
    b.selectbox("B (away from)", options, key=state.LM_GEN_EDIT_B)
    st.slider("Strength", -3.0, 3.0, key=state.LM_GEN_STRENGTH, step=0.25)
    start, name = _base(ctx, z)
    ka, kb = st.session_state[state.LM_GEN_EDIT_A], st.session_state[state.LM_GEN_EDIT_B]
    v = attribute_vector(z, groups[ka], groups[kb])
    s = float(st.session_state[state.LM_GEN_STRENGTH])
    strip = start[None, :] + np.linspace(0.0, s, 6)[:, None] * v[None, :]
    caption = f"{name} + t x (mean({ka}) - mean({kb})), t = 0 .. {s:g}"
    _show(ctx, ctx.decode(strip), caption, "edit")
