"""``lsx app``: start the Streamlit app from the files that ship with lsx, from any folder.

    lsx app                                  # http://127.0.0.1:8501, runs in ~/.lsx/checkpoints
    lsx app --port 8600 --checkpoints ~/runs
    lsx app --host 0.0.0.0                   # other machines can reach it: no authentication!

Runs ``python -m streamlit run <app.py> --server.address HOST --server.port PORT`` in the
foreground with ``LSX_CHECKPOINTS`` set; the app's own settings (``.streamlit/config.toml``, which
Streamlit only reads from the current folder) are passed as flags, so they hold wherever the
command is started. In an installed package the app's files are ``lsx/_app/``, in a clone the
repository's ``app.py`` and ``pages/`` (:func:`lsx.paths.app_dir`).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

from lsx.errors import ConfigError, LsxError
from lsx.paths import CHECKPOINTS_ENV, app_dir, user_checkpoints

HELP = "start the Streamlit app (from any folder; --port, --host, --checkpoints)"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8501
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
NO_AUTH_WARNING = (
    "warning: the lsx app has no authentication. Serving on {host} lets anyone who can reach "
    "this machine on port {port} use it: browse and train runs in {root}, upload images and "
    "read the image folders the app can read. Use the default --host 127.0.0.1 (and an SSH "
    "tunnel) unless this network is trusted."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})"
    )
    parser.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"address to bind (default {DEFAULT_HOST}: this machine only; the app has no "
        "authentication)",
    )
    parser.add_argument(
        "--checkpoints",
        type=Path,
        default=None,
        help="folder of your runs (default: $LSX_CHECKPOINTS, else checkpoints/ in a clone or "
        "~/.lsx/checkpoints in an installed package); the shipped demo runs are listed too",
    )


def config_flags(config_file: Path) -> list[str]:
    """The settings of a Streamlit ``config.toml`` as ``--section.key=value`` flags.

    Parameters
    ----------
    config_file : Path
        A ``.streamlit/config.toml``; a missing file gives no flags.

    Returns
    -------
    list of str
        E.g. ``["--server.headless=true", "--theme.base=light"]``.

    Raises
    ------
    LsxError
        The file is not valid TOML.
    """
    if not config_file.is_file():
        return []
    try:
        config: dict[str, Any] = tomllib.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise LsxError(
            f"The app's settings {config_file} could not be read ({err}); reinstall lsx."
        ) from err
    flags = []
    for section, values in config.items():
        for key, value in (values if isinstance(values, dict) else {}).items():
            text = str(value).lower() if isinstance(value, bool) else str(value)
            flags.append(f"--{section}.{key}={text}")
    return flags


def command(host: str, port: int) -> list[str]:
    """The ``python -m streamlit run`` command line for the app's files.

    Raises
    ------
    LsxError
        The app's ``app.py`` is missing (a broken install).
    """
    folder = app_dir()
    script = folder / "app.py"
    if not script.is_file():
        raise LsxError(
            f"The app's entry file {script} is missing; reinstall lsx (pip install lsx from a "
            "clone: pip install .) or run from a clone."
        )
    flags = config_flags(folder / ".streamlit" / "config.toml")
    return [
        sys.executable, "-m", "streamlit", "run", str(script), *flags,
        f"--server.address={host}", f"--server.port={port}",
    ]  # fmt: skip


def run(args: argparse.Namespace) -> int:
    if not 1 <= args.port <= 65535:
        raise ConfigError(f"--port must be between 1 and 65535; got {args.port}.")
    root = Path(args.checkpoints).expanduser() if args.checkpoints else user_checkpoints()
    root = root.absolute()
    if root.exists() and not root.is_dir():
        raise ConfigError(
            f"--checkpoints must be a folder of runs; {root} is a file. Pass a folder (it is "
            "created when the first run is trained)."
        )
    if args.host not in LOCAL_HOSTS:
        print(NO_AUTH_WARNING.format(host=args.host, port=args.port, root=root), file=sys.stderr)
    argv = command(args.host, args.port)
    env = {**os.environ, CHECKPOINTS_ENV: str(root)}
    print(f"lsx app: runs in {root}; http://{args.host}:{args.port}", file=sys.stderr)
    try:
        proc = subprocess.Popen(argv, env=env)
    except OSError as err:
        raise LsxError(f"Could not start Streamlit ({err}); is streamlit installed?") from err
    try:
        return proc.wait()
    except KeyboardInterrupt:  # Ctrl-C reaches Streamlit too (same process group): let it stop
        try:
            return proc.wait(timeout=10)
        except (subprocess.TimeoutExpired, KeyboardInterrupt):
            proc.terminate()
            return proc.wait()
