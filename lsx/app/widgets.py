"""Shared widgets of every page: the sidebar run picker with its model card, the projection form,
the background-fit notices, and small helpers that turn lsx objects into table rows or selection
ids. A widget that serves one page lives in that page's module (e.g. the latent-map controls in
:mod:`lsx.app.latent_map`).

Widget values do not survive a page switch, so the picker copies its choice into the non-widget
key ``state.RUN_DIR`` (docs/architecture.md) and re-seeds itself from it on every page.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import streamlit as st

from lsx.analysis import PROJECTIONS
from lsx.analysis.clusters import STABILITY_NAME
from lsx.app import background, cache, state
from lsx.checkpoint import RunInfo
from lsx.config import ModelConfig
from lsx.embeddings import EmbeddingSet, is_embedding_set
from lsx.models import MODELS

TRAIN_COMMAND = "python -m lsx train --model vae --data mnist5k --epochs 20"
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
        if line := stability_line(info.run_dir):
            st.caption(line)


def stability_line(run_dir: str | Path) -> str | None:
    """One model-card line from the run's saved seeds study (``stability.json``), if any."""
    path = Path(run_dir) / STABILITY_NAME
    try:
        rows = json.loads(path.read_text(encoding="utf-8")).get("rows", [])
    except (OSError, ValueError, AttributeError):
        return None
    parts = [
        f"{r['model']} ({r['attribute']}) {100 * r['mean accuracy']:.1f} ± "
        f"{100 * r['std (ddof=1)']:.1f} %"
        for r in rows
        if isinstance(r, dict) and {"model", "attribute", "mean accuracy", "std (ddof=1)"} <= set(r)
    ]
    if not parts:
        return None
    return f"test accuracy over {rows[0].get('seeds', '?')} seeds: " + " · ".join(parts)


# what can start a link, image, emphasis, code, HTML, a table or a Streamlit directive inside a
# line ("-", "." and "+" only matter at a line's start, where these texts never are)
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#!|<>~$:])")


