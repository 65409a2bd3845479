"""The version of lsx: one place, read by the build (pyproject's hatch version path), run
folders and caches (which record it), below every other module so any of them may import it."""

__version__ = "0.1.0"
