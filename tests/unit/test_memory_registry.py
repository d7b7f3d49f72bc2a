"""The registry of associative memories (lab.memory.registry): every entry is complete, the table,
the explorer, the colours and `lab info` read it, and a new memory is one new file."""
from __future__ import annotations

import json
import sys
import textwrap

import pytest
import torch

import lab.memory
from lab.assoc import KVStream, MemoryParams, catalog_entries, catalog_frame, catalog_markdown, recall, sweep
from lab.cli import main as lab_main
from lab.memory import registry
from lab.memory.base import AssociativeMemory
from lab.memory.registry import SAFE_COLORS, CatalogRow, MemoryEntry
from lab.sessions.memory_explorer import MemoryExplorerSession
from lab.viz.memory_view import memory_color

torch.set_num_threads(1)
TINY = KVStream(n_pairs=6, d_key=4, d_value=3, correlation=0.2, seed=1)
REFERENCE_ORDER = ["softmax attention", "linear attention", "DeltaNet", "Titans neural memory",
                   "a linear layer trained by backprop", "momentum", "Adam", "Muon", "M3 (multi-scale momentum Muon)"]
ROW = CatalogRow(component="toy", keys_values="k", memory="M", objective="o", solved_by="s", update="u",
                 frequency="f")


# --- every entry is complete ----------------------------------------------------------------------

@pytest.mark.parametrize("entry", registry.entries(), ids=lambda e: e.key)
def test_every_entry_is_complete(entry):
    assert entry.problems() == []
    assert entry.color in SAFE_COLORS
    if entry.row is None:                                  # described by another row, or another section
        covering = {e.key: e for e in registry.entries()}.get(entry.described_by)
        assert covering is None or covering.row is not None
    assert entry.cls is None or issubclass(entry.cls, AssociativeMemory)


@pytest.mark.parametrize("entry", list(registry.runnable().values()), ids=lambda e: e.key)
def test_every_runnable_entry_builds_a_memory_that_recalls_a_tiny_stream(entry):
    memory = entry.build(TINY, MemoryParams())
    assert entry.cls is None or isinstance(memory, entry.cls)
    frame = recall([entry.key], TINY, MemoryParams())
    assert len(frame) == TINY.n_pairs and frame["error"].notna().all() and (frame["label"] == entry.label).all()


def test_explorer_colours_are_distinct_and_the_same_as_before():
    colors = {key: e.color for key, e in registry.runnable().items()}
    assert len(set(colors.values())) == len(colors)
    assert {k: colors[k] for k in ("softmax", "hebbian", "delta", "titans", "titans_mlp")} == {
        "softmax": "#0072B2", "hebbian": "#EE6677", "delta": "#228833", "titans": "#D55E00", "titans_mlp": "#66CCEE"}
    assert memory_color("delta") == "#228833" and memory_color("nobody") == "#555555"


def test_the_catalogue_is_in_reference_order_and_readers_agree():
    assert [e.row.component for e in catalog_entries()] == REFERENCE_ORDER
    assert list(catalog_frame()["key"]) == [e.key for e in catalog_entries()]
    assert list(MemoryExplorerSession().choices()) == list(registry.runnable()) == [
        "softmax", "hebbian", "delta", "titans", "titans_mlp"]
    assert lab.memory.MEMORIES == registry.memory_classes()
    assert "self_modifying" in lab.memory.MEMORIES and "self_modifying" not in registry.runnable()


@pytest.mark.parametrize("change, problem", [
    ({"label": " "}, "label"),
    ({"color": "#123456"}, "colour"),
    ({"row": None}, "§1 row"),
    ({"row": CatalogRow("toy", "k", "M", "", "s", "u", "f")}, "objective"),
    ({"knobs": ("decay", "temperature")}, "temperature"),
    ({"build": None}, "not_runnable"),
    ({"key": "not a name"}, "identifier"),
])
def test_an_incomplete_entry_is_refused_with_what_it_lacks(change, problem):
    complete = dict(key="toy_memory", label="toy", color="#EE6677", order=99, row=ROW, knobs=("decay",),
                    build=lambda stream, params: None)
    with pytest.raises(ValueError, match=problem):
        registry.register(MemoryEntry(**{**complete, **change}))
    assert "toy_memory" not in {e.key for e in registry.entries()}


