"""The Train page's widgets: the dataset picker, the generated form, the run chooser and the live
view of a job (progress, curves, log, latent snapshots, Cancel and Resume).

The live view (:func:`live_panel`) polls the files the trainer writes atomically, every 2 s in an
``st.fragment``: ``status.json`` (through :func:`lsx.app.train_jobs.job_view`),
``metrics.jsonl`` (one record per epoch), ``snapshots/`` (latent codes of fixed test points per
epoch, lsx.snapshots) and the log. The form and its requests are :mod:`lsx.app.train_form`, the
jobs :mod:`lsx.app.train_jobs`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st

import lsx.data
from lsx.analysis.compare import align_sequence
from lsx.app import forms, state
from lsx.app.train_form import (
    FOLDER_CHOICE,
    NPY_CHOICE,
    PATH_CHOICES,
    data_summary,
    dataset_spec,
    default_name,
    model_specs,
    prepare_request,
    resume_request,
    train_specs,
)
from lsx.app.train_jobs import (
    HEADLINES,
    JOB_NAME,
    JobView,
    cancel_job,
    job_view,
    start_job,
    tail,
    watchable_runs,
)
from lsx.checkpoint import CONFIG_NAME, METRICS_NAME
from lsx.data import DATASETS
from lsx.errors import LsxError
from lsx.files import read_jsonl
from lsx.jobs import read_json
from lsx.models import MODELS
from lsx.snapshots import SNAPSHOT_DIR, read_index, read_snapshots, snapshot_epochs
from lsx.viz.training import loss_curves, metric_curves, snapshot_animation

MAX_FRAMES = 40  # snapshot epochs shown in the animation (evenly spread when more)


# ------------------------------------------------------------------------------ snapshots


@dataclass(frozen=True, eq=False)
class SnapshotView:
    epochs: tuple[int, ...]
    frames: tuple[np.ndarray, ...]  # (n_points, 2) each, aligned
    labels: np.ndarray  # (n_points,)
    class_names: tuple[str, ...]


def _class_names(run_dir: Path, labels: np.ndarray) -> tuple[str, ...]:
    names = (read_json(run_dir / JOB_NAME) or {}).get("class_names") or []
    if not names:
        data = (read_json(run_dir / CONFIG_NAME) or {}).get("data", {})
        names = next(iter((data.get("label_names") or {}).values()), [])
    n = int(labels.max()) + 1 if len(labels) else 0
    return tuple(str(names[i]) if i < len(names) else str(i) for i in range(n))


@st.cache_data(max_entries=8, show_spinner=False)
def _snapshot_view(run_dir: str, epochs: tuple[int, ...], stamp: int) -> SnapshotView | None:
    index = read_index(Path(run_dir))
    if index is None or not epochs:
        return None
    labels = np.asarray(index["labels"], dtype=np.int64)
    frames = align_sequence(read_snapshots(Path(run_dir), list(epochs)))
    return SnapshotView(epochs, tuple(frames), labels, _class_names(Path(run_dir), labels))


def snapshot_view(run_dir: Path) -> SnapshotView | None:
    """The run's latent snapshots as aligned 2-D frames (at most ``MAX_FRAMES``, evenly spread,
    first and last kept); None when the run writes none."""
    epochs = snapshot_epochs(run_dir)
    if len(epochs) > MAX_FRAMES:
        keep = np.unique(np.linspace(0, len(epochs) - 1, MAX_FRAMES).round().astype(int))
        epochs = [epochs[i] for i in keep]
    try:
        stamp = (Path(run_dir) / SNAPSHOT_DIR).stat().st_mtime_ns
    except OSError:
        return None
    return _snapshot_view(str(run_dir), tuple(epochs), stamp)


# ------------------------------------------------------------------------------ rendering


def _dataset_label(choice: str) -> str:
    if choice == FOLDER_CHOICE:
        return "your image folder …"
    if choice == NPY_CHOICE:
        return "a .npy file of images … (read lazily)"
    return f"{choice} · {DATASETS[choice].summary}"


def dataset_picker() -> tuple[str, int | None]:
    """Dataset choice: the built-ins, a user's image folder with an image size, or a user's
    ``.npy`` file of images (native size).

    Returns
    -------
    spec : str
        ``python -m lsx train --data``: a name, ``folder:<absolute path>`` or
        ``npy:<absolute path>``.
    image_size : int or None
        The folder's image size; None otherwise (native size).

    Raises
    ------
    ConfigError
        The folder or .npy choice has no path yet.
    """
    from lsx.data import DEFAULT_FOLDER_IMAGE_SIZE, MAX_IMAGE_SIZE, MIN_IMAGE_SIZE

    st.selectbox(
        "Dataset", [*DATASETS, *PATH_CHOICES], key=state.TR_DATA, format_func=_dataset_label
    )
    choice = st.session_state[state.TR_DATA]
    if choice == NPY_CHOICE:
        st.text_input(
            ".npy file on the server", key=state.TR_NPY, placeholder="/data/images.npy",
            help="uint8 (0..255) or float32 in [0, 1] images of shape (n, H, W) or (n, C, H, W), "
            "C = 1 or 3, saved with numpy.save (never a pickle). Integer labels, shape (n,), from "
            "NAME.labels.npy beside it; without it every image is class 'all'. Memory-mapped and "
            "read batch by batch, so it may be larger than memory.",
        )  # fmt: skip
        return dataset_spec(NPY_CHOICE, st.session_state.get(state.TR_NPY) or ""), None
    if choice != FOLDER_CHOICE:
        return choice, None
    left, right = st.columns([3, 1])
    left.text_input(
        "Image folder on the server", key=state.TR_FOLDER, placeholder="/data/shirts",
        help="One subfolder per class holding PNG, JPEG or WebP images. More than "
        f"{lsx.data.LAZY_FOLDER_ABOVE:,} images are read lazily (decoded batch by batch), not "
        "loaded whole.",
    )  # fmt: skip
    size = right.number_input(
        "Image size (px)", min_value=MIN_IMAGE_SIZE, max_value=MAX_IMAGE_SIZE,
        value=DEFAULT_FOLDER_IMAGE_SIZE, step=4, key=state.TR_IMAGE_SIZE,
    )  # fmt: skip
    return dataset_spec(FOLDER_CHOICE, st.session_state.get(state.TR_FOLDER) or ""), int(size)


def new_run_form(kind: str, data: str, image_size: int | None) -> None:
    """The generated form; on submit, validate and start the job (errors shown, nothing run).

    Raises
    ------
    LsxError
        The dataset cannot be opened (the page shows the message).
    """
    root = state.checkpoints_root()
    dataset = data_summary(data, image_size)
    c, h, w = dataset.input_shape
    lazy = ""
    if dataset.lazy:
        n = dataset.n_train + dataset.n_test
        lazy = f", read lazily ({n:,} images; set workers below to read in parallel)"
    notes = f" Notes: {'; '.join(dataset.notes)}." if dataset.notes else ""
    st.caption(
        f"{dataset.n_train:,} train + {dataset.n_test:,} test images of {c}×{h}×{w}, "
        f"{len(dataset.class_names)} classes{lazy}.{notes} The run lands in `{root}/`."
    )
    m_specs, t_specs = model_specs(kind, dataset), train_specs()
    with st.form("tr_form"):
        st.markdown(f"**Model** · `{kind}` · {MODELS[kind].summary}")
        model_raw = forms.draw(m_specs, f"tr_m_{kind}_")
        st.markdown("**Training**")
        train_raw = forms.draw(t_specs, "tr_t_")
        st.text_input("Run name", key=state.TR_NAME, placeholder=default_name(kind, data))
        submitted = st.form_submit_button("Start training", type="primary")
    if not submitted:
        return
    try:
        request = prepare_request(
            root, st.session_state[state.TR_NAME], kind, data, image_size,
            forms.parse_values(m_specs, model_raw), forms.parse_values(t_specs, train_raw),
        )  # fmt: skip
        st.session_state[state.TR_RUN] = str(start_job(request))
    except LsxError as err:
        st.error(str(err))
        return
    st.rerun()  # the progress panel (above the form) now watches the new job


def run_chooser() -> str | None:
    """Which job to watch: this session's, or any run in progress or incomplete."""
    root = state.checkpoints_root()
    names = watchable_runs(root)
    mine = st.session_state[state.TR_RUN]
    if mine is not None and Path(mine).name not in names and Path(mine).parent == root:
        names.insert(0, Path(mine).name)
    if not names:
        st.caption(
            "No run in progress. Start one under **New run** below; it keeps running if you "
            "leave the page."
        )
        return None
    index = names.index(Path(mine).name) if mine is not None and Path(mine).name in names else 0
    name = st.selectbox("Run", names, index=index, help="Runs in progress or incomplete.")
    st.session_state[state.TR_RUN] = str(root / name)
    return str(root / name)