def md_escape(text: str) -> str:
    """``text`` shown literally by ``st.markdown``: every Markdown (and Streamlit directive)
    character backslash-escaped, so a folder or kind name from an untrusted ``config.json`` can
    not turn into a link, an image fetched from elsewhere, or a colour directive."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", str(text)).replace("\n", " ")


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
        st.markdown("\n".join(f"- **{md_escape(n)}**: {md_escape(r)}" for n, r in skipped))


# ------------------------------------------------------------------------------ run picker


def _sync_run() -> None:
    st.session_state[state.RUN_DIR] = st.session_state[state.RUN_PICKER]


def run_picker() -> RunInfo | None:
    """Sidebar picker of the valid runs (and embedding sets) under ``state.checkpoints_root()``,
    with a model card.

    Stores the chosen folder (str) under ``state.RUN_DIR``; ``?run=<name>`` in the URL picks
    a run when none is chosen yet. Says which entries were skipped and why. Embedding sets
    (:mod:`lsx.embeddings`: latents without a model) are listed after the runs; pages that need
    a model say so (:func:`selected_run`).

    Returns
    -------
    RunInfo or None
        The chosen run when it is valid; None when none is chosen, an embedding set is chosen,
        or the chosen folder is no longer a valid run (the page then shows the loader's error).
    """
    root = state.checkpoints_root()
    runs, skipped = cache.runs(root)
    sets, bad_sets = cache.embedding_sets(root)
    skipped = [*skipped, *bad_sets]
    by_dir = {str(info.run_dir): info for info in runs}
    set_by_dir = {str(e.path): e for e in sets}
    labels = {d: f"{i.name} ({i.kind}, {i.dataset})" for d, i in by_dir.items()}
    labels |= {d: f"{e.name} (embedding set, {e.n:,} × {e.dim})" for d, e in set_by_dir.items()}
    current = st.session_state[state.RUN_DIR]
    if current is None and (wanted := st.query_params.get("run")):
        current = next((d for d in labels if Path(d).name == wanted), None)
        st.session_state[state.RUN_DIR] = current
    with st.sidebar:
        st.subheader("Checkpoint")
        if labels:
            st.session_state[state.RUN_PICKER] = current if current in labels else None
            st.selectbox(
                "Run",
                list(labels),
                key=state.RUN_PICKER,
                format_func=labels.__getitem__,
                on_change=_sync_run,
                placeholder="Choose a run",
                help=f"Valid runs and embedding sets in {root}. Set LSX_CHECKPOINTS to list "
                "another folder.",
            )
        else:
            st.caption(f"No valid runs in `{root}`.")
        if current is not None and current not in labels:
            reason = dict(skipped).get(Path(current).name, "the folder is not a valid run")
            st.warning(f"The chosen run `{Path(current).name}` is not usable: {reason}")
        info = by_dir.get(current) if current is not None else None
        if info is not None:
            model_card(info)
        elif current in set_by_dir:
            set_card(set_by_dir[current])
        skipped_note(skipped, root)
    return info


def set_card(emb: EmbeddingSet) -> None:
    """The sidebar card of an embedding set: size, colours, images, where it came from."""
    colours = ", ".join(f"{a} ({len(v)})" for a, v in emb.label_names.items())
    st.caption(
        f"**Embedding set** (no model): {emb.n:,} vectors of dimension {emb.dim} · colours: "
        f"{colours} · images: {emb.images or 'none'} · imported {emb.manifest.get('created', '?')}"
    )


def chosen_set() -> EmbeddingSet | None:
    """The embedding set chosen in the sidebar, or None (a run, or nothing)."""
    current = st.session_state[state.RUN_DIR]
    if current is None or not is_embedding_set(current):
        return None
    sets, _ = cache.embedding_sets(Path(current).parent)
    return next((e for e in sets if str(e.path) == current), None)


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


def selected_run(embedding_sets: bool = False) -> str:
    """The chosen run folder; without one, explain what to do and stop the page.

    An embedding set (no model) is returned only when the page supports it
    (``embedding_sets=True``); otherwise the page says why it cannot show one, and stops.
    """
    run_dir = st.session_state[state.RUN_DIR]
    if run_dir is None:
        no_run_message()
        st.stop()
    if not embedding_sets and is_embedding_set(run_dir):
        st.info(
            f"**{Path(run_dir).name}** is an embedding set: vectors without a model. This page "
            "needs the model's encoder or decoder, which an embedding set does not have. Open "
            "it on the **Latent map** (map, clusters, selections, tags, exports), **Lookup** "
            "(nearest neighbours of a row) or **Compare** (against another embedding set), or "
            "pick a run in the sidebar."
        )
        st.stop()
    return run_dir


# ------------------------------------------------------------------------------ maps


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


def wait_for_projection(job: Future, method: str, n_points: int) -> None:
    """Say a projection is being fitted in the background; rerun the page when it is done.

    The map meanwhile shows PCA. A fragment polls the job every second and shows its progress,
    so this browser session stays responsive and other sessions are not blocked.
    """
    background.wait_notice(  # real progress: stage, epochs, an estimate from measured speed
        [job],
        f"Fitting {method.upper()} on {n_points:,} points in the background (then kept in the "
        "disk cache). Showing PCA until it is ready; the map switches by itself.",
        label=method.upper(),
        progress=cache.projection_jobs().view,
    )


def registry_list(which: str) -> str:
    """The registered model kinds (``"kinds"``) or built-in datasets (``"datasets"``), as code."""
    from lsx.data import DATASETS

    names = sorted(MODELS) if which == "kinds" else list(DATASETS)
    return ", ".join(f"`{name}`" for name in names)


EXPORT_MIMES = {"csv": "text/csv", "parquet": "application/octet-stream",
                "npy": "application/octet-stream"}  # fmt: skip


def download_buttons(name: str, frame: Callable[[], Any], key: str) -> None:
    """CSV, Parquet and ``.npy`` (the vectors) download buttons of a table made by ``frame()``
    only when a button is clicked (Streamlit runs it off the page script: a large selection
    never slows the map down). Files are ``<name>-selection.<format>``."""
    from lsx.export import table_bytes

    for col, (fmt, mime) in zip(st.columns(3), EXPORT_MIMES.items(), strict=True):
        col.download_button(
            fmt.upper() if fmt != "npy" else "Vectors (.npy)",
            lambda fmt=fmt: table_bytes(frame(), fmt),
            file_name=f"{name}-selection.{fmt}", mime=mime, key=f"{key}_{fmt}",
        )  # fmt: skip


def image_row(x: Any, captions: Sequence[str]) -> None:
    """A row of images (``(n, C, H, W)`` in [0, 1]) scaled to the gallery size, with captions."""
    from lsx.viz.images import GALLERY_PX, scale_for, to_uint8

    s = scale_for(x.shape[2], GALLERY_PX)
    st.image([to_uint8(a, scale=s) for a in x], caption=list(captions), output_format="PNG")
