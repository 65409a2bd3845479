"""Consistency page logic: settings, the cached metric suite of one or two runs, the pair maps,
the side-by-side table, the posterior-collapse alarm and the transform gallery.

Both runs are evaluated on the SAME points (a per-class sample of the test split, seed 0) with
the same transform draws (``seed``), so their numbers can be compared; runs trained on different
datasets are refused with a message. The metric suite is ``lsx.analysis.posterior``.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from lsx.analysis import sample_per_class
from lsx.analysis.consistency import PairProjection, pair_projection, transform_gallery
from lsx.analysis.posterior import (
    DEFAULT_AU_THRESHOLD,
    PosteriorReport,
    has_posterior,
    importance_nll,
    posterior_report,
)
from lsx.app import background, cache, state
from lsx.checkpoint import read_header
from lsx.data.transforms import TRANSFORM_SETS, default_set, resolve_set
from lsx.errors import ConfigError

NONE = "(none)"
METRICS = {"kl": "KL(q(z|t(x)) || q(z|x)) per pair (nats)", "displacement": "displacement"}


@dataclass(frozen=True)
class Settings:
    """What the page's sidebar asks for."""

    other: str | None  # second run folder, or None
    transforms: str  # "" = the data's default set
    strength: float
    n_points: int
    nll_samples: int
    threshold: float  # active-unit threshold
    alarm: float  # collapse alarm: fewer active units than this share of latent dims
    seed: int
    n_pairs: int


def controls(run_dir: str) -> Settings:
    """Sidebar: the run to compare with, then the evaluation settings in a form."""
    runs, _ = cache.runs(state.checkpoints_root())
    others = {str(i.run_dir): i for i in runs if str(i.run_dir) != run_dir}
    if st.session_state.get(state.CO_OTHER) not in (NONE, *others):
        st.session_state[state.CO_OTHER] = NONE
    with st.sidebar:
        st.subheader("Consistency")
        st.selectbox(
            "Compare with",
            [NONE, *others],
            key=state.CO_OTHER,
            format_func=lambda d: d if d == NONE else f"{others[d].name} ({others[d].kind})",
            help="A second checkpoint trained on the same data, e.g. a VAE vs a CR-VAE.",
        )
        with st.form("co_form", border=False):
            st.selectbox(
                "Transform set",
                ["", *TRANSFORM_SETS],
                key=state.CO_SET,
                format_func=lambda s: f"{s}: {TRANSFORM_SETS[s].summary}" if s else "data default",
            )
            st.slider("Strength", 0.25, 3.0, step=0.25, key=state.CO_STRENGTH)
            st.number_input("Test points", 20, 5000, step=100, key=state.CO_POINTS)
            st.number_input("NLL samples S", 1, 1000, step=10, key=state.CO_NLL)
            st.number_input("Active-unit threshold", 0.0, 1.0, step=0.005, format="%.3f",
                            key=state.CO_THRESHOLD)  # fmt: skip
            st.slider("Collapse alarm below (share of latent dims)", 0.0, 1.0, step=0.05,
                      key=state.CO_ALARM)  # fmt: skip
            st.number_input("Pairs on the map", 5, 200, step=5, key=state.CO_PAIRS)
            st.number_input("Seed", 0, 2**31 - 1, step=1, key=state.CO_SEED)
            st.form_submit_button("Apply", width="stretch")
    other = st.session_state[state.CO_OTHER]
    return Settings(
        other=None if other == NONE else str(other),
        transforms=str(st.session_state[state.CO_SET]),
        strength=float(st.session_state[state.CO_STRENGTH]),
        n_points=int(st.session_state[state.CO_POINTS]),
        nll_samples=int(st.session_state[state.CO_NLL]),
        threshold=float(st.session_state[state.CO_THRESHOLD]),
        alarm=float(st.session_state[state.CO_ALARM]),
        seed=int(st.session_state[state.CO_SEED]),
        n_pairs=int(st.session_state[state.CO_PAIRS]),
    )


