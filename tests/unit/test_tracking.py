"""Sequential state tracking (lab.tasks.tracking): answers against a direct computation, the two
scoring layouts, held-out sets at other lengths, and accuracy against length."""
import itertools

import pytest
import torch

from lab.config import ConfigError
from lab.engine import Run, RunConfig
from lab.tasks import IGNORE, SEP, StreamConfig, build_stream, length_curve, make_generator
from lab.tasks.tracking import PROBLEMS, TrackingTask, group


def stream(**changes):
    return build_stream(StreamConfig(**{"kind": "tracking", "n_tasks": 4, **changes}))


def elements(task, tokens):
    """Token ids → element indices of the task's group."""
    lookup = {int(t): j for j, t in enumerate(task.tokens)}
    return [[lookup[int(t)] for t in row] for row in tokens]


def direct(task, symbols, modulus=5):
    """The running answers computed without the task's table: sums, parities, compositions."""
    out = []
    if task.problem in ("parity", "mod_sum"):
        k = 2 if task.problem == "parity" else modulus
        for row in symbols:
            out.append([sum(row[:t + 1]) % k for t in range(len(row))])
        return out
    m = 3 if task.problem == "perm3" else 5
    perms = sorted(itertools.permutations(range(m)))
    for row in symbols:
        state, states = tuple(range(m)), []
        for j in row:
            g = perms[j]
            state = tuple(g[state[i]] for i in range(m))          # apply the earlier ones, then g
            states.append(perms.index(state))
        out.append(states)
    return out


def test_groups_are_groups():
    for problem, order in zip(PROBLEMS, (2, 5, 6, 120)):
        names, table = group(problem, 5)
        assert table.shape == (order, order) and len(set(names)) == order
        assert torch.equal(table[0], torch.arange(order)) and torch.equal(table[:, 0], torch.arange(order))
        for row in table:                                          # a Latin square: every product once
            assert sorted(row.tolist()) == list(range(order))
        a, b, c = torch.randint(order, (3, 200), generator=make_generator(1))
        assert torch.equal(table[table[a, b], c], table[a, table[b, c]])   # associative
    _, s3 = group("perm3")
    assert not torch.equal(s3, s3.T)                               # S3 is not abelian
    assert group("perm3")[0][:2] == ["012", "021"]
    with pytest.raises(ValueError, match="unknown problem"):
        group("perm4")


@pytest.mark.parametrize("score_every", [False, True])
def test_answers_match_a_direct_computation(score_every):
    s = stream(length=7, modulus=7, score_every=score_every)
    assert [t.name for t in s.tasks] == ["parity", "mod7_sum", "perm3", "perm5"]
    for task in s.tasks:
        x, y = task.sample(40, make_generator(2))
        L = 7
        if score_every:
            assert task.natural_len == 2 * L - 1
            symbols = elements(task, x[:, 0::2])
            answers = elements(task, y[:, 0::2])                   # input position 2t predicts s_{t+1}
            assert torch.all(y[:, 1::2] == IGNORE)
            assert torch.equal(x[:, 1::2], y[:, 0::2][:, :-1])      # the running answers are in the input
            assert answers == direct(task, symbols, modulus=7)
        else:
            assert task.natural_len == L + 1
            assert torch.all(x[:, L] == SEP) and torch.all(y[:, :L] == IGNORE)
            symbols = elements(task, x[:, :L])
            answers = elements(task, y[:, L:])
            assert [a[0] for a in answers] == [d[-1] for d in direct(task, symbols, modulus=7)]
        if task.problem in ("perm3", "perm5"):
            assert len({a for row in answers for a in row}) > 3     # not a constant answer


def test_held_out_sets_at_other_lengths_have_the_asked_length():
    s = stream(length=8)
    for task in s.tasks:
        for L in (1, 8, 40):
            x, y = task.eval_set(12, 0, length=L)
            assert x.shape == y.shape == (12, L + 1)
            assert torch.all(x[:, L] == SEP) and int((y != IGNORE).sum()) == 12
            symbols = elements(task, x[:, :L])
            assert elements(task, y[:, L:]) == [[d[-1]] for d in direct(task, symbols)]
        base = task.eval_set(12, 0)
        same = task.eval_set(12, 0, length=8)
        assert torch.equal(base[0][:, :9], same[0]) and torch.equal(base[1][:, :9], same[1])
        assert torch.equal(task.eval_set(12, 0, length=40)[0], task.eval_set(12, 0, length=40)[0])
    every = stream(length=8, score_every=True).tasks[2]
    x, y = every.eval_set(5, 1, length=30)
    assert x.shape == (5, 59) and int((y != IGNORE).sum()) == 5 * 30
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ConfigError) as err:
            s.tasks[0].eval_set(4, 0, length=bad)
        assert err.value.field == "length"


