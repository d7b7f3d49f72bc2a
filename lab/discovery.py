"""Registries that fill themselves: every module of a package, imported (each registers what it
defines), so adding a memory, a task kind, a session, a benchmark or a panel is adding a module."""
from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType


def import_submodules(package: str, skip: tuple[str, ...] = ()) -> list[ModuleType]:
    """Every module of `package` (by dotted name) but those named in `skip`, imported (each once:
    calling again imports only what is new)."""
    return [importlib.import_module(f"{package}.{info.name}")
            for info in pkgutil.iter_modules(importlib.import_module(package).__path__) if info.name not in skip]
