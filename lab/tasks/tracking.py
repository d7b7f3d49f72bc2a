"""Sequential state tracking (REFERENCE.md §7, last paragraph): tasks whose answer is a state carried
through the whole sequence, the standard probe of what attention cannot do in a fixed number of
layers and what recurrent or self-modifying memories can.

Every problem is a word problem in a finite group: the symbols g_1 … g_L are group elements drawn
uniformly, and the answer is their running product s_t = s_{t−1} · g_t (s_0 = the identity):

- `parity`: Z_2, bits; the answer is the parity of the bits so far;
- `mod_sum`: Z_k (k = `modulus`), residues; the answer is the running sum modulo k;
- `perm3`, `perm5`: S_3 and S_5, permutations of 3 or 5 elements in one-line notation (token
  "S3:120" maps 0→1, 1→2, 2→0); the answer is the composition, applying the permutations in the
  order they come: s_t = g_t ∘ s_{t−1}, i.e. s_t[i] = g_t[s_{t−1}[i]]. S_5 is not solvable, the
  classic hard case; S_3 is solvable but not abelian.

The answer is an element of the same group, written with the same tokens as the symbols (each
problem has its own block of tokens, so a stream can hold several problems without a tag):

    final  (score_every = False):  g_1 g_2 … g_L <sep> s_L           only s_L scored
    every  (score_every = True):   g_1 s_1 g_2 s_2 … g_L s_L         every s_t scored

Input length L + 1 (final) or 2L − 1 (every). Training sequences all have `length` symbols (the
lab's choice: a fixed length; with `score_every` every prefix is supervised anyway).
`eval_set(n, seed, length=L)` makes a held-out set of another length, for length generalisation
(train short, test longer): its sequences have exactly the natural length for L, unpadded, and
with L = the training length it equals the ordinary held-out set (before padding). Held-out
sequences are drawn from their own generator; at short lengths (parity with L = 16 has 65,536
sequences) training batches will meet some of them: the problems are functions, so this is
memorisation only for a model that can store them all.

`length_curve(model, tasks, lengths)` scores a trained model against length without training: the
tidy frame the claims page plots. Chance is 1 / |group| (½, 1/k, 1/6, 1/120).
"""
from __future__ import annotations

import itertools

import pandas as pd
import torch

from ..config import ConfigError
from .registry import register_kind
from .scoring import predict
from .vocab import IGNORE, SEP, Task, Vocab, make_generator, mix_seed

PROBLEMS = ("parity", "mod_sum", "perm3", "perm5")


def group(problem: str, modulus: int = 5) -> tuple[list[str], torch.Tensor]:
    """(element names, product table LongTensor[G, G]) with table[a, b] = a · b (a first, then b);
    element 0 is the identity."""
    if problem in ("parity", "mod_sum"):
        k = 2 if problem == "parity" else int(modulus)
        r = torch.arange(k)
        return [str(j) for j in range(k)], (r[:, None] + r[None, :]) % k
    if problem in ("perm3", "perm5"):
        m = 3 if problem == "perm3" else 5
        perms = list(itertools.permutations(range(m)))          # lexicographic: the identity first
        index = {p: j for j, p in enumerate(perms)}
        table = [[index[tuple(b[a[i]] for i in range(m))] for b in perms] for a in perms]
        return ["".join(map(str, p)) for p in perms], torch.tensor(table, dtype=torch.long)
    raise ValueError(f"tracking: unknown problem {problem!r}: use one of {', '.join(PROBLEMS)}")


