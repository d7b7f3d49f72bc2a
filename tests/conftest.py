"""Shared test set-up: the repository root is importable (`app`, `lab`, `tests`), and torch uses
one thread: the lab's models are tiny, and on a small shared machine one intra-op thread is
several times faster than many (the app and the CLI do the same, lab.device.configure_threads)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("NLL_COMPILE", "0")   # eager numbers, no compiler waits (lab.memory.compiled)

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from lab.device import configure_threads  # noqa: E402

configure_threads()
