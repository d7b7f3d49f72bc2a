"""One token vocabulary per stream, seed mixing, and the base class every task derives from.

Layout (all tasks of a stream share it, so one model with `vocab_size = len(vocab)` runs on all):

    0 <pad>   1 <sep>   2 <query>   3.. <L1> <L2> …   (one language tag per language)
    then named blocks, in the order the builder adds them, e.g. for the languages stream:
    "*:w0" … (source words shared by all languages, see `add_pools`),
    "A:w12" … (source words private to language A), "B:w12" …, then "t:w0" … (shared targets).

A task turns sequences into next-token prediction (REFERENCE.md §7 measures accuracy on them):
`inputs = seq[:-1]`, `targets = seq[1:]`, and every target that is not scored is IGNORE (-100),
the `ignore_index` of `torch.nn.functional.cross_entropy`. Shorter tasks are right-padded with
<pad> (targets IGNORE) to the stream's common `seq_len`; with a causal model right-padding
changes no earlier prediction.
"""
from __future__ import annotations

import abc

import hashlib
import math
from typing import Sequence

import torch

PAD, SEP, QUERY = 0, 1, 2
SPECIALS = ("<pad>", "<sep>", "<query>")
IGNORE = -100
LETTERS = "ABCDEFGH"
_MASK64 = (1 << 64) - 1