class TrackingTask(Task):
    """One state-tracking problem (module docstring). `tokens[j]` is element j's token id."""

    def __init__(self, vocab: Vocab, problem: str, length: int, score_every: bool, seed: int, modulus: int = 5):
        super().__init__(vocab, seed)
        names, self.table = group(problem, modulus)
        self.problem = problem
        self.name = f"mod{modulus}_sum" if problem == "mod_sum" else problem
        prefix = {"parity": "par", "mod_sum": f"Z{modulus}", "perm3": "S3", "perm5": "S5"}[problem]
        self.tokens = vocab.add_block(prefix, [f"{prefix}:{e}" for e in names])    # LongTensor[G]
        self.order = len(names)
        self.score_every = bool(score_every)
        self.length = self._check_length(length)
        self.natural_len = self.input_len(self.length)

    def _check_length(self, length) -> int:
        if isinstance(length, bool) or not isinstance(length, int) or length < 1:
            raise ConfigError(type(self).__name__, "length", length, "must be an integer of at least 1")
        return int(length)

    def input_len(self, length: int) -> int:
        """Model input length of a sequence of `length` symbols."""
        return 2 * length - 1 if self.score_every else length + 1

    @property
    def chance(self) -> float:
        return 1.0 / self.order

    def states(self, symbols: torch.Tensor) -> torch.Tensor:
        """Running products of element indices LongTensor[n, L] → LongTensor[n, L] (s_1 … s_L)."""
        state = torch.zeros(symbols.shape[0], dtype=torch.long)
        out = torch.empty_like(symbols)
        for t in range(symbols.shape[1]):
            state = self.table[state, symbols[:, t]]
            out[:, t] = state
        return out

    def _make(self, n: int, length: int, g: torch.Generator):
        symbols = torch.randint(self.order, (n, length), generator=g)              # element indices
        states = self.states(symbols)
        if self.score_every:
            seq = self.tokens[torch.stack([symbols, states], dim=2).reshape(n, 2 * length)]
            scored = torch.zeros_like(seq, dtype=torch.bool)
            scored[:, 1::2] = True
        else:
            seq = torch.cat([self.tokens[symbols], torch.full((n, 1), SEP), self.tokens[states[:, -1:]]], dim=1)
            scored = torch.zeros_like(seq, dtype=torch.bool)
            scored[:, -1] = True
        return seq, scored

    def _generate(self, n: int, g: torch.Generator):
        return self._make(n, self.length, g)

    def eval_set(self, n: int = 256, seed: int = 0, length: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The fixed held-out set; with `length`, sequences of that many symbols (for length
        generalisation), of input length `input_len(length)` and not padded to the stream's."""
        if length is None:
            return super().eval_set(n, seed)
        length = self._check_length(length)
        if n < 1:
            raise ValueError(f"eval_set: n must be at least 1, got {n}")
        seq, scored = self._make(int(n), length, make_generator(mix_seed(self.seed, "eval", seed)))
        inputs = seq[:, :-1].contiguous()
        targets = torch.where(scored[:, 1:], seq[:, 1:], torch.full_like(seq[:, 1:], IGNORE))
        return inputs, targets.contiguous()

    def describe(self) -> str:
        how = "every running answer" if self.score_every else "the final answer"
        return f"{self.name}: {self.length} symbols of a group of {self.order}, {how} scored"


def build_tracking(problems=PROBLEMS, length: int = 16, modulus: int = 5, score_every: bool = False,
                   seed: int = 0) -> tuple[Vocab, list[TrackingTask]]:
    """Vocabulary and one task per problem, in the order given."""
    vocab = Vocab(0)
    tasks = [TrackingTask(vocab, p, length, score_every, mix_seed(seed, "tracking", "task", i), modulus)
             for i, p in enumerate(problems)]
    return vocab, tasks


@torch.no_grad()
def length_curve(model, tasks, lengths, n: int = 256, seed: int = 0) -> pd.DataFrame:
    """Accuracy of a trained model against sequence length, without training.

    model: tokens LongTensor[B, T] → logits [B, T, V] (a lab model or any callable); tasks:
    TrackingTask objects (e.g. `run.stream.tasks`); lengths: symbols a sequence. One row per (task,
    length): task, problem, length, trained_length, accuracy (of the final answer s_L),
    running_accuracy (of every scored answer; equal to accuracy when only the end is scored),
    chance, n. A length whose input exceeds the model's max_len is a ConfigError naming it."""
    lengths = [int(L) for L in lengths]
    max_len = getattr(getattr(model, "config", None), "max_len", None)
    rows = []
    for task in tasks:
        for L in lengths:
            if max_len is not None and task.input_len(L) > max_len:
                raise ConfigError("length_curve", "lengths", L, f"{task.name} at {L} symbols needs "
                                  f"{task.input_len(L)} input tokens; the model's max_len is {max_len}")
            inputs, targets = task.eval_set(n, seed, length=L)
            scored = targets != IGNORE
            right = (predict(model, inputs).argmax(dim=-1) == targets) & scored
            rows.append({"task": task.name, "problem": task.problem, "length": L, "trained_length": task.length,
                         "accuracy": float(right[:, -1].float().mean()),
                         "running_accuracy": float(right.sum()) / int(scored.sum()),
                         "chance": task.chance, "n": int(inputs.shape[0])})
    return pd.DataFrame(rows, columns=["task", "problem", "length", "trained_length", "accuracy",
                                       "running_accuracy", "chance", "n"])


def _problems(cfg) -> tuple[str, ...]:
    return tuple(cfg.problems) or PROBLEMS[:cfg.n_tasks]


def _check(cfg) -> None:
    bad = [p for p in cfg.problems if p not in PROBLEMS]
    if bad:
        cfg.fail("problems", f"each problem must be one of {', '.join(PROBLEMS)}")
    if len(set(cfg.problems)) != len(cfg.problems):
        cfg.fail("problems", "name each problem once")
    if cfg.problems and len(cfg.problems) != cfg.n_tasks:
        cfg.fail("problems", f"give one problem per task (n_tasks = {cfg.n_tasks}), or none")


register_kind("tracking", lambda cfg: build_tracking(_problems(cfg), cfg.length, cfg.modulus, cfg.score_every,
                                                     cfg.seed),
              "state tracking (parity, sums mod k, permutations)",
              "carry a state through the sequence: parity, running sum mod k, composition of permutations of "
              "3 or 5 elements", max_tasks=len(PROBLEMS), check=_check, order=60,
              fields=("length", "modulus", "problems", "score_every"))
