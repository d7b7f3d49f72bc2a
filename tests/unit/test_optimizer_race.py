"""Optimizers on the same task: only the optimizer differs between the runs."""
from __future__ import annotations

import pytest

from lab.engine import RunConfig
from lab.optimizer_race import race
from lab.viz.optim_view import optimizer_race_figure

CONFIG = RunConfig(model="transformer", preset="tiny", eval_every=5, eval_size=8,
                   stream={"n_tasks": 1, "steps_per_task": 12, "batch_size": 4})


def losses(frame, optimizer):
    return frame[(frame.optimizer == optimizer) & (frame.metric == "loss")]["value"].tolist()


def test_same_start_and_batches_then_the_optimizers_part():
    frame = race(CONFIG, ["adamw", "m3", "sgd"], 12)
    adamw, m3, sgd = (losses(frame, o) for o in ("adamw", "m3", "sgd"))
    assert len(adamw) == len(m3) == len(sgd) == 12
    assert adamw[0] == m3[0] == sgd[0]              # same weights, same first batch, before any update
    assert adamw[1:] != m3[1:] and adamw[1:] != sgd[1:]
    again = race(CONFIG, ["m3"], 12)
    assert losses(again, "m3") == m3                 # deterministic per optimizer


def test_the_figure_has_one_curve_per_optimizer_in_its_colour():
    frame = race(CONFIG, ["adamw", "muon"], 6)
    fig = optimizer_race_figure(frame, window=1)
    assert [t.name for t in fig.data] == ["AdamW", "Muon"]
    assert list(fig.data[0].y) == losses(frame, "adamw")
    assert fig.data[0].line.color != fig.data[1].line.color
    assert optimizer_race_figure(frame.iloc[0:0]).layout.annotations


@pytest.mark.parametrize("optimizers, steps", [(["adam"], 5), ([], 5), (["adamw"], 0)])
def test_bad_requests_say_what_is_allowed(optimizers, steps):
    with pytest.raises(ValueError, match="optimizer|steps"):
        race(CONFIG, optimizers, steps)
