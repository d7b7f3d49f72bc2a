"""Panels a page or a lesson can place, by name (`app.panels.registry`).

Every module of this package is imported here, so a panel registered anywhere in it is in
`PANELS` as soon as `app.panels` is imported; adding panels is adding a module.
"""
from __future__ import annotations

from app.panels.registry import PANELS, Panel, panel
from lab.discovery import import_submodules

import_submodules(__name__, skip=("registry",))       # importing a module registers its panels

__all__ = ["PANELS", "Panel", "panel"]
