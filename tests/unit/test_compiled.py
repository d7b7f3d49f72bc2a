"""Compiled chunk bodies (lab.memory.compiled): on/off rules, the eager fallback, and that the
compiled and eager paths of the fast-weight memories agree (REFERENCE.md §2 Titans' memory,
§4 HOPE's self-modifying memory: the same equations, fused by torch.compile)."""
from __future__ import annotations

import os
import warnings

import pytest
import torch
import torch.nn.functional as F

from lab.hooks import capture, name_hook_points
from lab.memory import compiled
from lab.memory.compiled import Compiled, compile_enabled, set_compile
from lab.memory.neural import NeuralMemory
from lab.memory.self_modifying import SelfModifyingMemory

torch.set_num_threads(1)


@pytest.fixture
def clean(monkeypatch):
    monkeypatch.delenv(compiled.ENV_VAR, raising=False)
    monkeypatch.setattr(compiled, "_warned", False)
    set_compile(None)
    yield monkeypatch
    set_compile(None)


def _double(x):
    return 2 * x + 1


def test_env_var_and_override(clean):
    assert compile_enabled() is compiled.DEFAULT
    for value, expected in (("1", True), ("on", True), ("0", False), ("OFF", False)):
        clean.setenv("NLL_COMPILE", value)
        assert compile_enabled() is expected
    clean.setenv("NLL_COMPILE", "0")
    set_compile(True)                                  # the override wins over the environment
    assert compile_enabled() is True
    set_compile(None)
    clean.setenv("NLL_COMPILE", "maybe")
    with pytest.raises(ValueError, match="NLL_COMPILE"):
        compile_enabled()


def test_nll_compile_0_runs_eager_and_never_compiles(clean):
    clean.setenv("NLL_COMPILE", "0")
    clean.setattr(torch, "compile", lambda *a, **k: pytest.fail("torch.compile was called"))
    body = Compiled(_double, "test.double_off")
    x = torch.randn(3, requires_grad=True)
    assert torch.equal(body(x), _double(x))
    assert body.used == 0 and body.failure is None


def test_no_grad_calls_stay_eager(clean):
    calls = []
    clean.setattr(torch, "compile", lambda fn, **k: calls.append(fn) or fn)
    set_compile(True)
    body = Compiled(_double, "test.double_no_grad")
    with torch.no_grad():
        body(torch.ones(2))
    assert calls == [] and body.used == 0
    body(torch.ones(2, requires_grad=True))            # autograd records: compiled
    assert len(calls) == 1 and body.used == 1


def test_a_failing_compiler_falls_back_to_eager_with_one_warning(clean):
    def broken(*_args):
        raise RuntimeError("no C++ compiler here")
    clean.setattr(torch, "compile", lambda fn, **k: broken)
    set_compile(True)
    body = Compiled(_double, "test.double_broken")
    x = torch.randn(4, requires_grad=True)
    with pytest.warns(RuntimeWarning, match="no C\\+\\+ compiler"):
        y = body(x)
    assert torch.equal(y, _double(x))
    assert "no C++ compiler" in body.failure and not body.active()
    with warnings.catch_warnings():
        warnings.simplefilter("error")                 # the second call neither warns nor retries
        assert torch.equal(body(x), _double(x))
    assert body.used == 0
    assert compiled.compile_report()["test.double_broken"]["failure"] == body.failure


def _grads_of(memory, make_inputs):
    memory.zero_grad(set_to_none=True)
    inputs = [t.clone().requires_grad_(True) for t in make_inputs()]
    y = memory(*inputs)
    (y * torch.linspace(-1, 1, y.shape[-1], device=y.device)).sum().backward()
    return y.detach(), [t.grad for t in inputs] + [p.grad for p in memory.parameters()]


def _inputs(B=2, H=2, T=11, d=8, seed=0, device="cpu"):  # 11 = 4 + 4 + 3 tokens: two chunk shapes
    g = torch.Generator().manual_seed(seed)
    return lambda: [F.normalize(torch.randn(B, H, T, d, generator=g.manual_seed(seed + i)), dim=-1).to(device)
                    for i in range(3)]


MEMORIES = {
    "titans_memory": lambda: NeuralMemory(8, heads=2, chunk_size=4, theta=0.1, eta=0.5),
    "hope_memory": lambda: SelfModifyingMemory(8, heads=2, chunk_size=4),
}
BODIES = ("fast_weights.chunk_step", "self_modifying.hope_chunk")
INDUCTOR = os.environ.get("NLL_TEST_INDUCTOR") == "1"


