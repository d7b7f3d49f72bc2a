"""Split-Digits and Permuted-Digits: the lab's small stand-ins for Split MNIST and Permuted MNIST.

The images are scikit-learn's `load_digits` (1,797 handwritten digits, 8×8 pixels of 17 grey
levels, shipped inside the wheel: nothing is downloaded). An image is read as a sequence of tokens:

    [<Lk>]  p_1 p_2 … p_64  <sep>  d                 (only the label d is scored)

p_i is pixel i (row by row) quantised to `pixel_levels` levels (token "px0" … ), d a digit token
("d0" … "d9"). Input length 65 (66 with the task tag): the models' default max_len (256) holds it.

Kinds:
- `split_digits`: 5 tasks of 2 classes each (0/1, 2/3, 4/5, 6/7, 8/9; `n_tasks` < 5 keeps the
  first pairs). `incremental = "class"`: no tag, the label is the digit, one 10-way answer shared
  by every task (class-incremental, the Split MNIST anchor's setting). `incremental = "task"`: the
  task's tag <Lk> comes first (the model sees which task it is asked), the label is still the
  digit, one of the task's 2. How the task-incremental head is restricted is the lab's choice and
  both halves are measurable: the stream's accuracy (what `Run` records) takes the argmax over the
  whole vocabulary, so it measures what the tag alone buys; `score_within(logits, targets,
  task.answer_tokens)` restricts the answer to the task's 2 digits (the multi-head evaluation of
  task-incremental learning). The same restriction on a class-incremental stream measures the head
  without the tag.
- `permuted_digits`: every task has all 10 classes and its own fixed pixel permutation, drawn from
  (seed, "permuted_digits", "perm", i) (every task is permuted, the first too); no tag
  (domain-incremental, as Permuted MNIST is usually run). Up to 20 tasks, as in the anchor.

Held-out split (the lab's choice): of each class's images a fixed 20 % (`TEST_FRACTION`, rounded)
are test images, chosen by a seeded permutation that does not depend on the stream's seed, so
every run and every seed is scored on the same test images (like MNIST's fixed test set).
Training batches draw train images only (uniformly, with replacement); `eval_set(n, seed)` draws
test images only: a seeded order of the task's test images, cycled when n exceeds them (a task of
split_digits has about 72). Train and test never share an image index; from 3 grey levels up they
share no image by content either (at 2 levels, binarised, 12 of the 359 test images equal some
train image). The tests check the indices, and the contents at 4 and 8 levels.

Anchors (REFERENCE.md §7) are published MNIST numbers, shown beside the lab's as orientation only:
8×8 digits are an easier, smaller data set, read here as a token sequence by a sequence model.
"""
from __future__ import annotations

from functools import lru_cache

import pandas as pd
import torch

from .registry import Anchor, register_kind
from .scoring import predict, score, score_within
from .vocab import SEP, Task, Vocab, make_generator, mix_seed

N_PIXELS, N_CLASSES, TEST_FRACTION = 64, 10, 0.2
PAIRS = tuple((2 * i, 2 * i + 1) for i in range(5))
_SPLIT_SEED = mix_seed("digits", "split")
_SOURCE = "REFERENCE.md §7, 'sanity anchors from the literature' (approximate; the lab has not re-checked the tables)"
SPLIT_ANCHORS = (
    Anchor("Split MNIST, 5 tasks, class-incremental", "naive fine-tuning", "ACC", 0.20,
           _SOURCE + "; a usual source: van de Ven & Tolias 2019, 'Three scenarios for continual learning'",
           "MNIST 28×28 with an MLP; the lab reads 8×8 digits as tokens"),
    Anchor("Split MNIST, 5 tasks, class-incremental", "naive fine-tuning", "forgetting", 1.0,
           _SOURCE, "forgetting near 1: every earlier task is lost"),
)
PERMUTED_ANCHORS = tuple(
    Anchor("Permuted MNIST, 20 tasks", method, "ACC", value,
           _SOURCE + "; a usual source: Chaudhry et al. 2019, 'Efficient Lifelong Learning with A-GEM'",
           "MNIST 28×28 with an MLP, one pass; the lab reads 8×8 digits as tokens")
    for method, value in (("naive fine-tuning", 0.48), ("EWC", 0.68), ("GEM", 0.90)))


