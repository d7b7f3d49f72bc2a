"""Online CMS: levels that learn while the model reads (REFERENCE.md §3, "Online (test-time) updates").

    reader = OnlineCMS(model, OnlineConfig(enabled=True, lr=0.01), streams=2)
    logits, loss = reader.read(inputs, targets)     # (S, T): row s is the next sequence of stream s
    reader.tokens_read                              # tokens each stream has read so far
    reader.reset()                                  # every stream starts again from the model's levels

Each stream (a row of the batch) has fast weights for every CMS level of every block: the level's
parameters θ^(ℓ) plus a change Δ^(ℓ)_s of its own. Level ℓ updates every C^(ℓ) tokens of its
stream (C^(ℓ) = the level's `chunk_tokens`), by one step of gradient descent on the next-token loss
of the tokens read since its last update:

    Δ^(ℓ)_s ← Δ^(ℓ)_s − η_ℓ Σ_{t in the chunk} (∂o_t/∂θ^(ℓ))ᵀ δ_t,     δ_t = ∂ℓ_t/∂o_t

where o_t is what the level adds to the stream at token t, ℓ_t the loss of token t (the task's
scored tokens: the answers) and η_ℓ = `lr` × the level's `lr_scale`. Every token read after an
update is computed with the updated level; a token read before it is not (the read is cut at each
update and the rest re-read: `read`).

Choices the papers leave open, made here (REFERENCE.md §3 names the reference reimplementation's
choices, which these follow where it has one):
* The outer training does not differentiate through the updates (stop-gradient): δ and the
  updates are computed on detached fast weights. With an outer optimizer, its gradient reaches θ
  through θ + Δ as if Δ were constant.
* The gradient of a chunk is the plain sum over its tokens (not the mean), plain SGD, no momentum;
  `max_update` optionally clips each update's norm per stream and level (0 = off).
* When an update falls inside a sequence, the tokens after it are computed again with the updated
  level, and so is their context: a token's context is read with the levels as they are when the
  token is read (a re-read, not a cache of how earlier tokens were once computed).
* Tokens of a stream are counted by position in the rows read (padding included), the same count
  for every stream, so all streams update together.
* The sequence memories (HOPE's self-modifying memory, Titans' neural memory) start every sequence
  from their learned initial state, or, with `carry_memory`, from the state the stream's previous
  sequence left them in (a model exposes its memories as `model.stream_memories()`).
"""
from __future__ import annotations

import copy
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from lab.config import Config, bounded, flag
from lab.tasks.vocab import IGNORE


@dataclass(frozen=True)
class OnlineConfig(Config):
    enabled: bool = flag(False, "CMS levels learn while the stream is read (fast weights per stream)")
    lr: float = bounded(0.01, 0.0, 10.0, "online learning rate η (times each level's lr_scale)")
    carry_memory: bool = flag(False, "the sequence memory carries its state from one sequence of a stream "
                                     "to the next (HOPE, Titans)")
    max_update: float = bounded(0.0, 0.0, 1000.0, "clip each update's norm per stream and level (0 = off)")


