"""Training from the app, for callers of the old module (e.g. bench/train_compare.py): the
public names of :mod:`lsx.app.train_form` (form fields, data summary, requests),
:mod:`lsx.app.train_jobs` (starting, cancelling and watching ``python -m lsx train`` jobs, on
top of :mod:`lsx.jobs`) and :mod:`lsx.app.train_page` (the page's widgets and live view).
New code imports from those modules.
"""

from __future__ import annotations

from lsx.app.train_form import (
    APP_TRAIN_DEFAULTS,
    FOLDER_CHOICE,
    NPY_CHOICE,
    PATH_CHOICES,
    PATH_PROMPTS,
    DataSummary,
    TrainRequest,
    check_name,
    data_fields,
    data_summary,
    dataset_spec,
    default_name,
    device_choices,
    is_lazy,
    model_specs,
    open_data,
    prepare_request,
    resume_request,
    summarize,
    train_specs,
)
from lsx.app.train_jobs import (
    ACTIVE_STATES,
    DONE_STATES,
    HEADLINES,
    JOB_NAME,
    LOG_LINES,
    LOG_NAME,
    JobRegistry,
    JobView,
    cancel_job,
    job_view,
    log_error,
    registry,
    start_job,
    tail,
    watchable_runs,
)
from lsx.app.train_page import (
    MAX_FRAMES,
    SnapshotView,
    dataset_picker,
    live_panel,
    new_run_form,
    run_chooser,
    snapshot_view,
)

__all__ = [
    "ACTIVE_STATES", "APP_TRAIN_DEFAULTS", "DONE_STATES", "FOLDER_CHOICE", "HEADLINES",
    "JOB_NAME", "LOG_LINES", "LOG_NAME", "MAX_FRAMES", "NPY_CHOICE", "PATH_CHOICES",
    "PATH_PROMPTS", "DataSummary", "JobRegistry", "JobView", "SnapshotView", "TrainRequest",
    "cancel_job", "check_name", "data_fields", "data_summary", "dataset_picker", "dataset_spec",
    "default_name", "device_choices", "is_lazy", "job_view", "live_panel", "log_error",
    "model_specs", "new_run_form", "open_data", "prepare_request", "registry", "resume_request",
    "run_chooser", "snapshot_view", "start_job", "summarize", "tail", "train_specs",
    "watchable_runs",
]  # fmt: skip
