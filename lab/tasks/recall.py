"""Multi-query associative recall (MQAR-style): an in-context key → value memory test.

    k_1 v_1 k_2 v_2 … k_P v_P <sep> q_1 a_1 … q_Q a_Q

Keys are distinct within a sequence, values are drawn with replacement; each query q is one of
the keys (distinct queries, in random order) and a is its value. Keys and values are drawn fresh
for every sequence from the task's token pools, so nothing can be memorised across sequences:
only the answers a_i are scored. In a recall stream, task i has its own key and value pools
(a fraction `overlap` of each shared by all tasks, see vocab.add_pools).

Choice left open by the MQAR description: Q ≤ P queries, here Q = P by default (every pair is
asked once).
"""
from __future__ import annotations

import torch

from .registry import register_kind
from .vocab import SEP, Task, Vocab, mix_seed, rand_distinct


class RecallTask(Task):
    def __init__(self, vocab: Vocab, index: int, key_tokens: torch.Tensor, value_tokens: torch.Tensor,
                 n_pairs: int, n_queries: int | None, seed: int):
        super().__init__(vocab, seed)
        n_queries = n_pairs if n_queries is None else n_queries
        if n_pairs > len(key_tokens):
            raise ValueError(f"recall: {n_pairs} pairs need at least as many keys, the pool has {len(key_tokens)}")
        if not 1 <= n_queries <= n_pairs:
            raise ValueError(f"recall: queries must be between 1 and the number of pairs ({n_pairs}), got {n_queries}")
        self.index = index
        self.name = f"recall{index + 1}"
        self.key_tokens = key_tokens        # LongTensor[K]
        self.value_tokens = value_tokens    # LongTensor[V]
        self.n_pairs, self.n_queries = int(n_pairs), int(n_queries)
        self.natural_len = 2 * self.n_pairs + 1 + 2 * self.n_queries - 1

    def _generate(self, n: int, g: torch.Generator):
        P, Q = self.n_pairs, self.n_queries
        keys = self.key_tokens[rand_distinct(n, len(self.key_tokens), P, g)]                  # [n, P]
        values = self.value_tokens[torch.randint(len(self.value_tokens), (n, P), generator=g)]  # [n, P]
        ask = rand_distinct(n, P, Q, g)                                                       # [n, Q]
        q, a = keys.gather(1, ask), values.gather(1, ask)
        context = torch.stack([keys, values], dim=2).reshape(n, 2 * P)
        queries = torch.stack([q, a], dim=2).reshape(n, 2 * Q)
        seq = torch.cat([context, torch.full((n, 1), SEP), queries], dim=1)                   # [n, 2P+1+2Q]
        scored = torch.zeros_like(seq, dtype=torch.bool)
        scored[:, 2 * P + 2::2] = True                                                        # the answers
        return seq, scored

    def describe(self) -> str:
        return (f"{self.name}: {self.n_pairs} pairs, {self.n_queries} queries, "
                f"{len(self.key_tokens)} keys, {len(self.value_tokens)} values")


def build_recall(n_tasks: int, n_keys: int = 24, n_values: int = 24, overlap: float = 0.5,
                 n_pairs: int = 4, n_queries: int | None = None,
                 seed: int = 0) -> tuple[Vocab, list[RecallTask]]:
    """Vocabulary and `n_tasks` recall tasks with their own key/value pools."""
    vocab = Vocab(0)
    key_pools = vocab.add_pools("k", n_tasks, n_keys, overlap)
    value_pools = vocab.add_pools("v", n_tasks, n_values, overlap)
    tasks = [RecallTask(vocab, i, key_pools[i], value_pools[i], n_pairs, n_queries,
                        mix_seed(seed, "recall", "task", i)) for i in range(n_tasks)]
    return vocab, tasks


def check_words(cfg) -> None:
    """recall and two_languages draw `words` distinct source words (keys) from `lexicon_size`."""
    if cfg.words > cfg.lexicon_size:
        cfg.fail("words", f"{cfg.kind} draws {cfg.words} distinct words from lexicon_size = "
                          f"{cfg.lexicon_size}: must be at most lexicon_size")


def _build(cfg) -> tuple[Vocab, list[RecallTask]]:
    return build_recall(cfg.n_tasks, cfg.lexicon_size, cfg.target_words, cfg.overlap, cfg.words, None, cfg.seed)


register_kind("recall", _build, "associative recall (key → value)",
              "recall the value of each key asked, from pairs given in context (MQAR)", max_tasks=8,
              check=check_words, order=20, fields=("overlap", "words", "lexicon_size", "target_words"))
