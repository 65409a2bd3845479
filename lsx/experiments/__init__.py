"""Reproducible experiments: each is a ``python -m lsx <command>`` listed in lsx.cli.COMMANDS."""
