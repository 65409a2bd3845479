"""App logic of the Manifold page: run choice, sweep settings, bounded caches, verdict cards.

Heavy work is cached (docs/architecture.md): a sweep is a ``st.cache_data(max_entries=12)``
keyed by the run, its weights sha, its data hash and the settings as a JSON string; interpolation
paths and global descriptors likewise. Models come from :func:`lsx.app.cache.load_run` and are
never mutated. The analysis itself is :mod:`lsx.analysis.manifold`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import streamlit as st

from lsx.analysis import manifold as mf
from lsx.app import cache, state
from lsx.checkpoint import RunInfo
from lsx.errors import ConfigError
from lsx.models import MODELS, display_label, kinds_with

KIND_LABELS = {kind: MODELS[kind].label for kind in kinds_with("manifold")}  # AE, DAE, VAE
MAX_RUNS = 3
N_IMAGES = (50, 1000)  # range of the "images" input: the test split is capped at 1,000 for speed
RTOLS = ("auto", "1e-6", "1e-4", "1e-2")
PATH_STEPS = 20

INTRO = (
    "Unfold each latent tensor along its three modes, take one covariance per unfolding and read "
    "their numerical ranks as the point's **stratum** (Shrivastava, Rameshan & Agnihotri 2025, "
    "docs/methods.md). The paper reports CAE/DAE latent manifolds **stratified** (ranks vary "
    "with input noise) and the VAE's **smooth** (two SPD factors, one SPSD factor). Its details "
    "are thin: the noise levels, centring, rank tolerance, Hilbert map, subspace comparison and "
    "the verdict rule here are **lsx interpretations**, not the paper's."
)

METHOD_NOTE = """
**What is computed** (`lsx.analysis.manifold`; every item marked *lsx interpretation* is ours):

