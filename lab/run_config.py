"""What a run is: the model, its size, the stream, the CMS levels, the optimizer and its rate,
what learns (the outer optimizer on every parameter, or none), the online CMS, replay, evaluation
and the seed. Validated on construction (lab.config); `lab.engine.Run` builds a run from it."""
from __future__ import annotations

from dataclasses import dataclass, field

from lab.config import Config, bounded, choice
from lab.models import MODELS, PRESETS, default_config, family_has, scaled_config
from lab.memory.self_modifying import BOUNDS
from lab.models.cms import resolve_levels
from lab.online import OnlineConfig
from lab.optim import OPTIMIZERS
from lab.tasks.stream import StreamConfig


@dataclass(frozen=True)
class RunConfig(Config):
    model: str = choice("hope", tuple(MODELS), "architecture")
    preset: str = choice("small", tuple(PRESETS), "model size")
    stream: StreamConfig = field(default_factory=StreamConfig)
    cms_chunk_tokens: tuple[int, ...] = bounded((), 1, 10_000_000,
                                                "CMS chunk sizes in tokens, one per level (empty = the family's)")
    optimizer: str = choice("adamw", OPTIMIZERS, "outer optimizer")
    lr: float = bounded(1e-3, 1e-6, 10.0, "learning rate of the outer optimizer (every family)")
    level_lr_scale: tuple[float, ...] = bounded((), 0.0, 100.0, "learning-rate multiplier per CMS level (empty = 1)")
    weight_decay: float = bounded(0.0, 0.0, 1.0, "decoupled weight decay")
    grad_clip: float = bounded(1.0, 0.0, 1000.0, "clip each optimizer's gradient norm (0 = off)")
    eval_every: int = bounded(10, 1, 100_000, "evaluate every task of the stream every K steps")
    eval_size: int = bounded(64, 1, 4096, "held-out sequences per task")
    replay: int = bounded(0, 0, 100_000, "experience-replay buffer in sequences (0 = naive sequential training)")
    replay_fraction: float = bounded(0.5, 0.0, 1.0, "share of each batch drawn from the replay buffer")
    replay_extra: int = bounded(0, 0, 1024, "sequences from the replay buffer appended to every batch")
    seed: int = bounded(0, 0, 2**31 - 1, "seed of the model's initialisation (the stream has its own)")
    window: int = bounded(0, 0, 8192, "attention window in tokens for the families that have one (Transformer, "
                                      "Titans); 0 = the family's own (the Transformer's: full attention)")
    memory_bound: str = choice("", ("",) + BOUNDS, "HOPE's self-modifying memory unbounded or bounded "
                                                   "(HopeConfig.memory_bound; empty = the family's own)")
    trainable: str = choice("all", ("all", "none"), "what the outer optimizer trains: every parameter, or nothing "
                                                    "(a frozen model; with online CMS only the levels' fast weights learn)")
    online: OnlineConfig = field(default_factory=OnlineConfig)

    def check(self):
        if self.window and not family_has(self.model, "window"):
            self.fail("window", f"the {self.model} has no attention window: leave it 0")
        if self.memory_bound and not family_has(self.model, "memory_bound"):
            self.fail("memory_bound", f"the {self.model} has no self-modifying memory: leave it empty")
        if self.level_lr_scale and self.cms_chunk_tokens and len(self.level_lr_scale) != len(self.cms_chunk_tokens):
            self.fail("level_lr_scale", f"needs one entry per CMS level ({len(self.cms_chunk_tokens)})")
        if self.cms_chunk_tokens or self.level_lr_scale:     # the level cap, one scale per level
            resolve_levels(default_config(self.model).cms_levels, self.cms_chunk_tokens, self.level_lr_scale)

    def model_config(self, vocab_size: int, seq_len: int, scale: float | None = None):
        """The model's config: the family default at this preset (or at the width `scale` times the
        default's, `lab.models.scaled_config`), sized to the stream, with the CMS levels this run asks
        for (`lab.models.cms.resolve_levels`)."""
        scale = PRESETS[self.preset] if scale is None else scale
        base = scaled_config(self.model, scale, vocab_size=vocab_size,
                             max_len=max(seq_len, default_config(self.model).max_len))
        if self.window and hasattr(base, "window"):
            base = base.replace(window=self.window)
        if self.memory_bound:
            base = base.replace(memory_bound=self.memory_bound)
        return base.replace(cms_levels=resolve_levels(base.cms_levels, self.cms_chunk_tokens, self.level_lr_scale))
