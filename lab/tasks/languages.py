"""Synthetic languages: translation as next-token prediction, one task per language.

Language i is a random lexicon from its source words to the shared target words plus a
word-order rule. A sentence is

    <Li> s_1 … s_n <sep> t_1 … t_n        with  t_k = lexicon(s_{perm(k)}),  perm = rule(n)

and only the target words t_1 … t_n are scored (the accuracy of REFERENCE.md §7 is the
token or sentence accuracy on them).

`overlap` in [0, 1] is the fraction of source words all languages share (vocab.add_pools):
0 gives disjoint source vocabularies (a test of capacity), 1 the same source words mapped to
different targets (a test of interference; the language tag keeps the joint task learnable).

Choices the papers leave open (this is the lab's own task, not a paper's):
- lexicons are balanced: every target word is the image of ⌊S/T⌋ or ⌈S/T⌉ source words (a
  bijection when S = T);
- a shared source word is mapped to a different target in every language, as long as there are
  at least as many target words as languages (`make_lexicon` repairs clashes by swaps);
- with no rules in the config the rules are a seeded permutation of RULES, so the first
  len(RULES) languages all get different orders.
"""
from __future__ import annotations

from typing import Sequence

import torch

from .registry import register_kind
from .vocab import LETTERS, SEP, Task, Vocab, make_generator, mix_seed

RULES = ("same", "reverse", "swap_pairs", "rotate")


def rule_permutation(rule: str, n: int) -> list[int]:
    """Positions `perm` such that target word k translates source word perm[k]."""
    if rule == "same":
        return list(range(n))
    if rule == "reverse":
        return list(range(n - 1, -1, -1))
    if rule == "swap_pairs":  # 1 0 3 2 …; an odd last word stays
        return [k + 1 if k % 2 == 0 and k + 1 < n else (k - 1 if k % 2 else k) for k in range(n)]
    if rule == "rotate":  # t_k = lex(s_{k+1}), the first word goes last
        return [(k + 1) % n for k in range(n)]
    raise ValueError(f"unknown word-order rule {rule!r}: use one of {', '.join(RULES)}")