def test_two_modules_cannot_register_the_same_key():
    with pytest.raises(RuntimeError, match="two memory entries named 'delta'"):
        registry.register(MemoryEntry(key="delta", label="x", color="#EE6677", order=1, row=ROW, not_runnable="no"))


# --- a new memory is one new file --------------------------------------------------------------------

GATED_DELTA = '''
"""A throwaway memory for the one-file test: the delta rule with a decay (Gated DeltaNet-like)."""
import torch

from lab.memory.delta import DeltaRuleMemory
from lab.memory.registry import CatalogRow, MemoryEntry, register
from lab.viz.palette import TASK_COLORS


class ToyGatedDelta(DeltaRuleMemory):
    name = "toy_gated_delta"

    def __init__(self, beta, decay):
        super().__init__(beta=beta)
        self.decay = decay

    def write(self, k, v, beta=None):
        for t in range(k.shape[2]):
            self.M = None if self.M is None else self.decay * self.M
            super().write(k[:, :, t:t + 1], v[:, :, t:t + 1])


register(MemoryEntry(
    key="toy_gated_delta", label="toy gated DeltaNet", color=TASK_COLORS[5], order=35, cls=ToyGatedDelta,
    knobs=("decay", "write_strength"),
    build=lambda stream, p: ToyGatedDelta(beta=p.write_strength, decay=p.decay),
    row=CatalogRow(component="toy gated DeltaNet", keys_values=r"k_t \\to v_t", memory="matrix M",
                   objective=r"\\tfrac12\\lVert M k_t - v_t\\rVert^2", solved_by="one GD step after a decay",
                   update=r"M_t = \\alpha M_{t-1}(I - \\beta k_t k_t^\\top) + \\beta v_t k_t^\\top",
                   frequency="every token")))
'''


@pytest.fixture
def new_memory_file(tmp_path, monkeypatch):
    """A new module in a folder that is part of the lab.memory package, as a new file would be."""
    (tmp_path / "toy_gated_delta.py").write_text(textwrap.dedent(GATED_DELTA))
    monkeypatch.setattr(lab.memory, "__path__", [*lab.memory.__path__, str(tmp_path)])
    registry.discover()                                   # what a fresh process does on first use
    yield "toy_gated_delta"
    registry.unregister("toy_gated_delta")
    sys.modules.pop("lab.memory.toy_gated_delta", None)
    vars(lab.memory).pop("toy_gated_delta", None)


def test_a_new_memory_module_is_everywhere_without_another_edit(new_memory_file, capsys):
    key = new_memory_file
    assert [e.key for e in catalog_entries()][:4] == ["softmax", "hebbian", "delta", key]   # order 35: after DeltaNet
    assert "| toy gated DeltaNet |" in catalog_markdown()
    assert key in list(catalog_frame()["runnable"])
    session = MemoryExplorerSession()
    assert session.choices()[key] == "toy gated DeltaNet"
    assert session.configure(memories=("delta", key), stream={"n_pairs": 8, "d_key": 8, "d_value": 8},
                             params={"decay": 0.8})
    session.finish()
    frame = session.recall()
    assert set(frame["memory"]) == {"delta", key} and frame["error"].notna().all()
    decayed = frame[frame["memory"] == key]["error"].mean()
    assert decayed != pytest.approx(frame[frame["memory"] == "delta"]["error"].mean())   # the decay knob acts
    assert set(session.sweep("decay")["memory"]) == {key}             # the only one of the two with a decay
    assert memory_color(key) == "#AA3377"
    assert lab_main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert key in info["memories"] and key in [m["key"] for m in info["associative_memories"]]


def test_the_sweep_reads_knobs_from_the_registry():
    frame = sweep(["delta", "hebbian"], TINY, MemoryParams(), "decay", [0.9, 1.0])
    assert set(frame["memory"]) == {"hebbian"}
    with pytest.raises(ValueError, match="cannot run on key/value pairs"):
        recall(["self_modifying"], TINY, MemoryParams())
    with pytest.raises(ValueError, match="cannot run on key/value pairs"):
        recall(["momentum"], TINY, MemoryParams())