@lru_cache(maxsize=1)
def load_images() -> tuple[torch.Tensor, torch.Tensor]:
    """(pixels LongTensor[1797, 64] in 0..16, labels LongTensor[1797]); scikit-learn is imported
    only here, when a digits stream is first built."""
    from sklearn.datasets import load_digits

    data = load_digits()
    return torch.as_tensor(data.data, dtype=torch.long), torch.as_tensor(data.target, dtype=torch.long)


@lru_cache(maxsize=1)
def split_indices() -> tuple[torch.Tensor, torch.Tensor]:
    """(train, test) image indices, LongTensor each, sorted: per class a fixed round(20 %) is test."""
    _, labels = load_images()
    g = make_generator(_SPLIT_SEED)
    train, test = [], []
    for c in range(N_CLASSES):
        idx = (labels == c).nonzero().flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        k = int(round(TEST_FRACTION * len(idx)))
        test.append(idx[:k])
        train.append(idx[k:])
    return torch.cat(train).sort().values, torch.cat(test).sort().values


def quantise(pixels: torch.Tensor, levels: int) -> torch.Tensor:
    """Grey values 0..16 → levels 0..levels−1 (equal-width bins over 17 values)."""
    return torch.clamp(pixels * levels // 17, max=levels - 1)


class DigitsTask(Task):
    """One task: images of `classes`, optionally permuted and tagged (module docstring)."""

    def __init__(self, vocab: Vocab, name: str, classes, levels: int, pixel_tokens: torch.Tensor,
                 digit_tokens: torch.Tensor, seed: int, permutation: torch.Tensor | None = None,
                 tag: int | None = None):
        super().__init__(vocab, seed)
        if not 2 <= levels <= len(pixel_tokens):
            raise ValueError(f"digits: {levels} grey levels need between 2 and {len(pixel_tokens)} pixel tokens")
        self.name = name
        self.classes = tuple(int(c) for c in classes)
        self.levels = int(levels)
        self.pixel_tokens, self.digit_tokens = pixel_tokens, digit_tokens
        self.permutation = permutation                     # LongTensor[64] or None: pixel p shows p_perm[p]
        self.tag = tag
        self.answer_tokens = digit_tokens[list(self.classes)]          # LongTensor[len(classes)]
        pixels, labels = load_images()
        train, test = split_indices()
        wanted = torch.tensor(self.classes)
        self.train_index = train[torch.isin(labels[train], wanted)]    # image indices of this task
        self.test_index = test[torch.isin(labels[test], wanted)]
        self.natural_len = N_PIXELS + 1 + (tag is not None)

    def sequences(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The full sequences of images `index` (LongTensor[n]) and their scored masks, [n, natural_len + 1]."""
        pixels, labels = load_images()
        image = quantise(pixels[index], self.levels)
        if self.permutation is not None:
            image = image[:, self.permutation]
        n = len(index)
        parts = [self.pixel_tokens[image], torch.full((n, 1), SEP), self.digit_tokens[labels[index]][:, None]]
        if self.tag is not None:
            parts.insert(0, torch.full((n, 1), self.tag))
        seq = torch.cat(parts, dim=1)
        scored = torch.zeros_like(seq, dtype=torch.bool)
        scored[:, -1] = True
        return seq, scored

    def _generate(self, n: int, g: torch.Generator):
        """Training sequences: train images drawn uniformly with replacement."""
        return self.sequences(self.train_index[torch.randint(len(self.train_index), (n,), generator=g)])

    def eval_set(self, n: int = 256, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """A fixed held-out set of test images only: a seeded order of the task's test images, cycled
        when `n` exceeds them. (inputs, targets) LongTensor[n, seq_len] each."""
        if n < 1:
            raise ValueError(f"eval_set: n must be at least 1, got {n}")
        g = make_generator(mix_seed(self.seed, "eval", seed))
        order = self.test_index[torch.randperm(len(self.test_index), generator=g)]
        index = order.repeat(-(-n // len(order)))[:n]
        return self._split(*self.sequences(index))

    def describe(self) -> str:
        what = "permuted pixels, " if self.permutation is not None else ""
        tag = "tagged, " if self.tag is not None else ""
        return (f"{self.name}: digits {', '.join(map(str, self.classes))} ({what}{tag}{self.levels} grey levels; "
                f"{len(self.train_index)} train and {len(self.test_index)} test images)")


def head_accuracy(model, tasks, n: int = 256, seed: int = 0) -> pd.DataFrame:
    """Both accuracies of a trained model on each digits task's held-out set, without training:
    columns task, tagged (the model saw a task tag), accuracy (argmax over the whole vocabulary:
    what `Run` records), within_task (argmax among the task's own digits, `score_within`), chance
    (1 / the task's classes), n. `model`: tokens [B, T] → logits [B, T, V]."""
    rows = []
    for task in tasks:
        inputs, targets = task.eval_set(n, seed)
        logits = predict(model, inputs)
        rows.append({"task": task.name, "tagged": task.tag is not None, "accuracy": score(logits, targets)["token_acc"],
                     "within_task": score_within(logits, targets, task.answer_tokens)["token_acc"],
                     "chance": 1.0 / len(task.classes), "n": int(inputs.shape[0])})
    return pd.DataFrame(rows, columns=["task", "tagged", "accuracy", "within_task", "chance", "n"])


def _vocab(n_tags: int, levels: int) -> tuple[Vocab, torch.Tensor, torch.Tensor]:
    vocab = Vocab(n_tags)
    pixels = vocab.add_block("px", [f"px{j}" for j in range(levels)])
    digits = vocab.add_block("d", [f"d{j}" for j in range(N_CLASSES)])
    return vocab, pixels, digits


def build_split_digits(n_tasks: int = 5, levels: int = 4, incremental: str = "class",
                       seed: int = 0) -> tuple[Vocab, list[DigitsTask]]:
    """The first `n_tasks` class pairs (0/1, 2/3, …), class- or task-incremental."""
    if incremental not in ("class", "task"):
        raise ValueError(f"split_digits: incremental must be 'class' or 'task', got {incremental!r}")
    if not 1 <= n_tasks <= len(PAIRS):
        raise ValueError(f"split_digits has {len(PAIRS)} tasks, asked for {n_tasks}")
    tagged = incremental == "task"
    vocab, pixels, digits = _vocab(n_tasks if tagged else 0, levels)
    tasks = [DigitsTask(vocab, f"digits{a}{b}", (a, b), levels, pixels, digits,
                        mix_seed(seed, "split_digits", "task", i), tag=vocab.tag(i) if tagged else None)
             for i, (a, b) in enumerate(PAIRS[:n_tasks])]
    return vocab, tasks


def build_permuted_digits(n_tasks: int = 5, levels: int = 4, seed: int = 0) -> tuple[Vocab, list[DigitsTask]]:
    """`n_tasks` tasks of all 10 digits, each with its own seeded pixel permutation."""
    vocab, pixels, digits = _vocab(0, levels)
    tasks = []
    for i in range(n_tasks):
        perm = torch.randperm(N_PIXELS, generator=make_generator(mix_seed(seed, "permuted_digits", "perm", i)))
        tasks.append(DigitsTask(vocab, f"perm{i + 1}", range(N_CLASSES), levels, pixels, digits,
                                mix_seed(seed, "permuted_digits", "task", i), permutation=perm))
    return vocab, tasks


register_kind("split_digits", lambda cfg: build_split_digits(cfg.n_tasks, cfg.pixel_levels, cfg.incremental, cfg.seed),
              "Split-Digits (8×8 images, two classes a task)",
              "classify 8×8 digit images read as pixel tokens, two new classes a task (Split MNIST's setting)",
              max_tasks=len(PAIRS), order=40, anchors=SPLIT_ANCHORS, fields=("pixel_levels", "incremental"))
register_kind("permuted_digits", lambda cfg: build_permuted_digits(cfg.n_tasks, cfg.pixel_levels, cfg.seed),
              "Permuted-Digits (8×8 images, a pixel permutation a task)",
              "classify 8×8 digit images whose pixels each task permutes its own way (Permuted MNIST's setting)",
              max_tasks=20, order=50, anchors=PERMUTED_ANCHORS, fields=("pixel_levels",))