@pytest.mark.parametrize("changes, field", [
    ({"problems": ("parity", "xor"), "n_tasks": 2}, "problems"),
    ({"problems": ("parity", "parity"), "n_tasks": 2}, "problems"),
    ({"problems": ("parity",), "n_tasks": 2}, "problems"),
    ({"length": 0}, "length"),
    ({"length": 251}, "length"),
    ({"modulus": 1}, "modulus"),
    ({"n_tasks": 5}, "n_tasks"),
])
def test_bad_tracking_configs_name_the_field(changes, field):
    with pytest.raises(ConfigError) as err:
        StreamConfig(**{"kind": "tracking", **changes})
    assert err.value.field == field and field in str(err.value)


def test_problems_choose_and_order_the_tasks_and_streams_are_deterministic():
    s = build_stream(StreamConfig.from_dict({"kind": "tracking", "n_tasks": "2", "problems": "perm5,parity"}))
    assert [t.problem for t in s.tasks] == ["perm5", "parity"] and s.vocab_size == 3 + 120 + 2
    assert [t.problem for t in stream(n_tasks=2).tasks] == ["parity", "mod_sum"]
    a, b = stream(seed=5), stream(seed=5)
    for step in (0, 300, 999):
        assert all(torch.equal(u, v) for u, v in zip(a.batch(step), b.batch(step)))
    assert not torch.equal(a.tasks[3].eval_set(8, 0)[0], stream(seed=6).tasks[3].eval_set(8, 0)[0])


class Oracle:
    """Reads the symbols and answers with the true running product (final layout)."""

    def __init__(self, task, last_symbol_only=False):
        self.task, self.last_only = task, last_symbol_only

    def __call__(self, tokens):
        task = self.task
        L = tokens.shape[1] - 1
        symbols = torch.tensor(elements(task, tokens[:, :L]))
        answer = symbols[:, -1] if self.last_only else task.states(symbols)[:, -1]
        logits = torch.zeros(*tokens.shape, int(task.vocab.size))
        logits[torch.arange(len(tokens)), L, task.tokens[answer]] = 1.0
        return logits


def test_length_curve_scores_against_length_without_training():
    task = stream(length=6).tasks[0]                               # parity
    frame = length_curve(Oracle(task), [task], [1, 6, 50], n=400)
    assert list(frame.columns) == ["task", "problem", "length", "trained_length", "accuracy", "running_accuracy",
                                   "chance", "n"]
    assert frame["length"].tolist() == [1, 6, 50] and (frame["accuracy"] == 1.0).all()
    assert (frame["trained_length"] == 6).all() and (frame["chance"] == 0.5).all() and (frame["n"] == 400).all()
    # a predictor that only looks at the last symbol: right at length 1, at chance later
    shallow = length_curve(Oracle(task, last_symbol_only=True), [task], [1, 50], n=400).set_index("length")
    assert shallow.loc[1, "accuracy"] == 1.0 and 0.4 < shallow.loc[50, "accuracy"] < 0.6
    uniform = length_curve(lambda tokens: torch.zeros(*tokens.shape, int(task.vocab.size)), [task], [5], n=50)
    assert uniform["accuracy"].iloc[0] == 0.0                      # ties go to <pad>, never an answer


def test_a_run_trains_on_tracking_and_length_curve_reads_its_model():
    run = Run(RunConfig(model="transformer", preset="tiny", eval_size=8,
                        stream={"kind": "tracking", "n_tasks": 2, "steps_per_task": 2, "length": 6,
                                "score_every": True}))
    run.step(4)
    assert run.step_count == 4 and len(run.last_eval_accuracy()) == 2
    run.model.train()
    frame = length_curve(run.model, run.stream.tasks, [3, 6, 12], n=16)
    assert len(frame) == 6 and frame["accuracy"].between(0, 1).all()
    assert run.model.training                                      # the model's mode is given back
    assert (frame["running_accuracy"] >= 0).all()
    with pytest.raises(ConfigError) as err:
        length_curve(run.model, run.stream.tasks, [200], n=4)     # 399 tokens > max_len 256
    assert err.value.field == "lengths" and "max_len" in str(err.value)
    assert isinstance(run.stream.tasks[0], TrackingTask)


def test_the_benchmark_always_measures_the_trained_length():
    """acc_trained is read at the trained length: a regime cell training at a length the test
    lengths leave out would have no accuracy there and drop out of the claim's map."""
    from lab.benchmarks.tracking import EXPERIMENT, TrackingSettings

    assert TrackingSettings(length=24, test_lengths=(8, 16, 32)).measured_lengths() == [8, 16, 24, 32]
    assert TrackingSettings(length=16, test_lengths=(16, 32)).measured_lengths() == [16, 32]
    settings = {"model": "transformer", "preset": "tiny", "length": 6, "test_lengths": [4, 8], "steps": 4,
                "eval_size": 8}
    (row,) = EXPERIMENT.run(settings, 0, lambda fraction: None)
    assert row["acc_trained"] is not None and {"acc_L4", "acc_L6", "acc_L8"} <= set(row)
