"""Fast-weight memories against equations written out by hand (REFERENCE.md §2 and §4).

lab.memory.fast_weights (token_grads, scan_tokens, scan_chunks), lab.memory.neural (Titans'
NeuralMemory) and lab.memory.self_modifying (HOPE's self-modifying memory). Every reference
here is an independent loop over batch, head and token, in float64; gradients come from autograd.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lab.memory.fast_weights import FastWeights, scan_chunks, scan_tokens, token_grads
from lab.memory.neural import NeuralMemory
from lab.memory.self_modifying import SelfModifyingMemory

torch.set_num_threads(1)
D = torch.float64


def rand(*shape, seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return scale * torch.randn(*shape, generator=g, dtype=D)


def unif(*shape, lo=0.05, hi=0.95, seed=0):
    g = torch.Generator().manual_seed(seed)
    return lo + (hi - lo) * torch.rand(*shape, generator=g, dtype=D)


def silu(x):
    return x * torch.sigmoid(x)


def mlp(ws, x, residual):
    """Independent M(x) for one vector x and a list of matrices (out, in). Returns output and layer inputs."""
    h, ins = x, []
    for l, w in enumerate(ws):
        ins.append(h)
        h = w @ h
        if l < len(ws) - 1:
            h = silu(h)
    return (x + h if residual else h), ins


# =============================================================================================
# Titans neural memory, §2
# =============================================================================================

def hand_titans_linear(W0, k, v, q, theta, eta, alpha, momentum=True):
    """S_t = η_t S_{t−1} − θ_t 2(M k − v)kᵀ,  M_t = (1−α_t) M_{t−1} + S_t,  y_t = M_t q_t."""
    B, H, T, _ = k.shape
    ys = torch.zeros(B, H, T, W0.shape[1], dtype=D)
    Ms, Ss = torch.zeros(B, H, *W0.shape[1:], dtype=D), torch.zeros(B, H, *W0.shape[1:], dtype=D)
    for b in range(B):
        for h in range(H):
            M = W0[h].clone()
            S = torch.zeros_like(M)
            for t in range(T):
                kt, vt = k[b, h, t], v[b, h, t]
                grad = 2 * torch.outer(M @ kt - vt, kt)
                S = (eta[b, h, t] * S if momentum else 0.0) - theta[b, h, t] * grad
                M = (1 - alpha[b, h, t]) * M + S
                ys[b, h, t] = M @ q[b, h, t]
            Ms[b, h], Ss[b, h] = M, S
    return ys, Ms, Ss


def hand_titans_chunked(W0s, k, v, q, theta, eta, alpha, chunk, residual=False, momentum=True):
    """The rule of §2 with every gradient of a chunk taken at the chunk-start memory.

    W0s: list of (H, out, in) initial weights. chunk = 1 is the exact per-token rule.
    Gradients by autograd. Returns y (B, H, T, d_out) and the final weights and momenta per (b, h)."""
    B, H, T, _ = k.shape
    ys = torch.zeros(B, H, T, W0s[-1].shape[1], dtype=D)
    finals = {}
    for b in range(B):
        for h in range(H):
            W = [w[h].clone() for w in W0s]
            S = [torch.zeros_like(w) for w in W]
            for start in range(0, T, chunk):
                start_W = [w.clone() for w in W]
                for t in range(start, min(T, start + chunk)):
                    A = [w.clone().requires_grad_(True) for w in start_W]
                    loss = (mlp(A, k[b, h, t], residual)[0] - v[b, h, t]).pow(2).sum()
                    grads = torch.autograd.grad(loss, A)
                    for l in range(len(W)):
                        u = -theta[b, h, t] * grads[l]
                        S[l] = eta[b, h, t] * S[l] + u if momentum else u
                        W[l] = (1 - alpha[b, h, t]) * W[l] + S[l]
                    ys[b, h, t] = mlp(W, q[b, h, t], residual)[0]
            finals[b, h] = (W, S)
    return ys, finals


def memory_inputs(B=2, H=2, T=7, dk=3, dv=4, seed=0):
    k = F.normalize(rand(B, H, T, dk, seed=seed), dim=-1)      # unit keys and queries, as in Titans:
    v = rand(B, H, T, dv, seed=seed + 1)                        # the inner descent then stays stable
    q = F.normalize(rand(B, H, T, dk, seed=seed + 2), dim=-1)
    gates = dict(theta=unif(B, H, T, lo=0.01, hi=0.3, seed=seed + 3),
                 eta=unif(B, H, T, lo=0.3, hi=0.95, seed=seed + 4),
                 alpha=unif(B, H, T, lo=0.01, hi=0.3, seed=seed + 5))
    return q, k, v, gates


def make_memory(seed=0, **kw):
    torch.manual_seed(seed)
    return NeuralMemory(**kw).double()


@pytest.mark.parametrize("momentum", [True, False])
def test_token_mode_matches_hand_written_equations_linear(momentum):
    q, k, v, gates = memory_inputs()
    mem = make_memory(d_key=3, d_value=4, heads=2, depth=1, mode="token", momentum=momentum)
    y = mem(q, k, v, **gates)
    W0 = mem.init_weights[0].detach()
    y_hand, M_hand, S_hand = hand_titans_linear(W0, k, v, q, gates["theta"], gates["eta"], gates["alpha"],
                                                momentum)
    torch.testing.assert_close(y, y_hand, rtol=1e-10, atol=1e-12)
    state = mem.state()
    torch.testing.assert_close(state["W1"], M_hand, rtol=1e-10, atol=1e-12)
    if momentum:
        assert set(state) == {"W1", "S1"}
        torch.testing.assert_close(state["S1"], S_hand, rtol=1e-10, atol=1e-12)
    else:
        assert set(state) == {"W1"}


def test_token_mode_constant_gates_from_constructor():
    q, k, v, _ = memory_inputs(seed=3)
    mem = make_memory(d_key=3, d_value=4, heads=2, depth=1, mode="token", theta=0.2, eta=0.7, alpha=0.05)
    y = mem(q, k, v)
    shape = k.shape[:3]
    y_hand, _, _ = hand_titans_linear(mem.init_weights[0].detach(), k, v, q, torch.full(shape, 0.2, dtype=D),
                                      torch.full(shape, 0.7, dtype=D), torch.full(shape, 0.05, dtype=D))
    torch.testing.assert_close(y, y_hand, rtol=1e-10, atol=1e-12)


def test_scan_tokens_surprise_and_loss_by_hand():
    """loss_t = ‖M_{t−1}k_t − v_t‖², surprise_t = ‖2(M_{t−1}k_t − v_t)k_tᵀ‖_F, for the linear memory."""
    q, k, v, gates = memory_inputs(seed=5)
    W0 = rand(2, 4, 3, seed=11)
    state = FastWeights([W0.unsqueeze(0).expand(2, -1, -1, -1)], None)
    _, _, surprise, loss = scan_tokens(state, k, v, q, gates["theta"], 1 - gates["alpha"])
    for b in range(2):
        for h in range(2):
            M = W0[h].clone()
            for t in range(k.shape[2]):
                err = M @ k[b, h, t] - v[b, h, t]
                grad = 2 * torch.outer(err, k[b, h, t])
                assert torch.isclose(loss[b, h, t], err.pow(2).sum(), rtol=1e-10)
                assert torch.isclose(surprise[b, h, t], grad.norm(), rtol=1e-10)
                M = (1 - gates["alpha"][b, h, t]) * M - gates["theta"][b, h, t] * grad


@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize("residual", [False, True])
@pytest.mark.parametrize("delta_term", [0.0, 1.0])
def test_token_grads_match_autograd(depth, residual, delta_term):
    B, H, N, d, hidden = 2, 2, 4, 3, 5
    dims = [d] + [hidden] * (depth - 1) + [d]
    ws = [rand(B, H, dims[i + 1], dims[i], seed=20 + i).requires_grad_(True) for i in range(depth)]
    k, v = rand(B, H, N, d, seed=1), rand(B, H, N, d, seed=2)
    g, inputs, loss = token_grads(ws, k, v, residual, delta_term)
    assert len(g) == depth and len(inputs) == depth
    for i in range(N):
        total = 0.0
        per_bh = []
        for b in range(B):
            for h in range(H):
                out, ins = mlp([w[b, h] for w in ws], k[b, h, i], residual)
                li = (out - v[b, h, i]).pow(2).sum()
                assert torch.isclose(loss[b, h, i], li.detach(), rtol=1e-10)
                per_bh.append((b, h, ins))
                total = total + li
        auto = torch.autograd.grad(total, ws)
        for l in range(depth):
            for b, h, ins in per_bh:
                x = ins[l].detach()
                torch.testing.assert_close(inputs[l][b, h, i], x, rtol=1e-10, atol=1e-12)
                expected = auto[l][b, h] + delta_term * torch.outer(ws[l][b, h].detach() @ x, x)
                manual = torch.outer(g[l][b, h, i].detach(), inputs[l][b, h, i].detach())
                torch.testing.assert_close(manual, expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("depth,residual,momentum", [(1, False, True), (2, False, True), (2, True, True),
                                                     (3, False, False), (2, False, False)])
def test_token_mode_deep_memory_matches_hand_recurrence(depth, residual, momentum):
    d = 3
    q, k, v, gates = memory_inputs(dk=d, dv=d, T=6, seed=7)
    mem = make_memory(d_key=d, d_value=d, heads=2, depth=depth, hidden=4, mode="token",
                      momentum=momentum, residual=residual)
    y = mem(q, k, v, **gates)
    W0s = [w.detach() for w in mem.init_weights]
    y_hand, finals = hand_titans_chunked(W0s, k, v, q, gates["theta"], gates["eta"], gates["alpha"], 1,
                                         residual, momentum)
    torch.testing.assert_close(y, y_hand, rtol=1e-9, atol=1e-11)
    state = mem.state()
    for (b, h), (W, S) in finals.items():
        for l in range(depth):
            torch.testing.assert_close(state[f"W{l + 1}"][b, h], W[l], rtol=1e-9, atol=1e-11)
            if momentum:
                torch.testing.assert_close(state[f"S{l + 1}"][b, h], S[l], rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("depth,residual,momentum", [(1, False, True), (2, False, True), (2, True, False),
                                                     (3, True, True)])
def test_chunk_size_one_equals_token_mode(depth, residual, momentum):
    d = 4
    q, k, v, gates = memory_inputs(dk=d, dv=d, T=9, seed=13)
    tok = make_memory(d_key=d, heads=2, depth=depth, mode="token", momentum=momentum, residual=residual)
    chk = make_memory(d_key=d, heads=2, depth=depth, mode="chunk", chunk_size=1, momentum=momentum,
                      residual=residual)
    chk.load_state_dict(tok.state_dict())
    y_tok = tok(q, k, v, **gates)
    assert torch.isfinite(y_tok).all() and y_tok.abs().max() < 1e3
    torch.testing.assert_close(chk(q, k, v, **gates), y_tok, rtol=1e-10, atol=1e-12)
    for name, value in tok.state().items():
        torch.testing.assert_close(chk.state()[name], value, rtol=1e-10, atol=1e-12)


def test_chunk_size_one_gradients_equal_token_mode_gradients():
    """The outer gradient (w.r.t. the learned initial memory and the gates) flows the same way."""
    d = 3
    q, k, v, gates = memory_inputs(dk=d, dv=d, T=5, seed=17)
    grads = []
    for mode in ("token", "chunk"):
        mem = make_memory(d_key=d, heads=2, depth=2, mode=mode, chunk_size=1)
        g = {n: t.clone().requires_grad_(True) for n, t in gates.items()}
        mem(q, k, v, **g).pow(2).sum().backward()
        grads.append([w.grad.clone() for w in mem.init_weights] + [g[n].grad for n in sorted(g)])
    for a, b in zip(*grads):
        assert a.abs().max() > 0
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("chunk", [2, 3, 4, 7, 20])
@pytest.mark.parametrize("depth", [1, 2])
def test_chunk_mode_takes_every_gradient_at_chunk_start(chunk, depth):
    """Chunked mode equals the hand recurrence with stale (chunk-start) gradients, momentum on."""
    d = 3
    q, k, v, gates = memory_inputs(dk=d, dv=d, T=7, seed=19)
    mem = make_memory(d_key=d, heads=2, depth=depth, hidden=5, mode="chunk", chunk_size=chunk)
    y = mem(q, k, v, **gates)
    W0s = [w.detach() for w in mem.init_weights]
    y_hand, finals = hand_titans_chunked(W0s, k, v, q, gates["theta"], gates["eta"], gates["alpha"], chunk)
    torch.testing.assert_close(y, y_hand, rtol=1e-9, atol=1e-11)
    for (b, h), (W, S) in finals.items():
        for l in range(depth):
            torch.testing.assert_close(mem.state()[f"W{l + 1}"][b, h], W[l], rtol=1e-9, atol=1e-11)
            torch.testing.assert_close(mem.state()[f"S{l + 1}"][b, h], S[l], rtol=1e-9, atol=1e-11)


def test_one_chunk_equals_closed_form_all_gradients_at_m0():
    """W_t = (Π_{j≤t} β_j) M_0 − Σ_{i≤t} (Π_{i<j≤t} β_j) θ_i 2(M_0 k_i − v_i) k_iᵀ, y_t = W_t q_t."""
    T = 6
    q, k, v, gates = memory_inputs(T=T, seed=23)
    mem = make_memory(d_key=3, d_value=4, heads=2, depth=1, mode="chunk", chunk_size=T, momentum=False)
    y = mem(q, k, v, **gates)
    M0 = mem.init_weights[0].detach()
    beta = 1 - gates["alpha"]
    theta = gates["theta"]
    expected = torch.zeros_like(y)
    for b in range(2):
        for h in range(2):
            G = [2 * torch.outer(M0[h] @ k[b, h, i] - v[b, h, i], k[b, h, i]) for i in range(T)]
            for t in range(T):
                W = torch.prod(beta[b, h, :t + 1]) * M0[h]
                for i in range(t + 1):
                    W = W - torch.prod(beta[b, h, i + 1:t + 1]) * theta[b, h, i] * G[i]
                expected[b, h, t] = W @ q[b, h, t]
    torch.testing.assert_close(y, expected, rtol=1e-10, atol=1e-12)
    # and a chunk larger than the sequence is the same single chunk
    mem.chunk_size = 50
    torch.testing.assert_close(mem(q, k, v, **gates), expected, rtol=1e-10, atol=1e-12)


def test_mode_difference_reports_the_true_gap():
    d = 3
    q, k, v, gates = memory_inputs(dk=d, dv=d, T=8, seed=29)
    mem = make_memory(d_key=d, heads=2, depth=2, hidden=4, mode="chunk", chunk_size=4)
    W0s = [w.detach() for w in mem.init_weights]
    args = (W0s, k, v, q, gates["theta"], gates["eta"], gates["alpha"])
    y_tok = hand_titans_chunked(*args, 1)[0]
    for chunk_arg, chunk in ((None, 4), (2, 2), (8, 8)):
        report = mem.mode_difference(q, k, v, **gates, chunk_size=chunk_arg)
        assert set(report) == {"chunk_size", "max_abs_diff", "relative"}
        assert report["chunk_size"] == chunk
        y_chunk = hand_titans_chunked(*args, chunk)[0]
        diff = (y_tok - y_chunk).abs().max().item()
        assert diff > 1e-6
        assert report["max_abs_diff"] == pytest.approx(diff, rel=1e-7, abs=1e-12)
        assert report["relative"] == pytest.approx(diff / y_tok.abs().max().item(), rel=1e-7)
        assert mem.chunk_size == 4
    same = mem.mode_difference(q, k, v, **gates, chunk_size=1)
    assert same["max_abs_diff"] < 1e-12 and same["chunk_size"] == 1


@pytest.mark.parametrize("mode", ["token", "chunk"])
def test_neural_memory_is_causal(mode):
    d, T = 3, 10
    q, k, v, gates = memory_inputs(dk=d, dv=d, T=T, seed=31)
    mem = make_memory(d_key=d, heads=2, depth=2, mode=mode, chunk_size=4)
    y = mem(q, k, v, **gates)
    for t in (0, 3, 5, 8):
        q2, k2, v2 = q.clone(), k.clone(), v.clone()
        g2 = {n: g.clone() for n, g in gates.items()}
        for x in (q2, k2, v2):
            x[:, :, t + 1:] = rand(*x[:, :, t + 1:].shape, seed=100 + t)
        for n in g2:
            g2[n][:, :, t + 1:] = 0.5
        y2 = mem(q2, k2, v2, **g2)
        torch.testing.assert_close(y2[:, :, :t + 1], y[:, :, :t + 1], rtol=0, atol=1e-12)
        assert (y2[:, :, t + 1:] - y[:, :, t + 1:]).abs().max() > 1e-6


def test_write_then_read_and_inner_loss():
    d = 3
    q, k, v, gates = memory_inputs(dk=d, dv=d, T=6, seed=37)
    mem = make_memory(d_key=d, heads=2, depth=2, hidden=4, mode="token")
    mem.reset(2)
    mem.write(k[:, :, :2], v[:, :, :2], **{n: g[:, :, :2] for n, g in gates.items()})
    mem.write(k[:, :, 2:], v[:, :, 2:], **{n: g[:, :, 2:] for n, g in gates.items()})
    _, finals = hand_titans_chunked([w.detach() for w in mem.init_weights], k, v, q,
                                    gates["theta"], gates["eta"], gates["alpha"], 1)
    read = mem.read(q)
    loss = mem.inner_loss(k, v)
    for (b, h), (W, _) in finals.items():
        for t in range(6):
            torch.testing.assert_close(read[b, h, t], mlp(W, q[b, h, t], False)[0], rtol=1e-9, atol=1e-11)
            assert torch.isclose(loss[b, h, t], (mlp(W, k[b, h, t], False)[0] - v[b, h, t]).pow(2).sum(),
                                 rtol=1e-9)
    # read does not change the state
    before = {n: t.clone() for n, t in mem.state().items()}
    mem.read(q)
    for n, t in mem.state().items():
        assert torch.equal(t, before[n])


def test_scan_chunks_reads_only_the_last_heads():
    B, H, Hq, T, d = 2, 3, 1, 6, 3
    k, v, q = rand(B, H, T, d, seed=1), rand(B, H, T, d, seed=2), rand(B, H, T, d, seed=3)
    th, ret = unif(B, H, T, seed=4, hi=0.3), unif(B, H, T, seed=5, lo=0.7, hi=0.99)
    ws = [rand(B, H, 4, d, seed=6), rand(B, H, d, 4, seed=7)]
    y_all, st_all, _, _ = scan_chunks(FastWeights(ws), k, v, q, th, ret, chunk_size=3, residual=True)
    y_few, st_few, _, _ = scan_chunks(FastWeights(ws), k, v, q[:, -Hq:], th, ret, chunk_size=3, residual=True)
    torch.testing.assert_close(y_few, y_all[:, -Hq:], rtol=1e-10, atol=1e-12)
    for a, b in zip(st_all.weights, st_few.weights):
        torch.testing.assert_close(a, b)


def test_neural_memory_rejects_bad_arguments():
    for kw in (dict(depth=0), dict(mode="parallel"), dict(chunk_size=0), dict(theta=11.0), dict(eta=1.5),
               dict(alpha=-0.1), dict(d_value=5, residual=True)):
        with pytest.raises(ValueError):
            NeuralMemory(4, **kw)
    mem = NeuralMemory(4, heads=2)
    with pytest.raises(RuntimeError):
        mem.state()
    with pytest.raises(ValueError):
        mem.reset(1, heads=3)
    x = torch.randn(1, 3, 5, 4)
    with pytest.raises(ValueError, match="shape"):
        mem(x, x, x)


# =============================================================================================
# Memories keep no autograd graph alive after a forward pass
# =============================================================================================

@pytest.mark.parametrize("make", [lambda: NeuralMemory(4, heads=1), lambda: SelfModifyingMemory(4)],
                         ids=["neural", "self_modifying"])
def test_memory_is_deep_copyable_after_a_training_forward(make):
    import copy

    mem = make()
    x = torch.randn(1, 1, 5, 4)
    mem(x, x, x).sum().backward()
    clone = copy.deepcopy(mem)
    torch.testing.assert_close(clone(x, x, x), mem(x, x, x))
