"""App logic of the Atoms page (pages/4_atoms.py): cached atom/code statistics, the atom gallery,
the scvae-vs-vqvae comparison, the segmentation view, and the dominant atom per sample that the
latent map colours by. The math is in :mod:`lsx.analysis.atoms`,
:mod:`lsx.analysis.atom_gallery` and :mod:`lsx.analysis.segmentation`; figures in
:mod:`lsx.viz.atoms`.

First visit: coding every image of a 5,000-image split through an scvae's ISTA takes tens of
seconds on 2 cores, so the page first shows the statistics and the gallery of a per-class sample
(:data:`PARTIAL` images, a second or two) while the whole split is coded in the background
(:func:`lsx.app.background.results`); the page switches by itself when it is done.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st

from lsx.analysis import encode_array, sample_per_class
from lsx.analysis.atom_gallery import TopActivations, atom_effects, cell_patches, top_activations
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
from lsx.app import background, cache, state
from lsx.checkpoint import RunInfo
from lsx.errors import ConfigError
from lsx.models import MODELS
from lsx.viz.atoms import (
    atom_card,
    atom_tiles,
    effect_tiles,
    heatmap,
    patch_strip,
    sparsity_boxes,
    usage_bars,
    usage_comparison,
)

SPLITS = ("all", "train", "test")
PARTNER = {kind: spec.partner for kind, spec in MODELS.items() if spec.partner}  # scvae<->vqvae
GALLERY_COLUMNS = 8
PARTIAL = 512  # images coded on the request path (a per-class sample) while the rest runs
TOP = 6  # top activating patches shown per atom
GALLERY_MODES = {
    "effect": "what each does (effect + top patches)",
    "alone": "each alone",
    "mean": "atom + mean code",
}


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


@dataclass(frozen=True, eq=False)
class Coded:
    """Statistics, top activations and mean latent of the images coded so far."""

    stats: AtomStats | CodeStats
    top: TopActivations  # index: rows of ``ids``
    base: np.ndarray  # the mean latent, shape latent_shape
    ids: np.ndarray  # rows of the split's images that were coded (all, or a per-class sample)
    n_total: int  # images in the split

    @property
    def partial(self) -> bool:
        return len(self.ids) < self.n_total


def _code(model, x: np.ndarray, y: np.ndarray, n_classes: int, ids: np.ndarray) -> Coded:
    """Everything the page needs from the images ``x[ids]`` (runs in either thread)."""
    xs, ys = x[ids], y[ids]
    if has_atoms(model):
        stats = atom_stats(model, xs, ys, n_classes=n_classes)
        base = mean_latent(model, stats.mean_code)
    else:
        stats = code_stats(model, xs, ys, n_classes=n_classes)
        base = encode_array(model, xs).mean(0).reshape(model.latent_shape)
    top = top_activations(model, xs, top=TOP)
    return Coded(stats, top, base.astype(np.float32), ids, len(x))


@st.cache_data(max_entries=8, show_spinner="Coding a per-class sample of the images ...")
def _partial(run_dir: str, sha: str, data_hash: str, split: str) -> Coded:
    model, _ = cache.load_run(run_dir, sha)
    x, y, names = _images(run_dir, split)
    ids = np.asarray(sample_per_class(y, PARTIAL, seed=0), dtype=np.int64)
    return _code(model, x, y, len(names), ids)


def coded(run_dir: str, sha: str, data_hash: str, split: str) -> tuple[Coded | None, Future | None]:
    """The split's :class:`Coded` (None for a run without atoms or codebook), and the
    background job coding the whole split while a per-class sample is shown (else None)."""
    model, _ = cache.load_run(run_dir, sha)
    if not (has_atoms(model) or has_codebook(model)):
        return None, None
    x, y, names = _images(run_dir, split)
    if len(x) <= PARTIAL:
        return _partial(run_dir, sha, data_hash, split), None
    full, job = background.results().get(
        ("atoms", run_dir, sha, data_hash, split),
        lambda: _code(model, x, y, len(names), np.arange(len(x))),
    )
    return (full, None) if job is None else (_partial(run_dir, sha, data_hash, split), job)


@st.cache_data(max_entries=8, show_spinner="Decoding the atoms ...")
def gallery(
    run_dir: str, sha: str, data_hash: str, mode: str, _coded: Coded, n_seen: int
) -> np.ndarray:
    """(K, C, H, W) images: each atom's effect (signed), each atom (or code vector) alone, or
    atom plus the mean code. ``n_seen`` (images coded) keys the cache with the run."""
    model, _ = cache.load_run(run_dir, sha)
    vectors = (model.codebook if has_codebook(model) else model.atoms).detach().numpy()
    if has_codebook(model):
        if mode == "effect":  # a VQ position holds one codebook vector: put code k in its place
            return atom_effects(model, vectors, _coded.base, replace=True)
        return dictionary_images(model, vectors)
    stats = _coded.stats
    used = stats.counts > 0
    typical = float(np.median(stats.mean_active[used])) if used.any() else 1.0
    scale = np.where(used, stats.mean_active, typical)  # a dead atom gets a typical coefficient
    if mode == "effect":
        return atom_effects(model, vectors, _coded.base, scale=scale)
    base = _coded.base if mode == "mean" else None
    return dictionary_images(model, vectors, scale=scale, base=base)


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


def gallery_panel(run_dir: str, sha: str, data_hash: str, split: str, c: Coded) -> None:
    """Every atom (code), most used first: what it does (its effect on the decoded mean code and
    the patches that activate it most) or its decoded image; dead ones captioned."""
    stats = c.stats
    unit = "atom" if isinstance(stats, AtomStats) else "code"
    modes = [m for m in GALLERY_MODES if unit == "atom" or m != "mean"]
    if st.session_state.get(state.AT_GALLERY) not in modes:
        st.session_state[state.AT_GALLERY] = modes[0]
    st.radio("Show", modes, key=state.AT_GALLERY, horizontal=True, format_func=GALLERY_MODES.get)
    mode = str(st.session_state[state.AT_GALLERY])
    images = gallery(run_dir, sha, data_hash, mode, c, len(c.ids))
    order = np.argsort(-stats.counts, kind="stable")
    captions = [
        f"{unit} {k}" + (" · dead" if stats.counts[k] == 0 else f" · {stats.usage[k]:.1%}")
        for k in order
    ]
    if mode != "effect":
        st.caption(f"Each {unit} repeated at every grid position and decoded; most used first.")
        st.image(atom_tiles(images[order]), caption=captions, width=72)
        return
    what = "max |code|" if unit == "atom" else "closest encoder output"
    st.caption(
        f"Left: the change in the decoded mean code when {unit} k is switched on at the centre "
        "cell, in the window the cell reaches (red brighter, blue darker; each tile's contrast "
        "normalised). Right: the input "
        f"patches that activate it most ({what}; {len(c.ids):,} images of the {split} split)."
    )
    x, _, _ = _images(run_dir, split)
    (h, w), ks = c.top.grid, np.arange(len(images))
    window = cell_patches(images, ks, np.tile([h // 2, w // 2], (len(ks), 1)), c.top.grid)
    tiles, rows = effect_tiles(window), np.where(c.top.index < 0, -1, c.ids[c.top.index])
    cards = [
        atom_card(tiles[k], patch_strip(cell_patches(x, rows[k], c.top.cell[k], c.top.grid)))
        for k in order
    ]
    st.image(cards, caption=captions, width=300)


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


def labels_of(run_dir: str, split: str, ids: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
    """Primary labels of the images ``ids`` of the split the statistics cover, class names."""
    _, y, names = _images(run_dir, split)
    return y[ids], names


def wait_for_split(job: Future, c: Coded, split: str) -> None:
    """Say the numbers cover a per-class sample until the whole split is coded (polled)."""
    background.wait_notice(
        [job],
        f"Showing a per-class sample of **{len(c.ids):,}** of {c.n_total:,} images; every image "
        f"of the {split} split is being coded in the background and the page switches by itself.",
        label="the statistics of the whole split",
    )


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
    theirs_c, job = coded(other_dir, cache.weights_version(other_dir), other_ds.content_hash, split)
    theirs = theirs_c.stats
    if job is not None:
        st.caption(f"{other.name}: a per-class sample of {len(theirs_c.ids):,} images for now.")
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


def run_info(run_dir: str) -> RunInfo | None:
    """The picker's RunInfo of ``run_dir`` (None when it is no longer a valid run)."""
    runs, _ = cache.runs(state.checkpoints_root())
    return next((r for r in runs if Path(r.run_dir) == Path(run_dir)), None)
