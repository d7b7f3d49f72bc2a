"""Seeded synthetic tasks and continual streams, plus the scoring every task shares.

- vocab.py: the shared token vocabulary, seed mixing, the `Task` base class
- registry.py: the stream kinds, each registered once beside its builder (`register_kind`)
- languages.py: synthetic languages (translation as next-token prediction)
- recall.py: multi-query associative recall
- two_languages.py: two languages learned in context (dictionary layout: A, B, both; lesson layout:
  A, B, both_sequential, both_interleaved), per-language accuracy and the recovery ratio
- digits.py: Split-Digits and Permuted-Digits (scikit-learn's 8×8 digits as pixel tokens), anchors
- tracking.py: sequential state tracking (parity, mod_sum, perm3, perm5), accuracy against length
- scoring.py: `masked_loss`, `score`, `score_within` (a restricted answer head)
- stream.py: `StreamConfig`, `build_stream`, `Stream`

Every task has `name`, `seq_len`, `sample(batch_size, generator)`, `eval_set(n, seed)`,
`decode(tokens)`; targets are IGNORE (-100) except on the scored positions. `score` turns
logits into the accuracies that fill the matrix of REFERENCE.md §7 (lab.metrics).
"""
from __future__ import annotations

from .digits import DigitsTask, build_permuted_digits, build_split_digits, head_accuracy
from .languages import RULES, LanguageTask, build_languages
from .recall import RecallTask, build_recall
from .registry import Anchor, StreamKind, anchors, get_kind, kinds, labels, register_kind
from .scoring import masked_loss, predict, score, score_within
from .stream import KINDS, Stream, StreamConfig, build_stream
from .tracking import PROBLEMS, TrackingTask, build_tracking, length_curve
from .two_languages import (LESSON_MODES, MODES, InContextTranslationTask, LessonTask, build_two_languages,
                            language_accuracy, recovery_ratio, split_by_language)
from .vocab import IGNORE, PAD, QUERY, SEP, Task, Vocab, make_generator, mix_seed


__all__ = [
    "IGNORE", "PAD", "SEP", "QUERY", "KINDS", "MODES", "LESSON_MODES", "RULES", "PROBLEMS",
    "Vocab", "Task", "LanguageTask", "RecallTask", "InContextTranslationTask", "LessonTask", "DigitsTask",
    "TrackingTask", "build_languages", "build_recall", "build_two_languages", "build_split_digits",
    "build_permuted_digits", "build_tracking", "StreamConfig", "Stream", "build_stream", "score", "score_within",
    "masked_loss", "make_generator", "mix_seed", "register_kind", "StreamKind", "Anchor", "kinds", "get_kind",
    "labels", "anchors", "length_curve", "language_accuracy", "recovery_ratio", "split_by_language",
    "head_accuracy", "predict",
]
