"""What every model family shares: the config fields, token embedding and head, CMS levels.

All families read the same token format (LongTensor (B, T) of ids < vocab_size) and return
next-token logits (B, T, vocab_size), so one task runs on all of them. Each block ends with a
Continuum Memory System (`lab.models.cms`); a Transformer is the one-level special case.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from lab.config import Config, bounded, choice
from lab.hooks import HookPoint, name_hook_points
from lab.memory.fast_weights import CarriesState
from lab.models.cms import ContinuumMemory, LevelSpec, check_levels, level_of_parameter, level_state


def levels_field(default: tuple[LevelSpec, ...]):
    """The `cms_levels` field of a family: its default levels, fastest first."""
    return field(default=default, metadata={"doc": "CMS levels, fastest first: chunk in tokens, hidden width, "
                                                   "learning-rate scale (lab.models.cms.LevelSpec)"})


@dataclass(frozen=True)
class ModelConfig(Config):
    vocab_size: int = bounded(64, 4, 65536, "number of token ids (set from the task)")
    d_model: int = bounded(64, 8, 2048, "width of the residual stream")
    n_layers: int = bounded(2, 1, 24, "number of blocks")
    n_heads: int = bounded(4, 1, 32, "attention / memory heads")
    max_len: int = bounded(256, 8, 8192, "longest input sequence")
    cms_levels: tuple[LevelSpec, ...] = levels_field((LevelSpec(1, 256),))
    cms_variant: str = choice("sequential", ("sequential", "independent"), "how CMS levels combine")

    def check(self):
        if self.d_model % self.n_heads:
            self.fail("n_heads", f"must divide d_model = {self.d_model}")
        check_levels(self.cms_levels, type(self).__name__)

    @property
    def n_levels(self) -> int:
        return len(self.cms_levels)

    @property
    def cms_hidden(self) -> tuple[int, ...]:
        return tuple(s.hidden for s in self.cms_levels)

    @property
    def cms_chunk_tokens(self) -> tuple[int, ...]:
        return tuple(s.chunk_tokens for s in self.cms_levels)

    def with_widths(self, widths: tuple[int, ...]) -> "ModelConfig":
        """The same config with the levels' hidden widths set (after a sleep grew or pruned one)."""
        return self.replace(cms_levels=tuple(s.replace(hidden=w) for s, w in zip(self.cms_levels, widths, strict=True)))


class LabModel(nn.Module):
    """Embedding → blocks → final norm → tied head. Subclasses build `self.blocks`."""

    family: str = ""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.tok_emb = nn.Embedding(config.vocab_size, config.d_model)
        self.pos_emb = nn.Embedding(config.max_len, config.d_model)
        self.blocks = nn.ModuleList()
        self.ln_f = nn.LayerNorm(config.d_model)
        self.hook_embed = HookPoint()     # (B, T, d_model)
        self.hook_final = HookPoint()     # (B, T, d_model) before the head

    def make_cms(self) -> ContinuumMemory:
        c = self.config
        return ContinuumMemory(c.d_model, c.cms_hidden, c.cms_variant)

    def finish_init(self):
        """Call at the end of a subclass __init__: initialise weights, name hook points."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, std=0.02)
        self.hook_names = name_hook_points(self)

    def check_tokens(self, tokens: torch.Tensor) -> None:
        if tokens.dim() != 2 or tokens.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"tokens must be an integer tensor of shape (B, T); got {tokens.dtype} {tuple(tokens.shape)}")
        if tokens.shape[1] > self.config.max_len:
            raise ValueError(f"sequence length {tokens.shape[1]} exceeds max_len = {self.config.max_len}")
        if tokens.numel() and (tokens.min() < 0 or tokens.max() >= self.config.vocab_size):
            raise ValueError(f"token ids must lie in [0, {self.config.vocab_size}); "
                             f"got {int(tokens.min())}..{int(tokens.max())}")

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        self.check_tokens(tokens)
        T = tokens.shape[1]
        pos = torch.arange(T, device=tokens.device)
        x = self.hook_embed(self.tok_emb(tokens) + self.pos_emb(pos))
        for block in self.blocks:
            x = block(x)
        x = self.hook_final(self.ln_f(x))
        return x @ self.tok_emb.weight.T          # (B, T, vocab), head tied to the embedding

    # --- what the engine and the probes need ---------------------------------------------
    def parameter_levels(self) -> dict[int | None, list[tuple[str, nn.Parameter]]]:
        """Named parameters grouped by CMS level; key None = updated at every step."""
        groups: dict[int | None, list] = {None: []}
        groups.update({level: [] for level in range(self.config.n_levels)})
        for name, p in self.named_parameters():
            groups[level_of_parameter(name)].append((name, p))
        return groups

    def cms_blocks(self) -> list[tuple[str, ContinuumMemory]]:
        """(module path, ContinuumMemory) of every block, in order."""
        return [(name, m) for name, m in self.named_modules() if isinstance(m, ContinuumMemory)]

    def stream_memories(self) -> list[nn.Module]:
        """The sequence memories that can carry their state from one sequence of a stream to the
        next (HOPE's self-modifying memory, Titans' neural memory; none in a Transformer)."""
        return [m for m in self.modules() if isinstance(m, CarriesState)]

    def cms_modules(self) -> list[ContinuumMemory]:
        return [m for _, m in self.cms_blocks()]

    # --- level surgery across blocks (sleep grows, prunes and resets levels) ------------------
    def sync_level_widths(self) -> None:
        """Keep `config.cms_levels` equal to the actual widths (every block has the same widths)."""
        blocks = self.cms_modules()
        if blocks and blocks[0].widths() != self.config.cms_hidden:
            self.config = self.config.with_widths(blocks[0].widths())

    def match_shapes(self, state: dict) -> bool:
        """Resize every CMS level to the widths in `state` (a state_dict), so that
        `load_state_dict(state)` works after a sleep changed them. True if anything changed."""
        changed = False
        for prefix, cms in self.cms_blocks():
            for index, level in enumerate(cms.levels):
                key = f"{prefix}.levels.{index}.up.weight"
                if key in state and state[key].shape[0] != level.hidden_size:
                    level.resize(state[key].shape[0])
                    changed = True
        if changed:
            self.sync_level_widths()
        return changed

    @torch.no_grad()
    def reset_level(self, level: int, reference_state: dict) -> None:
        """Set CMS level `level` of every block to the parameters it has in `reference_state`."""
        for prefix, cms in self.cms_blocks():
            cms.levels[level].load_from(level_state(reference_state, f"{prefix}.levels.{level}"))
        self.sync_level_widths()

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
