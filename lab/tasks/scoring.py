"""The scoring every task shares: the loss over scored positions, the accuracies of one batch, and
the accuracy with the answer restricted to a set of tokens (a task-incremental "head").

logits: [B, T, V]; targets: [B, T] with IGNORE (-100) where not scored.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .vocab import IGNORE


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


@torch.no_grad()
def score_within(logits: torch.Tensor, targets: torch.Tensor, allowed) -> dict:
    """`score` with the prediction restricted to the `allowed` token ids (a LongTensor or a list):
    every other token's logit is set to −inf before the argmax and the loss. This is the
    multi-head evaluation of task-incremental learning (the answer is chosen among the task's own
    classes); a scored target outside `allowed` is an error."""
    allowed = torch.as_tensor(allowed, dtype=torch.long, device=logits.device).flatten()
    if allowed.numel() == 0:
        raise ValueError("score_within: no allowed tokens")
    scored = targets[targets != IGNORE]
    if scored.numel() and not torch.isin(scored, allowed).all():
        raise ValueError("score_within: a scored target is not among the allowed tokens")
    mask = torch.full((logits.shape[-1],), float("-inf"), device=logits.device)
    mask[allowed] = 0.0
    return score(logits.float() + mask, targets)


@torch.no_grad()
def predict(model, inputs: torch.Tensor) -> torch.Tensor:
    """The logits [B, T, V] of `model` on `inputs` [B, T], on the CPU. `model` is any callable from
    tokens to logits; a torch module is run on its own device in eval mode, and its mode is given
    back afterwards (the helpers that score a trained model without training use this)."""
    parameters = getattr(model, "parameters", None)
    first = next(iter(parameters()), None) if callable(parameters) else None
    device = first.device if first is not None else torch.device("cpu")
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    try:
        return model(inputs.to(device)).float().cpu()
    finally:
        if was_training:
            model.train()
