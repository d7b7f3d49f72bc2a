"""Tasks, streams and scoring (lab.tasks)."""
import math

import pytest
import torch

from lab.config import ConfigError
from lab.tasks import (IGNORE, KINDS, PAD, QUERY, SEP, InContextTranslationTask, LanguageTask, RecallTask,
                       StreamConfig, Vocab, build_languages, build_stream, make_generator, score)
from lab.tasks.languages import make_lexicon, rule_permutation


def gen(seed=0):
    return make_generator(seed)


# --- vocabulary ------------------------------------------------------------------------------

def test_vocab_layout_and_decode():
    v = Vocab(2)
    assert (PAD, SEP, QUERY) == (0, 1, 2)
    assert v.names[:5] == ["<pad>", "<sep>", "<query>", "<L1>", "<L2>"]
    assert v.tag(1) == 4
    pools = v.add_pools("w", 2, 4, 0.5)
    assert v.names[5:7] == ["*:w0", "*:w1"]
    assert [v.name(t) for t in pools[1]] == ["*:w0", "*:w1", "B:w2", "B:w3"]
    assert v.decode(torch.tensor([3, 5, 1, 0, 0])) == "<L1> *:w0 <sep>"
    assert v.decode([3, 0], skip_pad=False) == "<L1> <pad>"


def test_default_stream_shape():
    s = build_stream(StreamConfig())
    assert [t.name for t in s.tasks] == ["lang1", "lang2", "lang3"]
    # 3 specials + 3 tags + 12 shared + 3 x 12 private source words + 24 targets
    assert s.vocab_size == 78
    assert s.seq_len == 9               # <Li> 4 words <sep> 4 words, minus one
    assert s.tokens_per_step == 8 * 9
    n = StreamConfig().steps_per_task
    assert s.phases == [(0, n), (1, n), (2, n)]
    assert s.boundaries_steps() == [0, n, 2 * n, 3 * n]
    assert s.boundaries_tokens() == [0, n * 72, 2 * n * 72, 3 * n * 72]
    assert s.total_steps == 3 * n
    assert [s.task_at(x) for x in (0, n - 1, n, 2 * n - 1, 2 * n, 3 * n - 1, 10_000)] == [0, 0, 1, 1, 2, 2, 2]
    with pytest.raises(ValueError):
        s.task_at(-1)


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_samples_valid_batches(kind):
    """Every registered kind, a new one too: shapes, token range, next-token targets, eval sets."""
    s = build_stream(StreamConfig(kind=kind, batch_size=5))
    for t in s.tasks:
        assert t.seq_len == s.seq_len
        x, y = t.sample(5, gen(1))
        assert x.shape == y.shape == (5, s.seq_len) and x.dtype == y.dtype == torch.long
        assert x.min() >= 0 and x.max() < s.vocab_size
        scored = y != IGNORE
        assert scored.any(dim=1).all()
        assert y[scored].max() < s.vocab_size
        # next-token: a scored target is the next input token (where there is one)
        assert torch.equal(y[:, :-1][scored[:, :-1]], x[:, 1:][scored[:, :-1]])
        assert isinstance(t.decode(x[0]), str) and t.name in t.describe()
        ex, ey = t.eval_set(7, 0)
        assert ex.shape == ey.shape == (7, s.seq_len) and (ey != IGNORE).any(dim=1).all()
        assert torch.equal(ex, t.eval_set(7, 0)[0])
    x, y = s.batch(0)
    assert x.shape == (5, s.seq_len)


def test_eval_set_is_fixed_and_seeded():
    s = build_stream(StreamConfig())
    t = s.tasks[0]
    a, b = t.eval_set(64, 0), t.eval_set(64, 0)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(t.eval_set(64, 1)[0], a[0])
    assert not torch.equal(s.tasks[1].eval_set(64, 0)[0][:, 1:], a[0][:, 1:])


def test_same_config_same_tasks_and_batches():
    cfg = StreamConfig(seed=7, schedule=(0, 1, 2, 0))
    s1, s2 = build_stream(cfg), build_stream(StreamConfig.from_dict(cfg.to_dict()))
    for t1, t2 in zip(s1.tasks, s2.tasks):
        assert torch.equal(t1.lexicon_tokens, t2.lexicon_tokens) and t1.rule == t2.rule
    for step in (0, 151, 470):
        assert all(torch.equal(u, v) for u, v in zip(s1.batch(step), s2.batch(step)))
        g1, g2 = gen(5), gen(5)
        assert all(torch.equal(u, v) for u, v in zip(s1.batch(step, g1), s2.batch(step, g2)))
    other = build_stream(StreamConfig(seed=8))
    assert not torch.equal(other.tasks[0].lexicon_tokens, s1.tasks[0].lexicon_tokens)


