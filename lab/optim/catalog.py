"""The rows of the REFERENCE.md §1 table that are learning rules rather than `lab.memory` classes:
a linear layer trained by backprop, momentum, Adam, Muon and M3 (§5), registered once here, beside
the optimizer code, in the same registry as the memories (`lab.memory.registry`).

They remember gradients, not key/value pairs, so the memory explorer cannot run them; the lab
measures them as memories in `lab.optim.toys` (buffer weights, orthogonal tasks, trajectories) and
checks their equivalences in `lab.assoc.equivalences`. Each keeps its optimizer colour.
"""
from __future__ import annotations

from lab.memory.registry import CatalogRow, MemoryEntry, register
from lab.viz.palette import OPTIMIZER_COLORS

GRADIENT_MEMORY = ("a memory of gradients, not of key/value pairs: measured in lab.optim.toys "
                   "(the page's optimizer tab)")

register(MemoryEntry(
    key="linear_layer", label="linear layer (backprop)", color=OPTIMIZER_COLORS["sgd"], order=50,
    not_runnable="its keys are a layer's inputs and its values the backprop signal ∇_y L: checked by the "
                 "linear-layer equivalence (lab.assoc.equivalences)",
    row=CatalogRow(
        component="a linear layer trained by backprop", keys_values=r"x_t \to \nabla_y L", memory="the weight W",
        objective=r"\langle W x_t, \nabla_y L\rangle + \tfrac{1}{2\eta}\lVert W - W_t\rVert^2", solved_by="one step",
        update=r"W_{t+1} = W_t - \eta\, \nabla_y L\; x_t^\top", frequency="every training step",
        note="its keys are inputs, its values the local surprise signal ∇_y L")))

register(MemoryEntry(
    key="momentum", label="momentum", color=OPTIMIZER_COLORS["momentum"], order=60, not_runnable=GRADIENT_MEMORY,
    row=CatalogRow(
        component="momentum", keys_values=r"g_t \to \text{one summary}", memory="buffer m",
        objective=r"\langle m, g_t\rangle\text{-style linear objective}", solved_by="one step per gradient",
        update=r"m_t = \beta m_{t-1} + g_t", frequency="every step",
        note="a gradient k steps old weighs β^k; half-life ln 0.5 / ln β")))

register(MemoryEntry(
    key="adam", label="Adam", color=OPTIMIZER_COLORS["adam"], order=70, not_runnable=GRADIENT_MEMORY,
    row=CatalogRow(
        component="Adam", keys_values=r"g_t \to \text{step}", memory="buffers m, v",
        objective=r"\text{a per-coordinate regression on the gradient stream}", solved_by="one step per gradient",
        update=r"m \leftarrow \beta_1 m + (1-\beta_1) g,\; v \leftarrow \beta_2 v + (1-\beta_2) g^2,\;"
               r"\Delta = -\eta\,\hat m / (\sqrt{\hat v} + \epsilon)",
        frequency="every step")))

register(MemoryEntry(
    key="muon", label="Muon", color=OPTIMIZER_COLORS["muon"], order=80, not_runnable=GRADIENT_MEMORY,
    row=CatalogRow(
        component="Muon", keys_values=r"g_t \to \text{orthogonal step}", memory="buffer B",
        objective=r"\text{as momentum, then orthogonalised}", solved_by="one step, then 5 Newton–Schulz iterations",
        update=r"B \leftarrow \mu B + g,\; O = \mathrm{NS}_5(B),\; W \leftarrow W - \eta\, O \max(1, r/c)^{1/2}",
        frequency="every step", note="torch.optim.Muon")))

register(MemoryEntry(
    key="m3", label="M3", color=OPTIMIZER_COLORS["m3"], order=90, not_runnable=GRADIENT_MEMORY,
    row=CatalogRow(
        component="M3 (multi-scale momentum Muon)", keys_values=r"g_t \to \text{step at two time scales}",
        memory="buffers M1 (fast), M2 (slow), V", objective=r"\text{two momenta at two frequencies, orthogonalised}",
        solved_by="one step per gradient (M1, V); one per chunk of f gradients (M2)",
        update=r"M_1 \leftarrow \beta_1 M_1 + (1-\beta_1) g,\; M_2 \leftarrow \beta_3 M_2 + (1-\beta_3)\!\sum_{\text{chunk}} g,\;"
               r"\Theta \leftarrow \Theta - \eta\,\frac{\mathrm{NS}(M_1) + \alpha\,\mathrm{NS}(M_2)}{\sqrt V + \epsilon}",
        frequency="M1, V every step; M2 every f steps",
        note="the lab's reading of NL Algorithm 1: EMA buffers, no bias correction (lab.optim.m3)")))
