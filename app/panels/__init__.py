"""Panels a page or a lesson can place, by name (`app.panels.registry`).

Every module of this package is imported here, so a panel registered anywhere in it is in
`PANELS` as soon as `app.panels` is imported; adding panels is adding a module.
"""
from __future__ import annotations

import importlib
import pkgutil

from app.panels.registry import PANELS, Panel, panel

for _info in pkgutil.iter_modules(__path__):
    if _info.name != "registry":
        importlib.import_module(f"{__name__}.{_info.name}")

__all__ = ["PANELS", "Panel", "panel"]