def token_loss_sum(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Σ of the next-token cross-entropy over the scored targets, and how many there are."""
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1),
                           ignore_index=IGNORE, reduction="sum")
    return loss, int((targets != IGNORE).sum())


class OnlineCMS:
    """Fast weights of every CMS level for `streams` parallel streams, and the reading that trains them."""

    def __init__(self, model, config: OnlineConfig, streams: int):
        if streams < 1:
            raise ValueError(f"streams = {streams!r}: a reader needs at least one stream")
        self.model, self.config, self.streams = model, config, int(streams)
        specs = model.config.cms_levels
        # (block path, level index, the level) of every CMS level of every block
        self.levels = [(prefix, index, level) for prefix, cms in model.cms_blocks() for index, level in enumerate(cms.levels)]
        self.chunks = [specs[index].chunk_tokens for _, index, _ in self.levels]
        self.rates = [config.lr * specs[index].lr_scale for _, index, _ in self.levels]
        self.events: list[tuple[int, int, float]] = []      # (tokens read, level, update norm) since drained
        self.reset()

    def reset(self) -> None:
        """Every stream back to the model's levels (Δ = 0), nothing pending, nothing read, fresh memory."""
        self.deltas = [{name: torch.zeros(self.streams, *p.shape, device=p.device, dtype=p.dtype)
                        for name, p in level.named_parameters()} for _, _, level in self.levels]
        self.pending = [{name: torch.zeros_like(d) for name, d in delta.items()} for delta in self.deltas]
        self.tokens_read = 0
        self.memory_states: list | None = None               # per memory, the stream's carried state

    # --- reading ---------------------------------------------------------------------------------
    def cuts(self, length: int) -> list[int]:
        """Where a read of `length` tokens is cut: every position after which some level updates, and the end."""
        due = [p for p in range(1, length) if any((self.tokens_read + p) % c == 0 for c in self.chunks)]
        return due + [length]

    def read(self, inputs: torch.Tensor, targets: torch.Tensor, outer: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Read the next sequence of every stream (inputs, targets: (S, T)), updating the levels as
        their chunks complete. Returns the logits (S, T, V), each token computed with the levels as
        they were when it was read, and the mean loss over the scored tokens (differentiable with
        respect to the model's parameters when `outer`, for an outer optimizer; else detached)."""
        if inputs.shape[0] != self.streams:
            raise ValueError(f"this reader has {self.streams} streams; got {inputs.shape[0]} rows")
        start, pieces, total, scored, outer_loss = 0, [], 0.0, 0, None
        initial = self.memory_states
        for stop in self.cuts(inputs.shape[1]):
            leaves = [{k: d.detach().requires_grad_(True) for k, d in delta.items()} for delta in self.deltas]
            with torch.enable_grad(), self.attached(leaves, initial):       # learning, also inside no_grad
                logits = self.model(inputs[:, :stop])
                final = self._final_memory_states() if stop == inputs.shape[1] else None
                part = targets[:, :stop].clone()
                part[:, :start] = IGNORE
                loss, n = token_loss_sum(logits, part)
            if n:
                flat = [t for leaf in leaves for t in leaf.values()]
                grads = torch.autograd.grad(loss, flat, retain_graph=outer)
                for pending, grad in zip((t for p in self.pending for t in p.values()), grads):
                    pending.add_(grad)
                outer_loss = loss if outer_loss is None else outer_loss + loss
            total, scored = total + float(loss.detach()), scored + n
            pieces.append(logits[:, start:stop].detach())
            self.tokens_read += stop - start
            self._update_due()
            start = stop
        if self.config.carry_memory:
            self.memory_states = final
        mean = torch.tensor(total / max(1, scored))
        if outer and outer_loss is not None:
            mean = outer_loss / max(1, scored)
        return torch.cat(pieces, dim=1), mean

    def _update_due(self) -> None:
        """Apply the pending summed gradient of every level whose chunk just completed."""
        norms: dict[int, float] = {}
        for i, (delta, pending) in enumerate(zip(self.deltas, self.pending)):
            if self.tokens_read % self.chunks[i]:
                continue
            step = {name: -self.rates[i] * g for name, g in pending.items()}
            size = torch.sqrt(sum(s.pow(2).flatten(1).sum(1) for s in step.values()))        # (S,)
            if self.config.max_update:
                scale = (self.config.max_update / size.clamp_min(1e-12)).clamp(max=1.0)
                step = {name: s * scale.view(-1, *[1] * (s.dim() - 1)) for name, s in step.items()}
                size = size * scale
            for name in delta:
                delta[name] = delta[name] + step[name]
                pending[name].zero_()
            level = self.levels[i][1]
            norms[level] = norms.get(level, 0.0) + float(size.pow(2).mean())
        for level, square in sorted(norms.items()):
            self.events.append((self.tokens_read, level, square ** 0.5))

    def drain_events(self) -> list[tuple[int, int, float]]:
        """(tokens read by each stream, CMS level, size of the update ‖Δθ‖ over blocks, mean over
        streams) of the updates since the last call."""
        out, self.events = self.events, []
        return out

    # --- attaching fast weights and memory states -----------------------------------------------
    @contextmanager
    def attached(self, deltas: list[dict], memory_states: list | None = None):
        """Inside the block, every level computes with θ + Δ (row s: stream s) and every sequence
        memory starts from `memory_states` (None: its learned initial state)."""
        memories = self.model.stream_memories() if memory_states is not None else []
        for (_, _, level), delta in zip(self.levels, deltas):
            level.fast = delta
        for memory, state in zip(memories, memory_states or []):
            memory.start_from = state
        try:
            yield
        finally:
            for _, _, level in self.levels:
                level.fast = None
            for memory in memories:
                memory.start_from = None

    def _final_memory_states(self) -> list | None:
        if not self.config.carry_memory:
            return None
        return [memory.last_state() for memory in self.model.stream_memories()]

    @contextmanager
    def stream(self, s: int, rows: int, without_level: int | None = None):
        """Inside the block, the model is stream s's instance for `rows` rows at once (its fast
        weights and carried memory repeated): for evaluating what stream s knows now. With
        `without_level`, that CMS level computes with θ alone, as at the stream's start."""
        deltas = [{k: (d[s:s + 1] * 0 if index == without_level else d[s:s + 1]).expand(rows, *d.shape[1:])
                   for k, d in delta.items()} for (_, index, _), delta in zip(self.levels, self.deltas)]
        states = None if self.memory_states is None else [state.select_rows(s, rows) for state in self.memory_states]
        with self.attached(deltas, states):
            yield

    @torch.no_grad()
    def fold_into_model(self) -> None:
        """θ ← θ + Δ of the one stream, Δ ← 0: the stream's knowledge becomes the model's own (for a
        sleep, which works on the model's parameters). Pending gradients stay."""
        if self.streams != 1:
            raise ValueError(f"only one stream's fast weights can become the model's; this reader has {self.streams}")
        for (_, _, level), delta in zip(self.levels, self.deltas):
            for name, p in level.named_parameters():
                p.add_(delta[name][0])
                delta[name].zero_()

    # --- snapshots ---------------------------------------------------------------------------------
    def state(self) -> dict:
        return copy.deepcopy({"deltas": self.deltas, "pending": self.pending, "tokens_read": self.tokens_read,
                              "memory_states": self.memory_states})

    def load(self, state: dict) -> None:
        state = copy.deepcopy(state)
        self.deltas, self.pending = state["deltas"], state["pending"]
        self.tokens_read, self.memory_states = state["tokens_read"], state["memory_states"]