def live_panel(run_dir: str) -> None:
    """Progress, curves, log, snapshots and controls of one run; polls while its job runs.

    While the job runs, progress, curves and log refresh every 2 s and the latent snapshots
    (the heaviest figure) every 10 s. When the job has just completed, the run becomes the chosen
    checkpoint (sidebar).
    """
    view = job_view(Path(run_dir))
    if view.active:
        _poll(run_dir)
        _poll_snapshots(run_dir)
        return
    if view.done and st.session_state[state.TR_SEEN_DONE] != run_dir:
        st.session_state[state.TR_SEEN_DONE] = run_dir
        st.session_state[state.RUN_DIR] = run_dir  # the picker shows the new run at once
        st.rerun()
    _render(view)
    _snapshots(view.run_dir)


@st.fragment(run_every="2s")
def _poll(run_dir: str) -> None:
    view = job_view(Path(run_dir))
    if not view.active:
        st.rerun(scope="app")  # the final view; the picker lists the finished run
    _render(view)


@st.fragment(run_every="10s")
def _poll_snapshots(run_dir: str) -> None:
    _snapshots(Path(run_dir))


def _render(view: JobView) -> None:
    name = view.run_dir.name
    st.markdown(f"**{name}** · {HEADLINES[view.state]}")
    if not view.done:  # a finished job gets the green box below, not a full (red) bar
        st.progress(view.fraction, text=view.progress_text() if view.epochs else "starting …")
    if view.active:
        st.button(
            "Cancel", key=f"tr_cancel_{name}", on_click=cancel_job, args=(view.run_dir,),
            disabled=view.state == "stopping", help="SIGTERM: save a checkpoint and stop.",
        )  # fmt: skip
    elif view.done:
        st.success(
            f"{view.message or 'Done'} ({view.progress_text()}). The run is in the checkpoint "
            "picker (sidebar).",
            icon=":material/check_circle:",
        )
    elif view.state == "stopped":
        st.warning(
            f"Stopped at epoch {view.epoch}/{view.epochs}: the last good checkpoint is kept but "
            "marked incomplete, so the picker lists it only once it is resumed and completes."
        )
    if view.error:
        st.error(view.error)
    if view.resumable:
        _resume_controls(view)
    history = read_jsonl(view.run_dir / METRICS_NAME)
    if not history:  # no empty placeholder chart: say when the curves will appear
        st.caption("No epoch has finished yet: the loss curves appear after the first one.")
    else:
        st.plotly_chart(loss_curves(history))
    metrics = metric_curves(history)
    if metrics is not None:
        with st.expander("Other metrics per epoch"):
            st.plotly_chart(metrics)
    with st.expander("Log", expanded=view.state in ("failed", "crashed")):
        st.code(tail(view.run_dir) or "(empty)", language=None)


def _snapshots(run_dir: Path) -> None:
    snaps = snapshot_view(run_dir)
    if snaps is None:
        return
    st.markdown(
        f"**Latent snapshots** · {len(snaps.labels):,} fixed test points per epoch; PCA, each "
        "epoch rotated onto the previous one (Procrustes). Play, or drag the slider."
    )
    fig = snapshot_animation(snaps.frames, snaps.epochs, snaps.labels, snaps.class_names)
    st.plotly_chart(fig)


def _resume_controls(view: JobView) -> None:
    first = max(1, view.epoch + 1)
    epochs = st.number_input(
        "Train up to epoch", min_value=first, value=max(view.epochs, first), step=1,
        key=f"{state.TR_RESUME_EPOCHS}_{view.run_dir.name}",
    )  # fmt: skip
    if st.button("Resume", key=f"tr_resume_{view.run_dir.name}", type="primary"):
        try:
            request = resume_request(view.run_dir.parent, view.run_dir.name, int(epochs))
            st.session_state[state.TR_RUN] = str(start_job(request))
        except LsxError as err:
            st.error(str(err))
            return
        st.rerun()
