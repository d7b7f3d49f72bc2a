"""The table of REFERENCE.md §1 as data: every component as an associative memory.

Each `MemoryRow` names its keys → values, its memory, its inner objective, how that objective
is solved, its update rule (LaTeX), how often its parameters change, and, where the lab can run
it on a key/value stream, the registry name it runs under (`lab.assoc.experiments.RUNNABLE`).
The app renders this registry; nothing of it is typed into a page.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass

import pandas as pd


@dataclass(frozen=True)
class MemoryRow:
    key: str             # registry name
    component: str
    keys_values: str     # LaTeX
    memory: str
    objective: str       # LaTeX
    solved_by: str
    update: str          # LaTeX, the update rule
    frequency: str
    runnable: str | None = None   # name in lab.assoc.experiments.RUNNABLE, if it can be run on pairs
    note: str = ""


CATALOG: tuple[MemoryRow, ...] = (
    MemoryRow("softmax", "softmax attention", r"k_i \to v_i \text{ over the context}", "none (non-parametric)",
              r"\sum_i s(k_i,q)\,\lVert v_i - m\rVert^2,\; s = e^{q\cdot k_i/\sqrt d}",
              "closed form (Nadaraya–Watson)",
              r"y = \sum_i \mathrm{softmax}(q\cdot k/\sqrt d)_i\, v_i",
              "every token (the context grows); a sliding window keeps the last c pairs", "softmax"),
    MemoryRow("linear_attention", "linear attention", r"\phi(k_t) \to v_t", "matrix M",
              r"-\langle M\phi(k_t), v_t\rangle", "one GD step (rate 1) with decay α",
              r"M_t = \alpha M_{t-1} + v_t\,\phi(k_t)^\top,\quad y = M q", "every token", "hebbian",
              "Hebbian; α < 1 is weight decay (1−α)/2‖M‖² on the fast weights"),
    MemoryRow("delta", "DeltaNet", r"k_t \to v_t", "matrix M", r"\tfrac12\lVert M k_t - v_t\rVert^2",
              "one GD step, rate β",
              r"M_t = M_{t-1}(I - \beta k_t k_t^\top) + \beta v_t k_t^\top", "every token", "delta",
              "the delta rule"),
    MemoryRow("titans", "Titans neural memory", r"k_t \to v_t", "MLP, L_M ≥ 1 layers",
              r"\lVert M(k_t) - v_t\rVert^2", "GD with momentum and weight decay",
              r"S_t = \eta S_{t-1} - \theta \nabla\ell(M_{t-1}; k_t, v_t),\quad M_t = (1-\alpha) M_{t-1} + S_t",
              "every token (or every chunk of b tokens, gradients at the chunk start)", "titans"),
    MemoryRow("linear_layer", "a linear layer trained by backprop", r"x_t \to \nabla_y L", "the weight W",
              r"\langle W x_t, \nabla_y L\rangle + \tfrac{1}{2\eta}\lVert W - W_t\rVert^2", "one step",
              r"W_{t+1} = W_t - \eta\, \nabla_y L\; x_t^\top", "every training step",
              note="its keys are inputs, its values the local surprise signal ∇_y L"),
    MemoryRow("momentum", "momentum", r"g_t \to \text{one summary}", "buffer m",
              r"\langle m, g_t\rangle\text{-style linear objective}", "one step per gradient",
              r"m_t = \beta m_{t-1} + g_t", "every step",
              note="a gradient k steps old weighs β^k; half-life ln 0.5 / ln β"),
    MemoryRow("adam", "Adam", r"g_t \to \text{step}", "buffers m, v",
              r"\text{a per-coordinate regression on the gradient stream}", "one step per gradient",
              r"m \leftarrow \beta_1 m + (1-\beta_1) g,\; v \leftarrow \beta_2 v + (1-\beta_2) g^2,\;"
              r"\Delta = -\eta\,\hat m / (\sqrt{\hat v} + \epsilon)", "every step"),
    MemoryRow("muon", "Muon", r"g_t \to \text{orthogonal step}", "buffer B", r"\text{as momentum, then orthogonalised}",
              "one step, then 5 Newton–Schulz iterations",
              r"B \leftarrow \mu B + g,\; O = \mathrm{NS}_5(B),\; W \leftarrow W - \eta\, O \max(1, r/c)^{1/2}",
              "every step", note="torch.optim.Muon"),
    MemoryRow("m3", "M3 (multi-scale momentum Muon)", r"g_t \to \text{step at two time scales}",
              "buffers M1 (fast), M2 (slow), V", r"\text{two momenta at two frequencies, orthogonalised}",
              "one step per gradient (M1, V); one per chunk of f gradients (M2)",
              r"M_1 \leftarrow \beta_1 M_1 + (1-\beta_1) g,\; M_2 \leftarrow \beta_3 M_2 + (1-\beta_3)\!\sum_{\text{chunk}} g,\;"
              r"\Theta \leftarrow \Theta - \eta\,\frac{\mathrm{NS}(M_1) + \alpha\,\mathrm{NS}(M_2)}{\sqrt V + \epsilon}",
              "M1, V every step; M2 every f steps",
              note="the lab's reading of NL Algorithm 1: EMA buffers, no bias correction (lab.optim.m3)"),
)
ROWS = {row.key: row for row in CATALOG}
COLUMNS = {"component": "component", "keys_values": "keys → values", "memory": "memory",
           "objective": "inner objective", "solved_by": "how it is solved", "update": "update rule",
           "frequency": "frequency"}


def catalog_frame() -> pd.DataFrame:
    """One row per component, every field of `MemoryRow` a column."""
    return pd.DataFrame([asdict(row) for row in CATALOG])


def _cell(text: str, latex: bool) -> str:
    plain = re.fullmatch(r"\\text\{([^\\{}]*)\}", text)      # a LaTeX cell that is only words
    if plain:
        return plain.group(1).replace("|", "/")
    text = text.replace("|", r"\vert ") if latex else text.replace("|", "/")
    return f"${text}$" if latex else text


def catalog_markdown(keys: list[str] | None = None) -> str:
    """The table as Markdown with inline LaTeX ($…$), for a page to render as it is."""
    rows = [ROWS[k] for k in keys] if keys is not None else list(CATALOG)
    latex = {"keys_values", "objective", "update"}
    head = "| " + " | ".join(COLUMNS.values()) + " |\n|" + "---|" * len(COLUMNS) + "\n"
    body = "".join("| " + " | ".join(_cell(getattr(r, c), c in latex) for c in COLUMNS) + " |\n" for r in rows)
    return head + body
