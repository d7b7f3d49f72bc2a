"""One colour and one label per architecture, one colour per CMS level and per task, the same on
every page.

All three sets are colour-blind safe: architectures and levels from Okabe & Ito (2008),
tasks from Paul Tol's "bright" scheme. Levels are ordered fastest (level 0) to slowest.
An architecture's display name lives here too, beside its colour (`model_label`).
"""
from __future__ import annotations

ARCH_COLORS = {"transformer": "#0072B2", "titans": "#D55E00", "hope": "#009E73"}
MODEL_LABELS = {"transformer": "Transformer", "titans": "Titans", "hope": "HOPE"}
LEVEL_COLORS = ["#E69F00", "#56B4E9", "#CC79A7", "#F0E442", "#000000", "#999999"]
TASK_COLORS = ["#4477AA", "#EE6677", "#228833", "#CCBB44", "#66CCEE", "#AA3377", "#BBBBBB", "#332288"]
SLEEP_COLOR = "#6A5ACD"
# Optimizers on the associative-memory page (Tol "bright"; no yellow, too close to level 0's orange).
# Each associative memory's colour is in its registry entry, beside its class (lab.memory.registry),
# picked from the sets here: softmax attention and Titans keep their architecture colours.
OPTIMIZER_COLORS = {"adam": "#4477AA", "muon": "#EE6677", "m3": "#228833", "momentum": "#66CCEE",
                    "adamw": "#4477AA", "sgd": "#BBBBBB"}


def arch_color(name: str) -> str:
    return ARCH_COLORS.get(name, "#555555")


def model_label(name: str) -> str:
    """The architecture's display name ("HOPE"); an unknown name is shown as it is."""
    return MODEL_LABELS.get(name, name)


def level_color(level: int) -> str:
    return LEVEL_COLORS[int(level) % len(LEVEL_COLORS)]


def task_color(index: int) -> str:
    return TASK_COLORS[int(index) % len(TASK_COLORS)]