- **Perturbation** — Gaussian noise `clip(x + level·ε, 0, 1)`, blur (std in pixels) or
  occlusion (square of side `level·min(H, W)` set to 0); one seeded draw per image, shared by all
  levels. Levels: *lsx interpretation* (the paper's are not published).
- **Matrix view** — each latent tensor `(C, h, w)` is unfolded along its three modes; one
  covariance per unfolding, rows centred (or not: *lsx interpretation*, the paper's centring is
  not published).
- **Numerical rank** — eigenvalues above `tol = max(atol, rtol·λmax)`; `rtol = "auto"` is
  numpy's `matrix_rank` rule `n·eps` with float32's eps (*lsx interpretation*). Full rank = SPD,
  rank-deficient = SPSD.
- **Strata** — the rank triple of each image; a stratum counts when it holds ≥ 1 % of a
  level's images. **Verdict** (*lsx rule*): *smooth* when one triple is the most frequent at every
  level and holds ≥ 90 % of the images at each; else *stratified*.
- **Hilbert view** — SPD factors: log-Euclidean map `log X` (an isometry). Rank-deficient
  factors (*lsx interpretation*): `(U Uᵀ, U log Λ Uᵀ)` on the numerical range (a Bonnabel–Sepulchre
  style split; exactly log-Euclidean when the factor is SPD), or the **approximate** regularised
  map `log(X + εI)`. Per level: principal subspace of the mapped points (streaming PCA; dimension
  = components holding 90 % of the variance, a lower bound when capped at 128), principal angles
  and Grassmann distance of its top-8 subspace to the clean one.
- **Paths** — decode `z(t) = (1−t) z_A + t z_B` in 20 steps; RMS pixel change per step (spike
  ratio = largest / median step) and the rank triple along the path.
- **Global descriptors** (any latent) — effective rank (Roy & Vetterli) and participation ratio
  of the latent covariance, intrinsic dimension (Levina–Bickel MLE, k = 10; TwoNN) and
  trustworthiness of the 2-D PCA map, on the test split.
"""


def run_label(info: RunInfo) -> str:
    """``"CAE · demo-ae-spatial-mnist5k"``: the run's model family, then the run. An ``ae`` is
    "CAE" only when its network is convolutional; the MLP of tiny inputs is "AE"
    (:func:`lsx.models.display_label`)."""
    return f"{display_label(info.config)} · {info.name}"


def default_runs(runs: Sequence[RunInfo], current: str | None) -> list[str]:
    """Up to three run folders to compare: one per kind (ae, dae, vae) on the dataset of the
    sidebar run (or mnist5k), spatial shipped demos first; the sidebar run is always included.

    Parameters
    ----------
    runs : sequence of RunInfo
    current : str or None
        The sidebar run's folder.

    Returns
    -------
    list of str
    """
    by_dir = {str(r.run_dir): r for r in runs}
    cur = by_dir.get(current) if current else None
    data = cur.dataset if cur is not None else "mnist5k"
    chosen = [current] if cur is not None else []
    for kind in KIND_LABELS:
        if cur is not None and cur.kind == kind:
            continue
        same = [r for r in runs if r.kind == kind and r.dataset == data]
        same.sort(key=lambda r: (not r.config.spatial, not r.name.startswith("demo-"), r.name))
        if same and len(chosen) < MAX_RUNS:
            chosen.append(str(same[0].run_dir))
    return chosen


def _sync_runs() -> None:
    st.session_state[state.MF_RUNS] = list(st.session_state[state.MF_RUNS_WIDGET])


def pick_runs() -> list[RunInfo]:
    """Sidebar multiselect of up to three runs, kept across pages under ``state.MF_RUNS``."""
    runs, skipped = cache.runs(state.checkpoints_root())
    by_dir = {str(r.run_dir): r for r in runs}
    wanted = st.session_state[state.MF_RUNS]
    if wanted is None:
        wanted = default_runs(runs, st.session_state[state.RUN_DIR])
    st.session_state[state.MF_RUNS_WIDGET] = [d for d in wanted if d in by_dir][:MAX_RUNS]
    with st.sidebar:
        st.subheader("Compare")
        for d in wanted:
            if d not in by_dir:
                why = dict(skipped).get(Path(d).name, "the folder is not a valid run")
                st.warning(f"`{Path(d).name}` is not usable: {why}")
        st.multiselect(
            "Checkpoints (up to 3)",
            list(by_dir),
            key=state.MF_RUNS_WIDGET,
            max_selections=MAX_RUNS,
            format_func=lambda d: f"{run_label(by_dir[d])} ({by_dir[d].dataset})",
            on_change=_sync_runs,
            help="CAE (a convolutional ae), DAE (dae) and VAE (vae) with a spatial latent, side "
            "by side. A run with a vector latent gets the analyses that apply to it.",
        )
    return [by_dir[d] for d in st.session_state[state.MF_RUNS_WIDGET]]


def parse_levels(text: str, perturbation: str) -> tuple[float, ...] | None:
    """Levels typed as ``"0, 0.05, 0.1"`` (spaces or commas); "" gives the defaults (None).

    Raises
    ------
    ConfigError
        Not numbers, or out of range for the perturbation.
    """
    parts = [p for p in text.replace(",", " ").split() if p]
    if not parts:
        return None
    try:
        values = [float(p) for p in parts]
    except ValueError as err:
        raise ConfigError(
            f"Levels must be numbers separated by commas, e.g. "
            f"'{', '.join(f'{v:g}' for v in mf.perturbation_spec(perturbation).default_levels)}'; "
            f"got {text!r}."
        ) from err
    return mf.check_levels(values, perturbation)


@dataclass(frozen=True)
class Settings:
    """What the sweep form asks for: a SweepConfig as JSON (the cache key) and the image count."""

    config_json: str
    n_images: int

    @property
    def config(self) -> mf.SweepConfig:
        return config_from_json(self.config_json)


def config_from_json(text: str) -> mf.SweepConfig:
    fields = json.loads(text)
    if fields.get("levels") is not None:
        fields["levels"] = tuple(fields["levels"])
    return mf.SweepConfig(**fields)


def settings_form() -> Settings:
    """Sidebar form of the sweep settings (applied on submit). Raises ConfigError on bad levels."""
    with st.sidebar:
        st.subheader("Sweep")
        with st.form("mf_sweep_form", border=False):
            st.selectbox(
                "Perturbation",
                list(mf.PERTURBATIONS),
                key=state.MF_PERTURBATION,
                help="\n\n".join(f"**{k}**: {s.summary}" for k, s in mf.PERTURBATIONS.items()),
            )
            st.text_input(
                "Levels",
                key=state.MF_LEVELS,
                placeholder="default: 0, 0.05, 0.1, 0.2, 0.3, 0.5 (gaussian)",
                help="\n\n".join(
                    f"**{k}**: {s.unit}, 0 to {s.max_level:g}; default "
                    f"{', '.join(f'{v:g}' for v in s.default_levels)}"
                    for k, s in mf.PERTURBATIONS.items()
                ),
            )
            st.number_input(
                "Test images per model", *N_IMAGES, step=50, key=state.MF_N_IMAGES,
                help="The first N test images; the full bench uses 1,000.",
            )  # fmt: skip
            st.toggle("Centre the unfoldings", key=state.MF_CENTERED)
            st.selectbox(
                "Rank tolerance (rtol)", RTOLS, key=state.MF_RTOL,
                help="auto: n·eps(float32)·λmax, numpy's matrix_rank rule (lsx interpretation).",
            )  # fmt: skip
            st.radio(
                "Map of rank-deficient factors",
                mf.SPSD_MAPS,
                key=state.MF_SPSD_MAP,
                format_func={"range_log": "range-log", "regularized": "regularised (approx.)"}.get,
                horizontal=True,
            )
            st.number_input("Noise seed", 0, 2**31 - 1, step=1, key=state.MF_SEED)
            st.form_submit_button("Run sweep", width="stretch")
    ss = st.session_state
    perturbation = str(ss[state.MF_PERTURBATION])
    rtol = None if ss[state.MF_RTOL] == "auto" else float(ss[state.MF_RTOL])
    config = mf.SweepConfig(
        perturbation=perturbation, levels=parse_levels(str(ss[state.MF_LEVELS]), perturbation),
        seed=int(ss[state.MF_SEED]), centered=bool(ss[state.MF_CENTERED]), rtol=rtol,
        spsd_map=str(ss[state.MF_SPSD_MAP]),
    )  # fmt: skip
    fields = {k: getattr(config, k) for k in ("perturbation", "levels", "seed", "centered")}
    fields.update(rtol=config.rtol, spsd_map=config.spsd_map)
    return Settings(json.dumps(fields, sort_keys=True), int(ss[state.MF_N_IMAGES]))


# ------------------------------------------------------------------------------ cached work


@st.cache_data(max_entries=12, show_spinner=False)
def _sweep(run_dir: str, sha: str, data_hash: str, config_json: str, n_images: int) -> Any:
    model, _ = cache.load_run(run_dir, sha)
    ds, _ = cache.run_dataset(run_dir)
    return mf.sweep(model, ds.x_test[:n_images], config_from_json(config_json))


def sweeps(runs: Sequence[RunInfo], settings: Settings) -> dict[str, mf.SweepResult]:
    """One sweep per run (cached per run and settings), in the order given."""
    out = {}
    for info in runs:
        run_dir = str(info.run_dir)
        sha = cache.weights_version(run_dir)
        ds, _ = cache.run_dataset(run_dir)
        with st.spinner(f"Sweeping {info.name} ({settings.n_images} images x levels) ..."):
            out[run_label(info)] = _sweep(
                run_dir, sha, ds.content_hash, settings.config_json, settings.n_images
            )
    return out


@st.cache_data(max_entries=32, show_spinner=False)
def _path(
    run_dir: str, sha: str, data_hash: str, a: int, b: int, config_json: str
) -> mf.PathProfile:
    model, _ = cache.load_run(run_dir, sha)
    ds, _ = cache.run_dataset(run_dir)
    c = config_from_json(config_json)
    return mf.interpolation_profile(
        model, ds.x_test[a], ds.x_test[b], PATH_STEPS, centered=c.centered, rtol=c.rtol
    )


def paths(runs: Sequence[RunInfo], a: int, b: int, settings: Settings) -> dict[str, mf.PathProfile]:
    """The interpolation profile between test images ``a`` and ``b`` of each run's dataset."""
    out = {}
    for info in runs:
        run_dir = str(info.run_dir)
        ds, _ = cache.run_dataset(run_dir)
        n = len(ds.x_test)
        if not (0 <= a < n and 0 <= b < n):
            raise ConfigError(f"{info.name}: test ids run from 0 to {n - 1}; got {a} and {b}.")
        sha = cache.weights_version(run_dir)
        out[run_label(info)] = _path(run_dir, sha, ds.content_hash, a, b, settings.config_json)
    return out


@st.cache_data(max_entries=12, show_spinner=False)
def _descriptors(run_dir: str, sha: str, data_hash: str) -> mf.GlobalDescriptors:
    z, _ = cache.embedding(run_dir, sha, data_hash, "test")
    return mf.global_descriptors(z, max_samples=1000)


def descriptor_rows(runs: Sequence[RunInfo]) -> list[dict[str, Any]]:
    """Global descriptors of each run's test latents, one table row per run."""
    rows = []
    for info in runs:
        run_dir = str(info.run_dir)
        ds, _ = cache.run_dataset(run_dir)
        with st.spinner(f"Global descriptors of {info.name} ..."):
            g = _descriptors(run_dir, cache.weights_version(run_dir), ds.content_hash)
        rows.append(g.as_row(run_label(info)))
    return rows


# ------------------------------------------------------------------------------ rendering


def verdict_cards(results: Mapping[str, mf.SweepResult]) -> None:
    """One bordered card per model: the computed verdict, its modal stratum and the text."""
    cols = st.columns(max(len(results), 1))
    for col, (name, result) in zip(cols, results.items(), strict=False):
        v = mf.verdict(result)
        with col, st.container(border=True):
            st.markdown(f"**{name}**")
            st.metric("Verdict (lsx rule)", v.label)
            if v.modal is not None:
                kinds = " × ".join(v.factors or ())
                st.caption(f"{v.n_strata} strata · clean modal stratum {v.modal} = {kinds}")
            st.caption(v.text)


def vector_notes(results: Mapping[str, mf.SweepResult]) -> list[str]:
    """An explanation for each model with a vector latent (which analyses apply)."""
    return [
        f"**{name}**: {mf.vector_latent_note(r.latent_shape)}"
        for name, r in results.items()
        if not r.spatial
    ]


def strata_rows(results: Mapping[str, mf.SweepResult]) -> list[dict[str, Any]]:
    return [row for name, r in results.items() for row in mf.strata_rows(name, r)]


def subspace_rows(results: Mapping[str, mf.SweepResult]) -> list[dict[str, Any]]:
    return [row for name, r in results.items() for row in mf.subspace_rows(name, r)]


def summaries(results: Mapping[str, mf.SweepResult]) -> dict[str, mf.StrataSummary]:
    return {name: mf.sweep_strata(r) for name, r in results.items() if r.spatial}


def id_input(label: str, key: str, n: int) -> int:
    """A test-image id input kept inside ``0 .. n - 1``."""
    st.session_state[key] = int(min(max(int(st.session_state[key]), 0), max(n - 1, 0)))
    st.number_input(label, 0, max(n - 1, 0), step=1, key=key)
    return int(st.session_state[key])


def n_test(runs: Sequence[RunInfo]) -> int:
    """The smallest test split of the runs (ids valid for every run)."""
    sizes = [len(cache.run_dataset(str(info.run_dir))[0].x_test) for info in runs]
    return min(sizes) if sizes else 0


def level_title(results: Mapping[str, mf.SweepResult]) -> str:
    first = next(iter(results.values()))
    return f"{first.config.perturbation} level"
