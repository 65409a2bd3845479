"""App logic of the Atoms page (pages/4_atoms.py): cached atom/code statistics, the atom gallery,
the scvae-vs-vqvae comparison, the segmentation view, and the dominant atom per sample that the
latent map colours by. The math is in :mod:`lsx.analysis.atoms` and
:mod:`lsx.analysis.segmentation`; figures in :mod:`lsx.viz.atoms`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import streamlit as st

from lsx.analysis.atoms import (
    AtomStats,
    CodeStats,
    atom_stats,
    code_stats,
    dictionary_images,
    has_atoms,
    has_codebook,
    mean_latent,
)
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
from lsx.checkpoint import RunInfo
from lsx.data.images import decode_image, normalize_mode, to_array
from lsx.errors import ConfigError, LsxError
from lsx.models import MODELS
from lsx.viz.atoms import (
    atom_tiles,
    heatmap,
    segmentation_overlay,
    sparsity_boxes,
    usage_bars,
    usage_comparison,
)

SPLITS = ("all", "train", "test")
PARTNER = {kind: spec.partner for kind, spec in MODELS.items() if spec.partner}  # scvae<->vqvae
MAX_SIDE = 1024  # uploads are shrunk to this longest side before tiling
UPLOAD_TYPES = ["png", "jpg", "jpeg", "webp"]
GALLERY_COLUMNS = 8


def _images(run_dir: str, split: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Images, primary labels and class names of a run's dataset split (or both: "all")."""
    ds, _ = cache.run_dataset(run_dir)
    if split not in SPLITS:
        raise ConfigError(f"Unknown split {split!r}; use one of {', '.join(SPLITS)}.")
    if split == "all":
        x = np.concatenate([ds.x_train, ds.x_test])
        y = np.concatenate([ds.y_train, ds.y_test])
    else:
        x, y = ds.split(split)
    return x, np.asarray(y, dtype=np.int64), tuple(ds.class_names)


@st.cache_data(max_entries=8, show_spinner="Coding every image of the dataset ...")
def usage(run_dir: str, sha: str, data_hash: str, split: str) -> AtomStats | CodeStats | None:
    """Atom (scvae) or code (vqvae) statistics over a whole split; None for other kinds."""
    model, _ = cache.load_run(run_dir, sha)
    if not (has_atoms(model) or has_codebook(model)):
        return None
    x, y, names = _images(run_dir, split)
    stats = atom_stats if has_atoms(model) else code_stats
    return stats(model, x, y, n_classes=len(names))


def dominant(run_dir: str, sha: str, data_hash: str) -> tuple[np.ndarray, int]:
    """Dominant atom (scvae) or most frequent code (vqvae) of every sample, train then test,
    and the number of atoms K (the latent map's "dominant atom" colour); from :func:`usage`."""
    stats = usage(run_dir, sha, data_hash, "all")
    if stats is None:
        _, config = cache.load_run(run_dir, sha)
        raise ConfigError(
            f"Colouring by dominant atom needs an 'scvae' or 'vqvae' run; this one is "
            f"{config.kind!r}. Pick another colour."
        )
    return stats.dominant, len(stats.counts)


def dominant_colors(
    run_dir: str, sha: str, data_hash: str, keep: np.ndarray
) -> tuple[np.ndarray, tuple[str, ...], str]:
    """Latent-map colour "dominant atom": category codes of the samples ``keep`` (ids, train
    first), category names (only atoms that dominate some sample, plus "no atom") and title."""
    dom, k = dominant(run_dir, sha, data_hash)
    present = np.unique(dom)  # sorted; -1 (all codes zero) first when present
    names = tuple("no atom" if a < 0 else f"atom {a}" for a in present)
    return np.searchsorted(present, dom[keep]), names, f"dominant atom (of {k})"


@st.cache_data(max_entries=8, show_spinner="Decoding the atoms ...")
def gallery(run_dir: str, sha: str, data_hash: str, mode: str) -> np.ndarray:
    """(K, C, H, W) images: each atom (or code vector) alone, or atom plus the mean code."""
    model, _ = cache.load_run(run_dir, sha)
    if has_codebook(model):
        return dictionary_images(model, model.codebook.detach().numpy())
    stats = usage(run_dir, sha, data_hash, "all")
    used = stats.counts > 0
    typical = float(np.median(stats.mean_active[used])) if used.any() else 1.0
    scale = np.where(used, stats.mean_active, typical)  # a dead atom gets a typical coefficient
    base = mean_latent(model, stats.mean_code) if mode == "mean" else None
    return dictionary_images(model, model.atoms.detach().numpy(), scale=scale, base=base)


