"""Two languages in context, the lesson layout (lab.tasks.two_languages): lessons in sequence or
interleaved, fresh dictionaries, per-language scoring, chance for a context-free predictor, the
recovery ratio."""
from collections import defaultdict

import pytest
import torch

from lab.config import ConfigError
from lab.tasks import (IGNORE, LESSON_MODES, PAD, QUERY, SEP, LessonTask, StreamConfig, build_stream,
                       language_accuracy, make_generator, recovery_ratio, score, split_by_language)
from lab.tasks.two_languages import EXAMPLES, PHRASE


def lessons(**changes):
    return build_stream(StreamConfig(**{"kind": "two_languages", "lessons": True, "n_tasks": 4, **changes}))


def units(row, vocab):
    """The context of one row as units: ("entry", tag, s, t) or ("example", tag, sa, sb, t1, t2);
    then the queries as (position of <sep>, tag, sa, sb)."""
    row = row.tolist()
    targets = set(vocab.blocks["t:w"])
    out, queries, i = [], [], 0
    while row[i] != QUERY:
        if row[i + 2] in targets:
            out.append(("entry", *row[i:i + 3]))
            i += 3
        else:
            assert row[i + 3] == SEP
            out.append(("example", row[i], row[i + 1], row[i + 2], row[i + 4], row[i + 5]))
            i += 6
    while i < len(row) and row[i] == QUERY:
        assert row[i + 4] == SEP
        queries.append((i + 4, row[i + 1], row[i + 2], row[i + 3]))
        i += 7
    assert all(t == PAD for t in row[i:])
    return out, queries


def translate(context, tag, sa, sb, skip_after_first=False):
    """What a reader of the context answers: the dictionary, in the order the examples show."""
    first = context[0][1]
    book = {(u[1], u[2]): u[3] for u in context if u[0] == "entry" and not (skip_after_first and u[1] != first)}
    if (tag, sa) not in book:
        return None
    reverse = False
    for u in context:
        if u[0] == "example" and u[1] == tag and book[(tag, u[2])] != book[(tag, u[3])]:
            reverse = u[4] == book[(tag, u[3])]
    pair = [book[(tag, sa)], book[(tag, sb)]]
    return pair[::-1] if reverse else pair


class Reader:
    """A model that reads the context (optionally only the first language's lesson)."""

    def __init__(self, vocab, first_lesson_only=False):
        self.vocab, self.first_only = vocab, first_lesson_only

    def __call__(self, tokens):
        logits = torch.zeros(*tokens.shape, self.vocab.size)
        fallback = self.vocab.blocks["t:w"][0]
        for b, row in enumerate(tokens):
            context, queries = units(row, self.vocab)
            for sep, tag, sa, sb in queries:
                answer = translate(context, tag, sa, sb, self.first_only) or [fallback, fallback]
                logits[b, sep, answer[0]] = logits[b, sep + 1, answer[1]] = 1.0
        return logits


def test_lesson_layout_shapes_and_answers():
    s = lessons()
    assert [t.name for t in s.tasks] == [f"lesson_{m}" for m in LESSON_MODES]
    assert all(isinstance(t, LessonTask) for t in s.tasks)
    E, Q = 4, 4
    lesson = 3 * E + (2 * PHRASE + 2) * EXAMPLES
    assert s.seq_len == 2 * lesson + 7 * Q - 1 == s.tasks[2].natural_len
    reader = Reader(s.vocab)
    for task in s.tasks:
        x, y = task.eval_set(64, 0)
        assert x.shape == y.shape == (64, s.seq_len)
        for row_x, row_y in zip(x, y):
            context, queries = units(row_x, s.vocab)
            assert len(queries) == Q and sum(u[0] == "entry" for u in context) == E * len(task.languages)
            assert sum(u[0] == "example" for u in context) == EXAMPLES * len(task.languages)
            scored = (row_y != IGNORE).nonzero().flatten().tolist()
            assert scored == sorted(p for q in queries for p in (q[0], q[0] + 1))
            for sep, tag, sa, sb in queries:
                assert [int(row_y[sep]), int(row_y[sep + 1])] == translate(context, tag, sa, sb)
            for tag in {u[1] for u in context}:                       # distinct targets within a lesson
                book = [u[3] for u in context if u[0] == "entry" and u[1] == tag]
                assert len(set(book)) == len(book)
        assert score(reader(x), y)["token_acc"] == 1.0                # the answer is in the context


