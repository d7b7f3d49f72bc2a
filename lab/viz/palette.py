"""One colour and one label per architecture, one colour per CMS level and per task, the same on
every page.

All three sets are colour-blind safe: architectures and levels from Okabe & Ito (2008),
tasks from Paul Tol's "bright" scheme. Levels are ordered fastest (level 0) to slowest.
An architecture's display name lives here too, beside its colour (`model_label`).
"""
from __future__ import annotations

ARCH_COLORS = {"transformer": "#0072B2", "titans": "#D55E00", "hope": "#009E73"}
MODEL_LABELS = {"transformer": "Transformer", "titans": "Titans", "hope": "HOPE"}
# A variant of an architecture is named "arch/mode" (lab.deploy): "hope1/cms_online+sleep" is HOPE with one
# CMS level, its levels learning online, with sleep. It takes its architecture's colour.
MODE_LABELS = {"frozen": "frozen", "finetune": "fine-tuned", "replay": "replay", "cms_online": "CMS online"}
LEVEL_COLORS = ["#E69F00", "#56B4E9", "#CC79A7", "#F0E442", "#000000", "#999999"]
TASK_COLORS = ["#4477AA", "#EE6677", "#228833", "#CCBB44", "#66CCEE", "#AA3377", "#BBBBBB", "#332288"]
SLEEP_COLOR = "#6A5ACD"
# Optimizers on the associative-memory page (Tol "bright"; no yellow, too close to level 0's orange).
# Each associative memory's colour is in its registry entry, beside its class (lab.memory.registry),
# picked from the sets here: softmax attention and Titans keep their architecture colours.
OPTIMIZER_COLORS = {"adam": "#4477AA", "muon": "#EE6677", "m3": "#228833", "momentum": "#66CCEE",
                    "adamw": "#4477AA", "sgd": "#BBBBBB"}


def _family(name: str) -> tuple[str, str]:
    """("hope", "1") for "hope1/cms_online": the family and the number of levels it was given."""
    arch = name.split("/", 1)[0]
    family = arch.rstrip("0123456789")
    return family, arch[len(family):]


def arch_color(name: str) -> str:
    """The colour of an architecture, or of a variant of it ("hope/cms_online" is HOPE's)."""
    return ARCH_COLORS.get(_family(name)[0], "#555555")


def model_label(name: str) -> str:
    """The architecture's display name ("HOPE"), or a variant's ("HOPE, 1 level · CMS online + sleep");
    an unknown name is shown as it is."""
    family, levels = _family(name)
    if family not in MODEL_LABELS:
        return name
    label = MODEL_LABELS[family] + (f", {levels} level{'s' if levels != '1' else ''}" if levels else "")
    if "/" not in name:
        return label
    mode = name.split("/", 1)[1]
    sleep = mode.endswith("+sleep")
    mode = mode.removesuffix("+sleep")
    return f"{label} · {MODE_LABELS.get(mode, mode)}{' + sleep' if sleep else ''}"


def level_color(level: int) -> str:
    return LEVEL_COLORS[int(level) % len(LEVEL_COLORS)]


def task_color(index: int) -> str:
    return TASK_COLORS[int(index) % len(TASK_COLORS)]
