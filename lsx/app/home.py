"""The app's entry: the page list of the ``st.navigation`` router in ``app.py`` and the Home page.

``app.py`` routes with ``st.navigation`` so the first page is called "Home" (under auto-discovery
the sidebar names it after its file, "app"). The other pages stay files in ``pages/``, discovered
here in file order, with the same URL paths as under auto-discovery (``pages/2_latent_map.py`` ->
``/latent_map``), so deep links keep working in both modes: a fresh server serves a first visit
straight to ``/latent_map`` in auto-discovery mode before ``app.py`` has run (docs/architecture.md).

Home opens on a chosen demo run (:data:`DEMO_RUNS`, the first one present) when nothing is chosen
yet: its latent map (PCA of a per-class sample of 1,000 test images; only those are encoded, not
the whole dataset) and one obvious next step, the Latent map page.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import streamlit as st

from lsx import __version__
from lsx.app import cache, state, widgets
from lsx.errors import LsxError

PAGES_DIR = Path(__file__).resolve().parents[2] / "pages"
DEMO_RUNS = ("demo-vae-mnist5k", "demo-vae-digits", "demo-ae-digits")  # first present is chosen
LATENT_MAP_PAGE = "pages/2_latent_map.py"
HOME_ICON = ":material/home:"
MAP_POINTS = 1000  # test points on Home's picture (only these are encoded)


def page_title(path: Path) -> str:
    """``2_latent_map.py`` -> ``"Latent map"`` (the numeric prefix sets the order only)."""
    stem = re.sub(r"^\d+_", "", path.stem)
    return stem.replace("_", " ").capitalize()


def url_path(path: Path) -> str:
    """``2_latent_map.py`` -> ``"latent_map"``: the path auto-discovery gives the same file."""
    return re.sub(r"^\d+_", "", path.stem)


def page_files(pages_dir: Path = PAGES_DIR) -> list[Path]:
    """The page files of ``pages_dir``, in their numeric order."""

    def order(p: Path) -> tuple[int, str]:
        m = re.match(r"^(\d+)_", p.name)
        return (int(m.group(1)) if m else 10**6, p.name)

    return sorted((p for p in pages_dir.glob("*.py") if not p.name.startswith("_")), key=order)


def pages(home: Callable[[], None], pages_dir: Path = PAGES_DIR) -> list:
    """The router's pages: ``home`` (default, titled "Home"), then every file of ``pages_dir``
    (the ``pages/`` folder beside ``app.py``; in a wheel both live in ``lsx/_app/``)."""
    entries = [st.Page(home, title="Home", icon=HOME_ICON, url_path="home", default=True)]
    for path in page_files(pages_dir):
        entries.append(st.Page(str(path), title=page_title(path), url_path=url_path(path)))
    return entries


def default_run() -> str | None:
    """The first of :data:`DEMO_RUNS` that is a valid run of the checkpoints folder, else None."""
    runs, _ = cache.runs(state.checkpoints_root())
    by_name = {info.name: str(info.run_dir) for info in runs}
    return next((by_name[name] for name in DEMO_RUNS if name in by_name), None)


def preselect_demo() -> None:
    """Choose the default demo run when no run is chosen yet (and the URL names none)."""
    if st.session_state.get(state.RUN_DIR) is None and not st.query_params.get("run"):
        st.session_state[state.RUN_DIR] = default_run()


@st.cache_data(max_entries=8, show_spinner=False)
def _sample_map(run_dir: str, sha: str, data_hash: str) -> tuple[np.ndarray, np.ndarray]:
    """PCA coordinates and test-split positions of a per-class sample of MAP_POINTS test images.

    Only the shown images are encoded, and not decoded: the picture needs no reconstruction
    errors, and encoding the whole dataset (the Latent map's work) would make the first visit
    of a fresh server several times slower.
    """
    from lsx.analysis import encode_array, project, sample_per_class

    model, _ = cache.load_run(run_dir, sha)
    ds, _ = cache.run_dataset(run_dir)
    keep = np.asarray(sample_per_class(ds.y_test, MAP_POINTS, seed=0), dtype=np.int64)
    z = encode_array(model, ds.x_test[keep])
    return project(z, "pca", 2, seed=0), keep


def _picture(run_dir: str, dataset: str) -> None:
    """The chosen run's latent map: PCA of (at most MAP_POINTS) test points, by class."""
    from lsx.viz.latent import latent_scatter

    run = cache.open_run(run_dir)
    coords, keep = _sample_map(run_dir, run.sha, run.dataset.content_hash)
    n_train = len(run.dataset.x_train)
    y = run.dataset.y_test
    fig = latent_scatter(
        coords, keep + n_train, color=y[keep],
        categories=list(run.dataset.class_names), color_title=run.dataset.primary,
        axis_titles=("PC 1", "PC 2"), height=420,
    )  # fmt: skip
    st.plotly_chart(fig, key="home_map")
    st.markdown(
        f"{len(keep):,} test images of `{dataset}` placed by "
        f"**{Path(run_dir).name}**'s encoder (PCA of their latent codes), coloured by "
        f"{run.dataset.primary}. Nearby points are images the model finds similar."
    )


def render() -> None:
    """The Home page: a chosen run, its latent map, the next step, the runs, how to train."""
    state.init("Home")
    preselect_demo()
    info = widgets.run_picker()
    st.title("lsx · latent-space explorer")
    st.markdown(
        "Train an autoencoder on a small image dataset or your own image folder, then explore "
        "its latent space: where each input lands, how well it is reconstructed, and what the "
        "decoder makes of any point."
    )
    root = state.checkpoints_root()
    runs, skipped = cache.runs(root)
    if info is not None:
        st.subheader(f"{info.name} · {info.kind} on {info.dataset}")
        try:
            _picture(str(info.run_dir), info.dataset)
        except LsxError as err:
            st.error(str(err))
        st.page_link(
            LATENT_MAP_PAGE, label="Next: explore this map on the Latent map page",
            icon=":material/scatter_plot:",
        )  # fmt: skip
    _runs_and_training(runs, skipped, root)


def _runs_and_training(runs: list, skipped: list, root: Path) -> None:
    st.subheader("Runs")
    if runs:
        st.caption(f"{len(runs)} valid run(s) in `{root}`. Pick one in the sidebar (**Run**).")
        st.dataframe(widgets.run_rows(runs), hide_index=True)
    else:
        st.info(
            f"No trained runs in `{root}` yet. Train one with the command below, or point the "
            f"`{state.CHECKPOINTS_ENV}` environment variable at a folder of runs."
        )
    if skipped:
        st.warning(
            f"Skipped {len(skipped)} entr{'y' if len(skipped) == 1 else 'ies'} that are not "
            "valid runs: "
            + "; ".join(
                f"**{widgets.md_escape(name)}** ({widgets.md_escape(reason)})"
                for name, reason in skipped
            )
        )
    st.subheader("Train a run")
    st.code(widgets.TRAIN_COMMAND, language="bash")
    st.caption(
        f"Kinds: {widgets.registry_list('kinds')}; datasets: {widgets.registry_list('datasets')}, "
        f"`folder:PATH`. The run lands in `{root}/`. `python -m lsx --help` lists every option."
    )
    _plugin_kinds()
    st.caption(f"lsx {__version__}")


def _plugin_kinds() -> None:
    """The kinds installed packages add (with package and version), and each plugin that could
    not be loaded, once, with its package and the reason; nothing when there are neither."""
    from lsx.models import MODELS, PLUGIN_PROBLEMS, PLUGINS

    if not PLUGINS and not PLUGIN_PROBLEMS:
        return
    st.subheader("Model kinds from installed packages")
    if PLUGINS:
        rows = [
            {"kind": kind, "model": MODELS[kind].label, "package": plugin.package,
             "version": plugin.version, "what": MODELS[kind].summary}
            for kind, plugin in PLUGINS.items()
        ]  # fmt: skip
        st.dataframe(rows, hide_index=True)
        st.caption("Trained, listed and opened like the built-in kinds (docs/own-model.md).")
    for problem in PLUGIN_PROBLEMS:
        st.error(f"Not loaded: {problem}. Fix or uninstall the package, then restart the app.")