@pytest.fixture
def fresh_bodies(clean):
    import torch._dynamo

    def reset():
        torch._dynamo.reset()
        for body in Compiled.instances:
            body.reset()
    reset()
    yield clean
    reset()


def _agree(memory, device="cpu"):
    """Eager then compiled on the same inputs: outputs and every gradient equal to ~1e-6. The last
    chunk is shorter (11 = 4 + 4 + 3 tokens), so two shapes compile."""
    memory = memory.to(device)
    set_compile(False)
    y_eager, g_eager = _grads_of(memory, _inputs(device=device))
    set_compile(True)
    y_comp, g_comp = _grads_of(memory, _inputs(device=device))
    report = {name: r for name, r in compiled.compile_report().items() if name in BODIES}
    assert all(r["failure"] is None for r in report.values()), report
    assert sum(r["used"] for r in report.values()) > 0         # the compiled path did run
    assert torch.allclose(y_comp, y_eager, atol=1e-6, rtol=1e-5)
    assert not torch.equal(g_eager[0], torch.zeros_like(g_eager[0]))
    for a, b in zip(g_comp, g_eager):
        assert a is not None and torch.allclose(a, b, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("name", list(MEMORIES))
def test_traced_chunk_bodies_agree_with_eager(fresh_bodies, name):
    """The chunk bodies traced whole by torch.compile (fullgraph, no graph break) with the aot_eager
    backend: the graph the compiler gets, run without a C++ toolchain (seconds, not minutes)."""
    fresh_bodies.setattr(compiled, "BACKEND", "aot_eager")
    torch.manual_seed(0)
    _agree(MEMORIES[name]())


@pytest.mark.skipif(not INDUCTOR, reason="the real compiler (inductor) takes minutes on a small CPU: "
                                         "set NLL_TEST_INDUCTOR=1 to run it")
@pytest.mark.parametrize("name", list(MEMORIES))
def test_inductor_chunk_bodies_agree_with_eager(fresh_bodies, name):
    torch.manual_seed(0)
    _agree(MEMORIES[name]())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU here")
@pytest.mark.parametrize("name", list(MEMORIES))
def test_cuda_compiled_chunk_bodies_agree_with_eager(fresh_bodies, name):
    torch.manual_seed(0)
    _agree(MEMORIES[name](), device="cuda")


def test_surprise_is_computed_only_when_listened_and_outputs_do_not_change():
    torch.manual_seed(0)
    memory = NeuralMemory(8, heads=2, chunk_size=4, theta=0.1, eta=0.5)
    q, k, v = _inputs()()
    assert not memory.stats_wanted()
    y_quiet = memory(q, k, v)
    name_hook_points(memory)
    with capture(memory, ["hook_surprise", "hook_loss"]) as cache:
        assert memory.stats_wanted()
        y_heard = memory(q, k, v)
    assert torch.equal(y_quiet, y_heard)
    _, _, surprise, loss = memory.scan(memory.start(2), q, k, v, mode="chunk", stats=True)
    assert torch.equal(cache["hook_surprise"], surprise) and torch.equal(cache["hook_loss"], loss)
    assert surprise.shape == (2, 2, 11) and bool((surprise > 0).all())
    assert memory.scan(memory.start(2), q, k, v, mode="chunk", stats=False)[2] is None


def test_self_modifying_surprise_only_when_listened():
    torch.manual_seed(0)
    memory = SelfModifyingMemory(8, heads=2, chunk_size=4)
    q, k, v = _inputs()()
    y_quiet = memory(q, k, v)
    name_hook_points(memory)
    with capture(memory, ["hook_surprise"]) as cache:
        y_heard = memory(q, k, v)
    assert torch.equal(y_quiet, y_heard)
    assert cache["hook_surprise"].shape == (2, 2, 11) and bool((cache["hook_surprise"] > 0).all())
    assert "surprise" not in memory.scan(memory.start(2), q, k, v, stats=False)[2]


def test_eager_holds_in_its_thread_only(monkeypatch):
    import threading

    from lab.memory import compiled

    monkeypatch.setattr(compiled, "_override", True)
    body = compiled.Compiled(lambda x: x * 2, "test.eager_thread")
    seen = {}
    with torch.enable_grad(), compiled.eager():
        seen["inside"] = body.active()
        other = threading.Thread(target=lambda: seen.setdefault("other_thread", _active_with_grad(body)))
        other.start()
        other.join()
    with torch.enable_grad():
        seen["after"] = body.active()
    assert seen == {"inside": False, "other_thread": True, "after": True}
    compiled.Compiled.instances.remove(body)


def _active_with_grad(body) -> bool:
    with torch.enable_grad():
        return body.active()