def mix_seed(*parts: int | str) -> int:
    """A deterministic 63-bit seed from ints and strings (splitmix64; never Python's salted hash).

    Task seeds are `mix_seed(cfg.seed, kind, "task", i)`, so they depend on the config only,
    never on how many batches were drawn before.
    """
    h = 0x9E3779B97F4A7C15
    for p in parts:
        if isinstance(p, str):
            p = int.from_bytes(hashlib.blake2b(p.encode(), digest_size=8).digest(), "little")
        h = (h ^ (int(p) & _MASK64)) & _MASK64
        h = (h + 0x9E3779B97F4A7C15) & _MASK64
        h = ((h ^ (h >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        h = ((h ^ (h >> 27)) * 0x94D049BB133111EB) & _MASK64
        h ^= h >> 31
    return h & ((1 << 63) - 1)


def make_generator(seed: int) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(int(seed))
    return g


def n_shared(size: int, overlap: float, n_owners: int) -> int:
    """How many of `size` words are shared: round(overlap·size), 0 when there is one owner."""
    if n_owners <= 1:
        return 0
    return min(size, int(math.floor(overlap * size + 0.5)))


class Vocab:
    """Token names and named blocks; `len(vocab)` is the model's vocab_size."""

    def __init__(self, n_languages: int = 0):
        self.n_languages = int(n_languages)
        self.names: list[str] = list(SPECIALS) + [f"<L{i + 1}>" for i in range(self.n_languages)]
        self.blocks: dict[str, range] = {}

    def __len__(self) -> int:
        return len(self.names)

    @property
    def size(self) -> int:
        return len(self.names)

    def tag(self, language: int) -> int:
        """Token id of the tag of language `language` (0-based): <L1> for 0."""
        if not 0 <= language < self.n_languages:
            raise ValueError(f"language {language} out of range: this vocab has {self.n_languages}")
        return len(SPECIALS) + language

    def add_block(self, key: str, names: Sequence[str]) -> torch.Tensor:
        """Append tokens named `names`; returns their ids, LongTensor[len(names)]."""
        if key in self.blocks:
            raise ValueError(f"block {key!r} already exists")
        start = len(self.names)
        self.names.extend(names)
        self.blocks[key] = range(start, len(self.names))
        return torch.arange(start, len(self.names), dtype=torch.long)

    def add_pools(self, letter: str, n_owners: int, size: int, overlap: float) -> list[torch.Tensor]:
        """`n_owners` pools of `size` tokens each, a fraction `overlap` of them shared by all.

        Word j of owner i is the shared token "*:{letter}{j}" when j < round(overlap·size),
        else owner i's private token "{A,B,…}:{letter}{j}". Returns one LongTensor[size] per owner.
        """
        k = n_shared(size, overlap, n_owners)
        shared = self.add_block(f"*:{letter}", [f"*:{letter}{j}" for j in range(k)])
        pools = []
        for i in range(n_owners):
            own = LETTERS[i]
            private = self.add_block(f"{own}:{letter}", [f"{own}:{letter}{j}" for j in range(k, size)])
            pools.append(torch.cat([shared, private]))
        return pools

    def name(self, token: int) -> str:
        token = int(token)
        if token == IGNORE:
            return "·"
        if not 0 <= token < len(self.names):
            return f"<?{token}>"
        return self.names[token]

    def decode(self, tokens, skip_pad: bool = True) -> str:
        """Token ids (list, LongTensor[T] or LongTensor[B, T]: one line per row) as text."""
        if isinstance(tokens, torch.Tensor):
            if tokens.dim() == 2:
                return "\n".join(self.decode(row, skip_pad) for row in tokens)
            tokens = tokens.tolist()
        return " ".join(self.name(t) for t in tokens if not (skip_pad and int(t) == PAD))


class Task(abc.ABC):
    """Base of every task: padding, the next-token split, sampling, a fixed eval set, decoding.

    A subclass sets `name` and `natural_len` (model input length without padding) and implements
    `_generate(n, g) -> (seq LongTensor[n, natural_len + 1], scored BoolTensor[n, natural_len + 1])`
    where `scored[b, p]` marks the tokens that are scored when predicted.
    """

    name: str = "task"
    natural_len: int = 0

    def __init__(self, vocab: Vocab, seed: int):
        self.vocab = vocab
        self.seed = int(seed)
        self._seq_len: int | None = None

    @property
    def seq_len(self) -> int:
        return self.natural_len if self._seq_len is None else self._seq_len

    def pad_to(self, seq_len: int) -> "Task":
        """Pad every sequence to input length `seq_len` (the stream's common length)."""
        if seq_len < self.natural_len:
            raise ValueError(f"{self.name}: seq_len {seq_len} is shorter than its sequences ({self.natural_len})")
        self._seq_len = int(seq_len)
        return self

    @abc.abstractmethod
    def _generate(self, n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """n full sequences and their scored mask, drawn from `g` (each task defines its own)."""

    def _split(self, seq: torch.Tensor, scored: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        extra = self.seq_len + 1 - seq.shape[1]
        if extra > 0:
            seq = torch.cat([seq, seq.new_full((seq.shape[0], extra), PAD)], dim=1)
            scored = torch.cat([scored, scored.new_zeros((scored.shape[0], extra))], dim=1)
        inputs = seq[:, :-1].contiguous()                                          # [B, T]
        targets = torch.where(scored[:, 1:], seq[:, 1:], torch.full_like(seq[:, 1:], IGNORE))  # [B, T]
        return inputs, targets.contiguous()

    def sample(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """A fresh batch: (inputs LongTensor[B, seq_len], targets LongTensor[B, seq_len])."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        return self._split(*self._generate(int(batch_size), generator))

    def eval_set(self, n: int = 256, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """A fixed held-out set: the same `n` sequences for the same (task, n, seed), every call.

        It is drawn from its own generator (task seed, "eval", seed), never from the training
        generator; for tasks with a large sequence space (the languages: lexicon_size**words
        sentences) a training batch repeats an eval sentence only by chance.
        """
        return self.sample(n, make_generator(mix_seed(self.seed, "eval", seed)))

    def decode(self, tokens, skip_pad: bool = True) -> str:
        return self.vocab.decode(tokens, skip_pad)

    def describe(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} seq_len={self.seq_len}>"


def rand_distinct(n: int, pool: int, k: int, g: torch.Generator) -> torch.Tensor:
    """`k` distinct indices in [0, pool) per row: LongTensor[n, k] (a random permutation's prefix)."""
    if k > pool:
        raise ValueError(f"cannot draw {k} distinct items from {pool}")
    return torch.rand(n, pool, generator=g).argsort(dim=1)[:, :k]