def test_task_seeds_do_not_depend_on_batch_order():
    s1 = build_stream(StreamConfig(seed=3))
    g = gen(11)
    for step in range(0, 450, 7):  # draw many training batches first
        s1.batch(step, g)
    s2 = build_stream(StreamConfig(seed=3))
    for t1, t2 in zip(s1.tasks, s2.tasks):
        assert torch.equal(t1.eval_set(32, 0)[0], t2.eval_set(32, 0)[0])
        assert torch.equal(t1.lexicon_tokens, t2.lexicon_tokens)
    # the batch of a step is the same whatever was drawn before
    assert torch.equal(s1.batch(200)[0], s2.batch(200)[0])


def test_schedule_revisits():
    s = build_stream(StreamConfig(n_tasks=2, steps_per_task=10, schedule=(0, 1, 0)))
    assert s.phases == [(0, 10), (1, 10), (0, 10)]
    assert s.boundaries_steps() == [0, 10, 20, 30]
    assert [s.task_at(x) for x in (0, 9, 10, 19, 20, 29)] == [0, 0, 1, 1, 0, 0]
    assert s.phase_at(25) == 2


# --- languages -------------------------------------------------------------------------------

def test_rule_permutations_by_hand():
    assert rule_permutation("same", 4) == [0, 1, 2, 3]
    assert rule_permutation("reverse", 4) == [3, 2, 1, 0]
    assert rule_permutation("swap_pairs", 5) == [1, 0, 3, 2, 4]
    assert rule_permutation("rotate", 3) == [1, 2, 0]
    with pytest.raises(ValueError, match="unknown word-order rule"):
        rule_permutation("zigzag", 3)


@pytest.mark.parametrize("rule", ["same", "reverse", "swap_pairs", "rotate"])
def test_sentence_is_rule_of_lexicon(rule):
    vocab, tasks = build_languages(2, rules=(rule,), seed=1)
    t = tasks[1]
    x, y = t.sample(16, gen(2))
    n = t.words
    assert torch.all(x[:, 0] == vocab.tag(1)) and torch.all(x[:, n + 1] == SEP)
    src = x[:, 1:n + 1]
    lookup = dict(zip(t.source_tokens.tolist(), t.lexicon_tokens.tolist()))
    perm = rule_permutation(rule, n)
    expected = torch.tensor([[lookup[int(r[p])] for p in perm] for r in src])
    # targets: -100 on <Li>, the source words and <sep>; the translation after
    assert torch.all(y[:, :n + 1] == IGNORE)
    assert torch.equal(y[:, n + 1:], expected)
    assert torch.equal(t.translate(src), expected)
    assert torch.equal(x[:, n + 2:], expected[:, :-1])


def test_rules_from_seed_are_distinct_and_config_rules_apply():
    s = build_stream(StreamConfig(n_tasks=4))
    assert len({t.rule for t in s.tasks}) == 4
    s = build_stream(StreamConfig(rules=("reverse", "same", "rotate")))
    assert [t.rule for t in s.tasks] == ["reverse", "same", "rotate"]


def test_overlap_zero_disjoint_and_one_conflicting():
    s0 = build_stream(StreamConfig(overlap=0.0))
    pools = [set(t.source_tokens.tolist()) for t in s0.tasks]
    assert pools[0].isdisjoint(pools[1]) and pools[1].isdisjoint(pools[2])
    assert s0.vocab_size == 3 + 3 + 3 * 24 + 24
    s1 = build_stream(StreamConfig(overlap=1.0, n_tasks=4))
    assert all(torch.equal(t.source_tokens, s1.tasks[0].source_tokens) for t in s1.tasks)
    assert s1.vocab_size == 3 + 4 + 24 + 24
    # the same word gets a different target in every language
    lex = torch.stack([t.lexicon_tokens for t in s1.tasks])      # [languages, words]
    for j in range(lex.shape[1]):
        assert len(set(lex[:, j].tolist())) == lex.shape[0]


