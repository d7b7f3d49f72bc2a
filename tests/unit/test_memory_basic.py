"""The equivalences of REFERENCE.md §1, checked numerically, plus shapes, causality, errors."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lab.memory.base import AssociativeMemory
from lab.memory.delta import DeltaRuleMemory
from lab.memory.hebbian import HebbianMemory
from lab.memory.softmax import SoftmaxAttentionMemory

D = torch.float64


def rand(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=D)


def qkv(B=2, H=3, T=7, dk=4, dv=5, seed=0):
    return rand(B, H, T, dk, seed=seed), rand(B, H, T, dk, seed=seed + 1), rand(B, H, T, dv, seed=seed + 2)


def gate(B, H, T, lo, hi, seed=9):
    g = torch.Generator().manual_seed(seed)
    return lo + (hi - lo) * torch.rand(B, H, T, generator=g, dtype=D)


# --- 1. softmax attention is the closed-form minimiser of its weighted regression ---------
@pytest.mark.parametrize("window", [None, 3])
def test_softmax_read_is_minimiser_of_regression(window):
    q, k, v = qkv(T=6)
    mem = SoftmaxAttentionMemory(window=window)
    mem.write(k, v)
    m_star = mem.closed_form_minimiser(q)
    torch.testing.assert_close(mem.read(q), m_star)
    # explicit Nadaraya-Watson sum as a third, independent computation
    kk, vv = (k, v) if window is None else (k[:, :, -window:], v[:, :, -window:])
    s = (q @ kk.transpose(-1, -2) / 2.0).exp()                       # scale 1/sqrt(4)
    torch.testing.assert_close(m_star, (s @ vv) / s.sum(-1, keepdim=True))

    m = m_star.clone().requires_grad_(True)
    obj = mem.regression_objective(q, m)
    assert obj.shape == (2, 3, 6)
    (grad,) = torch.autograd.grad(obj.sum(), m)
    assert grad.abs().max() < 1e-9 * obj.detach().abs().max()
    for seed in range(3):
        bumped = mem.regression_objective(q, m_star + 1e-2 * rand(*m_star.shape, seed=50 + seed))
        assert (bumped > obj.detach()).all()


# --- 2. parallel forward matches PyTorch's SDPA ---------------------------------------------
def test_softmax_forward_matches_sdpa_causal():
    q, k, v = qkv(T=9)
    y = SoftmaxAttentionMemory()(q, k, v)
    torch.testing.assert_close(y, F.scaled_dot_product_attention(q, k, v, is_causal=True))


@pytest.mark.parametrize("window", [1, 3, 20])
def test_softmax_sliding_window_matches_sdpa_banded(window):
    q, k, v = qkv(T=9)
    t = torch.arange(9)
    band = (t[None, :] <= t[:, None]) & (t[None, :] > t[:, None] - window)
    y = SoftmaxAttentionMemory(window=window)(q, k, v)
    torch.testing.assert_close(y, F.scaled_dot_product_attention(q, k, v, attn_mask=band))


def test_softmax_custom_scale_matches_sdpa():
    q, k, v = qkv(T=5)
    y = SoftmaxAttentionMemory(scale=0.3)(q, k, v)
    torch.testing.assert_close(y, F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=0.3))


# --- 3. a delta-rule write is one autograd GD step on ½‖Mk − v‖² ---------------------------
@pytest.mark.parametrize("per_token", [False, True])
def test_delta_write_is_one_gd_step(per_token):
    B, H, dk, dv = 2, 3, 4, 5
    M0 = rand(B, H, dv, dk, seed=3)
    k, v = rand(B, H, 1, dk, seed=4), rand(B, H, 1, dv, seed=5)
    beta = gate(B, H, 1, 0.1, 1.5) if per_token else None
    lr = beta[..., 0, None, None] if per_token else 0.7

    M = M0.clone().requires_grad_(True)
    loss = 0.5 * (torch.einsum("bhvk,bhk->bhv", M, k[:, :, 0]) - v[:, :, 0]).pow(2).sum()
    (grad,) = torch.autograd.grad(loss, M)

    mem = DeltaRuleMemory(beta=0.7)
    mem.load_state({"M": M0.clone()})
    torch.testing.assert_close(mem.inner_loss(k, v).sum(), loss.detach())
    mem.write(k, v, beta=beta)
    torch.testing.assert_close(mem.state()["M"], M0 - lr * grad)
    # and the printed form M(I − β k kᵀ) + β v kᵀ
    kc, vc = k[:, :, 0, :, None], v[:, :, 0, :, None]
    eye = torch.eye(dk, dtype=D)
    torch.testing.assert_close(mem.M, M0 @ (eye - lr * kc @ kc.transpose(-1, -2)) + lr * vc @ kc.transpose(-1, -2))


def test_delta_multi_token_write_is_sequence_of_steps():
    B, H, T, dk, dv = 1, 2, 4, 3, 3
    M0, k, v = rand(B, H, dv, dk, seed=1), rand(B, H, T, dk, seed=2), rand(B, H, T, dv, seed=3)
    mem = DeltaRuleMemory(beta=0.4)
    mem.load_state({"M": M0})
    mem.write(k, v)
    M = M0
    for t in range(T):
        Mg = M.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(0.5 * (torch.einsum("bhvk,bhk->bhv", Mg, k[:, :, t]) - v[:, :, t]).pow(2).sum(), Mg)
        M = M - 0.4 * g
    torch.testing.assert_close(mem.M, M)


# --- 4. a Hebbian write is one GD step (rate 1) on −⟨Mk, v⟩; with decay α: αM − ∇ -----------
@pytest.mark.parametrize("alpha", [1.0, 0.8])
def test_hebbian_write_is_one_gd_step(alpha):
    B, H, dk, dv = 2, 3, 4, 5
    M0 = rand(B, H, dv, dk, seed=6)
    k, v = rand(B, H, 1, dk, seed=7), rand(B, H, 1, dv, seed=8)
    M = M0.clone().requires_grad_(True)
    loss = -(torch.einsum("bhvk,bhk->bhv", M, k[:, :, 0]) * v[:, :, 0]).sum()
    (grad,) = torch.autograd.grad(loss, M)

    mem = HebbianMemory(decay=alpha)
    mem.load_state({"M": M0.clone()})
    torch.testing.assert_close(mem.inner_loss(k, v).sum(), loss.detach())
    mem.write(k, v)
    torch.testing.assert_close(mem.M, alpha * M0 - grad)
    # the same step from a per-token gate overrides the constructor's decay
    mem2 = HebbianMemory(decay=1.0)
    mem2.load_state({"M": M0.clone()})
    mem2.write(k, v, decay=torch.full((B, H, 1), alpha, dtype=D))
    torch.testing.assert_close(mem2.M, alpha * M0 - grad)


# --- 5. parallel forward == the generic token-by-token loop --------------------------------
CASES = [
    (lambda: SoftmaxAttentionMemory(), {}),
    (lambda: SoftmaxAttentionMemory(window=3), {}),
    (lambda: HebbianMemory(), {}),
    (lambda: HebbianMemory(decay=0.9, feature_map="elu1"), {}),
    (lambda: HebbianMemory(), {"decay": gate(2, 3, 7, 0.05, 1.0)}),
    (lambda: HebbianMemory(feature_map="elu1"), {"decay": gate(2, 3, 7, 0.5, 1.0)}),
    (lambda: DeltaRuleMemory(), {}),
    (lambda: DeltaRuleMemory(), {"beta": gate(2, 3, 7, 0.1, 1.9)}),
]
IDS = ["softmax", "softmax-window", "hebbian", "hebbian-decay-elu1", "hebbian-gate",
       "hebbian-gate-elu1", "delta", "delta-gate"]


@pytest.mark.parametrize("make,gates", CASES, ids=IDS)
def test_parallel_forward_matches_generic_loop(make, gates):
    q, k, v = qkv()
    fast, slow = make(), make()
    y_fast = fast(q, k, v, **gates)
    y_slow = AssociativeMemory.forward(slow, q, k, v, **gates)
    assert y_fast.shape == (2, 3, 7, 5)
    torch.testing.assert_close(y_fast, y_slow)
    for name, tensor in fast.state().items():   # the state left behind agrees too
        torch.testing.assert_close(tensor, slow.state()[name], msg=name)


# --- 6. causality ---------------------------------------------------------------------------
@pytest.mark.parametrize("make,gates", CASES, ids=IDS)
def test_forward_is_causal(make, gates):
    q, k, v = qkv()
    y = make()(q, k, v, **gates)
    for t in range(7):
        q2, k2, v2 = q.clone(), k.clone(), v.clone()
        for x in (q2, k2, v2):
            x[:, :, t + 1:] += 10 * rand(*x[:, :, t + 1:].shape, seed=t)
        gates2 = {n: g.clone() for n, g in gates.items()}
        for g in gates2.values():
            g[:, :, t + 1:] = g[:, :, t + 1:].flip(-1)   # stays inside the allowed range
        y2 = make()(q2, k2, v2, **gates2)
        torch.testing.assert_close(y2[:, :, :t + 1], y[:, :, :t + 1])
        if t < 6:
            assert not torch.allclose(y2[:, :, t + 1:], y[:, :, t + 1:])


# --- 7. shapes, reset, errors --------------------------------------------------------------
@pytest.mark.parametrize("make", [SoftmaxAttentionMemory, HebbianMemory, DeltaRuleMemory])
@pytest.mark.parametrize("B,H", [(1, 1), (3, 2)])
def test_shapes_and_reset(make, B, H):
    mem = make()
    mem.reset(B, H, 4, 6, dtype=D)
    k, v, q = rand(B, H, 5, 4), rand(B, H, 5, 6, seed=1), rand(B, H, 2, 4, seed=2)
    mem.write(k, v)
    assert mem.read(q).shape == (B, H, 2, 6)
    assert mem.inner_loss(k, v).shape == (B, H, 5)
    assert mem.read(q).abs().sum() > 0
    mem.reset(B, H, 4, 6, dtype=D)
    assert torch.equal(mem.read(q), torch.zeros(B, H, 2, 6, dtype=D))
    if make is SoftmaxAttentionMemory:
        assert mem.state()["keys"].shape == (B, H, 0, 4)
        assert mem.attention_weights(q).shape == (B, H, 2, 0)
        mem.write(k, v)
        assert mem.attention_weights(q).shape == (B, H, 2, 5)
    else:
        assert mem.state()["M"].shape == (B, H, 6, 4) and not mem.state()["M"].any()


def test_softmax_window_keeps_last_pairs():
    mem = SoftmaxAttentionMemory(window=2)
    k, v = rand(1, 1, 5, 3), rand(1, 1, 5, 3, seed=1)
    mem.write(k[:, :, :3], v[:, :, :3])
    mem.write(k[:, :, 3:], v[:, :, 3:])
    torch.testing.assert_close(mem.state()["keys"], k[:, :, 3:])


def test_gradients_reach_inputs():
    q, k, v = (x.requires_grad_(True) for x in qkv(T=4))
    for mem, gates in [(SoftmaxAttentionMemory(), {}), (HebbianMemory(), {"decay": gate(2, 3, 4, 0.5, 1.0)}),
                       (DeltaRuleMemory(), {})]:
        grads = torch.autograd.grad(mem(q, k, v, **gates).sum(), (q, k, v))
        assert all(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("make,arg,bad,allowed", [
    (HebbianMemory, "decay", 0.0, "(0, 1]"), (HebbianMemory, "decay", 1.5, "(0, 1]"),
    (HebbianMemory, "feature_map", "relu", "identity, elu1"),
    (DeltaRuleMemory, "beta", 0.0, "(0, 2)"), (DeltaRuleMemory, "beta", 2.0, "(0, 2)"),
    (SoftmaxAttentionMemory, "window", 0, "at least 1"), (SoftmaxAttentionMemory, "scale", -1.0, "> 0"),
])
def test_bad_constructor_args(make, arg, bad, allowed):
    with pytest.raises(ValueError, match=arg) as err:
        make(**{arg: bad})
    assert allowed in str(err.value)


@pytest.mark.parametrize("make,name,lo,hi,allowed", [
    (HebbianMemory, "decay", 0.0, 1.0, "(0, 1]"), (HebbianMemory, "decay", 0.5, 1.2, "(0, 1]"),
    (DeltaRuleMemory, "beta", 0.0, 1.0, "(0, 2)"), (DeltaRuleMemory, "beta", 1.0, 2.0, "(0, 2)"),
])
def test_bad_gates(make, name, lo, hi, allowed):
    q, k, v = qkv(T=4)
    bad = torch.linspace(lo, hi, 4, dtype=D).expand(2, 3, 4)
    with pytest.raises(ValueError, match=name) as err:
        make()(q, k, v, **{name: bad})
    assert allowed in str(err.value)
    with pytest.raises(ValueError, match=rf"{name} gate must have shape \(B, H, N\)"):
        make().write(k, v, **{name: torch.full((2, 3), 0.5, dtype=D)})


@pytest.mark.parametrize("make", [SoftmaxAttentionMemory, HebbianMemory, DeltaRuleMemory])
def test_mismatched_shapes(make):
    q, k, v = qkv(T=4)
    with pytest.raises(ValueError, match="k"):
        make().write(k, v[:, :, :3])                     # N differs
    with pytest.raises(ValueError, match="4-d|k"):
        make().write(k[0], v[0])                         # missing batch dim
    mem = make()
    mem.write(k, v)
    with pytest.raises(ValueError, match="q must have shape"):
        mem.read(q[..., :3])                             # wrong d_key
    with pytest.raises(ValueError, match="must"):
        mem.write(k[:1], v[:1])                          # batch differs from the memory
    with pytest.raises(ValueError, match="q must have"):
        make()(q[:, :, :3], k, v)                        # q and k lengths differ
    with pytest.raises(RuntimeError, match="reset"):
        make().read(q)


def test_softmax_rejects_gates():
    q, k, v = qkv(T=3)
    with pytest.raises(ValueError, match="no gates"):
        SoftmaxAttentionMemory().write(k, v, decay=torch.ones(2, 3, 3))