def split_control() -> str:
    """Sidebar radio: which split the statistics cover."""
    with st.sidebar:
        st.subheader("Atoms")
        st.radio(
            "Images",
            SPLITS,
            key=state.AT_SPLIT,
            horizontal=True,
            help="The statistics cover every image of this split, not a batch.",
        )
    return str(st.session_state[state.AT_SPLIT])


def summary(stats: AtomStats | CodeStats) -> None:
    """Headline metrics: share used, dead count, perplexity, sparsity."""
    unit = "atoms" if isinstance(stats, AtomStats) else "codes"
    cols = st.columns(4)
    cols[0].metric(
        f"{unit.capitalize()} used",
        f"{stats.share_used:.0%}",
        help=f"Share of the {len(stats.counts)} {unit} active at least once.",
    )
    cols[1].metric(f"Dead {unit}", f"{len(stats.dead)}", help="Never active on these images.")
    cols[2].metric(
        "Perplexity",
        f"{stats.perplexity:.1f}",
        help=f"exp(entropy) of the usage: the effective number of {unit}.",
    )
    if isinstance(stats, AtomStats):
        cols[3].metric(
            "Atoms per position (L0)",
            f"{stats.l0.mean():.2f}",
            help=f"Zeros: {stats.zero_fraction:.1%} · Hoyer {stats.hoyer:.3f}",
        )
    else:
        cols[3].metric("Positions coded", f"{stats.n_positions:,}")
    st.plotly_chart(usage_bars(stats.usage, unit=unit[:-1]), key="at_usage_chart")


def gallery_panel(run_dir: str, sha: str, data_hash: str, stats: AtomStats | CodeStats) -> None:
    """Every atom decoded through the decoder, most used first, dead ones captioned."""
    if isinstance(stats, AtomStats):
        st.radio(
            "Decode",
            ("alone", "mean"),
            key=state.AT_GALLERY,
            horizontal=True,
            format_func={"alone": "each atom alone", "mean": "atom + mean code"}.get,
        )
    images = gallery(run_dir, sha, data_hash, str(st.session_state[state.AT_GALLERY]))
    order = np.argsort(-stats.counts, kind="stable")
    tiles = atom_tiles(images[order])
    unit = "atom" if isinstance(stats, AtomStats) else "code"
    captions = [
        f"{unit} {k}" + (" · dead" if stats.counts[k] == 0 else f" · {stats.usage[k]:.1%}")
        for k in order
    ]
    st.caption(f"Each {unit} repeated at every grid position and decoded; most used first.")
    st.image(tiles, caption=captions, width=72)


def heatmap_panels(stats: AtomStats | CodeStats, class_names: tuple[str, ...]) -> None:
    """Co-activation (scvae) and per-class usage heat maps over the used atoms."""
    used = np.flatnonzero(stats.counts > 0)
    order = used[np.argsort(-stats.counts[used], kind="stable")]
    labels = [str(k) for k in order]
    if isinstance(stats, AtomStats) and len(order):
        co = stats.coactivation[np.ix_(order, order)].copy()
        np.fill_diagonal(co, np.nan)  # the diagonal is the usage itself
        st.plotly_chart(
            heatmap(
                co,
                x_labels=labels,
                y_labels=labels,
                x_title="atom",
                y_title="atom",
                value_name="both active at",
                title="Co-activation (used atoms, most used first)",
            )
        )
    if stats.class_usage is not None and len(order):
        st.plotly_chart(
            heatmap(
                stats.class_usage[:, order],
                x_labels=labels,
                y_labels=list(class_names),
                x_title="atom",
                y_title="class",
                value_name="active at",
                title="Usage per class",
            )
        )


