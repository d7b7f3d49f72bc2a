"""What a forgetting comparison runs: `ForgetSettings` (the page's form and the options of
`python -m lab forget`), the names of the methods, and the two ways a comparison derives one
run's RunConfig from the base one (`seeded`, `joint_config`).

Methods (the reference scale for "less forgetting"):

- `naive`: plain sequential training, one task after another (the default);
- `replay`: experience replay, the classical baseline any architecture can use: a reservoir of
  `replay` past sequences, half of each batch drawn from earlier tasks (`RunConfig.replay`,
  `replay_fraction`; see `lab.engine.ReplayBuffer`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from lab.config import Config, bounded, choice, flag
from lab.engine import RunConfig
from lab.memory.self_modifying import BOUNDS
from lab.models import MODELS, PRESETS, family_has
from lab.optim import OPTIMIZERS
from lab.tasks.stream import KINDS, StreamConfig


METHODS = ("naive", "replay")
DEFAULT_REPLAY = 64                 # sequences: about 1 % of the default stream's 6,000
_STREAM = StreamConfig()


def method_label(method: str, replay: int | None = None) -> str:
    """A method in words: "experience replay (buffer of 64 sequences)", "naive sequential training"."""
    if method == "replay":
        return f"experience replay (buffer of {replay} sequences)" if replay else "experience replay"
    return "naive sequential training"


@dataclass(frozen=True)
class ForgetSettings(Config):
    """What a forgetting comparison runs: the page's form and `python -m lab forget`'s options."""

    models: tuple[str, ...] = field(default=tuple(MODELS), metadata={
        "doc": f"architectures to compare, any of {', '.join(MODELS)}"})
    methods: tuple[str, ...] = field(default=("naive",), metadata={
        "doc": "naive (sequential training) and/or replay (experience replay)"})
    kind: str = choice(_STREAM.kind, KINDS, "task family of the stream")
    n_tasks: int = bounded(_STREAM.n_tasks, 2, 8, "number of tasks in the stream (at least 2 to forget anything)")
    steps_per_task: int = bounded(_STREAM.steps_per_task, 1, 100_000, "training steps of each task")
    overlap: float = bounded(_STREAM.overlap, 0.0, 1.0, "shared source words: 0 disjoint vocabularies, "
                                                        "1 the same words with conflicting translations")
    seeds: int = bounded(1, 1, 10, "number of seeds, 0..seeds-1")
    replay: int = bounded(DEFAULT_REPLAY, 1, 100_000, "replay buffer in sequences (the replay method only)")
    joint: bool = flag(False, "also train the joint reference (for intransigence)")
    preset: str = choice("small", tuple(PRESETS), "model size")
    optimizer: str = choice("adamw", OPTIMIZERS, "outer optimizer")
    lr: float | None = bounded(None, 1e-6, 10.0, "learning rate (none = the RunConfig default)")
    eval_every: int | None = bounded(None, 1, 100_000, "evaluate every K steps (none = the RunConfig default)")
    eval_size: int | None = bounded(None, 1, 4096, "held-out sequences per task (none = the RunConfig default)")
    cms_chunk_tokens: tuple[int, ...] = bounded((), 1, 10_000_000, "CMS chunk sizes in tokens for every model, "
                                                                   "one per level (empty = each family's own levels)")
    level_lr_scale: tuple[float, ...] = bounded((), 0.0, 100.0, "learning-rate multiplier per CMS level (needs "
                                                                "cms_chunk_tokens: the families differ in levels)")
    memory_bound: str = choice("", ("",) + BOUNDS, "HOPE's self-modifying memory unbounded or bounded "
                                                   "(HOPE alone; empty = the family's own)")

    def check(self) -> None:
        if not self.models:
            self.fail("models", f"choose at least one of {', '.join(MODELS)}")
        bad = [m for m in self.models if m not in MODELS]
        if bad:
            self.fail("models", f"each model must be one of {', '.join(MODELS)}")
        if len(set(self.models)) != len(self.models):
            self.fail("models", "name each model once")
        if not self.methods:
            self.fail("methods", f"choose at least one of {', '.join(METHODS)}")
        if [m for m in self.methods if m not in METHODS] or len(set(self.methods)) != len(self.methods):
            self.fail("methods", f"each method must be one of {', '.join(METHODS)}, named once")
        self.stream_config()                          # the stream's own checks (e.g. two_languages ≤ 3)
        if self.level_lr_scale and not self.cms_chunk_tokens:
            self.fail("level_lr_scale", "give cms_chunk_tokens too: the families have different numbers of levels")
        if self.memory_bound and [m for m in self.models if not family_has(m, "memory_bound")]:
            self.fail("memory_bound", "only HOPE has a self-modifying memory: compare HOPE alone, or leave it empty")
        self.base_config()                            # the levels' own checks (count, cap)

    def stream_config(self) -> StreamConfig:
        return StreamConfig(kind=self.kind, n_tasks=self.n_tasks, steps_per_task=self.steps_per_task,
                            overlap=self.overlap)

    def base_config(self) -> RunConfig:
        """The RunConfig every run starts from (model, replay and seeds are set per run)."""
        run = {"model": self.models[0], "preset": self.preset, "optimizer": self.optimizer,
               "stream": self.stream_config().to_dict()}
        for name in ("lr", "eval_every", "eval_size", "cms_chunk_tokens", "level_lr_scale", "memory_bound"):
            if getattr(self, name) not in (None, (), ""):
                run[name] = getattr(self, name)
        return RunConfig.from_dict(run)

    def seed_list(self) -> list[int]:
        return list(range(self.seeds))


def seeded(config: RunConfig, seed: int) -> RunConfig:
    """`config` with seed s for both the stream and the initialisation: for one seed, every model
    and every method sees the very same data."""
    return config.replace(seed=seed, stream=config.stream.replace(seed=seed).to_dict())


def joint_config(base: RunConfig, model: str, k: int, seed: int) -> RunConfig:
    """A fresh model trained on a uniform mixture of tasks 1..k for k × steps_per_task steps."""
    steps = k * base.stream.steps_per_task
    stream = base.stream.replace(joint=True, schedule=tuple(range(k)))
    return seeded(base.replace(model=model, replay=0, eval_every=min(100_000, steps), stream=stream.to_dict()), seed)