def check_same_data(headers: Sequence[tuple[str, dict[str, Any]]]) -> None:
    """Raise ConfigError unless every run was trained on the same dataset (spec and size).

    Parameters
    ----------
    headers : sequence of (run name, config.json header)
    """
    seen = {name: ((h.get("data") or {}).get("spec"), (h.get("data") or {}).get("image_size"))
            for name, h in headers}  # fmt: skip
    if len(set(seen.values())) > 1:
        where = ", ".join(f"{name} on {spec!r}" for name, (spec, _) in seen.items())
        first = next(iter(seen.values()))[0]
        raise ConfigError(
            f"These checkpoints were trained on different datasets ({where}). The consistency "
            "comparison needs the same test points and transforms for both; pick a second run "
            f"trained on {first!r}, or clear 'Compare with'."
        )


@st.cache_data(max_entries=8, show_spinner="Computing AU, MI, NLL, accuracy and consistency ...")
def report(
    run_dir: str, sha: str, data_hash: str, transforms: str, strength: float, n_points: int,
    nll_samples: int, threshold: float, seed: int,
) -> PosteriorReport:  # fmt: skip
    """The metric suite of one run on a per-class sample of its test split (cached)."""
    model, _ = cache.load_run(run_dir, sha)
    ds, _ = cache.run_dataset(run_dir)
    ids = points(ds.y_test, n_points)
    return posterior_report(
        model, ds.x_test[ids], ds.y_test[ids], x_train=ds.x_train, y_train=ds.y_train,
        transforms=transforms, strength=strength, dataset=ds.spec, threshold=threshold,
        nll_samples=nll_samples, seed=seed,
    )  # fmt: skip


def points(y_test: np.ndarray, n_points: int) -> np.ndarray:
    """The evaluation points: a per-class sample of ``n_points`` test ids (seed 0), sorted."""
    ids = np.arange(len(y_test))
    if n_points < len(ids):
        ids = np.sort(np.asarray(sample_per_class(y_test, n_points, seed=0), dtype=np.int64))
    return ids


def nll_job(d: str, sha: str, data_hash: str, s: Settings) -> tuple[float | None, Future | None]:
    """The importance-sampled NLL of a run on the evaluation points, computed in the background
    (S decodes per point: about 20-40 s for 500 points and S=100 on 2 cores)."""
    model, _ = cache.load_run(d, sha)
    ds, _ = cache.run_dataset(d)
    x = ds.x_test[points(ds.y_test, s.n_points)]
    return background.results().get(
        ("nll", d, sha, data_hash, s.n_points, s.nll_samples, s.seed),
        lambda: float(importance_nll(model, x, n_samples=s.nll_samples, seed=s.seed).mean()),
    )


@dataclass(frozen=True, eq=False)
class RunResult:
    name: str
    run_dir: str
    sha: str
    report: PosteriorReport
    pairs: PairProjection
    warning: str | None
    nll_job: Future | None = None  # the NLL still being computed in the background


def results(run_dir: str, s: Settings) -> list[RunResult]:
    """The metric suite of the chosen run (and of the run to compare with), same points."""
    dirs = [run_dir] + ([s.other] if s.other else [])
    check_same_data([(Path(d).name, read_header(Path(d))) for d in dirs])
    out = []
    for d in dirs:
        sha = cache.weights_version(d)
        model, _ = cache.load_run(d, sha)
        ds, warning = cache.run_dataset(d)
        resolve_set(s.transforms, model.config.input_shape, ds.spec)  # say why before computing
        rep = report(  # nll_samples 0: the NLL is computed in the background (nll_job)
            d, sha, ds.content_hash, s.transforms, s.strength, s.n_points, 0, s.threshold, s.seed
        )
        job = None
        if s.nll_samples and has_posterior(model) and getattr(model.config, "likelihood", None):
            nll, job = nll_job(d, sha, ds.content_hash, s)
            rep = replace(rep, nll=nll, nll_samples=s.nll_samples)
        z_t = {name: t.z_t for name, t in rep.consistency.items()}
        pairs = pair_projection(rep.z, z_t, n_pairs=s.n_pairs, seed=s.seed)
        out.append(RunResult(Path(d).name, d, sha, rep, pairs, warning, job))
    return out