def make_lexicon(n_src: int, n_tgt: int, forbidden: Sequence[set], g: torch.Generator) -> list[int]:
    """A balanced random map source index → target index, avoiding forbidden[j] for word j.

    Starts from shuffled copies of randperm(n_tgt), then for each clash swaps with another word
    where neither ends in a forbidden target (the multiset, so the balance, is kept). Best effort:
    a clash with no such swap stays (only possible when languages outnumber target words).
    """
    reps = -(-n_src // n_tgt)
    pool = torch.cat([torch.randperm(n_tgt, generator=g) for _ in range(reps)])[:n_src]
    pool = pool[torch.randperm(n_src, generator=g)].tolist()
    order = torch.randperm(n_src, generator=g).tolist()
    for w in range(n_src):
        if pool[w] not in forbidden[w]:
            continue
        for u in order:
            if u != w and pool[u] not in forbidden[w] and pool[w] not in forbidden[u]:
                pool[w], pool[u] = pool[u], pool[w]
                break
    return pool


class LanguageTask(Task):
    """Translate sentences of one synthetic language (see the module docstring)."""

    def __init__(self, vocab: Vocab, index: int, source_tokens: torch.Tensor,
                 lexicon_tokens: torch.Tensor, rule: str, words: int, seed: int):
        super().__init__(vocab, seed)
        self.index = index
        self.name = f"lang{index + 1}"
        self.letter = LETTERS[index]
        self.tag = vocab.tag(index)
        self.source_tokens = source_tokens            # LongTensor[S]: word j's token id
        self.lexicon_tokens = lexicon_tokens          # LongTensor[S]: target token id of word j
        self.rule = rule
        self.words = int(words)
        self.perm = torch.tensor(rule_permutation(rule, self.words), dtype=torch.long)
        self.natural_len = 2 * self.words + 1         # <Li> s×n <sep> t×n, minus the last token

    def translate(self, source: torch.Tensor) -> torch.Tensor:
        """Source token ids LongTensor[..., n] → target token ids LongTensor[..., n]."""
        lookup = torch.full((len(self.vocab),), -1, dtype=torch.long)
        lookup[self.source_tokens] = self.lexicon_tokens
        out = lookup[source]
        if (out < 0).any():
            raise ValueError(f"{self.name}: a token is not a source word of this language")
        return out[..., self.perm]

    def _generate(self, n: int, g: torch.Generator):
        n_words = self.words
        idx = torch.randint(len(self.source_tokens), (n, n_words), generator=g)  # [n, words]
        src = self.source_tokens[idx]
        tgt = self.lexicon_tokens[idx][:, self.perm]
        seq = torch.cat([torch.full((n, 1), self.tag), src, torch.full((n, 1), SEP), tgt], dim=1)
        scored = torch.zeros_like(seq, dtype=torch.bool)
        scored[:, n_words + 2:] = True                # [n, 2·words + 2]
        return seq, scored

    def lexicon_table(self) -> list[tuple[str, str]]:
        """(source word, target word) names, for the UI's dictionary view."""
        return [(self.vocab.name(s), self.vocab.name(t))
                for s, t in zip(self.source_tokens.tolist(), self.lexicon_tokens.tolist())]

    def describe(self) -> str:
        return f"{self.name}: {len(self.source_tokens)} words, order '{self.rule}', {self.words} words a sentence"


def choose_rules(n_languages: int, rules: Sequence[str], seed: int) -> list[str]:
    """The rules as given (one for all, or one per language), or a seeded permutation of RULES."""
    if rules:
        rules = list(rules)
        if len(rules) == 1:
            rules = rules * n_languages
        if len(rules) != n_languages:
            raise ValueError(f"give one rule or {n_languages}, got {len(rules)}")
        for r in rules:
            rule_permutation(r, 1)  # validates the name
        return rules
    order = torch.randperm(len(RULES), generator=make_generator(mix_seed(seed, "rules"))).tolist()
    return [RULES[order[i % len(RULES)]] for i in range(n_languages)]


def build_languages(n_languages: int, lexicon_size: int = 24, target_words: int = 24,
                    overlap: float = 0.5, words: int = 4, rules: Sequence[str] = (),
                    seed: int = 0) -> tuple[Vocab, list[LanguageTask]]:
    """The vocabulary and the tasks of `n_languages` languages, deterministic in `seed`.

    Language i's lexicon is drawn from its own generator (seed, "lexicon", i) and depends only
    on the languages before it, so adding languages leaves the earlier lexicons unchanged.
    """
    vocab = Vocab(n_languages)
    pools = vocab.add_pools("w", n_languages, lexicon_size, overlap)
    targets = vocab.add_block("t:w", [f"t:w{j}" for j in range(target_words)])
    n_shared = len(vocab.blocks["*:w"])
    chosen = choose_rules(n_languages, rules, seed)
    lexicons: list[list[int]] = []
    tasks = []
    for i in range(n_languages):
        forbidden = [({lex[j] for lex in lexicons} if j < n_shared else set()) for j in range(lexicon_size)]
        lex = make_lexicon(lexicon_size, target_words, forbidden,
                           make_generator(mix_seed(seed, "lexicon", i)))
        lexicons.append(lex)
        tasks.append(LanguageTask(vocab, i, pools[i], targets[torch.tensor(lex, dtype=torch.long)],
                                  chosen[i], words, mix_seed(seed, "languages", "task", i)))
    return vocab, tasks


def _build(cfg) -> tuple[Vocab, list[LanguageTask]]:
    return build_languages(cfg.n_tasks, cfg.lexicon_size, cfg.target_words, cfg.overlap, cfg.words, cfg.rules,
                           cfg.seed)


register_kind("languages", _build, "synthetic languages (translate)",
              "translate sentences of synthetic languages, one language a task", max_tasks=len(LETTERS), order=10,
              fields=("overlap", "words", "lexicon_size", "target_words", "rules"))
