"""Seeded synthetic tasks and continual streams, plus the scoring every task shares.

- vocab.py: the shared token vocabulary, seed mixing, the `Task` base class
- languages.py: synthetic languages (translation as next-token prediction)
- recall.py: multi-query associative recall
- two_languages.py: two languages learned in context (A only, B only, both)
- stream.py: `StreamConfig`, `build_stream`, `Stream`

Every task has `name`, `seq_len`, `sample(batch_size, generator)`, `eval_set(n, seed)`,
`decode(tokens)`; targets are IGNORE (-100) except on the scored positions. `score` turns
logits into the accuracies that fill the matrix of REFERENCE.md §7 (lab.metrics).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .languages import RULES, LanguageTask, build_languages
from .recall import RecallTask, build_recall
from .stream import KINDS, Stream, StreamConfig, build_stream
from .two_languages import MODES, InContextTranslationTask, build_two_languages
from .vocab import IGNORE, PAD, QUERY, SEP, Task, Vocab, make_generator, mix_seed


def masked_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the scored positions, a differentiable scalar tensor.

    logits: [B, T, V]; targets: [B, T] with IGNORE where not scored.
    """
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1),
                           ignore_index=IGNORE)


@torch.no_grad()
def score(logits: torch.Tensor, targets: torch.Tensor) -> dict:
    """Evaluation numbers of one batch, as Python floats.

    logits: [B, T, V]; targets: [B, T] (IGNORE = not scored).
    - loss: mean cross-entropy over scored positions
    - token_acc: fraction of scored tokens whose argmax is right
    - seq_acc: fraction of sequences (among those with a scored token) whose scored tokens are
      all right
    - n_tokens, n_seqs: how many were scored
    With nothing scored, loss / token_acc / seq_acc are nan.
    """
    if logits.dim() != 3 or targets.shape != logits.shape[:2]:
        raise ValueError(f"score: logits must be [B, T, V] and targets [B, T], got "
                         f"{tuple(logits.shape)} and {tuple(targets.shape)}")
    mask = targets != IGNORE                                   # [B, T]
    n_tokens = int(mask.sum())
    rows = mask.any(dim=1)                                     # [B]
    n_seqs = int(rows.sum())
    if n_tokens == 0:
        nan = float("nan")
        return {"loss": nan, "token_acc": nan, "seq_acc": nan, "n_tokens": 0, "n_seqs": 0}
    loss = float(masked_loss(logits, targets))
    right = (logits.argmax(dim=-1) == targets) | ~mask         # [B, T], unscored count as right
    token_acc = float(((logits.argmax(dim=-1) == targets) & mask).sum()) / n_tokens
    seq_acc = float((right.all(dim=1) & rows).sum()) / n_seqs
    return {"loss": loss, "token_acc": token_acc, "seq_acc": seq_acc,
            "n_tokens": n_tokens, "n_seqs": n_seqs}


__all__ = [
    "IGNORE", "PAD", "SEP", "QUERY", "KINDS", "MODES", "RULES",
    "Vocab", "Task", "LanguageTask", "RecallTask", "InContextTranslationTask",
    "build_languages", "build_recall", "build_two_languages",
    "StreamConfig", "Stream", "build_stream", "score", "masked_loss", "make_generator", "mix_seed",
]
