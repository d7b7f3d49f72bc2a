"""Two languages learned in context: the lab's miniature of the papers' Manchu + Kalamang test.

REFERENCE.md §8 quotes the finding (in-context learning collapses when two new languages are
learned in sequence; HOPE with three levels nearly recovers single-language performance). Two
layouts of one sequence; in both the dictionary is drawn fresh for every sequence (source words
from the language's pool, targets from the shared target words), so the model cannot have
memorised it: it must read it in context. With `overlap` > 0 the two pools share
source words, so with both languages the same word can appear with two translations and only the
tag tells them apart.

**Dictionary layout** (the original; `StreamConfig.lessons = False`), modes `MODES`:

    <LA> s t  <LB> s t  …  <sep>  <query> <LA> s t  <query> <LB> s t  …

mode "A": E entries of language A only; "B": of B only; "both": E of A and E of B, shuffled
together in one context. Each query asks a source word of the context (tagged with its language)
and only its translation t is scored (targets drawn with replacement). Choices that are the lab's
own: E = Q = `words` by default;
in "both" ⌈Q/2⌉ queries ask A and ⌊Q/2⌋ ask B, in random order; a language's queries are
distinct entries of its dictionary.

**Lesson layout** (`lessons = True`), modes `LESSON_MODES`, as the papers set the test up: a
language is taught by a lesson (its dictionary, then worked examples), and the context holds one
lesson per language, then translation queries:

    lesson(X) = <LX> s t ×E   <LX> s_a s_b <sep> t t ×W          (dictionary, then worked examples)
    query     = <query> <LX> s_a s_b <sep> t t                     (both t scored)

"A": lesson(A), then Q queries of A; "B" likewise; "both_sequential": ALL of lesson(A), then ALL of
lesson(B), then queries of both (⌈Q/2⌉ A, ⌊Q/2⌋ B, in random order); "both_interleaved": the two
lessons' units alternate (dictionary entries A1 B1 A2 B2 …, then examples A B A B …). The lab's own
choices (none is a paper's): phrases of 2 words (`PHRASE`); W = 2 worked examples a language
(`EXAMPLES`); each language gets a word order drawn fresh for every sequence, "same" or
"reverse" with probability ½ each, so the worked examples are the only place to learn it; a
language's E words translate to E distinct target words (so every worked example shows the
order; the two languages may share targets); a
phrase is two distinct entries of the language's dictionary, and a query may repeat a worked
example's pair (chance about 1/(E(E−1))).

Metric: query accuracy per language (`split_by_language` gives each language's targets,
`language_accuracy` scores a model), and the recovery ratio both / single (`recovery_ratio`). A
predictor that ignores the context scores at chance, 1/target_words a token.
"""
from __future__ import annotations

import pandas as pd
import torch

from .recall import check_words
from .registry import register_kind
from .scoring import predict, score
from .vocab import IGNORE, QUERY, SEP, Task, Vocab, mix_seed, rand_distinct

MODES = ("A", "B", "both")
LESSON_MODES = ("A", "B", "both_sequential", "both_interleaved")
PHRASE, EXAMPLES = 2, 2             # words a phrase, worked examples a language (lesson layout)


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