def test_sequential_puts_all_of_a_before_b_and_interleaved_alternates():
    s = lessons()
    tag_a, tag_b = s.vocab.tag(0), s.vocab.tag(1)
    seq, inter = s.tasks[2].eval_set(32, 0)[0], s.tasks[3].eval_set(32, 0)[0]
    for row in seq:
        context, queries = units(row, s.vocab)
        tags = [u[1] for u in context]
        assert tags == [tag_a] * (len(tags) // 2) + [tag_b] * (len(tags) // 2)     # all of A, then all of B
        kinds = [u[0] for u in context]
        assert kinds == (["entry"] * 4 + ["example"] * EXAMPLES) * 2              # a lesson: dictionary, examples
        assert {q[1] for q in queries} == {tag_a, tag_b}
    for row in inter:
        context, _ = units(row, s.vocab)
        assert [u[1] for u in context] == [tag_a, tag_b] * (len(context) // 2)
    for task, tag in ((s.tasks[0], tag_a), (s.tasks[1], tag_b)):
        context, queries = units(task.eval_set(4, 0)[0][0], s.vocab)
        assert {u[1] for u in context} == {q[1] for q in queries} == {tag}


def test_dictionaries_and_word_orders_are_fresh_for_every_sequence():
    s = lessons(overlap=0.0)
    task = s.tasks[2]
    x, _ = task.sample(200, make_generator(7))
    seen, orders = defaultdict(set), set()
    for row in x:
        context, _ = units(row, s.vocab)
        for u in context:
            if u[0] == "entry":
                seen[(u[1], u[2])].add(u[3])
        a_examples = [u for u in context if u[0] == "example" and u[1] == s.vocab.tag(0)]
        book = {(u[1], u[2]): u[3] for u in context if u[0] == "entry"}
        for u in a_examples:
            if book[(u[1], u[2])] != book[(u[1], u[3])]:
                orders.add(u[4] == book[(u[1], u[3])])
    assert orders == {True, False}                                  # both orders occur
    assert max(len(t) for t in seen.values()) > 10                  # a word gets many translations
    assert len({tuple(r[:12].tolist()) for r in x}) == 200         # no two dictionaries alike


def test_split_by_language_partitions_the_scored_answers():
    for s in (lessons(), build_stream(StreamConfig(kind="two_languages"))):
        both = s.tasks[2]
        x, y = both.eval_set(32, 1)
        parts = split_by_language(x, y, s.vocab)
        assert set(parts) == {"A", "B"}
        a, b = parts["A"] != IGNORE, parts["B"] != IGNORE
        assert not (a & b).any() and torch.equal(a | b, y != IGNORE)
        tags = {"A": s.vocab.tag(0), "B": s.vocab.tag(1)}
        for language, mask in (("A", a), ("B", b)):
            for r, p in mask.nonzero().tolist():
                q = max(i for i in range(p + 1) if x[r, i] == QUERY)
                assert int(x[r, q + 1]) == tags[language]
        single = s.tasks[0].eval_set(8, 0)
        assert set(split_by_language(*single, s.vocab)) == {"A"}


def test_a_context_free_predictor_scores_at_chance():
    s = lessons(overlap=0.0)
    task = s.tasks[2]
    # the best context-free predictor: the most frequent answer of each query in training data
    counts = defaultdict(lambda: defaultdict(int))
    for step in range(20):
        x, y = task.sample(256, make_generator(100 + step))
        for r, p in (y != IGNORE).nonzero().tolist():
            counts[tuple(x[r, p - 3:p + 1].tolist())][int(y[r, p])] += 1

    def query_only(tokens):
        logits = torch.zeros(*tokens.shape, s.vocab.size)
        for r in range(tokens.shape[0]):
            for p in range(3, tokens.shape[1]):
                seen = counts.get(tuple(tokens[r, p - 3:p + 1].tolist()))
                if seen:
                    logits[r, p, max(seen, key=seen.get)] = 1.0
        return logits

    x, y = task.eval_set(512, 0)
    chance = 1 / 24
    assert score(query_only(x), y)["token_acc"] < 2 * chance
    assert score(torch.zeros(*x.shape, s.vocab.size), y)["token_acc"] == 0.0      # uniform: ties go to <pad>
    assert score(Reader(s.vocab)(x), y)["token_acc"] == 1.0


def test_language_accuracy_and_the_recovery_ratio():
    s = lessons(n_tasks=3)
    full = language_accuracy(Reader(s.vocab), s.tasks, n=48)
    assert list(full.columns) == ["task", "mode", "language", "accuracy", "seq_accuracy", "n_tokens"]
    assert list(zip(full["mode"], full["language"])) == [("A", "A"), ("B", "B"), ("both_sequential", "A"),
                                                         ("both_sequential", "B")]
    assert (full["accuracy"] == 1.0).all()
    ratio = recovery_ratio(full).set_index("language")
    assert ratio["ratio"].tolist() == [1.0, 1.0] and ratio["single"].tolist() == [1.0, 1.0]
    # a reader that keeps only the first lesson: B alone is fine, B after A collapses to chance
    first = recovery_ratio(language_accuracy(Reader(s.vocab, first_lesson_only=True), s.tasks, n=96))
    first = first.set_index("language")
    assert first.loc["A", "ratio"] > 0.98 and first.loc["B", "single"] > 0.98 and first.loc["B", "ratio"] < 0.2
    missing = recovery_ratio(full, both="both_interleaved")
    assert missing["both"].isna().all() and missing["ratio"].isna().all()


@pytest.mark.parametrize("changes, field", [
    ({"n_tasks": 5}, "n_tasks"),
    ({"n_tasks": 4, "lessons": False}, "n_tasks"),
    ({"words": 1}, "words"),
    ({"words": 10, "lexicon_size": 8}, "words"),
    ({"words": 6, "target_words": 5}, "words"),
])
def test_bad_lesson_configs_name_the_field(changes, field):
    with pytest.raises(ConfigError) as err:
        StreamConfig(**{"kind": "two_languages", "lessons": True, **changes})
    assert err.value.field == field and field in str(err.value)


def test_lessons_are_deterministic_and_the_dictionary_layout_is_untouched():
    a, b = lessons(seed=2), lessons(seed=2)
    for step in (0, 400, 999):
        assert all(torch.equal(u, v) for u, v in zip(a.batch(step), b.batch(step)))
    old = build_stream(StreamConfig(kind="two_languages"))
    assert [t.name for t in old.tasks] == ["inctx_A", "inctx_B", "inctx_both"] and old.seq_len == 40
