"""Split-Digits and Permuted-Digits (lab.tasks.digits): the token layout, the held-out split, the two
incremental settings and their restricted head."""
import pytest
import torch

from lab.config import ConfigError
from lab.models.base import ModelConfig
from lab.tasks import (IGNORE, SEP, StreamConfig, build_stream, head_accuracy, make_generator, score,
                       score_within)
from lab.tasks.digits import N_PIXELS, load_images, quantise, split_indices


def digits(**changes):
    return build_stream(StreamConfig(**{"kind": "split_digits", "n_tasks": 5, **changes}))


def test_split_is_fixed_per_class_and_disjoint_by_index_and_content():
    pixels, labels = load_images()
    assert pixels.shape == (1797, 64) and int(pixels.min()) == 0 and int(pixels.max()) == 16
    train, test = split_indices()
    assert len(set(train.tolist()) & set(test.tolist())) == 0 and len(train) + len(test) == 1797
    for c in range(10):
        n_c, k = int((labels == c).sum()), int((labels[test] == c).sum())
        assert k == round(0.2 * n_c)                                  # 20 % of every class
    for levels in (4, 8):                                             # no test image is also a train image
        q = quantise(pixels, levels)
        train_rows = {tuple(r) for r in q[train].tolist()}
        assert not any(tuple(r) in train_rows for r in q[test].tolist())
    # the split does not depend on the stream's seed
    a, b = digits(seed=0).tasks[1], digits(seed=9).tasks[1]
    assert torch.equal(a.test_index, b.test_index) and torch.equal(a.train_index, b.train_index)


def _image_indices(task, inputs):
    """Which image each row shows, found by its pixel tokens (all images are distinct)."""
    offset = 1 if task.tag is not None else 0
    pixels = inputs[:, offset:offset + N_PIXELS]
    seqs, _ = task.sequences(torch.arange(1797))
    table = {tuple(r): i for i, r in enumerate(seqs[:, offset:offset + N_PIXELS].tolist())}
    return [table[tuple(r)] for r in pixels.tolist()]


def test_batches_come_from_train_images_and_eval_sets_from_test_images_only():
    s = digits()
    for task in (s.tasks[0], s.tasks[3]):
        x, _ = task.sample(64, make_generator(1))
        assert set(_image_indices(task, x)) <= set(task.train_index.tolist())
        ex, _ = task.eval_set(200, 0)                                 # more than the ~72 test images: cycled
        shown = _image_indices(task, ex)
        assert set(shown) == set(task.test_index.tolist())
    p = build_stream(StreamConfig(kind="permuted_digits", n_tasks=2)).tasks[1]
    x, _ = p.eval_set(50, 3)
    assert set(_image_indices(p, x)) <= set(p.test_index.tolist())


def test_layout_label_and_shapes_class_incremental():
    s = digits(pixel_levels=8)
    assert s.seq_len == 65 and s.vocab_size == 3 + 8 + 10 and s.seq_len <= ModelConfig().max_len
    pixels, labels = load_images()
    for i, task in enumerate(s.tasks):
        assert task.classes == (2 * i, 2 * i + 1) and task.tag is None
        x, y = task.sample(32, make_generator(i))
        assert x.shape == y.shape == (32, 65)
        assert torch.all(x[:, 64] == SEP) and torch.all(y[:, :64] == IGNORE)       # only the label is scored
        rows = _image_indices(task, x)
        assert torch.equal(y[:, 64], task.digit_tokens[labels[rows]])              # the digit itself
        assert torch.equal(x[:, :64], task.pixel_tokens[quantise(pixels[rows], 8)])
        assert set(y[:, 64].tolist()) <= set(task.answer_tokens.tolist())


def test_task_incremental_puts_the_tag_first_and_keeps_the_digit_label():
    s = digits(incremental="task")
    assert s.seq_len == 66 and s.vocab.n_languages == 5
    for i, task in enumerate(s.tasks):
        x, y = task.eval_set(16, 0)
        assert torch.all(x[:, 0] == s.vocab.tag(i)) and torch.all(x[:, 65] == SEP)
        assert set(y[:, 65].tolist()) <= set(task.answer_tokens.tolist()) and len(task.answer_tokens) == 2


