"""Two languages learned in context as a sweep experiment (`incontext`): one trial trains a model on
lessons (lab.tasks.two_languages with lessons: a language's dictionary and worked examples, then
queries), mixing contexts with A only, B only, and A then B in sequence, and measures each
language's query accuracy in every mode and the recovery ratio: accuracy with both languages in
context over accuracy with the language alone (REFERENCE.md §8: in-context learning is reported to
collapse when two new languages are learned in sequence, and HOPE with three levels to nearly
recover).

Architectures (`arch`): "transformer" (full attention), "transformer_window" (a sliding window that
holds one language's lesson but not both), "titans", "hope1" (one CMS level), "hope" (three),
"hope_online" (HOPE with levels every 16, 32, 64 tokens, trained as "hope"; at test time its levels
learn while it reads each context, lab.online: from the next-token error on the lesson only, never
on the queries' answers, each context its own stream, fast weights reset per context). `memory`
sets the HOPE arms' self-modifying memory (empty: HOPE's own, bounded, without overflow on the
padding of a context; none: as the equations are written, lab.memory.self_modifying)."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from lab.config import Config, bounded, choice
from lab.memory.self_modifying import BOUNDS
from lab.models import PRESETS, family_has
from lab.run_config import RunConfig
from lab.sweep.base import Experiment, Progress, TrialError, _clean
from lab.online import OnlineCMS, OnlineConfig
from lab.tasks.vocab import IGNORE, QUERY
from lab.tasks.two_languages import language_accuracy, recovery_ratio

ARCHS = ("transformer", "transformer_window", "titans", "hope1", "hope", "hope_online")


@dataclass(frozen=True)
class InContextSettings(Config):
    arch: str = choice("hope", ARCHS, "architecture (see the module docstring)")
    preset: str = choice("small", tuple(PRESETS), "model size")
    words: int = bounded(4, 2, 16, "dictionary entries per language")
    steps: int = bounded(900, 1, 100_000, "training steps (every batch mixes A, B, and both in sequence)")
    lr: float = bounded(1e-3, 1e-6, 10.0, "learning rate")
    online_lr: float = bounded(1e-3, 0.0, 10.0, "hope_online: the levels' online rate")
    eval_size: int = bounded(128, 8, 4096, "held-out contexts per mode")
    seed: int = bounded(0, 0, 2**31 - 1, "seed of the data and the model")
    memory: str = choice("", ("",) + BOUNDS, "the HOPE arms' self-modifying memory (RunConfig.memory_bound; "
                                             "empty = HOPE's own, bounded: no overflow on the padding)")

    def run_config(self) -> RunConfig:
        stream = {"kind": "two_languages", "lessons": True, "n_tasks": 3, "words": self.words, "joint": True,
                  "schedule": (0, 1, 2), "steps_per_task": max(1, self.steps // 3), "seed": self.seed}
        model = {"transformer_window": "transformer", "hope1": "hope", "hope_online": "hope"}.get(self.arch, self.arch)
        config = RunConfig(model=model, preset=self.preset, lr=self.lr, seed=self.seed, eval_every=100_000,
                           eval_size=self.eval_size, stream=stream)
        if family_has(model, "memory_bound"):
            config = config.replace(memory_bound=self.memory)
        if self.arch == "hope1":
            config = config.replace(cms_chunk_tokens=(16,))
        if self.arch == "hope_online":              # trained as HOPE; learns online only at test time
            config = config.replace(cms_chunk_tokens=(16, 32, 64))
        return config


def lesson_tokens(config: RunConfig) -> int:
    """Tokens of one language's lesson in the context (what the sliding window is sized to): the
    single-language context, without its queries."""
    from lab.tasks import build_stream

    single = build_stream(config.stream).tasks[0]
    return int(single.lesson_len)


def context_targets(inputs: torch.Tensor) -> torch.Tensor:
    """Next-token targets on the context only (before the first <query>), IGNORE elsewhere: what a
    model may learn from while it reads, without ever seeing an answer it is scored on."""
    B, T = inputs.shape
    positions = torch.arange(T).expand(B, T)
    first_query = torch.where(inputs == QUERY, positions, torch.full_like(positions, T)).min(dim=1, keepdim=True).values
    targets = torch.full_like(inputs, IGNORE)
    inside = positions[:, :-1] + 1 < first_query
    targets[:, :-1] = torch.where(inside, inputs[:, 1:], targets[:, :-1])
    return targets


def online_reader(model, lr: float):
    """tokens → logits, every row a fresh stream whose CMS levels learn while it reads its context."""
    def read(inputs: torch.Tensor) -> torch.Tensor:
        reader = OnlineCMS(model, OnlineConfig(enabled=True, lr=lr), streams=inputs.shape[0])
        return reader.read(inputs, context_targets(inputs))[0]
    read.parameters = model.parameters
    return read


class InContextExperiment(Experiment):
    def seeded(self, settings: InContextSettings, seed: int) -> InContextSettings:
        return settings.replace(seed=seed)

    def run(self, settings: dict, seed: int, progress: Progress) -> list[dict]:
        from lab.engine import Run

        s = InContextSettings.from_dict(settings)
        config = s.run_config()
        if s.arch == "transformer_window":               # a window that holds one language's lesson, not both
            config = config.replace(window=lesson_tokens(config))
        run = Run(config)
        while not run.done and not run.diverged:
            run.step(25)
            progress(run.step_count / run.stream.total_steps)
        if run.diverged:
            raise TrialError(f"{s.arch}, seed {seed} diverged: {run.diverged.message()}")
        model = online_reader(run.model, s.online_lr) if s.arch == "hope_online" else run.model
        with torch.no_grad():
            frame = language_accuracy(model, run.stream.tasks, n=s.eval_size, seed=seed)
        ratios = recovery_ratio(frame)
        row = {"model": s.arch, "method": "naive"}
        for r in frame.itertuples():
            row[f"acc_{r.mode}_{r.language}"] = _clean(float(r.accuracy))
        for r in ratios.itertuples():
            row[f"recovery_{r.language}"] = _clean(float(r.ratio))
        row["recovery"] = _clean(float(ratios["ratio"].mean()))
        alone = frame[frame["mode"] == frame["language"]]          # each language alone in its context
        row["acc_single"] = _clean(float(alone["accuracy"].mean()))
        return [row]


EXPERIMENT = InContextExperiment("incontext", InContextSettings, {}, {("seed",)},
                                 "two languages learned in context: accuracy per mode and the recovery ratio")