class LessonTask(Task):
    """One mode of the lesson layout (module docstring). Input length: 3E + 6W per language in the
    context, then 7 tokens a query, minus one."""

    def __init__(self, vocab: Vocab, mode: str, source_pools: list[torch.Tensor],
                 target_tokens: torch.Tensor, n_entries: int, n_queries: int | None, seed: int):
        super().__init__(vocab, seed)
        if mode not in LESSON_MODES:
            raise ValueError(f"two_languages lessons: mode {mode!r} is not one of {', '.join(LESSON_MODES)}")
        if not PHRASE <= n_entries <= min(len(target_tokens), *(len(p) for p in source_pools)):
            raise ValueError(f"two_languages lessons: {n_entries} entries: need at least {PHRASE} and at most "
                             f"the source words of a language and the target words")
        self.mode = mode
        self.name = f"lesson_{mode}"
        self.languages = [0, 1] if mode.startswith("both") else [LESSON_MODES.index(mode)]
        self.source_pools, self.target_tokens = source_pools, target_tokens
        self.n_entries = int(n_entries)
        self.n_queries = self.n_entries if n_queries is None else int(n_queries)
        if self.n_queries < len(self.languages):
            raise ValueError(f"two_languages lessons: {self.n_queries} queries cannot ask "
                             f"{len(self.languages)} languages")
        self.lesson_len = 3 * self.n_entries + (2 * PHRASE + 2) * EXAMPLES
        self.context_len = self.lesson_len * len(self.languages)
        self.natural_len = self.context_len + (2 * PHRASE + 3) * self.n_queries - 1

    def _phrases(self, src, tgt, reverse, k: int, g: torch.Generator, tag: int) -> torch.Tensor:
        """k phrases a row, `<LX> s_a s_b <sep> t t` in the row's order: LongTensor[n, k, 2·PHRASE + 2]."""
        n, E = src.shape
        pick = rand_distinct(n * k, E, PHRASE, g).reshape(n, k * PHRASE)
        s, t = src.gather(1, pick).view(n, k, PHRASE), tgt.gather(1, pick).view(n, k, PHRASE)
        t = torch.where(reverse[:, None, None], t.flip(-1), t)
        return torch.cat([torch.full((n, k, 1), tag), s, torch.full((n, k, 1), SEP), t], dim=2)

    def _generate(self, n: int, g: torch.Generator):
        E, Q = self.n_entries, self.n_queries
        per_lang = [(Q + 1) // 2, Q // 2] if len(self.languages) == 2 else [Q]
        entries, examples, queries = [], [], []
        for slot, lang in enumerate(self.languages):
            pool, tag = self.source_pools[lang], self.vocab.tag(lang)
            src = pool[rand_distinct(n, len(pool), E, g)]                                         # [n, E]
            tgt = self.target_tokens[rand_distinct(n, len(self.target_tokens), E, g)]             # [n, E] distinct
            reverse = torch.rand(n, generator=g) < 0.5                                            # the row's order
            entries.append(torch.stack([torch.full((n, E), tag), src, tgt], dim=2))               # [n, E, 3]
            examples.append(self._phrases(src, tgt, reverse, EXAMPLES, g, tag))                   # [n, W, 6]
            q = self._phrases(src, tgt, reverse, per_lang[slot], g, tag)
            queries.append(torch.cat([torch.full((n, per_lang[slot], 1), QUERY), q], dim=2))     # [n, q, 7]
        queries = torch.cat(queries, dim=1)                                                       # [n, Q, 7]
        order = torch.rand(n, Q, generator=g).argsort(dim=1)                                      # queries shuffled
        queries = queries.gather(1, order[..., None].expand(-1, -1, queries.shape[2]))
        if self.mode == "both_interleaved":
            context = [torch.stack(entries, dim=2).reshape(n, -1), torch.stack(examples, dim=2).reshape(n, -1)]
        else:                                                          # one language's whole lesson after the other
            context = [part.reshape(n, -1) for pair in zip(entries, examples) for part in pair]
        seq = torch.cat(context + [queries.reshape(n, -1)], dim=1)
        scored = torch.zeros_like(seq, dtype=torch.bool)
        for k in range(PHRASE):                                        # the answers t of every query
            scored[:, self.context_len + PHRASE + 3 + k::2 * PHRASE + 3] = True
        return seq, scored

    def describe(self) -> str:
        langs = " then ".join("AB"[i] for i in self.languages)
        how = {"both_interleaved": " (units alternating)"}.get(self.mode, "")
        return (f"{self.name}: lessons of {langs}{how}, {self.n_entries} words and {EXAMPLES} worked examples "
                f"each, {self.n_queries} queries of {PHRASE} words")


def build_two_languages(n_tasks: int = 3, lexicon_size: int = 24, target_words: int = 24,
                        overlap: float = 0.5, n_entries: int = 4, n_queries: int | None = None,
                        seed: int = 0, lessons: bool = False) -> tuple[Vocab, list[Task]]:
    """Vocabulary and the first `n_tasks` modes: MODES (A-only, B-only, both; at most 3), or with
    `lessons` LESSON_MODES (at most 4)."""
    modes = LESSON_MODES if lessons else MODES
    if not 1 <= n_tasks <= len(modes):
        raise ValueError(f"two_languages has {len(modes)} tasks ({', '.join(modes)}), asked for {n_tasks}")
    vocab = Vocab(2)
    pools = vocab.add_pools("w", 2, lexicon_size, overlap)
    targets = vocab.add_block("t:w", [f"t:w{j}" for j in range(target_words)])
    if lessons:
        tasks = [LessonTask(vocab, mode, pools, targets, n_entries, n_queries,
                            mix_seed(seed, "two_languages", "lesson", i)) for i, mode in enumerate(modes[:n_tasks])]
        return vocab, tasks
    tasks = [InContextTranslationTask(vocab, mode, pools, targets, n_entries, n_queries,
                                      mix_seed(seed, "two_languages", "task", i))
             for i, mode in enumerate(MODES[:n_tasks])]
    return vocab, tasks


# --- per-language scoring --------------------------------------------------------------------

def split_by_language(inputs: torch.Tensor, targets: torch.Tensor, vocab: Vocab) -> dict[str, torch.Tensor]:
    """Each language's targets (the others IGNORE): {"A": LongTensor[B, T], "B": …}, languages
    with no scored target left out. A scored target belongs to the language whose tag follows the
    last <query> at or before its input position (both layouts put the tag right after <query>)."""
    B, T = inputs.shape
    positions = torch.arange(T).expand(B, T)
    last_query = torch.where(inputs == QUERY, positions, torch.full_like(positions, -1)).cummax(dim=1).values
    tag = inputs.gather(1, (last_query + 1).clamp(max=T - 1))
    out = {}
    for lang in range(vocab.n_languages):
        mine = (targets != IGNORE) & (last_query >= 0) & (tag == vocab.tag(lang))
        if mine.any():
            out["AB"[lang]] = torch.where(mine, targets, torch.full_like(targets, IGNORE))
    return out


@torch.no_grad()
def language_accuracy(model, tasks, n: int = 256, seed: int = 0) -> pd.DataFrame:
    """Query accuracy per task and language on the tasks' held-out sets, without training: one row
    per (task, language) with columns task, mode, language, accuracy (token accuracy over that
    language's scored answers), seq_accuracy, n_tokens. `model`: tokens [B, T] → logits [B, T, V]."""
    rows = []
    for task in tasks:
        inputs, targets = task.eval_set(n, seed)
        logits = predict(model, inputs)
        for language, mine in split_by_language(inputs, targets, task.vocab).items():
            s = score(logits, mine)
            rows.append({"task": task.name, "mode": task.mode, "language": language, "accuracy": s["token_acc"],
                         "seq_accuracy": s["seq_acc"], "n_tokens": s["n_tokens"]})
    return pd.DataFrame(rows, columns=["task", "mode", "language", "accuracy", "seq_accuracy", "n_tokens"])


def recovery_ratio(frame: pd.DataFrame, both: str = "both_sequential") -> pd.DataFrame:
    """Per language: accuracy with both languages in context (mode `both`) over accuracy with that
    language alone (mode "A" or "B"), from `language_accuracy`'s frame (of one layout). Columns
    language, single, both, ratio (nan where a mode is missing or the single accuracy is 0)."""
    rows = []
    for language in ("A", "B"):
        single = frame[(frame["mode"] == language) & (frame["language"] == language)]["accuracy"]
        paired = frame[(frame["mode"] == both) & (frame["language"] == language)]["accuracy"]
        s = float(single.iloc[0]) if len(single) else float("nan")
        b = float(paired.iloc[0]) if len(paired) else float("nan")
        rows.append({"language": language, "single": s, "both": b, "ratio": b / s if s > 0 else float("nan")})
    return pd.DataFrame(rows, columns=["language", "single", "both", "ratio"])


def _check(cfg) -> None:
    check_words(cfg)
    modes = LESSON_MODES if cfg.lessons else MODES
    if cfg.n_tasks > len(modes):
        if cfg.lessons:
            cfg.fail("n_tasks", f"two_languages with lessons has 4 tasks ({', '.join(modes)}): at most 4")
        cfg.fail("n_tasks", "two_languages has 3 tasks (A only, B only, both): at most 3")
    if cfg.lessons and cfg.words < PHRASE:
        cfg.fail("words", f"a lesson's phrases take {PHRASE} distinct words of the dictionary: at least {PHRASE}")
    if cfg.lessons and cfg.words > cfg.target_words:
        cfg.fail("words", f"a lesson translates its {cfg.words} words to distinct target words: at most "
                          f"target_words = {cfg.target_words}")


def _build(cfg) -> tuple[Vocab, list[Task]]:
    return build_two_languages(cfg.n_tasks, cfg.lexicon_size, cfg.target_words, cfg.overlap, cfg.words, None,
                               cfg.seed, cfg.lessons)


register_kind("two_languages", _build, "two languages learned in context",
              "translate with dictionaries (and, with lessons, worked examples) of one or two languages given "
              "in context", max_tasks=len(LESSON_MODES), check=_check, order=30,
              fields=("overlap", "words", "lexicon_size", "target_words", "lessons"))
