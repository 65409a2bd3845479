"""``python -m lsx``: see lsx.cli."""

from lsx.cli import main

raise SystemExit(main())
