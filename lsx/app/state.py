"""Session-state keys of the app and :func:`init`, which every page calls first.

Keys are constants here so pages never spell them by hand. Shared keys have no prefix; keys that
belong to one page carry its prefix (``lm_`` for the Latent map). Widget values do not survive a
page switch, so the chosen run lives under the plain (non-widget) key ``RUN_DIR``.
Nothing here is module-level mutable state: the values live in ``st.session_state`` (per browser
session). The bottom of the app layer: this module imports nothing from ``lsx.app`` (every other
app module may import it).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import streamlit as st

from lsx.paths import user_checkpoints

CHECKPOINTS_ENV = "LSX_CHECKPOINTS"
THREADS_ENV = "LSX_TORCH_THREADS"
DEFAULT_CHECKPOINTS = Path(__file__).resolve().parents[2] / "checkpoints"
PAGE_ICON = Path(__file__).resolve().parent / "assets" / "icon.png"  # shipped: no icon CDN

# shared (every page)
RUN_DIR = "run_dir"  # str path of the chosen run folder, or None; set by widgets.run_picker
RUN_PICKER = "run_picker_widget"  # the picker widget's own key (copied into RUN_DIR)

# Latent map page (pages/2_latent_map.py)
LM_METHOD = "lm_method"
LM_SEED = "lm_seed"
LM_3D = "lm_3d"
LM_SPLIT = "lm_split"
LM_COLOR = "lm_color"
LM_LATENT_DIM = "lm_latent_dim"
LM_CAP = "lm_cap"
LM_DECODE_ID = "lm_decode_id"
LM_CHART = "lm_chart"  # st.plotly_chart selection state
LM_CENTERS = "lm_centers"  # draw configured centres and spheres on the map
LM_SANITY_ATTR = "lm_sanity_attr"  # label attribute of the cluster sanity table
LM_MISASSIGNED_IMAGES = "lm_misassigned_images"  # show the ranked mistakes as images
LM_SOURCE = "lm_source"  # "" = the run's dataset, else the path of one of the run's latent stores
LMS_METHOD = "lms_method"  # latent-store map (lsx.app.store_map): projection, seed, colour, chart
LMS_SEED = "lms_seed"
LMS_COLOR = "lms_color"
LMS_CHART = "lms_chart"
LMS_LATENT_DIM = "lms_latent_dim"  # colour "latent": which dimension
LMS_CONTOURS = "lms_contours"  # density contours over the map
LMS_RENDERER = "lms_renderer"  # "webgl" (every point) or "plotly"; None: by the store's size
LMS_POINTMAP = "lms_pointmap"  # the WebGL map's component state (its last selection)
LMS_K_AUTO = "lms_k_auto"  # clusters of a store (lsx.app.store_structure): k by silhouette ...
LMS_K = "lms_k"  # ... or this k
LMS_GALLERY = "lms_gallery"  # the gallery shows: the map's selection, top outliers, a cluster
LMS_GALLERY_CLUSTER = "lms_gallery_cluster"
LMS_EXEMPLARS = "lms_exemplars"  # show each cluster's exemplar images
LMS_DUP_THRESHOLD = "lms_dup_threshold"  # near-duplicates: distance (None: from the store)
LMS_DUP_FIND = "lms_dup_find"
LMS_DRIFT = "lms_drift"  # path of the store compared with this one ("" = none)
# Latent map: generation panels (lsx.app.generate), tags and exports (lsx.app.tags),
# the URL (lsx.app.share)
LM_GEN_PANEL = "lm_gen_panel"  # which generation panel is open ("off", "decode", "traverse", ...)
LM_GEN_X = "lm_gen_x"  # map position decoded by "decode anywhere"
LM_GEN_Y = "lm_gen_y"
LM_GEN_CLICK = "lm_gen_click"  # last clicked position (a new click overwrites x/y once)
LM_GEN_KIND = "lm_gen_kind"  # traversal directions: dims, pca, active, centres
LM_GEN_DIMS = "lm_gen_dims"  # text: "0-7" or "0,3,5"; "" = the first 8
LM_GEN_RANGE = "lm_gen_range"  # traversal from -k to +k standard deviations
LM_GEN_BASE = "lm_gen_base"  # traversal / edit start: -1 = the mean, else a sample id
LM_GEN_A = "lm_gen_a"  # interpolation ends (sample ids)
LM_GEN_B = "lm_gen_b"
LM_GEN_STEPS = "lm_gen_steps"
LM_GEN_MODE = "lm_gen_mode"  # "linear" or "slerp"
LM_GEN_N = "lm_gen_n"  # samples drawn
LM_GEN_SEED = "lm_gen_seed"
LM_GEN_CLASS = "lm_gen_class"  # sae: class whose sphere is sampled
LM_GEN_EDIT_A = "lm_gen_edit_a"  # attribute arithmetic: "class:<name>" or "tag:<name>"
LM_GEN_EDIT_B = "lm_gen_edit_b"
LM_GEN_STRENGTH = "lm_gen_strength"
LM_TAG_SOURCE = "lm_tag_source"  # "" = the map selection, else a tag name used as the selection
LM_TAG_NAME = "lm_tag_name"  # name typed for a new tag
LM_TAG_DELETE = "lm_tag_delete"  # tag picked for deletion
LM_TAG_CONFIRM = "lm_tag_confirm"  # tag awaiting "yes, delete" (None: nothing to confirm)
LM_TAG_MESSAGE = "lm_tag_message"  # (kind, text) shown once after a tag action
LM_TAG_DROPPED = "lm_tag_dropped"  # tag just deleted (the selection falls back silently)
LM_URL_READ = "lm_url_read"  # the page read the URL's view once in this session
LM_PINNED = "lm_pinned"  # ids selected by the URL (?ids=...), until a map selection replaces them

# Lookup page (pages/3_lookup.py)
LU_UPLOADS = "lu_uploads"  # st.file_uploader
LU_DETAIL = "lu_detail"  # which upload the detail panel shows
LU_DB = "lu_db"  # search database: "" = the run's own dataset, else a dataset name
LU_K = "lu_k"  # neighbours per upload / text-search results
LU_QUERY = "lu_query"  # text search box
LU_DECODE_LOG = "lu_decode_log"  # ((monotonic time, pixels), ...) decoded in the last minute
LU_DECODED = "lu_decoded"  # ((file id, pixels), ...) uploads this session already decoded

# Train page (pages/1_train.py)
TR_KIND = "tr_kind"  # model kind of the new-run form
TR_DATA = "tr_data"  # dataset name, or FOLDER_CHOICE / NPY_CHOICE
TR_FOLDER = "tr_folder"  # path of the user's image folder
TR_NPY = "tr_npy"  # path of the user's .npy file of images (NPY_CHOICE)
TR_IMAGE_SIZE = "tr_image_size"  # side length the folder's images are resized to
TR_NAME = "tr_name"  # run name ("" = kind-data-time)
TR_RUN = "tr_run"  # str path of the run folder the live view watches, or None
TR_SEEN_DONE = "tr_seen_done"  # run folder whose completion was already shown in the picker
TR_RESUME_EPOCHS = "tr_resume_epochs"

# Compare page (pages/7_compare.py)
CMP_A = "cmp_a"  # str path of checkpoint A (default: the sidebar run)
CMP_B = "cmp_b"  # str path of checkpoint B
CMP_DATA = "cmp_data"  # dataset both are encoded on, when they were trained on different ones
CMP_METHOD = "cmp_method"
CMP_K = "cmp_k"
CMP_COLOR = "cmp_color"
CMP_CAP = "cmp_cap"
CMP_CHART = "cmp_chart"  # st.plotly_chart selection state
CMP_RANKED = "cmp_ranked"  # selected rows of the "most changed" table

# Atoms page (pages/4_atoms.py)
AT_SPLIT = "at_split"  # which images the usage statistics cover: all, train or test
AT_PARTNER = "at_partner"  # str path of the run compared with (scvae <-> vqvae), or None
AT_GALLERY = "at_gallery"  # atom gallery: "effect" (effect + top patches), "alone" or "mean"
AT_PHOTO = "at_photo"  # segmentation image: a built-in photo name or "upload:<n>"
AT_UPLOADS = "at_uploads"  # st.file_uploader of images to segment
AT_K = "at_k"  # k-means clusters
AT_SEED = "at_seed"  # k-means seed
AT_SCALE = "at_scale"  # the image is rescaled by this before tiling

# Manifold page (pages/6_manifold.py)
MF_RUNS = "mf_runs"  # list of str run folders compared (non-widget copy), or None = default
MF_RUNS_WIDGET = "mf_runs_widget"  # the multiselect's own key
MF_PERTURBATION = "mf_perturbation"
MF_LEVELS = "mf_levels"  # text, e.g. "0, 0.05, 0.1"; "" = the perturbation's defaults
MF_N_IMAGES = "mf_n_images"  # test images swept per model
MF_CENTERED = "mf_centered"
MF_RTOL = "mf_rtol"  # "auto" or a number as text
MF_SPSD_MAP = "mf_spsd_map"
MF_SEED = "mf_seed"
MF_SAMPLE = "mf_sample"  # test image followed on the latent map
MF_PATH_A = "mf_path_a"  # end images of the interpolation path (test ids)
MF_PATH_B = "mf_path_b"
MF_SPECTRA = "mf_spectra"  # show the singular-spectrum heatmaps
MF_DESCRIPTORS = "mf_descriptors"  # compute and show the global descriptors

# Consistency page (pages/5_consistency.py)
CO_OTHER = "co_other"  # str path of the run compared with, or "(none)"
CO_SET = "co_set"  # transform set ("" = the data's default)
CO_STRENGTH = "co_strength"
CO_POINTS = "co_points"  # test points evaluated (per-class sample)
CO_NLL = "co_nll"  # importance samples S of the NLL
CO_THRESHOLD = "co_threshold"  # active-unit threshold
CO_ALARM = "co_alarm"  # collapse alarm: active share of latent dims below this
CO_PAIRS = "co_pairs"  # augmented pairs drawn on the map
CO_SEED = "co_seed"
CO_METRIC = "co_metric"  # distribution shown: "kl" or "displacement"
CO_SAMPLE = "co_sample"  # test sample of the gallery

DEFAULT_CAP = 5000
DEFAULTS: Mapping[str, Any] = MappingProxyType(
    {
        RUN_DIR: None,
        LM_METHOD: "pca",  # instant; UMAP and t-SNE are computed once, then cached on disk
        LM_SEED: 0,
        LM_3D: False,
        LM_SPLIT: "all",
        LM_COLOR: None,  # None: the dataset's primary label
        LM_LATENT_DIM: 0,
        LM_CAP: DEFAULT_CAP,
        LM_DECODE_ID: 0,
        LM_CENTERS: None,  # None: on for configured (sae) runs, off for the centroid rule
        LM_SOURCE: "",
        LMS_METHOD: "pca",
        LMS_SEED: 0,
        LMS_COLOR: None,  # None: the store's primary label
        LMS_LATENT_DIM: 0,
        LMS_CONTOURS: False,
        LMS_RENDERER: None,
        LMS_K_AUTO: True,
        LMS_K: 8,
        LMS_GALLERY: "map selection",
        LMS_GALLERY_CLUSTER: 0,
        LMS_EXEMPLARS: False,
        LMS_DUP_THRESHOLD: None,
        LMS_DUP_FIND: False,
        LMS_DRIFT: "",
        LM_GEN_PANEL: "decode",
        LM_GEN_X: 0.0,
        LM_GEN_Y: 0.0,
        LM_GEN_CLICK: None,
        LM_GEN_KIND: "dims",
        LM_GEN_DIMS: "",  # "": the first 8
        LM_GEN_RANGE: 3.0,
        LM_GEN_BASE: -1,
        LM_GEN_A: 0,
        LM_GEN_B: 1,
        LM_GEN_STEPS: 8,
        LM_GEN_MODE: "slerp",
        LM_GEN_N: 16,
        LM_GEN_SEED: 0,
        LM_GEN_STRENGTH: 1.0,
        LM_TAG_SOURCE: "",
        LM_TAG_NAME: "",
        LM_TAG_CONFIRM: None,
        LM_TAG_MESSAGE: None,
        LM_TAG_DROPPED: None,
        LM_URL_READ: False,
        LM_PINNED: (),
        LU_DB: "",
        LU_K: 8,
        LU_QUERY: "",
        TR_NAME: "",
        TR_RUN: None,
        TR_SEEN_DONE: None,
        CMP_A: None,
        CMP_B: None,
        CMP_METHOD: "pca",
        CMP_K: 10,
        CMP_COLOR: "class",
        CMP_CAP: DEFAULT_CAP,
        AT_SPLIT: "all",
        AT_PARTNER: None,
        AT_GALLERY: "effect",
        AT_PHOTO: "china",
        AT_K: 4,
        AT_SEED: 0,
        AT_SCALE: 1.0,
        MF_RUNS: None,
        MF_PERTURBATION: "gaussian",
        MF_LEVELS: "",
        MF_N_IMAGES: 300,
        MF_CENTERED: True,
        MF_RTOL: "auto",
        MF_SPSD_MAP: "range_log",
        MF_SEED: 0,
        MF_SAMPLE: 0,
        MF_PATH_A: 0,
        MF_PATH_B: 1,
        MF_SPECTRA: False,
        MF_DESCRIPTORS: False,
        CO_OTHER: "(none)",
        CO_SET: "",
        CO_STRENGTH: 1.0,
        CO_POINTS: 500,
        CO_NLL: 100,  # lsx.analysis.posterior.DEFAULT_NLL_SAMPLES
        CO_THRESHOLD: 0.01,  # docs/methods.md
        CO_ALARM: 0.25,
        CO_PAIRS: 20,
        CO_SEED: 0,
        CO_METRIC: "kl",
        CO_SAMPLE: 0,
    }
)  # read-only: module-level state is shared by every session


def checkpoints_root() -> Path:
    """The folder whose run folders the picker lists.

    Returns
    -------
    Path
        ``$LSX_CHECKPOINTS`` when set, else ``<repo>/checkpoints`` in a clone or
        ``~/.lsx/checkpoints`` in an installed package (:func:`lsx.paths.user_checkpoints`).
    """
    return user_checkpoints()


def init(page_title: str | None = None) -> None:
    """Set the page config and every session key's default (idempotent: ``setdefault``).

    Call it first on every page: under auto-discovery ``app.py`` does not run when another page
    is opened directly (docs/architecture.md).

    Parameters
    ----------
    page_title : str or None
        Shown in the browser tab as "lsx · <page_title>".
    """
    st.set_page_config(
        page_title=f"lsx · {page_title}" if page_title else "lsx",
        page_icon=str(PAGE_ICON),
        layout="wide",
    )
    for key, value in DEFAULTS.items():
        st.session_state.setdefault(key, value)
    configure_torch()


@st.cache_resource(show_spinner=False)
def configure_torch() -> int:
    """Set torch's CPU thread count once per process (a cached resource runs once).

    Returns
    -------
    int
        The thread count: ``$LSX_TORCH_THREADS``, else ``min(4, cpu count)``.
    """
    import torch  # here, not at the top: the keys above are read without loading torch

    n = int(os.environ.get(THREADS_ENV, min(4, os.cpu_count() or 1)))
    torch.set_num_threads(max(1, n))
    return torch.get_num_threads()