def test_lexicon_is_balanced_and_respects_forbidden():
    lex = make_lexicon(24, 24, [set() for _ in range(24)], gen(0))
    assert sorted(lex) == list(range(24))                 # a bijection when S = T
    for seed in range(5):                                 # forbidding lex[j] = j: a derangement
        lex = make_lexicon(6, 6, [{j} for j in range(6)], gen(seed))
        assert sorted(lex) == list(range(6)) and all(lex[j] != j for j in range(6))
    lex = make_lexicon(8, 4, [set() for _ in range(8)], gen(0))
    assert sorted(lex) == [0, 0, 1, 1, 2, 2, 3, 3]


def test_lexicons_stable_when_languages_added():
    _, three = build_languages(3, seed=4, overlap=0.0)
    _, four = build_languages(4, seed=4, overlap=0.0)
    names3 = [t.lexicon_table() for t in three]
    names4 = [t.lexicon_table() for t in four[:3]]
    assert names3 == names4


# --- recall ----------------------------------------------------------------------------------

def test_recall_answers_are_the_paired_values():
    s = build_stream(StreamConfig(kind="recall", words=5))
    t = s.tasks[2]
    assert isinstance(t, RecallTask) and s.seq_len == 4 * 5
    x, y = t.sample(32, gen(3))
    P = t.n_pairs
    for row_x, row_y in zip(x, y):
        keys, values = row_x[0:2 * P:2].tolist(), row_x[1:2 * P:2].tolist()
        assert len(set(keys)) == P and set(keys) <= set(t.key_tokens.tolist())
        assert set(values) <= set(t.value_tokens.tolist())
        assert int(row_x[2 * P]) == SEP
        table = dict(zip(keys, values))
        answers = [(p, int(row_y[p])) for p in range(len(row_y)) if row_y[p] != IGNORE]
        assert len(answers) == t.n_queries
        for p, a in answers:
            assert table[int(row_x[p])] == a     # the query sits at the input position p


# --- two languages in context ----------------------------------------------------------------

def test_two_languages_modes_and_answers():
    s = build_stream(StreamConfig(kind="two_languages"))
    assert [t.name for t in s.tasks] == ["inctx_A", "inctx_B", "inctx_both"]
    assert all(isinstance(t, InContextTranslationTask) for t in s.tasks)
    assert s.seq_len == 3 * 8 + 1 + 4 * 4 - 1              # "both" is the longest
    tag_a, tag_b = s.vocab.tag(0), s.vocab.tag(1)
    for t in s.tasks:
        x, y = t.sample(16, gen(4))
        C = t.n_context
        for row_x, row_y in zip(x, y):
            ctx = row_x[:3 * C].view(C, 3).tolist()
            tags = {e[0] for e in ctx}
            assert tags == ({tag_a, tag_b} if t.mode == "both" else {tag_a if t.mode == "A" else tag_b})
            book = {(e[0], e[1]): e[2] for e in ctx}
            assert int(row_x[3 * C]) == SEP
            answers = [p for p in range(len(row_y)) if row_y[p] != IGNORE]
            assert len(answers) == t.n_queries
            for p in answers:
                assert int(row_x[p - 2]) == QUERY
                assert book[(int(row_x[p - 1]), int(row_x[p]))] == int(row_y[p])
        if t.mode != "both":                                # padded to the stream's length
            assert torch.all(x[:, -1] == PAD) and torch.all(y[:, -3:] == IGNORE)


# --- config validation -----------------------------------------------------------------------

@pytest.mark.parametrize("changes, field", [
    ({"n_tasks": 9}, "n_tasks"),
    ({"overlap": 1.5}, "overlap"),
    ({"kind": "vision"}, "kind"),
    ({"schedule": (0, 3)}, "schedule"),
    ({"rules": ("zigzag",)}, "rules"),
    ({"rules": ("same", "reverse")}, "rules"),
    ({"kind": "two_languages", "n_tasks": 4}, "n_tasks"),
    ({"kind": "recall", "words": 10, "lexicon_size": 8}, "words"),
])
def test_bad_configs_name_the_field(changes, field):
    with pytest.raises(ConfigError) as err:
        StreamConfig(**changes)
    assert err.value.field == field and field in str(err.value)


def test_config_from_url_strings():
    cfg = StreamConfig.from_dict({"schedule": "0,1,0", "n_tasks": "2", "rules": "same"})
    assert cfg.schedule == (0, 1, 0) and cfg.n_tasks == 2 and cfg.rules == ("same",)
    assert StreamConfig.from_dict(cfg.to_dict()) == cfg


