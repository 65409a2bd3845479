"""The ``python -m lsx`` subcommands, one module each (or one per small group).

Every command module has ``HELP`` (one line for ``--help``), ``add_arguments(parser)`` and
``run(args) -> int``; :mod:`lsx.cli` assembles the parser from them and dispatches. A new
command is a module here plus one line in ``lsx.cli.COMMANDS``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from lsx.errors import LsxError
from lsx.paths import user_checkpoints

# the folder of the user's runs: $LSX_CHECKPOINTS, else checkpoints/ in a clone or
# ~/.lsx/checkpoints in an installed package (lsx.paths, read once at start-up)
DEFAULT_ROOT = user_checkpoints()


def run_handled(handler: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run a command; an lsx error is printed as ``error: ...`` (exit 2), Ctrl-C exits 130.

    Parameters
    ----------
    handler : callable
        A command module's ``run``.
    args : argparse.Namespace
        Its parsed arguments.

    Returns
    -------
    int
        The exit code: the handler's, 2 after an :class:`~lsx.errors.LsxError`, 130 after
        KeyboardInterrupt, 141 when the reader of stdout went away (``lsx runs | head``).
    """
    try:
        return handler(args)
    except LsxError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; the last good checkpoint is intact", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `lsx runs | head`: stop quietly, as other Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit
        return 141
