"""Shared test set-up: the repository root is importable (`app`, `lab`, `tests`), and torch uses
one thread: the lab's models are tiny, and on a small shared machine one intra-op thread is
several times faster than many (the app does the same, app.components.shell.configure_torch)."""
from __future__ import annotations

import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

torch.set_num_threads(1)