# --- scoring ---------------------------------------------------------------------------------

def test_score_by_hand():
    V = 4
    targets = torch.tensor([[IGNORE, 1, 2], [3, IGNORE, IGNORE]])       # [2, 3]
    pred = torch.tensor([[0, 1, 0], [3, 0, 0]])                         # row 0: 1 of 2 right
    logits = torch.nn.functional.one_hot(pred, V).float() * 10.0        # [2, 3, 4]
    out = score(logits, targets)
    assert out["token_acc"] == pytest.approx(2 / 3)
    assert out["seq_acc"] == pytest.approx(1 / 2)
    assert out["n_tokens"] == 3 and out["n_seqs"] == 2
    # CE of a right one-hot: log(1 + 3e^-10); of a wrong one: 10 + log(1 + 3e^-10)
    eps = math.log(1 + 3 * math.exp(-10))
    assert out["loss"] == pytest.approx((eps + (10 + eps) + eps) / 3, rel=1e-5)
    uniform = score(torch.zeros(2, 3, V), targets)
    assert uniform["loss"] == pytest.approx(math.log(V))
    empty = score(torch.zeros(1, 2, V), torch.full((1, 2), IGNORE))
    assert math.isnan(empty["token_acc"]) and empty["n_tokens"] == 0
    with pytest.raises(ValueError):
        score(torch.zeros(2, 3), targets)


def test_oracle_scores_perfectly_on_every_kind():
    for kind in KINDS:
        s = build_stream(StreamConfig(kind=kind))
        x, y = s.tasks[-1].eval_set(32, 0)
        logits = torch.nn.functional.one_hot(y.clamp(min=0), s.vocab_size).float()
        out = score(logits, y)
        assert out["token_acc"] == 1.0 and out["seq_acc"] == 1.0
        if kind in ("languages", "recall", "two_languages"):
            assert isinstance(s.tasks[0], (LanguageTask, RecallTask, InContextTranslationTask))


# --- joint streams (the reference of intransigence) -----------------------------------------

def test_joint_stream_mixes_the_scheduled_tasks_only():
    cfg = StreamConfig(n_tasks=3, steps_per_task=5, batch_size=64, joint=True, schedule=(0, 1))
    s = build_stream(cfg)
    assert s.mixture == [0, 1] and s.total_steps == 10 and s.phases == [(0, 5), (1, 5)]
    tags = {s.vocab.tag(i): i for i in range(3)}
    for step in (0, 7):                                  # both phases draw from the same mixture
        x, y = s.batch(step)
        assert x.shape == y.shape == (64, s.seq_len)
        seen = [tags[int(t)] for t in x[:, 0]]
        assert set(seen) == {0, 1}                       # never task 3; both others (64 draws)
        assert 16 < seen.count(0) < 48                   # roughly uniform
        # every row is a valid sequence of its own task: the target is that task's translation
        for row in (seen.index(0), seen.index(1)):
            task = s.tasks[seen[row]]
            words = task.words
            source = x[row, 1:1 + words]
            assert torch.equal(y[row, words + 1:], task.translate(source))
    x1, y1 = s.batch(3)
    x2, y2 = s.batch(3)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)   # a batch depends on its step alone
    assert not torch.equal(s.batch(3)[0], s.batch(4)[0])
    assert "joint" in repr(s)


def test_joint_stream_of_one_task_gives_the_plain_batches():
    plain = build_stream(StreamConfig(n_tasks=3, steps_per_task=6))
    joint = build_stream(StreamConfig(n_tasks=3, steps_per_task=6, joint=True, schedule=(0,)))
    for step in range(6):
        a, b = plain.batch(step), joint.batch(step)
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert plain.mixture is None and not StreamConfig().joint


def test_mixed_batch_checks_its_task_indices():
    s = build_stream(StreamConfig(n_tasks=2))
    with pytest.raises(ValueError, match="out of range"):
        s.mixed_batch(0, [0, 2])
    with pytest.raises(ValueError, match="at least one"):
        s.mixed_batch(0, [])
    x, _ = s.mixed_batch(0, [1])
    assert set(x[:, 0].tolist()) == {s.vocab.tag(1)}
    assert StreamConfig.from_dict({"joint": "true"}).joint is True
