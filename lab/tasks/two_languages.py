"""Two languages learned in context: the lab's miniature of the papers' Manchu + Kalamang test.

REFERENCE.md §8 quotes the finding (in-context learning collapses when two new languages are
learned in sequence; HOPE with three levels nearly recovers single-language performance). Here,
one sequence is a small dictionary followed by questions:

    <LA> s t  <LB> s t  …  <sep>  <query> <LA> s t  <query> <LB> s t  …

mode "A": E entries of language A only; "B": of B only; "both": E of A and E of B, shuffled
together in one context. Each query asks a source word of the context (tagged with its language)
and only its translation t is scored. The dictionary is drawn fresh for every sequence (source
words from the language's pool, targets from the shared target words), so the model cannot have
memorised it: it must read it in context. With `overlap` > 0 the two pools share source words, so
in "both" the same word can appear with two translations and only the tag tells them apart.

Choices that are the lab's own: E = Q = `words` by default; in "both" ⌈Q/2⌉ queries ask A and
⌊Q/2⌋ ask B, in random order; a language's queries are distinct entries of its dictionary.
"""
from __future__ import annotations

import torch

from .vocab import QUERY, SEP, Task, Vocab, mix_seed, rand_distinct

MODES = ("A", "B", "both")


class InContextTranslationTask(Task):
    def __init__(self, vocab: Vocab, mode: str, source_pools: list[torch.Tensor],
                 target_tokens: torch.Tensor, n_entries: int, n_queries: int | None, seed: int):
        super().__init__(vocab, seed)
        if mode not in MODES:
            raise ValueError(f"two_languages: mode {mode!r} is not one of {', '.join(MODES)}")
        n_queries = n_entries if n_queries is None else n_queries
        if n_entries > min(len(p) for p in source_pools):
            raise ValueError(f"two_languages: {n_entries} entries need at least as many source words")
        if not 1 <= n_queries <= (2 * n_entries if mode == "both" else n_entries):
            raise ValueError(f"two_languages: {n_queries} queries do not fit {n_entries} entries a language")
        self.mode = mode
        self.name = f"inctx_{mode}"
        self.languages = [0, 1] if mode == "both" else [MODES.index(mode)]
        self.source_pools = source_pools      # two LongTensor[S]
        self.target_tokens = target_tokens    # LongTensor[T_words]
        self.n_entries, self.n_queries = int(n_entries), int(n_queries)
        self.n_context = self.n_entries * len(self.languages)
        self.natural_len = 3 * self.n_context + 1 + 4 * self.n_queries - 1

    def _generate(self, n: int, g: torch.Generator):
        E, Q = self.n_entries, self.n_queries
        entries, asks = [], []
        if len(self.languages) == 2:
            per_lang = [(Q + 1) // 2, Q // 2]
        else:
            per_lang = [Q]
        for slot, lang in enumerate(self.languages):
            pool = self.source_pools[lang]
            src = pool[rand_distinct(n, len(pool), E, g)]                                         # [n, E]
            tgt = self.target_tokens[torch.randint(len(self.target_tokens), (n, E), generator=g)]  # [n, E]
            tag = torch.full((n, E), self.vocab.tag(lang))
            entries.append(torch.stack([tag, src, tgt], dim=2))                                   # [n, E, 3]
            asks.append(slot * E + rand_distinct(n, E, per_lang[slot], g))
        entries = torch.cat(entries, dim=1)                                                       # [n, C, 3]
        asks = torch.cat(asks, dim=1)                                                             # [n, Q]
        asks = asks.gather(1, torch.rand(n, Q, generator=g).argsort(dim=1))                       # shuffle order
        asked = entries.gather(1, asks[..., None].expand(-1, -1, 3))                              # [n, Q, 3]
        queries = torch.cat([torch.full((n, Q, 1), QUERY), asked], dim=2)                         # [n, Q, 4]
        order = torch.rand(n, self.n_context, generator=g).argsort(dim=1)
        context = entries.gather(1, order[..., None].expand(-1, -1, 3))                           # shuffled
        seq = torch.cat([context.reshape(n, -1), torch.full((n, 1), SEP), queries.reshape(n, -1)], dim=1)
        scored = torch.zeros_like(seq, dtype=torch.bool)
        scored[:, 3 * self.n_context + 4::4] = True                                              # the answers t
        return seq, scored

    def describe(self) -> str:
        langs = " and ".join("AB"[i] for i in self.languages)
        return f"{self.name}: {self.n_context} dictionary entries of {langs}, {self.n_queries} queries"


def build_two_languages(n_tasks: int = 3, lexicon_size: int = 24, target_words: int = 24,
                        overlap: float = 0.5, n_entries: int = 4, n_queries: int | None = None,
                        seed: int = 0) -> tuple[Vocab, list[InContextTranslationTask]]:
    """Vocabulary and the tasks A-only, B-only, both (the first `n_tasks` of them, at most 3)."""
    if not 1 <= n_tasks <= len(MODES):
        raise ValueError(f"two_languages has {len(MODES)} tasks (A, B, both), asked for {n_tasks}")
    vocab = Vocab(2)
    pools = vocab.add_pools("w", 2, lexicon_size, overlap)
    targets = vocab.add_block("t:w", [f"t:w{j}" for j in range(target_words)])
    tasks = [InContextTranslationTask(vocab, mode, pools, targets, n_entries, n_queries,
                                      mix_seed(seed, "two_languages", "task", i))
             for i, mode in enumerate(MODES[:n_tasks])]
    return vocab, tasks
