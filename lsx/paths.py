"""Where lsx reads runs from and writes caches to: the one place that decides.

lsx runs in two layouts:

- **From a clone** (``python -m lsx``, ``streamlit run app.py``, or ``pip install -e .``): the
  app is the repository's ``app.py`` and ``pages/``, and the repository's ``checkpoints/``
  holds both the shipped demo runs and the user's runs (the default, as before).
- **From an installed wheel** (``pip install .``, then ``lsx app`` from any folder): the app's
  files and the demo runs ship inside the package (``lsx/_app/`` and ``lsx/_demo/``). The
  user's runs live in ``$LSX_CHECKPOINTS`` or ``~/.lsx/checkpoints``; the demo runs are listed
  beside them, read-only, and nothing is ever written inside the package: a demo run's
  projection cache goes to the user cache folder (:func:`run_cache_dir`).

In both layouts ``$LSX_CHECKPOINTS`` (``lsx app --checkpoints DIR`` sets it) names the folder of
the user's runs. Paths typed into the app (the Train page's image folder or ``.npy`` file, the
Large datasets page's source) must lie inside a data root (:func:`app_data_path`):
``$LSX_DATA_ROOTS``, else the ``data/`` folder beside the runs folder. The command line reads any
path. This module sits in the base layer: it imports nothing from lsx but the errors.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from lsx.errors import ConfigError

CHECKPOINTS_ENV = "LSX_CHECKPOINTS"  # the folder of the user's runs
CACHE_ENV = "LSX_CACHE_DIR"  # the user cache folder (default: $XDG_CACHE_HOME/lsx)
HOME_CHECKPOINTS = Path("~/.lsx/checkpoints")  # the installed package's default runs folder
DATA_ROOTS_ENV = "LSX_DATA_ROOTS"  # folders the app may read datasets from, os.pathsep-separated

PACKAGE_DIR = Path(__file__).resolve().parent
PACKAGED_APP = PACKAGE_DIR / "_app"  # app.py, pages/, .streamlit/ in a wheel
PACKAGED_DEMOS = PACKAGE_DIR / "_demo"  # checkpoints/demo-* in a wheel
REPO_ROOT = PACKAGE_DIR.parent  # the clone's root (meaningless in an installed wheel)


def is_installed() -> bool:
    """Whether lsx runs from an installed wheel (app and demo runs inside the package).

    Returns
    -------
    bool
        True when ``lsx/_app/app.py`` exists, which only a wheel built from ``pyproject.toml``
        has; False in a clone and in an editable install.
    """
    return (PACKAGED_APP / "app.py").is_file()


def app_dir() -> Path:
    """The folder that holds the Streamlit app's ``app.py``, ``pages/`` and ``.streamlit/``.

    Returns
    -------
    Path
        ``lsx/_app`` in an installed wheel, else the clone's root.
    """
    return PACKAGED_APP if is_installed() else REPO_ROOT


def demo_checkpoints() -> Path:
    """The folder of the shipped demo runs (``demo-*``), read-only in an installed wheel.

    Returns
    -------
    Path
        ``lsx/_demo`` in an installed wheel, else the clone's ``checkpoints/``.
    """
    return PACKAGED_DEMOS if is_installed() else REPO_ROOT / "checkpoints"


def user_checkpoints() -> Path:
    """The folder of the user's runs: where training writes and the picker looks first.

    Returns
    -------
    Path
        ``$LSX_CHECKPOINTS`` when set (``~`` expanded); else the clone's ``checkpoints/`` in a
        clone, or ``~/.lsx/checkpoints`` in an installed wheel. It need not exist yet.
    """
    env = os.environ.get(CHECKPOINTS_ENV)
    if env:
        return Path(env).expanduser()
    return HOME_CHECKPOINTS.expanduser() if is_installed() else REPO_ROOT / "checkpoints"


def extra_roots(root: Path) -> list[Path]:
    """Folders listed after ``root``: the packaged demo runs, in an installed wheel only.

    In a clone the demo runs already sit in the default folder, and a folder named with
    ``$LSX_CHECKPOINTS`` lists exactly its own runs (as the tests expect).

    Parameters
    ----------
    root : Path
        The user's runs folder being listed.

    Returns
    -------
    list of Path
        ``[lsx/_demo]`` in an installed wheel unless ``root`` is that folder; else ``[]``.
    """
    if not is_installed() or _same(Path(root), PACKAGED_DEMOS):
        return []
    return [PACKAGED_DEMOS]


def checkpoint_roots() -> list[Path]:
    """Every folder whose runs are listed, in priority order (a name found first wins).

    Returns
    -------
    list of Path
        ``[user_checkpoints()]`` in a clone; ``[user_checkpoints(), lsx/_demo]`` in an
        installed wheel.
    """
    root = user_checkpoints()
    return [root, *extra_roots(root)]


def user_cache_dir() -> Path:
    """The user cache folder: ``$LSX_CACHE_DIR``, else ``$XDG_CACHE_HOME/lsx``, else
    ``~/.cache/lsx``."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path("~/.cache").expanduser()) / "lsx"


