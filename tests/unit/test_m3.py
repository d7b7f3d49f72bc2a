"""M3 (REFERENCE.md §5) and the optimizer switch: against torch.optim.Muon, an independent
float64 reference, its chunk schedule, state_dict round trips, and the engine."""
from __future__ import annotations

import copy
import math

import pytest
import torch

from lab.engine import Run, RunConfig
from lab.optim import OPTIMIZERS, M3, HybridOptimizer, is_matrix, make_optimizer, newton_schulz
from lab.tasks.stream import StreamConfig

torch.set_num_threads(1)
CPU = torch.device("cpu")
BF16_U = 2.0 ** -8                       # bfloat16 unit roundoff
STEP_TOL, TRAJ_TOL = 32 * BF16_U, 8 * BF16_U
SHAPES = [(6, 4), (4, 6), (5, 5)]


def grads(shape, n, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(*shape, generator=gen) for _ in range(n)]


def drive(opt, p, gs):
    """Feed the given gradients; return the parameter after each step."""
    out = []
    for g in gs:
        p.grad = g.clone()
        opt.step()
        out.append(p.detach().clone())
    return out


def ns_reference(G, steps=5):
    """Quintic Newton–Schulz written out here, in float64 (not the code under test)."""
    a, b, c = 3.4445, -4.7750, 2.0315
    X = G.double()
    tall = X.shape[0] > X.shape[1]
    X = X.T if tall else X
    X = X / max(float(X.norm()), 1e-7)
    for _ in range(steps):
        A = X @ X.T
        X = a * X + (b * A + c * A @ A) @ X
    return (X.T if tall else X)


# --- against torch.optim.Muon ------------------------------------------------------------------

@pytest.mark.parametrize("shape", SHAPES)
def test_bf16_m3_is_torch_muon_bit_for_bit(shape):
    """α = 0, V off, NS in bfloat16: the same operations as torch.optim.Muon(nesterov=False)."""
    W0 = torch.randn(*shape, generator=torch.Generator().manual_seed(1))
    a, b = torch.nn.Parameter(W0.clone()), torch.nn.Parameter(W0.clone())
    gs = grads(shape, 12)
    ref = drive(torch.optim.Muon([a], lr=0.05, momentum=0.9, nesterov=False, weight_decay=0.0), a, gs)
    got = drive(M3([b], lr=0.05, momentum=0.9, alpha=0.0, beta2=None, ns_dtype=torch.bfloat16), b, gs)
    for r, g in zip(ref, got):
        assert torch.equal(r, g)


def _fp32_vs_muon(shape, **m3_kwargs):
    """Largest per-step update difference relative to the step, and the trajectory difference
    relative to the path length, of M3 (float32 NS) against torch.optim.Muon (bfloat16 NS)."""
    W0 = torch.randn(*shape, generator=torch.Generator().manual_seed(2))
    a, b = torch.nn.Parameter(W0.clone()), torch.nn.Parameter(W0.clone())
    muon = torch.optim.Muon([a], lr=0.05, momentum=0.9, nesterov=False, weight_decay=0.0)
    m3 = M3([b], lr=0.05, **{"momentum": 0.9, "alpha": 0.0, "beta2": None, **m3_kwargs})
    worst_step, path = 0.0, 0.0
    for g in grads(shape, 15, seed=3):
        pa, pb = a.detach().clone(), b.detach().clone()
        a.grad, b.grad = g.clone(), g.clone()
        muon.step()
        m3.step()
        da, db = a.detach() - pa, b.detach() - pb
        worst_step = max(worst_step, float((da - db).norm() / da.norm()))
        path += float(da.norm())
    return worst_step, float((a.detach() - b.detach()).norm()) / path


@pytest.mark.parametrize("shape", SHAPES)
def test_fp32_m3_follows_muon_within_bfloat16_rounding(shape):
    """torch.optim.Muon orthogonalises in bfloat16 (8 significant bits, u = 2⁻⁸), M3 in float32.
    Five NS iterations in bfloat16 put one step off by up to ~14 u (measured, 6×4), so each step
    may differ by STEP_TOL = 32 u of its length. Over a trajectory the rounding errors of the
    steps do not add up coherently (measured ≤ 2 u of the path length): TRAJ_TOL = 8 u. A real
    change of the algorithm (another momentum, a slow term, V) breaks these bounds, as the next
    test shows, so they test the algorithm and not only "something moved"."""
    step_err, traj_err = _fp32_vs_muon(shape)
    assert step_err <= STEP_TOL
    assert traj_err <= TRAJ_TOL
    assert step_err > 0                  # the two really are different computations


