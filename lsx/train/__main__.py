"""``python -m lsx.train ...`` is ``python -m lsx train ...`` (see :mod:`lsx.cli`)."""

import sys

from lsx.cli import main

raise SystemExit(main(["train", *sys.argv[1:]]))
