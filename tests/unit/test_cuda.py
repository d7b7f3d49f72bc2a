"""The CUDA path (issue 15): every family trains through the engine on a GPU as it does on the CPU, a
Playground session trains there and its probes read the GPU model, and the bench measures there.
Skipped, with the reason, where no GPU is; `scripts/device_check.sh` runs them on a lent GPU.
(The compiled chunk bodies on CUDA: tests/unit/test_compiled.py.)"""
from __future__ import annotations

import math

import pytest
import torch

from lab.bench import live_sizes, training_steps
from lab.device import set_device
from lab.engine import Run
from lab.models import MODELS
from lab.run_config import RunConfig
from lab.sessions.playground import PROBES, PlaygroundSession

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU here")
CPU, CUDA = torch.device("cpu"), torch.device("cuda")
SHORT = {"n_tasks": 2, "steps_per_task": 10}


def _losses(run: Run) -> list[float]:
    frame = run.records()
    return frame[frame["metric"] == "loss"].sort_values("step")["value"].tolist()


@pytest.mark.parametrize("name", list(MODELS))
def test_each_family_trains_on_cuda_as_on_the_cpu(name):
    config = RunConfig(model=name, preset="tiny", stream=SHORT, eval_every=5)
    on_cpu, on_gpu = Run(config, device=CPU), Run(config, device=CUDA)
    assert all(p.device.type == "cuda" for p in on_gpu.model.parameters())
    for a, b in zip(on_cpu.model.parameters(), on_gpu.model.parameters()):   # one seeded initialisation
        assert torch.equal(a, b.cpu())
    on_cpu.step(20)
    on_gpu.step(20)
    assert on_gpu.step_count == 20 and on_gpu.diverged is None
    cpu_losses, gpu_losses = _losses(on_cpu), _losses(on_gpu)
    assert all(math.isfinite(x) for x in gpu_losses)
    assert math.isclose(gpu_losses[0], cpu_losses[0], rel_tol=1e-4)          # the same first step
    assert math.isclose(gpu_losses[-1], cpu_losses[-1], rel_tol=0.05)        # float order apart, the same run
    assert len(on_gpu.matrix_rows) == len(on_cpu.matrix_rows) == 3           # evaluated at each task's end


def test_a_playground_session_trains_on_cuda_and_its_probes_read_the_gpu_model():
    set_device("cuda")
    try:
        session = PlaygroundSession(RunConfig(model="hope", preset="tiny", stream=SHORT, eval_every=5))
        session.step(12)
    finally:
        set_device(None)
    assert session.run.step_count == 12 and next(session.run.model.parameters()).is_cuda
    for kind in PROBES:
        if kind == "attention":                       # HOPE has no softmax attention to map
            continue
        step, frame = session.probe(kind, 10, task=0, example=0)
        assert step == 10 and len(frame) > 0


def test_the_bench_measures_on_cuda():
    steps = training_steps(repeats=2, device=CUDA)
    assert set(steps["ratios"]) == {f"{name}/transformer" for name in MODELS if name != "transformer"}
    assert all(steps[name]["steps_per_sec"] > 0 for name in MODELS)
    sizes = live_sizes(CUDA, scales=(1, 2), seconds=0.1, floor=0.0)
    assert all([r["scale"] for r in rows] == [1, 2] for rows in sizes["families"].values())
