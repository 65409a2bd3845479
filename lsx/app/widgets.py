"""Shared widgets: the sidebar run picker with its model card, the latent-map controls, and small
helpers that turn lsx objects into table rows or selection ids.

Widget values do not survive a page switch, so the picker copies its choice into the non-widget
key ``state.RUN_DIR`` (house-style.md section 2) and re-seeds itself from it on every page.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import streamlit as st

from lsx.analysis import PROJECTIONS
from lsx.analysis.clusters import COLOR_KINDS
from lsx.app import cache, state
from lsx.checkpoint import RunInfo
from lsx.config import ModelConfig
from lsx.models import MODELS

TRAIN_COMMAND = "python -m lsx train --model vae --data mnist5k --epochs 20"
SPLITS = ("all", "train", "test")  # "all" = train then test, one projection for both
_BASE_FIELDS = frozenset(f.name for f in dataclasses.fields(ModelConfig))
_METRICS = ("train_loss", "test_loss", "test_recon", "test_kl")


# ------------------------------------------------------------------------------ model cards


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, tuple | list):
        return "×".join(str(v) for v in value)
    return str(value)


def _nested(value: Any) -> bool:
    """A tuple of tuples (e.g. sae's user-supplied centres): too long for one line."""
    return isinstance(value, tuple | list) and any(isinstance(v, tuple | list) for v in value)


def config_summary(config: ModelConfig) -> str:
    """The key fields of a model config in one line.

    Parameters
    ----------
    config : ModelConfig

    Returns
    -------
    str
        ``"latent_dim 16 · hidden 64 · arch conv · input 1×28×28 · beta 1"``: the shared fields,
        then every field specific to the kind.
    """
    parts = [
        f"latent_dim {config.latent_dim}",
        f"hidden {config.hidden_dim}",
        f"arch {config.resolved_arch}",
        f"input {_fmt(config.input_shape)}",
    ]
    if config.spatial:
        parts.append("spatial latent")
    extras = [f for f in dataclasses.fields(config) if f.name not in _BASE_FIELDS]
    extras = [f for f in extras if getattr(config, f.name) not in ("", ())]  # unset options
    parts += [
        f"{f.name} {_fmt(v) if not _nested(v) else f'({len(v)} rows)'}"
        for f in extras
        if (v := getattr(config, f.name)) is not None
    ]
    return " · ".join(parts)


def card_fields(info: RunInfo) -> dict[str, Any]:
    """One run as an ordered dict of display fields: a model card, or a row of the runs table.

    Parameters
    ----------
    info : RunInfo
        From ``lsx.checkpoint.list_runs``.

    Returns
    -------
    dict
        ``run kind dataset status epochs train_loss test_loss test_recon test_kl config``;
        missing metrics are None.
    """
    planned = info.header.get("train", {}).get("epochs")
    done = info.final_metrics.get("epoch")
    epochs = f"{done if done is not None else '–'} / {planned if planned is not None else '?'}"
    row: dict[str, Any] = {
        "run": info.name,
        "kind": info.kind,
        "dataset": info.dataset,
        "status": str(info.status.get("state", "unknown")),
        "epochs": epochs,
    }
    for key in _METRICS:
        value = info.final_metrics.get(key)
        row[key] = round(float(value), 5) if isinstance(value, int | float) else None
    row["config"] = config_summary(info.config)
    return row


def run_rows(runs: Sequence[RunInfo]) -> list[dict[str, Any]]:
    """The runs table of the home page.

    Parameters
    ----------
    runs : sequence of RunInfo

    Returns
    -------
    list of dict
        :func:`card_fields` of every run, for ``st.dataframe``.
    """
    return [card_fields(info) for info in runs]


def model_card(info: RunInfo) -> None:
    """Render a run's model card (kind, dataset, key config, final metrics, status).

    Parameters
    ----------
    info : RunInfo
    """
    row = card_fields(info)
    summary = MODELS[info.kind].summary if info.kind in MODELS else ""
    metrics = " · ".join(
        f"{k.replace('_', ' ')} {v:.4g}" for k in _METRICS if (v := row[k]) is not None
    )
    message = info.status.get("message")
    with st.container(border=True):
        st.markdown(f"**{info.name}**  \n`{info.kind}` · {summary}")
        st.caption(
            f"dataset **{row['dataset']}** · status **{row['status']}** · epochs {row['epochs']}"
        )
        st.caption(row["config"])
        st.caption(f"final: {metrics}" if metrics else "no metrics recorded yet")
        if message:
            st.caption(f"status message: {message}")
        from lsx.app.clusters import stability_line  # the sae seeds study, when saved

        if line := stability_line(info.run_dir):
            st.caption(line)


def skipped_note(skipped: Sequence[tuple[str, str]], root: Path) -> None:
    """An expander naming each skipped entry of the checkpoints folder and why it was skipped.

    Parameters
    ----------
    skipped : sequence of (name, reason)
        As returned by ``lsx.checkpoint.list_runs``; nothing is shown when empty.
    root : Path
        The checkpoints folder (its name goes in the expander's label).
    """
    if not skipped:
        return
    noun = "entry" if len(skipped) == 1 else "entries"
    with st.expander(f"Skipped {len(skipped)} {noun} in {root.name}/"):
        st.markdown("\n".join(f"- `{name}`: {reason}" for name, reason in skipped))


# ------------------------------------------------------------------------------ run picker


def _sync_run() -> None:
    st.session_state[state.RUN_DIR] = st.session_state[state.RUN_PICKER]


def run_picker() -> RunInfo | None:
    """Sidebar picker of the valid runs under ``state.checkpoints_root()``, with a model card.

    Stores the chosen run folder (str) under ``state.RUN_DIR``; ``?run=<name>`` in the URL picks
    a run when none is chosen yet. Says which entries were skipped and why.

    Returns
    -------
    RunInfo or None
        The chosen run when it is valid; None when none is chosen, or the chosen folder is no
        longer a valid run (the page then shows the loader's error).
    """
    root = state.checkpoints_root()
    runs, skipped = cache.runs(root)
    by_dir = {str(info.run_dir): info for info in runs}
    current = st.session_state[state.RUN_DIR]
    if current is None and (wanted := st.query_params.get("run")):
        current = next((d for d, info in by_dir.items() if info.name == wanted), None)
        st.session_state[state.RUN_DIR] = current
    with st.sidebar:
        st.subheader("Checkpoint")
        if by_dir:
            st.session_state[state.RUN_PICKER] = current if current in by_dir else None
            st.selectbox(
                "Run",
                list(by_dir),
                key=state.RUN_PICKER,
                format_func=lambda d: f"{by_dir[d].name} ({by_dir[d].kind}, {by_dir[d].dataset})",
                on_change=_sync_run,
                placeholder="Choose a run",
                help=f"Valid runs in {root}. Set LSX_CHECKPOINTS to list another folder.",
            )
        else:
            st.caption(f"No valid runs in `{root}`.")
        if current is not None and current not in by_dir:
            reason = dict(skipped).get(Path(current).name, "the folder is not a valid run")
            st.warning(f"The chosen run `{Path(current).name}` is not usable: {reason}")
        info = by_dir.get(current) if current is not None else None
        if info is not None:
            model_card(info)
        skipped_note(skipped, root)
    return info


def no_run_message() -> None:
    """Explain what to do when no run is chosen: train one, or pick one in the sidebar."""
    root = state.checkpoints_root()
    runs, _ = cache.runs(root)
    if runs:
        st.info("Pick a checkpoint in the sidebar (**Run**) to explore its latent space.")
        return
    st.info(
        f"No trained runs in `{root}` yet. Train one with the command below (a few minutes on a "
        "CPU), then reload this page."
    )
    st.code(TRAIN_COMMAND, language="bash")


def selected_run() -> str:
    """The chosen run folder; without one, explain what to do and stop the page."""
    run_dir = st.session_state[state.RUN_DIR]
    if run_dir is None:
        no_run_message()
        st.stop()
    return run_dir


# ------------------------------------------------------------------------------ latent map


@dataclass(frozen=True)
class MapSettings:
    """What the latent-map controls ask for (the arguments of ``cache.latent_map``)."""

    method: str
    n_components: int
    seed: int
    split: str
    color: str
    cap: int


def color_options(
    label_names: Mapping[str, Sequence[str]], dominant_atom: bool = False
) -> list[str]:
    """The colour choices of the latent map.

    Parameters
    ----------
    label_names : mapping attribute -> class names
    dominant_atom : bool, default=False
        Add ``atom`` (each sample's dominant atom or code; scvae and vqvae runs).

    Returns
    -------
    list of str
        ``label:<attr>`` per label attribute, then ``error`` and ``latent`` (one latent
        dimension, picked with a number input), then the cluster colourings
        ``predicted:<attr>``, ``in_sphere:<attr>``, ``correct:<attr>`` (lsx.app.clusters).
    """
    clusters = [f"{kind}:{attr}" for kind in COLOR_KINDS for attr in label_names]
    atom = ["atom"] if dominant_atom else []  # lsx.app.atoms.dominant_colors
    return [f"label:{attr}" for attr in label_names] + ["error", "latent"] + atom + clusters


def color_label(option: str) -> str:
    """Human name of a colour choice (``"label: digit"``, ``"reconstruction error"``, ...).

    Parameters
    ----------
    option : str
        One of :func:`color_options`.

    Returns
    -------
    str
    """
    if option.startswith("label:"):
        return f"label: {option[6:]}"
    kind, _, attr = option.partition(":")
    if kind in COLOR_KINDS:
        return f"{COLOR_KINDS[kind]}: {attr}"
    names = {"error": "reconstruction error", "latent": "a latent dimension"}
    return {**names, "atom": "dominant atom"}.get(option, option)


def map_controls(label_names: Mapping[str, Sequence[str]], n_latent: int) -> MapSettings:
    """Sidebar controls of the latent map: projection form, 3-D, split, colour, point cap.

    The projection (method, seed) sits in a form because UMAP and t-SNE take a while; view
    options apply at once. Keys are ``state.LM_*``.

    Parameters
    ----------
    label_names : mapping attribute -> class names
        The dataset's label attributes (``Dataset.label_names``).
    n_latent : int
        Latent coordinates per sample (for the "latent dimension" colour).

    Returns
    -------
    MapSettings
    """
    run_dir = st.session_state.get(state.RUN_DIR)
    if run_dir:  # the page has loaded this run already: both calls are cache hits
        from lsx.analysis.atoms import has_atoms, has_codebook

        model, _ = cache.load_run(run_dir, cache.weights_version(run_dir))
        options = color_options(label_names, has_atoms(model) or has_codebook(model))
    else:
        options = color_options(label_names)
    if st.session_state.get(state.LM_COLOR) not in options:
        st.session_state[state.LM_COLOR] = options[0]
    st.session_state[state.LM_LATENT_DIM] = min(
        int(st.session_state[state.LM_LATENT_DIM]), n_latent - 1
    )
    with st.sidebar:
        st.subheader("Map")
        projection_form(
            "lm_projection_form", state.LM_METHOD, state.LM_SEED,
            "\n\n".join(f"**{k}**: {spec.summary}" for k, spec in PROJECTIONS.items()),
        )  # fmt: skip
        st.toggle("3-D", key=state.LM_3D, help="A 3-D scatter you can rotate (selection: click).")
        st.radio("Split", SPLITS, key=state.LM_SPLIT, horizontal=True)
        st.selectbox("Colour by", options, key=state.LM_COLOR, format_func=color_label)
        color = st.session_state[state.LM_COLOR]
        if color == "latent":
            st.number_input(
                f"Latent dimension (0 – {n_latent - 1})",
                min_value=0,
                max_value=n_latent - 1,
                step=1,
                key=state.LM_LATENT_DIM,
            )
            color = f"latent:{int(st.session_state[state.LM_LATENT_DIM])}"
        st.number_input(
            "Max points",
            min_value=100,
            max_value=50_000,  # WebGL + lasso stay fluid up to ~5e4 markers (field-notes D.2)
            step=500,
            key=state.LM_CAP,
            help="Above this, each class keeps its share of a per-class sample (seed 0). For "
            "more points, encode the data into a store (Large datasets page): its map draws a "
            "density raster of all of them.",
        )
    return MapSettings(
        method=str(st.session_state[state.LM_METHOD]),
        n_components=3 if st.session_state[state.LM_3D] else 2,
        seed=int(st.session_state[state.LM_SEED]),
        split=str(st.session_state[state.LM_SPLIT]),
        color=color,
        cap=int(st.session_state[state.LM_CAP]),
    )


def map_source(run_dir: str) -> tuple[str, str | None] | None:
    """Sidebar choice of what the latent map shows: the run's dataset or one of its latent stores.

    Shown only when the run has stores (``python -m lsx encode``). Key ``state.LM_SOURCE``.

    Returns
    -------
    None for the run's dataset, else ``(store path, reason it is not usable or None)``.
    """
    from lsx.app.bigmap import run_stores

    stores = run_stores(run_dir)
    if not stores:
        return None
    labels = {"": "the run's dataset", **{path: label for path, label, _ in stores}}
    if st.session_state.get(state.LM_SOURCE) not in labels:
        st.session_state[state.LM_SOURCE] = ""
    st.sidebar.selectbox(
        "Map of",
        list(labels),
        key=state.LM_SOURCE,
        format_func=labels.__getitem__,
        help="A latent store is a run's encoding of a whole image source "
        "(`python -m lsx encode`), memory-mapped; it can hold millions of points.",
    )
    chosen = st.session_state[state.LM_SOURCE]
    return next(((p, why) for p, _, why in stores if p == chosen), None)


def selected_ids(event: Any, shown: Iterable[int] | None = None) -> list[int]:
    """Sample ids of the selected points of a ``st.plotly_chart(on_select="rerun")`` event.

    Ids come from each point's ``customdata`` (never from point indices, which can be wrong:
    streamlit/streamlit#8914); duplicates are dropped, order is kept.

    Parameters
    ----------
    event : PlotlyState, dict or None
    shown : iterable of int or None
        Ids on the map now; others are dropped (a selection left over from another run or view).

    Returns
    -------
    list of int
    """
    try:
        points = event["selection"]["points"]
    except (KeyError, TypeError, AttributeError):
        return []
    out: dict[int, None] = {}
    for point in points or []:
        data = point.get("customdata") if isinstance(point, Mapping) else None
        if isinstance(data, list | tuple):
            data = data[0] if data else None
        if isinstance(data, int | float) and not isinstance(data, bool):
            out[int(data)] = None
    if shown is not None:
        keep = set(int(i) for i in shown)
        return [i for i in out if i in keep]
    return list(out)


def projection_form(form_key: str, method_key: str, seed_key: str, help_text: str) -> None:
    """Projection method and seed in one form (call inside ``st.sidebar``): applied together, so
    changing both costs one refit, not two."""
    with st.form(form_key, border=False):
        st.selectbox(
            "Projection", list(PROJECTIONS), key=method_key, format_func=str.upper, help=help_text
        )
        st.number_input("Seed", min_value=0, max_value=2**31 - 1, step=1, key=seed_key)
        st.form_submit_button("Apply projection", width="stretch")


def spread(ids: Sequence[int], cap: int) -> tuple[int, ...]:
    """At most ``cap`` of ``ids``, evenly spaced over the sorted ids (not the first ``cap``).

    Selections list points trace by trace (class by class), so the first ``cap`` would all be
    one class; ids are in dataset order, which mixes the classes.

    Parameters
    ----------
    ids : sequence of int
    cap : int

    Returns
    -------
    tuple of int
        Sorted.
    """
    ordered = sorted(set(ids))
    if len(ordered) <= cap:
        return tuple(ordered)
    return tuple(ordered[(k * len(ordered)) // cap] for k in range(cap))


def sample_id_input(n_train: int, n_test: int) -> int:
    """Number input of a sample id (train ids first, then test), kept in range across runs.

    Parameters
    ----------
    n_train, n_test : int
        Split sizes of the run's dataset.

    Returns
    -------
    int
        The chosen id in ``0 .. n_train + n_test - 1``.
    """
    n_all = n_train + n_test
    current = int(st.session_state.get(state.LM_DECODE_ID) or 0)
    st.session_state[state.LM_DECODE_ID] = min(max(current, 0), n_all - 1)
    st.number_input(
        f"Sample id (0–{n_train - 1} train, {n_train}–{n_all - 1} test)",
        min_value=0,
        max_value=n_all - 1,
        step=1,
        key=state.LM_DECODE_ID,
        help="Hover a point on the map to see its id.",
    )
    return int(st.session_state[state.LM_DECODE_ID])


def wait_for_projection(job: Future, method: str, n_points: int) -> None:
    """Say a projection is being fitted in the background; rerun the page when it is done.

    The map meanwhile shows PCA. A fragment polls the job every 2 s, so this browser session
    stays responsive and other sessions are not blocked.
    """
    st.info(
        f"Fitting {method.upper()} on {n_points:,} points in the background (the first fit in "
        "a server process also compiles numba, about 15-45 s on 2 cores; afterwards it is read "
        "from the disk cache). Showing PCA until it is ready; the map switches by itself.",
        icon="⏳",
    )
    poll_jobs([job], method)


def poll_jobs(jobs: Sequence[Future], method: str) -> None:
    """Rerun the whole page once every background fit in ``jobs`` is done (polled every 2 s).

    A fragment polls, so this browser session stays responsive meanwhile; a failed fit is shown
    as an error instead (the next rerun of the page starts it again).
    """

    @st.fragment(run_every="2s")
    def _poll() -> None:
        if not all(job.done() for job in jobs):
            return
        failed = [job.exception() for job in jobs if job.exception() is not None]
        if failed:
            st.error(f"{method.upper()} failed: {failed[0]}. Pick another method or seed.")
            return
        st.rerun(scope="app")

    _poll()


def registry_list(which: str) -> str:
    """The registered model kinds (``"kinds"``) or built-in datasets (``"datasets"``), as code."""
    from lsx.data import DATASETS

    names = sorted(MODELS) if which == "kinds" else list(DATASETS)
    return ", ".join(f"`{name}`" for name in names)