def is_packaged_run(run_dir: Path) -> bool:
    """Whether ``run_dir`` lies inside the installed package (a shipped demo run)."""
    try:
        Path(run_dir).resolve().relative_to(PACKAGE_DIR)
    except ValueError:
        return False
    return True


def run_cache_dir(run_dir: Path, subdir: str = "cache") -> Path:
    """Where the disk cache of a run's embeddings and projections lives.

    Parameters
    ----------
    run_dir : Path
        The run folder.
    subdir : str
        The cache's folder name inside a run folder.

    Returns
    -------
    Path
        ``<run_dir>/<subdir>`` for a run of the user's; for a run inside the installed package,
        ``<user cache>/runs/<name>-<hash of its path>/<subdir>``, so nothing is written into
        the package.
    """
    run_dir = Path(run_dir)
    if not is_packaged_run(run_dir):
        return run_dir / subdir
    digest = hashlib.sha256(str(run_dir.resolve()).encode()).hexdigest()[:12]
    return user_cache_dir() / "runs" / f"{run_dir.name}-{digest}" / subdir


def find_run(name: str, roots: list[Path] | None = None) -> Path | None:
    """The first ``<root>/<name>`` folder among ``roots`` (default :func:`checkpoint_roots`).

    Parameters
    ----------
    name : str
        A run folder's name, e.g. ``"demo-vae-mnist5k"``.
    roots : list of Path or None

    Returns
    -------
    Path or None
        The folder, or None when no root holds one of that name.
    """
    if not name or Path(name).name != name or name.startswith("."):
        return None
    for root in roots if roots is not None else checkpoint_roots():
        candidate = Path(root) / name
        if candidate.is_dir():
            return candidate
    return None


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def data_roots() -> list[Path]:
    """The folders whose images the app may read: ``$LSX_DATA_ROOTS`` (separated by
    ``os.pathsep``), else the ``data/`` folder beside the user's runs folder.

    Returns
    -------
    list of Path
        Absolute, symbolic links resolved; a root need not exist.
    """
    env = os.environ.get(DATA_ROOTS_ENV, "")
    roots = [Path(p).expanduser() for p in env.split(os.pathsep) if p.strip()]
    if not roots:
        roots = [user_checkpoints().parent / "data"]
    return [Path(os.path.realpath(r)) for r in roots]


def app_data_path(text: str) -> Path:
    """A dataset path typed into the app, allowed only inside a data root.

    The path is made absolute (a relative path is taken inside the first root), then every
    symbolic link and ``..`` is resolved; the result must lie inside one of :func:`data_roots`.
    The refusal is the same whether or not the path exists, so the app never tells a visitor
    what the server holds outside its data folders.

    Parameters
    ----------
    text : str
        The path as typed (``~`` is expanded).

    Returns
    -------
    Path
        The resolved path, inside a data root.

    Raises
    ------
    ConfigError
        The path resolves outside every data root; the message names the roots and how to add
        one.
    """
    roots = data_roots()
    raw = Path(text.strip()).expanduser()
    real = Path(os.path.realpath(raw if raw.is_absolute() else roots[0] / raw))
    if any(real == root or root in real.parents for root in roots):
        return real
    shown = ", ".join(str(r) for r in roots)
    raise ConfigError(
        f"The app reads datasets only from its data folders ({shown}); that path is not inside "
        "one. Put the images or the .npy file in a data folder (a relative path is taken inside "
        f"the first), or start the app with {DATA_ROOTS_ENV}=/your/folder (several separated by "
        f"'{os.pathsep}'). The command line (`lsx train --data folder:PATH`) reads any path."
    )