@pytest.mark.parametrize("change", [{"momentum": 0.8}, {"alpha": 0.5, "slow_every": 2}, {"beta2": 0.99}])
def test_the_muon_tolerance_catches_a_different_algorithm(change):
    step_err, traj_err = _fp32_vs_muon((6, 4), **change)
    assert step_err > STEP_TOL or traj_err > TRAJ_TOL


@pytest.mark.parametrize("shape", [(6, 4), (4, 6), (3, 9)])
def test_newton_schulz_orthogonalises(shape):
    G = torch.randn(*shape, generator=torch.Generator().manual_seed(4))
    O = newton_schulz(G)
    assert O.shape == G.shape and O.dtype == torch.float32
    s = torch.linalg.svdvals(O)
    assert 0.5 < float(s.min()) and float(s.max()) < 1.25          # ≈ orthogonal, as Muon's NS5 promises
    U, _, Vh = torch.linalg.svd(G, full_matrices=False)
    cos = float((O * (U @ Vh)).sum() / (O.norm() * (U @ Vh).norm()))
    assert cos > 0.95                                              # close to the polar factor U Vᵀ
    assert torch.allclose(O.double(), ns_reference(G), atol=1e-5)
    assert torch.allclose(newton_schulz(G.T), O.T, atol=1e-6)     # tall and wide handled alike


# --- the algorithm, against an independent reference -------------------------------------------

def m3_reference(W0, gs, lr, b1, b3, f, alpha, b2, eps, wd, rule, scale):
    """REFERENCE.md §5 written out in float64 (rule "ema" or "printed"); returns every Θ_t."""
    W = W0.double().clone()
    M1, M2, V, chunk, O2 = (torch.zeros_like(W) for _ in range(5))
    out = []
    for t, g in enumerate(gs, start=1):
        g = g.double()
        M1 = b1 * M1 + (1 - b1) * g if rule == "ema" else M1 + b1 * g
        d = ns_reference(M1) + alpha * O2
        if b2 is not None:
            V = b2 * V + (1 - b2) * g * g if rule == "ema" else V + b2 * g * g
            d = d / (V.sqrt() + eps)
        W = W * (1 - lr * wd) - lr * scale * d
        chunk = chunk + g
        if t % f == 0:
            M2 = b3 * M2 + (1 - b3) * chunk if rule == "ema" else M2 + b3 * chunk
            O2, chunk = ns_reference(M2), torch.zeros_like(W)
        out.append(W.clone())
    return out


@pytest.mark.parametrize("rule,b2", [("ema", None), ("ema", 0.9), ("printed", 0.5)])
def test_m3_matches_the_written_out_algorithm(rule, b2):
    shape, f = (6, 4), 3
    W0 = torch.randn(*shape, generator=torch.Generator().manual_seed(5))
    gs = grads(shape, 10, seed=6)
    kw = dict(lr=0.01, momentum=0.9, slow_momentum=0.8, slow_every=f, alpha=0.7, beta2=b2, eps=1e-3,
              weight_decay=0.1, rule=rule)
    p = torch.nn.Parameter(W0.clone())
    got = drive(M3([p], **kw), p, gs)
    ref = m3_reference(W0, gs, 0.01, 0.9, 0.8, f, 0.7, b2, 1e-3, 0.1, rule, math.sqrt(max(1, 6 / 4)))
    for t, (g_, r) in enumerate(zip(got, ref)):
        assert torch.allclose(g_.double(), r, atol=1e-5, rtol=1e-4), f"step {t + 1}"


def test_slow_buffer_changes_only_every_f_steps():
    f = 4
    p = torch.nn.Parameter(torch.zeros(5, 3))
    opt = M3([p], lr=0.01, slow_every=f, alpha=0.5)
    previous = torch.zeros(5, 3)
    changed = []
    for t, g in enumerate(grads((5, 3), 14), start=1):
        p.grad = g
        opt.step()
        slow = opt.state[p]["slow"]
        if not torch.equal(slow, previous):
            changed.append(t)
        previous = slow.clone()
    assert changed == [4, 8, 12]
    assert torch.count_nonzero(opt.state[p]["chunk"]) > 0          # steps 13, 14 wait for their chunk


