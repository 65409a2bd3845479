"""Hatchling build hook (pyproject.toml): put the repository's ``app.py`` into the wheel as
``lsx/_app/app.py``, beside ``pages/`` and ``.streamlit/`` (mapped there by ``sources``).

Only for the standard wheel: an editable install (``pip install -e .``) puts the clone itself on
``sys.path`` and runs the repository's own ``app.py``, so it must not get a stray copy.
"""

from __future__ import annotations

from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class AppFileHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name == "wheel" and version == "standard":
            build_data["force_include"]["app.py"] = "lsx/_app/app.py"