def test_the_restricted_head_is_measurable_and_differs_from_the_full_argmax():
    task = digits(incremental="task").tasks[2]                        # digits 4 and 5
    x, y = task.eval_set(64, 0)
    V = int(task.vocab.size)
    logits = torch.zeros(*x.shape, V)
    logits[..., int(task.digit_tokens[9])] = 5.0                       # a model that always says "9"
    right = torch.where(y == IGNORE, 0, y)
    logits.scatter_(2, right[..., None], 1.0)                          # … but ranks the true digit second
    assert score(logits, y)["token_acc"] == 0.0                        # full vocabulary: always wrong
    assert score_within(logits, y, task.answer_tokens)["token_acc"] == 1.0   # among the task's 2: always right
    with pytest.raises(ValueError, match="allowed"):
        score_within(logits, y, task.digit_tokens[:2])                  # 4 and 5 are not among 0/1

    def says_nine_then_truth(tokens):                                   # the same model, as a callable
        out = torch.zeros(*tokens.shape, V)
        out[..., int(task.digit_tokens[9])] = 5.0
        rows = torch.tensor(_image_indices(task, tokens))
        out[torch.arange(len(tokens)), -1, task.digit_tokens[load_images()[1][rows]]] = 1.0
        return out

    frame = head_accuracy(says_nine_then_truth, [task], n=64)
    assert list(frame.columns) == ["task", "tagged", "accuracy", "within_task", "chance", "n"]
    assert frame.iloc[0][["tagged", "accuracy", "within_task", "chance", "n"]].tolist() == [True, 0.0, 1.0, 0.5, 64]


def test_permuted_tasks_permute_the_same_images_differently():
    s = build_stream(StreamConfig(kind="permuted_digits", n_tasks=20, seed=4))
    assert len(s.tasks) == 20 and s.tasks[0].classes == tuple(range(10))
    perms = [t.permutation for t in s.tasks]
    assert all(sorted(p.tolist()) == list(range(64)) for p in perms)
    assert len({tuple(p.tolist()) for p in perms}) == 20
    a, b = s.tasks[0], s.tasks[1]
    index = a.test_index[:8]
    xa, xb = a.sequences(index)[0], b.sequences(index)[0]
    assert torch.equal(xa[:, :64][:, torch.argsort(a.permutation)], xb[:, :64][:, torch.argsort(b.permutation)])
    assert not torch.equal(xa, xb) and torch.equal(xa[:, -1], xb[:, -1])          # same labels
    again = build_stream(StreamConfig(kind="permuted_digits", n_tasks=20, seed=4))
    assert all(torch.equal(p, q.permutation) for p, q in zip(perms, again.tasks))
    other = build_stream(StreamConfig(kind="permuted_digits", n_tasks=2, seed=5))
    assert not torch.equal(other.tasks[0].permutation, perms[0])


def test_deterministic_batches_and_eval_sets():
    s1, s2 = digits(seed=3), digits(seed=3)
    for step in (0, 251, 1000):
        assert all(torch.equal(u, v) for u, v in zip(s1.batch(step), s2.batch(step)))
    assert torch.equal(s1.tasks[4].eval_set(40, 1)[0], s2.tasks[4].eval_set(40, 1)[0])
    assert not torch.equal(s1.tasks[4].eval_set(40, 1)[0], s1.tasks[4].eval_set(40, 2)[0])


@pytest.mark.parametrize("changes, field", [
    ({"kind": "split_digits", "n_tasks": 6}, "n_tasks"),
    ({"kind": "split_digits", "incremental": "domain"}, "incremental"),
    ({"kind": "permuted_digits", "pixel_levels": 1}, "pixel_levels"),
    ({"kind": "permuted_digits", "pixel_levels": 17}, "pixel_levels"),
    ({"kind": "permuted_digits", "n_tasks": 21}, "n_tasks"),
])
def test_bad_digits_configs_name_the_field(changes, field):
    with pytest.raises(ConfigError) as err:
        StreamConfig(**changes)
    assert err.value.field == field and field in str(err.value)


def test_a_context_free_predictor_is_at_chance_and_an_oracle_is_perfect():
    task = build_stream(StreamConfig(kind="permuted_digits", n_tasks=1)).tasks[0]
    x, y = task.eval_set(359, 0)                                       # every test image once
    V = task.vocab.size
    uniform = score(torch.zeros(*x.shape, V), y)
    assert uniform["token_acc"] == 0.0                                 # argmax of ties: token 0, never a digit
    constant = torch.zeros(*x.shape, V)
    constant[..., int(task.digit_tokens[3])] = 1.0                     # always "3": the share of 3s
    assert abs(score(constant, y)["token_acc"] - 0.1) < 0.02
    oracle = torch.nn.functional.one_hot(y.clamp(min=0), V).float()
    assert score(oracle, y)["token_acc"] == 1.0