def set_name(s: Settings, input_shape: Sequence[int]) -> str:
    return s.transforms or f"{default_set(input_shape)} (data default)"


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def table(res: Sequence[RunResult]) -> list[dict[str, str]]:
    """Rows ``metric | <run 1> | <run 2>``: AU, MI, NLL, KL, accuracy, consistency scores."""
    rows: dict[str, dict[str, str]] = {}
    for r in res:
        rep = r.report
        values = {
            f"active units (> {rep.au_threshold:g})": f"{rep.au} / {rep.latent_numel}",
            "MI I_q(x; z) (nats)": _fmt(rep.mi),
            f"NLL (nats, S={rep.nll_samples})": "computing ..." if r.nll_job else _fmt(rep.nll),
            "KL to the prior (nats)": _fmt(
                None if rep.kl_per_dim is None else float(rep.kl_per_dim.sum())
            ),  # fmt: skip
            "downstream accuracy (logistic regression)": _fmt(rep.accuracy),
        }
        for name, sc in rep.consistency.items():
            summary = sc.summary()
            values[f"{name}: mean pair KL (nats)"] = _fmt(summary["kl"])
            values[f"{name}: displacement / typical distance"] = _fmt(summary["displacement"])
            values[f"{name}: kNN kept (k=10)"] = _fmt(summary["knn"])
        for metric, value in values.items():
            rows.setdefault(metric, {"metric": metric})[r.name] = value
    return list(rows.values())


def collapse_alarms(res: Sequence[RunResult], share: float) -> list[str]:
    """A message per run whose active units fall below ``share`` of its latent dimensions."""
    out = []
    for r in res:
        rep = r.report
        if rep.au < share * rep.latent_numel:
            out.append(
                f"Posterior collapse alarm: **{r.name}** has only {rep.au} of {rep.latent_numel} "
                f"latent dimensions active (variance of the posterior mean > "
                f"{rep.au_threshold:g}; alarm below {share:.0%}). The decoder ignores the other "
                "dimensions; a lower beta, KL annealing or a smaller latent_dim usually helps."
            )
    return out


def deterministic_notes(res: Sequence[RunResult]) -> list[str]:
    """A note per run with a deterministic encoder (no MI, NLL or KL)."""
    return [
        f"{r.name} has a deterministic encoder: MI, NLL and KL need a Gaussian posterior, and "
        "its consistency term in training is the squared latent distance (an lsx extension, "
        "not from the paper)."
        for r in res
        if r.report.mi is None
    ]


def distributions(res: Sequence[RunResult], metric: str) -> dict[str, dict[str, np.ndarray]]:
    """Per run, per transform: the per-pair values of ``metric`` ("kl" or "displacement")."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for r in res:
        per = {n: getattr(sc, metric) for n, sc in r.report.consistency.items()}
        out[r.name] = {n: v for n, v in per.items() if v is not None}
    return {k: v for k, v in out.items() if v}


@st.cache_data(max_entries=16, show_spinner=False)
def gallery(
    run_dir: str, sha: str, sample: int, transforms: str, strength: float, seed: int
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """An input of the test split, its transforms and the run's reconstructions of all."""
    model, _ = cache.load_run(run_dir, sha)
    ds, _ = cache.run_dataset(run_dir)
    if not 0 <= sample < len(ds.x_test):
        raise ConfigError(f"Test sample {sample} out of range 0..{len(ds.x_test) - 1}.")
    tset = resolve_set(transforms, model.config.input_shape, ds.spec)
    return transform_gallery(model, ds.x_test[sample], tset, strength=strength, seed=seed)


__all__ = [
    "DEFAULT_AU_THRESHOLD",
    "METRICS",
    "RunResult",
    "Settings",
    "check_same_data",
    "collapse_alarms",
    "controls",
    "deterministic_notes",
    "distributions",
    "gallery",
    "report",
    "results",
    "set_name",
    "table",
]


def wait_for_nll(res: Sequence[RunResult]) -> None:
    """Say the NLL is being computed in the background (the rest of the page is ready)."""
    jobs = [r.nll_job for r in res if r.nll_job is not None]
    if jobs:
        background.wait_notice(
            jobs,
            "The importance-sampled NLL is being computed in the background; every other number "
            "is ready, and the table fills in by itself.",
            label="NLL",
        )
