"""Continual streams: a sequence of phases, each training on one task, revisits allowed.

`build_stream(StreamConfig(...))` builds the tasks of one kind on one shared vocabulary, pads
them to one `seq_len`, and lays out the phases. The kinds are not listed here: each task family
registers its kind beside its builder (`lab.tasks.registry.register_kind`), this module discovers
them on import, and `KINDS`, the `kind` field's choices, `build_stream` and the kind's own checks
(its `max_tasks`, its `check`) all read that registry. The accuracy matrix of REFERENCE.md §7 is
measured at `boundaries_steps()` (lab.metrics turns it into ACC, BWT, FWT, forgetting).

Joint training (the reference of intransigence, REFERENCE.md §7): with `joint=True` the phases
keep their lengths but every batch is a uniform mixture of the tasks the schedule names, each
sequence's task drawn uniformly (`mixed_batch`). A joint stream with schedule (0, …, k−1) is "a
fresh model trained on tasks 1..k together for as many steps as the sequential run took to reach
task k". With a single task in the mixture a joint batch equals the plain batch of that step.

Determinism: the tasks depend on the config only (task seeds are mix_seed(seed, kind, "task", i));
`batch(step, generator)` draws from the generator it is given, and with no generator from one
seeded by (seed, "batch", step), so a batch depends on its step alone and a restored run draws
the same batches it would have drawn.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import torch

from ..config import Config, bounded, choice, flag
from .languages import RULES
from .registry import N_TASKS_MAX, discover, get_kind, kind_names, kinds
from .tracking import PROBLEMS
from .vocab import Task, Vocab, make_generator, mix_seed

discover()                      # every module of lab.tasks registers its kinds (lab.tasks.registry)
KINDS = kind_names()
_KIND_DOC = "task family: " + "; ".join(f"{k.name}: {k.doc}" for k in kinds())


@dataclass(frozen=True)
class StreamConfig(Config):
    """What a continual stream is made of. Field meanings per kind are in the docs below; a field a
    kind does not read is ignored by it (each kind lists its own in `StreamKind.fields`)."""

    kind: str = choice("languages", KINDS, _KIND_DOC)
    n_tasks: int = bounded(3, 1, N_TASKS_MAX, "number of tasks (languages; recall pools; two_languages: its "
                                               "modes; digits: class pairs or permutations; tracking: problems); "
                                               "each kind has its own maximum")
    steps_per_task: int = bounded(250, 1, 100_000, "training steps of each phase")
    overlap: float = bounded(0.5, 0.0, 1.0, "fraction of source words (recall: keys and values) "
                                             "shared between tasks: 0 disjoint, 1 all shared")
    batch_size: int = bounded(8, 1, 1024, "sequences per training step")
    words: int = bounded(4, 1, 16, "sentence length; recall: key-value pairs; "
                                    "two_languages: dictionary entries a language (= queries)")
    lexicon_size: int = bounded(24, 2, 512, "source words per language; recall: keys per task")
    target_words: int = bounded(24, 2, 512, "shared target words; recall: values per task")
    schedule: tuple[int, ...] = bounded((), 0, N_TASKS_MAX - 1, "task order with revisits, e.g. 0,1,2,0; "
                                                  "empty = 0..n_tasks-1 once each")
    rules: tuple[str, ...] = field(default=(), metadata={
        "doc": f"languages only: word-order rule of each language ({', '.join(RULES)}), one for all, "
               "or empty = chosen from the seed"})
    seed: int = bounded(0, 0, 2**31 - 1, "seed of the tasks (lexicons, rules) and of the batches")
    joint: bool = flag(False, "train on a uniform mixture of the schedule's tasks at every step instead of "
                              "one task after another (the joint reference of intransigence)")
    # fields of the later kinds (ignored by the others); their defaults change no earlier stream
    lessons: bool = flag(False, "two_languages: each language's context is a lesson (its dictionary, then "
                                "worked examples), and the modes are A, B, both_sequential, both_interleaved")
    pixel_levels: int = bounded(4, 2, 16, "digits: grey levels a pixel token is quantised to")
    incremental: str = choice("class", ("class", "task"), "split_digits: class-incremental (the label is the digit, "
                                                          "10 classes) or task-incremental (a task tag first, the "
                                                          "label one of the task's 2 digits)")
    length: int = bounded(16, 1, 250, "tracking: symbols in a training sequence (held-out sets can be longer)")
    modulus: int = bounded(5, 2, 32, "tracking, mod_sum: the k of the running sum modulo k")
    problems: tuple[str, ...] = field(default=(), metadata={
        "doc": f"tracking: the problem of each task ({', '.join(PROBLEMS)}), or empty = that order"})
    score_every: bool = flag(False, "tracking: score the running answer after every symbol, not only at the end")

    def check(self) -> None:
        for i in self.schedule:
            if i >= self.n_tasks:
                self.fail("schedule", f"task indices must be between 0 and n_tasks-1 = {self.n_tasks - 1}")
        if self.rules:
            bad = [r for r in self.rules if r not in RULES]
            if bad:
                self.fail("rules", f"each rule must be one of {', '.join(RULES)}")
            if len(self.rules) not in (1, self.n_tasks):
                self.fail("rules", f"give 1 rule or n_tasks = {self.n_tasks} rules, or none")
        kind = get_kind(self.kind)
        if self.n_tasks > kind.max_tasks:
            self.fail("n_tasks", f"{self.kind} builds at most {kind.max_tasks} tasks: between 1 and {kind.max_tasks} "
                                 f"(the field's own range, 1 to {N_TASKS_MAX}, is that of all kinds)")
        if kind.check is not None:
            kind.check(self)


class Stream:
    """Tasks on one vocabulary plus the phase layout (task_index, n_steps) in training order."""

    def __init__(self, cfg: StreamConfig, vocab: Vocab, tasks: list[Task]):
        self.cfg = cfg
        self.vocab = vocab
        self.tasks = list(tasks)
        self.vocab_size = len(vocab)
        self.seq_len = max(t.natural_len for t in self.tasks)
        for t in self.tasks:
            t.pad_to(self.seq_len)
        self.batch_size = cfg.batch_size
        self.tokens_per_step = cfg.batch_size * self.seq_len
        order = cfg.schedule or tuple(range(cfg.n_tasks))
        self.phases: list[tuple[int, int]] = [(int(i), cfg.steps_per_task) for i in order]
        self.total_steps = sum(n for _, n in self.phases)
        self._starts = self.boundaries_steps()[:-1]
        # joint: the distinct tasks of the schedule, in first-seen order; None = sequential
        self.mixture: list[int] | None = list(dict.fromkeys(t for t, _ in self.phases)) if cfg.joint else None

    @property
    def task_names(self) -> list[str]:
        return [t.name for t in self.tasks]

    def boundaries_steps(self) -> list[int]:
        """The step at which each phase starts, then the total: len(phases) + 1 numbers."""
        out, s = [0], 0
        for _, n in self.phases:
            s += n
            out.append(s)
        return out

    def boundaries_tokens(self) -> list[int]:
        return [s * self.tokens_per_step for s in self.boundaries_steps()]

    def phase_at(self, step: int) -> int:
        """Index into `phases` of the phase training at `step`; steps past the end stay in the last."""
        if step < 0:
            raise ValueError(f"step must be non-negative, got {step}")
        return bisect.bisect_right(self._starts, int(step)) - 1

    def task_at(self, step: int) -> int:
        """Index into `tasks` of the task trained at `step` (past the end: the last phase's task)."""
        return self.phases[self.phase_at(step)][0]

    def batch(self, step: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs, targets), LongTensor[batch_size, seq_len] each, from the task active at `step`."""
        if self.mixture is not None:
            return self.mixed_batch(step, self.mixture, generator)
        if generator is None:
            generator = make_generator(mix_seed(self.cfg.seed, "batch", int(step)))
        return self.tasks[self.task_at(step)].sample(self.batch_size, generator)

    def mixed_batch(self, step: int, task_indices, generator: torch.Generator | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A batch whose sequences each come from a task drawn uniformly from `task_indices`.

        The task of each row is drawn from its own generator, seeded by (seed, "mix", step); the
        sequences from `generator` (default: the step's batch generator), task by task in the
        order given. One task given: exactly the plain batch of that task at this step.
        """
        indices = [int(i) for i in task_indices]
        if not indices:
            raise ValueError("mixed_batch needs at least one task index")
        bad = [i for i in indices if not 0 <= i < len(self.tasks)]
        if bad:
            raise ValueError(f"task index {bad[0]} is out of range: tasks are 0..{len(self.tasks) - 1}")
        if generator is None:
            generator = make_generator(mix_seed(self.cfg.seed, "batch", int(step)))
        chooser = make_generator(mix_seed(self.cfg.seed, "mix", int(step)))
        which = torch.randint(len(indices), (self.batch_size,), generator=chooser)
        inputs = targets = None
        for position, task in enumerate(indices):
            rows = (which == position).nonzero().flatten()
            if len(rows) == 0:
                continue
            x, y = self.tasks[task].sample(len(rows), generator)
            if inputs is None:
                inputs = torch.empty((self.batch_size, *x.shape[1:]), dtype=x.dtype)
                targets = torch.empty((self.batch_size, *y.shape[1:]), dtype=y.dtype)
            inputs[rows], targets[rows] = x, y
        return inputs, targets

    def eval_sets(self, n: int = 256, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Each task's fixed held-out set, in task order."""
        return [t.eval_set(n, seed) for t in self.tasks]

    def decode(self, tokens, skip_pad: bool = True) -> str:
        return self.vocab.decode(tokens, skip_pad)

    def describe(self) -> list[str]:
        return [t.describe() for t in self.tasks]

    def __repr__(self) -> str:
        joint = ", joint" if self.mixture is not None else ""
        return (f"<Stream {self.cfg.kind}{joint}: {len(self.tasks)} tasks, {len(self.phases)} phases, "
                f"{self.total_steps} steps, vocab {self.vocab_size}, seq_len {self.seq_len}>")


def build_stream(cfg: StreamConfig | None = None) -> Stream:
    """The stream a config describes; the same config always gives the same tasks."""
    cfg = cfg or StreamConfig()
    vocab, tasks = get_kind(cfg.kind).build(cfg)
    if len(tasks) != cfg.n_tasks:
        raise RuntimeError(f"stream kind {cfg.kind!r} built {len(tasks)} tasks for n_tasks = {cfg.n_tasks}")
    return Stream(cfg, vocab, tasks)
