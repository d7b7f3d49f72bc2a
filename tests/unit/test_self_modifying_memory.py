"""HOPE's self-modifying memory against a loop written out by hand (REFERENCE.md §4).

lab.memory.self_modifying, in float64, every reference an independent loop over batch, head and
token; the shared helpers are those of tests/unit/test_fast_weights.py (Titans' memory, §2).
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lab.memory.self_modifying import MEMORIES, SelfModifyingMemory
from tests.unit.test_fast_weights import D, rand, silu


def res_mlp(W2, W1, x):
    """M(x) = x + W_1 σ(W_2 x)."""
    return x + W1 @ silu(W2 @ x)


def hand_self_modifying(mem, q, xk, xv, chunk):
    """Token-by-token (chunk = 1) loop from the docstring of lab.memory.self_modifying.

    For chunk > 1 every quantity of a chunk (k, v, η, α, targets, gradients, the delta term's W in)
    is taken at the chunk-start state, as that docstring says."""
    W2_0, W1_0 = (w.detach() for w in mem.init_weights)   # (5, H, hidden, d), (5, H, d, hidden)
    w_eta, b_eta = mem.eta_readout.detach(), mem.eta_bias.detach()
    w_alpha, b_alpha = mem.alpha_readout.detach(), mem.alpha_bias.detach()
    B, H, T, d = xk.shape
    ys = torch.zeros(B, H, T, d, dtype=D)
    etas, alphas = torch.zeros(B, H, T, dtype=D), torch.zeros(B, H, T, dtype=D)
    finals = {}
    K, V, ETA, ALPHA, OUT = range(5)
    for b in range(B):
        for h in range(H):
            W2 = [W2_0[m, h].clone() for m in range(5)]
            W1 = [W1_0[m, h].clone() for m in range(5)]
            for start in range(0, T, chunk):
                C2, C1 = [w.clone() for w in W2], [w.clone() for w in W1]      # chunk-start state
                for t in range(start, min(T, start + chunk)):
                    # the inputs are ℓ2-normalised per head before anything reads them
                    x_k, x_v = F.normalize(xk[b, h, t], dim=0), F.normalize(xv[b, h, t], dim=0)
                    k = F.normalize(res_mlp(C2[K], C1[K], x_k), dim=0)
                    v = res_mlp(C2[V], C1[V], x_v)
                    if mem.bound == "bounded":                                # ℓ2-normalised like k
                        v = F.normalize(v, dim=0)
                    eta = mem.eta_max * torch.sigmoid(w_eta[h] @ res_mlp(C2[ETA], C1[ETA], x_k) + b_eta[h])
                    alpha = torch.sigmoid(w_alpha[h] @ res_mlp(C2[ALPHA], C1[ALPHA], x_k) + b_alpha[h])
                    etas[b, h, t], alphas[b, h, t] = eta, alpha
                    for m in range(5):
                        target = res_mlp(C2[m], C1[m], v)                      # v̂_□ = M_□(v)
                        A2 = C2[m].clone().requires_grad_(True)
                        A1 = C1[m].clone().requires_grad_(True)
                        L = (res_mlp(A2, A1, k) - target).pow(2).sum()
                        g2, g1 = torch.autograd.grad(L, (A2, A1))               # δ inᵀ per layer
                        in2, in1 = k, silu(C2[m] @ k)                           # each layer's input
                        # W ← W (α I − η in inᵀ) − η δ inᵀ  (W in inᵀ at the chunk-start W)
                        I2, I1 = torch.eye(d, dtype=D), torch.eye(in1.shape[0], dtype=D)
                        if chunk == 1:
                            W2[m] = W2[m] @ (alpha * I2 - eta * torch.outer(in2, in2)) - eta * g2
                            W1[m] = W1[m] @ (alpha * I1 - eta * torch.outer(in1, in1)) - eta * g1
                        else:
                            W2[m] = alpha * W2[m] - eta * torch.outer(C2[m] @ in2, in2) - eta * g2
                            W1[m] = alpha * W1[m] - eta * torch.outer(C1[m] @ in1, in1) - eta * g1
                    ys[b, h, t] = res_mlp(W2[OUT], W1[OUT], F.normalize(q[b, h, t], dim=0))
                if mem.bound == "bounded":          # after the chunk, every matrix back into the ball
                    W2 = [w * min(1.0, mem.radius / float(w.norm())) for w in W2]
                    W1 = [w * min(1.0, mem.radius / float(w.norm())) for w in W1]
            finals[b, h] = (W2, W1)
    return ys, finals, etas, alphas


def make_self_modifying(chunk, seed=0, d=3, heads=2, hidden=4, eta_max=0.9, read_order="after_write", bound="none",
                        radius=1.0):
    """A float64 memory with data-dependent gates and second layers that matter (also the read-order
    tests' memory); by default it reads after the write, as the hand loop here does."""
    torch.manual_seed(seed)
    mem = SelfModifyingMemory(d, heads=heads, hidden=hidden, chunk_size=chunk, eta_max=eta_max,
                              read_order=read_order, bound=bound, radius=radius).double()
    with torch.no_grad():   # make the gates data-dependent and the second layers matter
        mem.eta_readout.normal_()
        mem.alpha_readout.normal_()
        mem.eta_bias.fill_(0.0)
        mem.alpha_bias.fill_(1.0)
        mem.init_weights[1].mul_(8.0)
    return mem


@pytest.mark.parametrize("bound", ["none", "bounded"])
@pytest.mark.parametrize("chunk", [1, 3])
def test_self_modifying_matches_hand_loop(chunk, bound):
    B, H, T, d = 2, 2, 5, 3
    mem = make_self_modifying(chunk, d=d, heads=H, bound=bound)
    q, xk, xv = rand(B, H, T, d, seed=1), rand(B, H, T, d, seed=2), rand(B, H, T, d, seed=3)
    y = mem(q, xk, xv)
    y_hand, finals, etas, alphas = hand_self_modifying(mem, q, xk, xv, chunk)
    torch.testing.assert_close(y, y_hand, rtol=1e-9, atol=1e-11)
    _, _, extras = mem.scan(mem.initial_state(B), q, xk, xv)
    torch.testing.assert_close(extras["eta"], etas, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(extras["alpha"], alphas, rtol=1e-10, atol=1e-12)
    assert etas.std() > 1e-3 and alphas.std() > 1e-3          # the gates really vary
    state = mem.state()
    for (b, h), (W2, W1) in finals.items():
        for m, name in enumerate(MEMORIES):
            torch.testing.assert_close(state[f"{name}.W2"][b, h], W2[m], rtol=1e-9, atol=1e-11)
            torch.testing.assert_close(state[f"{name}.W1"][b, h], W1[m], rtol=1e-9, atol=1e-11)
    if bound == "bounded":                                      # the ball really bound: a wide one differs
        wide = make_self_modifying(chunk, d=d, heads=H, bound=bound, radius=1e9)
        assert (wide(q, xk, xv) - y).abs().max() > 1e-3


def test_bounded_memory_stays_finite_on_a_run_of_identical_tokens():
    """256 copies of one token at a large inner rate: a chunk of 8 takes eight steps at once in one
    direction. Unbounded, the memory overflows; bounded, its state stays in the ball."""
    x = torch.randn(1, 2, 1, 8, generator=torch.Generator().manual_seed(0)).expand(1, 2, 256, 8)
    outputs = {}
    for bound in ("none", "bounded"):
        torch.manual_seed(0)
        mem = SelfModifyingMemory(8, heads=2, hidden=8, chunk_size=8, eta_max=0.5, bound=bound)
        with torch.no_grad():
            mem.eta_bias.fill_(0.0)                             # η = η_max / 2 at the start
        outputs[bound] = mem(x, x, x).detach()
        if bound == "bounded":
            norms = torch.stack([w.flatten(-2).norm(dim=-1) for w in mem.state().values()])
            assert norms.max() <= mem.radius * (1 + 1e-6)
    assert not torch.isfinite(outputs["none"]).all()
    assert torch.isfinite(outputs["bounded"]).all()


def test_self_modifying_chunked_differs_from_exact():
    B, H, T, d = 1, 2, 8, 3
    q, x = rand(B, H, T, d, seed=5), rand(B, H, T, d, seed=6)
    exact = make_self_modifying(1, d=d, heads=H)(q, x, x)
    chunked = make_self_modifying(4, d=d, heads=H)(q, x, x)
    torch.testing.assert_close(chunked[:, :, 0], exact[:, :, 0])   # first token: same state
    assert (chunked - exact).abs().max() > 1e-6


@pytest.mark.parametrize("chunk", [1, 3])
def test_self_modifying_is_causal(chunk):
    B, H, T, d = 2, 2, 8, 3
    mem = make_self_modifying(chunk, d=d, heads=H)
    q, xk, xv = rand(B, H, T, d, seed=7), rand(B, H, T, d, seed=8), rand(B, H, T, d, seed=9)
    y = mem(q, xk, xv)
    for t in (0, 2, 3, 6):
        q2, xk2, xv2 = q.clone(), xk.clone(), xv.clone()
        for i, x in enumerate((q2, xk2, xv2)):
            x[:, :, t + 1:] = rand(*x[:, :, t + 1:].shape, seed=50 + 3 * t + i)
        y2 = mem(q2, xk2, xv2)
        torch.testing.assert_close(y2[:, :, :t + 1], y[:, :, :t + 1], rtol=0, atol=1e-12)
        assert (y2[:, :, t + 1:] - y[:, :, t + 1:]).abs().max() > 1e-6


def test_self_modifying_state_keys_and_shapes():
    B, H, d, hidden = 2, 3, 4, 5
    mem = SelfModifyingMemory(d, heads=H, hidden=hidden)
    with pytest.raises(RuntimeError):
        mem.state()
    mem.reset(B)
    state = mem.state()
    assert set(state) == {f"{m}.W{l}" for m in ("key", "value", "eta", "alpha", "memory") for l in (1, 2)}
    for m in MEMORIES:
        assert state[f"{m}.W2"].shape == (B, H, hidden, d)
        assert state[f"{m}.W1"].shape == (B, H, d, hidden)
    # the reset state is the learned initial state, memory by memory
    torch.testing.assert_close(state["alpha.W2"][1], mem.init_weights[0][3].detach())
    torch.testing.assert_close(state["memory.W1"][0], mem.init_weights[1][4].detach())


def test_self_modifying_write_then_read():
    B, H, T, d = 1, 2, 4, 3
    mem = make_self_modifying(1, d=d, heads=H)
    q, xk, xv = rand(B, H, T, d, seed=11), rand(B, H, T, d, seed=12), rand(B, H, T, d, seed=13)
    mem.reset(B)
    mem.write(xk, xv)
    _, finals, _, _ = hand_self_modifying(mem, q, xk, xv, 1)
    read = mem.read(q)
    for (b, h), (W2, W1) in finals.items():
        for t in range(T):
            expected = res_mlp(W2[4], W1[4], F.normalize(q[b, h, t], dim=0))
            torch.testing.assert_close(read[b, h, t], expected, rtol=1e-9, atol=1e-11)


def test_self_modifying_rejects_bad_arguments():
    with pytest.raises(ValueError):
        SelfModifyingMemory(4, chunk_size=0)
    with pytest.raises(ValueError):
        SelfModifyingMemory(4, eta_max=0.0)
    with pytest.raises(ValueError):
        SelfModifyingMemory(4, eta_max=2.5)
    with pytest.raises(ValueError, match="bound"):
        SelfModifyingMemory(4, bound="unit")
    with pytest.raises(ValueError, match="radius"):
        SelfModifyingMemory(4, bound="bounded", radius=0.0)
    mem = SelfModifyingMemory(4, heads=2)
    x = torch.randn(1, 2, 3, 5)
    with pytest.raises(ValueError, match="shape"):
        mem(x, x, x)
    with pytest.raises(ValueError):
        mem.reset(1, heads=1)