def test_state_dict_round_trips_across_a_slow_boundary():
    shape, gs = (6, 4), grads((6, 4), 13, seed=7)
    kw = dict(lr=0.02, slow_every=4, alpha=0.5, beta2=0.99)
    p = torch.nn.Parameter(torch.randn(*shape, generator=torch.Generator().manual_seed(8)))
    opt = M3([p], **kw)
    drive(opt, p, gs[:7])
    saved, saved_p = copy.deepcopy(opt.state_dict()), p.detach().clone()
    straight = drive(opt, p, gs[7:])
    q = torch.nn.Parameter(saved_p.clone())
    fresh = M3([q], **kw)
    fresh.load_state_dict(saved)
    assert fresh.state[q]["step"] == 7
    resumed = drive(fresh, q, gs[7:])
    for a, b in zip(straight, resumed):
        assert torch.equal(a, b)


@pytest.mark.parametrize("kw,field", [({"momentum": 1.0}, "momentum"), ({"slow_every": 0}, "slow_every"),
                                      ({"beta2": 1.5}, "beta2"), ({"rule": "sum"}, "rule"), ({"lr": -1}, "lr"),
                                      ({"alpha": float("nan")}, "alpha")])
def test_bad_arguments_name_the_field(kw, field):
    with pytest.raises(ValueError, match=field):
        M3([torch.nn.Parameter(torch.zeros(2, 2))], **kw)


def test_m3_refuses_non_matrices():
    with pytest.raises(ValueError, match="2-D"):
        M3([torch.nn.Parameter(torch.zeros(3))])


# --- the switch and the engine -----------------------------------------------------------------

def tiny_run(optimizer):
    stream = StreamConfig(n_tasks=2, steps_per_task=6, batch_size=2, words=2, lexicon_size=6, target_words=6)
    return Run(RunConfig(model="transformer", preset="tiny", stream=stream, optimizer=optimizer, eval_every=4,
                         eval_size=4), CPU)


def test_switch_offers_muon_and_m3_and_splits_matrices():
    assert {"adamw", "muon", "m3"} <= set(OPTIMIZERS)
    run = tiny_run("adamw")
    named = list(run.model.named_parameters())
    for name in ("muon", "m3"):
        opt = make_optimizer(name, named, lr=1e-3)
        assert isinstance(opt, HybridOptimizer)
        parts = {part: {id(p) for g in o.param_groups for p in g["params"]} for part, o in opt.parts}
        matrices = {id(p) for n, p in named if p.dim() == 2 and n.endswith("weight") and "emb" not in n}
        assert parts[name] == matrices and parts["adamw"] == {id(p) for _, p in named} - matrices
        assert len(opt.param_groups) == 2 and {g["part"] for g in opt.param_groups} == {name, "adamw"}
    assert not is_matrix("tok_emb.weight", torch.nn.Parameter(torch.zeros(3, 3)))
    assert not is_matrix("blocks.0.norm.weight", torch.nn.Parameter(torch.zeros(3)))


def test_hybrid_param_groups_are_the_parts_groups():
    named = [("a.weight", torch.nn.Parameter(torch.randn(3, 2))), ("a.bias", torch.nn.Parameter(torch.randn(3)))]
    opt = make_optimizer("m3", named, lr=1e-3)
    for g in opt.param_groups:
        g["lr"] = 0.5
    assert opt.part("m3").param_groups[0]["lr"] == 0.5 and opt.part("adamw").param_groups[0]["lr"] == 0.5
    with pytest.raises(ValueError, match="parts"):
        opt.load_state_dict({"parts": ["muon", "adamw"], "state_dicts": []})


@pytest.mark.parametrize("optimizer", ["muon", "m3"])
def test_engine_trains_and_snapshots_with(optimizer):
    run = tiny_run(optimizer)
    run.step(3)
    snap = run.snapshot()
    run.step(4)
    after = {k: v.clone() for k, v in run.model.state_dict().items()}
    run.restore(snap)
    run.step(4)
    assert run.diverged is None
    for k, v in run.model.state_dict().items():
        assert torch.equal(v, after[k]), k
    losses = run.records().query("metric == 'loss'")["value"]
    assert losses.notna().all() and len(losses) == 7
