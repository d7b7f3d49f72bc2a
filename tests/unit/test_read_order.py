"""HOPE's read order (REFERENCE.md §4, "Read order"): o_t = M_{t−1}(q_t), read then write.

The reference below is a loop over batch, head and token written from §4's equations, not from
the docstrings of lab.memory.self_modifying:

    k_t = M_k(x_t),  v_t = M_v(x_t),  η_t = M_η(x_t),  α_t = M_α(x_t)        (scalar gates read out)
    v̂_□ = M_□(v_t)                                                          self-referential targets
    M_□ ← M_□ (α_t I − η_t k kᵀ) − η_t ∇L(M_□; k_t, v̂_□),   L = ‖M(k) − v‖²
                                                    (per layer, with that layer's input for k)
    o_t = M_memory(q_t) read BEFORE the token's write

with the lab's stated choices: each memory is M(x) = x + W_1 σ(W_2 x); q, k and the inputs x are
ℓ2-normalised; the target v̂ is held fixed in ∇L. chunk = 1 is the exact recurrence; chunk > 1
is the lab's documented approximation (everything of a chunk at its chunk-start state, the read
at the state after the writes of the chunk's earlier tokens). float64 throughout.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lab.config import ConfigError
from lab.memory.fast_weights import FastWeights, scan_chunks, scan_tokens
from lab.memory.self_modifying import MEMORIES, SelfModifyingMemory
from lab.models import build_model
from lab.models.hope import HopeConfig
from tests.unit.test_self_modifying_memory import make_self_modifying

torch.set_num_threads(1)
D = torch.float64
ORDERS = ("before_write", "after_write")


def rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=D)


def make_memory(chunk, read_order="before_write"):
    return make_self_modifying(chunk, read_order=read_order)


def M(W2, W1, x):
    """M(x) = x + W_1 σ(W_2 x), σ = SiLU; x: (d,)."""
    return x + W1 @ F.silu(W2 @ x)


def paper_loop(mem, q, xk, xv, chunk):
    """o_t = M_{t−1}(q_t) token by token. q, xk, xv: (B, H, T, d). Returns o (B, H, T, d) and the
    final (W2, W1) of each memory per (b, h)."""
    W2_init, W1_init = (w.detach() for w in mem.init_weights)       # (5, H, hidden, d), (5, H, d, hidden)
    B, H, T, d = q.shape
    o = torch.zeros(B, H, T, d, dtype=D)
    finals = {}
    for b in range(B):
        for h in range(H):
            W = {m: [W2_init[i, h].clone(), W1_init[i, h].clone()] for i, m in enumerate(MEMORIES)}
            for t in range(T):
                if t % chunk == 0:                                    # the chunk-start state
                    S = {m: [w.clone() for w in W[m]] for m in MEMORIES}
                # read, then write: the memory as the previous tokens left it
                o[b, h, t] = M(*W["memory"], F.normalize(q[b, h, t], dim=0))
                x_k, x_v = F.normalize(xk[b, h, t], dim=0), F.normalize(xv[b, h, t], dim=0)
                k = F.normalize(M(*S["key"], x_k), dim=0)
                v = M(*S["value"], x_v)
                eta = mem.eta_max * torch.sigmoid(mem.eta_readout[h].detach() @ M(*S["eta"], x_k)
                                                  + mem.eta_bias[h].detach())
                alpha = torch.sigmoid(mem.alpha_readout[h].detach() @ M(*S["alpha"], x_k)
                                      + mem.alpha_bias[h].detach())
                for m in MEMORIES:
                    W2, W1 = S[m]
                    target = M(W2, W1, v)                             # v̂_□ = M_□(v_t), held fixed
                    A2, A1 = W2.clone().requires_grad_(), W1.clone().requires_grad_()
                    loss = (M(A2, A1, k) - target).pow(2).sum()       # L = ‖M(k) − v̂‖²
                    grads = torch.autograd.grad(loss, (A2, A1))
                    layer_inputs = (k, F.silu(W2 @ k))                # W_2 reads k, W_1 reads σ(W_2 k)
                    for l, (g, x_in) in enumerate(zip(grads, layer_inputs)):
                        if chunk == 1:                                # W ← W (α I − η in inᵀ) − η ∇L
                            eye = torch.eye(x_in.shape[0], dtype=D)
                            W[m][l] = W[m][l] @ (alpha * eye - eta * torch.outer(x_in, x_in)) - eta * g
                        else:                                         # W in at the chunk-start W
                            W[m][l] = alpha * W[m][l] - eta * torch.outer(S[m][l] @ x_in, x_in) - eta * g
            finals[b, h] = W
    return o, finals


def inputs(B=2, H=2, T=7, d=3, seed=1):
    return rand(B, H, T, d, seed=seed), rand(B, H, T, d, seed=seed + 1), rand(B, H, T, d, seed=seed + 2)


@pytest.mark.parametrize("chunk", [1, 3])
def test_before_write_matches_the_paper_loop(chunk):
    mem = make_memory(chunk)
    q, xk, xv = inputs()
    with torch.no_grad():
        o = mem(q, xk, xv)
    o_hand, finals = paper_loop(mem, q, xk, xv, chunk)
    torch.testing.assert_close(o, o_hand, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(o, o_hand, rtol=1e-9, atol=1e-10)      # and in fact to float64 rounding
    state = mem.state()
    for (b, h), W in finals.items():
        for m in MEMORIES:
            torch.testing.assert_close(state[f"{m}.W2"][b, h], W[m][0], rtol=1e-9, atol=1e-10)
            torch.testing.assert_close(state[f"{m}.W1"][b, h], W[m][1], rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("chunk", [1, 3])
def test_the_two_orders_differ_and_write_the_same_state(chunk):
    q, xk, xv = inputs()
    before, after = make_memory(chunk, "before_write"), make_memory(chunk, "after_write")
    with torch.no_grad():
        o_before, o_after = before(q, xk, xv), after(q, xk, xv)
    assert (o_before - o_after).abs().amax(dim=(0, 1, 3)).min() > 1e-3   # at every token
    for name, w in before.state().items():                                # the writes are the same
        torch.testing.assert_close(w, after.state()[name], rtol=0, atol=0)


@pytest.mark.parametrize("chunk", [1, 3])
def test_before_write_is_after_write_one_token_later(chunk):
    """M_{t−1}(q_t) is what after_write reads at t−1 when given q_t there: o[t] = y(q shifted)[t−1]."""
    q, xk, xv = inputs(T=8)
    q_next = torch.cat([q[:, :, 1:], q[:, :, :1]], dim=2)                 # q_next[t] = q[t + 1]
    with torch.no_grad():
        o = make_memory(chunk, "before_write")(q, xk, xv)
        y = make_memory(chunk, "after_write")(q_next, xk, xv)
    torch.testing.assert_close(o[:, :, 1:], y[:, :, :-1], rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("chunk", [1, 3])
def test_first_output_is_the_initial_memory_read(chunk):
    q, xk, xv = inputs()
    mem = make_memory(chunk, "before_write")
    with torch.no_grad():
        o = mem(q, xk, xv)
        mem.reset(q.shape[0])                                            # the learned initial state
        initial = mem.read(q[:, :, :1])
    torch.testing.assert_close(o[:, :, :1], initial, rtol=1e-12, atol=1e-12)
    after = make_memory(chunk, "after_write")
    with torch.no_grad():
        assert (after(q, xk, xv)[:, :, :1] - initial).abs().max() > 1e-3  # after_write has written token 0


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("chunk", [1, 3])
def test_causality(order, chunk):
    """A change at token t never changes an output before t. A change of what token t writes
    (x_t for the key/value memories, q_t fixed) changes o_t only with after_write; a change of
    q_t changes o_t and nothing else before the next write."""
    q, xk, xv = inputs(T=8)
    mem = make_memory(chunk, order)
    with torch.no_grad():
        o = mem(q, xk, xv)
        for t in (0, 2, 3, 6):
            xk2, xv2 = xk.clone(), xv.clone()
            xk2[:, :, t], xv2[:, :, t] = rand(2, 2, 3, seed=90 + t), rand(2, 2, 3, seed=70 + t)
            o2 = mem(q, xk2, xv2)                                           # what token t writes changed
            torch.testing.assert_close(o2[:, :, :t], o[:, :, :t], rtol=0, atol=0)
            changed_at_t = (o2[:, :, t] - o[:, :, t]).abs().max()
            if order == "before_write":
                torch.testing.assert_close(o2[:, :, t], o[:, :, t], rtol=0, atol=0)
            else:
                assert changed_at_t > 1e-6
            assert (o2[:, :, t + 1:] - o[:, :, t + 1:]).abs().max() > 1e-6

            q2 = q.clone()
            q2[:, :, t] = rand(2, 2, 3, seed=30 + t)                        # only the query of token t
            o3 = mem(q2, xk, xv)
            assert (o3[:, :, t] - o[:, :, t]).abs().max() > 1e-6
            others = torch.ones(o.shape[2], dtype=torch.bool)
            others[t] = False
            torch.testing.assert_close(o3[:, :, others], o[:, :, others], rtol=0, atol=0)


@pytest.mark.parametrize("chunk", [1, 4])
def test_scan_chunks_before_write_with_momentum(chunk):
    """The shared engine (Titans' rule with momentum, no residual): scan_chunks reading before the
    write is scan_chunks reading after it one token earlier, and its first read is M_0(q_0);
    with chunk 1 it is scan_tokens."""
    B, H, T, d = 2, 2, 9, 3
    k, v, q = rand(B, H, T, d, seed=3), rand(B, H, T, d, seed=4), rand(B, H, T, d, seed=5)
    g = torch.Generator().manual_seed(6)
    theta, ret, eta = (0.05 + 0.9 * torch.rand(B, H, T, generator=g, dtype=D) for _ in range(3))
    ws = [rand(H, 4, d, seed=7).expand(B, -1, -1, -1), rand(H, d, 4, seed=8).expand(B, -1, -1, -1)]
    state = FastWeights(ws, [torch.zeros_like(w) for w in ws])
    q_next = torch.cat([q[:, :, 1:], q[:, :, :1]], dim=2)
    o, s_b, _, _ = scan_chunks(state, k, v, q, theta, ret, eta, chunk_size=chunk, read_order="before_write")
    y, s_a, _, _ = scan_chunks(state, k, v, q_next, theta, ret, eta, chunk_size=chunk)
    torch.testing.assert_close(o[:, :, 1:], y[:, :, :-1], rtol=1e-9, atol=1e-10)
    first = F.silu(q[:, :, :1] @ ws[0].transpose(-1, -2)) @ ws[1].transpose(-1, -2)
    torch.testing.assert_close(o[:, :, :1], first, rtol=1e-12, atol=1e-12)
    for a, b in zip(s_b.weights + s_b.momentum, s_a.weights + s_a.momentum):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    if chunk == 1:
        o_tok, _, _, _ = scan_tokens(state, k, v, q, theta, ret, eta, read_order="before_write")
        torch.testing.assert_close(o, o_tok, rtol=1e-9, atol=1e-10)


def test_read_order_is_checked():
    with pytest.raises(ValueError, match="read_order"):
        SelfModifyingMemory(4, read_order="during_write")
    x = torch.zeros(1, 1, 2, 3)
    with pytest.raises(ValueError, match="read_order"):
        scan_tokens(FastWeights([torch.zeros(1, 1, 3, 3)]), x, x, x, x[..., 0], x[..., 0], read_order="bogus")
    with pytest.raises(ConfigError, match="memory_read"):
        HopeConfig(memory_read="bogus")


def test_hope_passes_its_read_order_to_the_memory():
    V = 20
    assert HopeConfig().memory_read in ORDERS
    models = {}
    for order in ORDERS:
        torch.manual_seed(3)
        models[order] = build_model("hope", preset="tiny", vocab_size=V, memory_read=order).eval()
        assert all(block.titans.memory.read_order == order for block in models[order].blocks)
    models["after_write"].load_state_dict(models["before_write"].state_dict())
    tokens = torch.randint(0, V, (2, 12), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a, b = (models[o](tokens) for o in ORDERS)
    assert (a - b).abs().max() > 1e-6