def sparsity_panel(stats: AtomStats, y: np.ndarray, class_names: tuple[str, ...]) -> None:
    """L0 and L1 per position, per class."""
    left, right = st.columns(2)
    left.plotly_chart(
        sparsity_boxes(
            stats.l0,
            y,
            class_names,
            value_title="active atoms per position (L0)",
            title="L0 per sample",
        )
    )
    right.plotly_chart(
        sparsity_boxes(
            stats.l1, y, class_names, value_title="||s||_1 per position (L1)", title="L1 per sample"
        )
    )
    means = stats.per_class(y, len(class_names))
    st.caption(
        f"Whole split: {stats.zero_fraction:.1%} of all codes are exact zeros; Hoyer sparsity "
        f"{stats.hoyer:.3f} (1 = one non-zero, 0 = all equal). Class means:"
    )
    rows = [
        {"class": name, "mean L0": round(float(means["l0"][c]), 3),
         "mean L1": round(float(means["l1"][c]), 3)}
        for c, name in enumerate(class_names)
    ]  # fmt: skip
    st.dataframe(rows, hide_index=True)


def labels_of(run_dir: str, split: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """Primary labels and class names of the split the statistics cover."""
    _, y, names = _images(run_dir, split)
    return y, names


def partner_runs(info: RunInfo | None, runs: list[RunInfo]) -> list[RunInfo]:
    """Runs of the other kind (scvae <-> vqvae), same dataset first."""
    if info is None or info.kind not in PARTNER:
        return []
    other = [r for r in runs if r.kind == PARTNER[info.kind]]
    return sorted(other, key=lambda r: (r.dataset != info.dataset, r.name))


def comparison_panel(info: RunInfo, stats: AtomStats | CodeStats, split: str) -> None:
    """scvae-vs-vqvae: share used, perplexity and sorted usage curves of two runs."""
    runs, _ = cache.runs(state.checkpoints_root())
    partners = partner_runs(info, runs)
    if not partners:
        st.info(
            f"No {PARTNER.get(info.kind, 'scvae/vqvae')} run to compare with; the demo runs "
            "`demo-scvae-mnist5k` and `demo-vqvae-mnist5k` are a matched pair."
        )
        return
    by_dir = {str(r.run_dir): r for r in partners}
    if st.session_state.get(state.AT_PARTNER) not in by_dir:
        st.session_state[state.AT_PARTNER] = next(iter(by_dir))
    st.selectbox(
        "Compare with",
        list(by_dir),
        key=state.AT_PARTNER,
        format_func=lambda d: f"{by_dir[d].name} ({by_dir[d].kind}, {by_dir[d].dataset})",
    )
    other = by_dir[st.session_state[state.AT_PARTNER]]
    other_dir = str(other.run_dir)
    other_ds, _ = cache.run_dataset(other_dir)
    theirs = usage(other_dir, cache.weights_version(other_dir), other_ds.content_hash, split)
    rows = []
    for run, s in ((info, stats), (other, theirs)):
        rows.append(
            {
                "run": run.name,
                "kind": run.kind,
                "dataset": run.dataset,
                "K": len(s.counts),
                "share used": f"{s.share_used:.1%}",
                "dead": len(s.dead),
                "perplexity": round(s.perplexity, 2),
            }
        )
    st.dataframe(rows, hide_index=True)
    if info.dataset != other.dataset:
        st.warning("The two runs were trained on different datasets; the comparison is loose.")
    curves = {
        f"{info.name} ({info.kind})": stats.counts,
        f"{other.name} ({other.kind})": theirs.counts,
    }
    st.plotly_chart(usage_comparison(curves, title="Share of activations per atom/code"))


# ------------------------------------------------------------------------------ segmentation


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
    files = st.file_uploader(
        "Or upload images (PNG, JPEG, WebP)",
        type=UPLOAD_TYPES,
        accept_multiple_files=True,
        key=state.AT_UPLOADS,
    )
    choices: dict[str, tuple[np.ndarray | None, list[str]]] = {p: (None, []) for p in PHOTOS}
    for f in files or []:
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


def run_info(run_dir: str) -> RunInfo | None:
    """The picker's RunInfo of ``run_dir`` (None when it is no longer a valid run)."""
    runs, _ = cache.runs(state.checkpoints_root())
    return next((r for r in runs if Path(r.run_dir) == Path(run_dir)), None)
