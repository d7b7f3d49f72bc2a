"""The exact equivalences of REFERENCE.md §1, computed live, each against an independent computation.

Every check returns a row: name, statement (LaTeX), what is compared with what, the largest
absolute difference, the tolerance, whether the two are expected to be equal, and whether
the measured difference agrees with that expectation. The right-hand sides never call the code
under test: autograd gradients, a least-squares solver, explicit sums of β^k-weighted
gradients, torch's own optimizers. One row is a planned *non*-equivalence (Titans in chunked
mode is not the token-by-token rule), the teaching point of REFERENCE.md §2.

Tolerances: float32 computations on unit-scale data agree to about 1e-6; the tolerance is
1e-5 · max(1, max|rhs|). M3 against torch.optim.Muon is the exception, see `m3_is_muon`.
"""
from __future__ import annotations

import math

import pandas as pd
import torch

from lab.memory import DeltaRuleMemory, HebbianMemory, NeuralMemory, SoftmaxAttentionMemory
from lab.optim.m3 import M3

BF16_UNIT = 2.0 ** -8          # unit roundoff of bfloat16 (8 significant bits)
NS_BF16_FACTOR = 16            # measured ≤ 12 u per Newton–Schulz call on small matrices; 16 u allowed


def _row(name, statement, compared, lhs, rhs, expected_equal=True, tol=None) -> dict:
    diff = float((lhs.double() - rhs.double()).abs().max())
    tol = 1e-5 * max(1.0, float(rhs.abs().max())) if tol is None else tol
    return {"name": name, "statement": statement, "compared": compared, "max_abs_diff": diff, "tolerance": tol,
            "expected_equal": expected_equal, "holds": (diff <= tol) == expected_equal}


def _data(gen, n, d, dv):
    k = torch.randn(1, 1, n, d, generator=gen)
    k = k / k.norm(dim=-1, keepdim=True)                                   # (1, 1, n, d)
    v = torch.randn(1, 1, n, dv, generator=gen)                            # (1, 1, n, dv)
    return k, v


def softmax_closed_form(gen, n=12, d=8, dv=6) -> dict:
    """Attention's read = the weighted least-squares solution, from torch.linalg.lstsq."""
    k, v = _data(gen, n, d, dv)
    q = torch.randn(1, 1, 1, d, generator=gen)
    mem = SoftmaxAttentionMemory()
    mem.write(k, v)
    read = mem.read(q)[0, 0, 0]                                            # (dv,)
    s = torch.exp(q[0, 0] @ k[0, 0].T / math.sqrt(d)).double()[0]          # (n,) weights s(k_i, q)
    A = s.sqrt()[:, None]                                                  # (n, 1): √s_i · m
    B = s.sqrt()[:, None] * v[0, 0].double()                               # (n, dv): √s_i · v_i
    m_star = torch.linalg.lstsq(A, B).solution[0]                          # argmin Σ s_i ‖v_i − m‖²
    return _row("softmax = closed-form regression",
                r"\mathrm{softmax}(qK^\top/\sqrt d)\,V = \arg\min_m \sum_i s(k_i,q)\lVert v_i - m\rVert^2",
                "attention read vs least-squares solver", read, m_star)


def _write_vs_gd_step(gen, memory, inner_loss, lr, d, dv):
    """One write of (k, v) into `memory` from a random M0, and one autograd GD step of rate `lr`
    on `inner_loss(M, k, v)` from the same M0. Returns (written M, M after the GD step)."""
    k, v = _data(gen, 1, d, dv)
    M0 = torch.randn(1, 1, dv, d, generator=gen)
    memory.load_state({"M": M0.clone()})
    memory.write(k, v)
    M = M0.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(inner_loss(M[0, 0], k[0, 0, 0], v[0, 0, 0], M), M)
    return memory.M, M0 - lr * grad


def delta_is_gd(gen, d=8, dv=6, beta=0.7) -> dict:
    written, stepped = _write_vs_gd_step(
        gen, DeltaRuleMemory(beta=beta), lambda m, k, v, M: 0.5 * (m @ k - v).pow(2).sum(), beta, d, dv)
    return _row("delta rule = one GD step", r"M(I-\beta kk^\top)+\beta vk^\top = M - \beta\nabla_M\tfrac12\lVert Mk-v\rVert^2",
                "DeltaRuleMemory.write vs autograd step", written, stepped)


def hebbian_is_gd(gen, d=8, dv=6, decay=0.9) -> dict:
    written, stepped = _write_vs_gd_step(
        gen, HebbianMemory(decay=decay),
        lambda m, k, v, M: -(m @ k * v).sum() + (1 - decay) / 2 * M.pow(2).sum(), 1.0, d, dv)
    return _row("Hebbian = one GD step", r"\alpha M + vk^\top = M - \nabla_M\big(-\langle Mk,v\rangle + \tfrac{1-\alpha}{2}\lVert M\rVert^2\big)",
                "HebbianMemory.write vs autograd step", written, stepped)


def _titans_linear(M0, beta, mode, chunk=1):
    mem = NeuralMemory(M0.shape[-1], M0.shape[-2], heads=1, depth=1, mode=mode, chunk_size=chunk,
                       momentum=False, theta=beta / 2, alpha=0.0)
    with torch.no_grad():
        mem.init_weights[0].copy_(M0[0])
    return mem


@torch.no_grad()
def titans_is_delta(gen, n=10, d=8, dv=6, beta=0.6, chunk=1) -> dict:
    """One-layer Titans, no momentum, no decay, θ = β/2, token by token = DeltaNet on the same pairs.
    With chunk > 1 (gradients at the chunk start) the two differ: expected_equal = False."""
    k, v = _data(gen, n, d, dv)
    M0 = torch.randn(1, 1, dv, d, generator=gen)
    titans = _titans_linear(M0, beta, "token" if chunk == 1 else "chunk", chunk)
    titans.reset(1)
    titans.write(k, v)
    delta = DeltaRuleMemory(beta=beta)
    delta.load_state({"M": M0.clone()})
    delta.write(k, v)
    if chunk == 1:
        return _row("Titans (1 layer) = DeltaNet", r"\theta=\beta/2,\ \eta=0,\ \alpha=0:\ M_t^{\text{Titans}} = M_t^{\text{delta}}",
                    "NeuralMemory (token) vs DeltaRuleMemory", titans.state()["W1"], delta.M)
    return _row(f"Titans chunked (b={chunk}) ≠ per-token", r"\text{gradients at the chunk start} \Rightarrow M_t^{\text{chunk}} \neq M_t^{\text{token}}",
                "NeuralMemory (chunk) vs DeltaRuleMemory", titans.state()["W1"], delta.M, expected_equal=False)


def linear_layer_is_memory(gen, d=8, dout=5, lr=0.1) -> dict:
    """A backprop step on W is the outer product of the local surprise ∇_y L with the input."""
    x = torch.randn(d, generator=gen)
    target = torch.randn(dout, generator=gen)
    W = torch.nn.Parameter(torch.randn(dout, d, generator=gen))
    W0 = W.detach().clone()
    y = W @ x
    loss = torch.nn.functional.smooth_l1_loss(y, target) + y.tanh().sum()
    (g_y,) = torch.autograd.grad(loss, y, retain_graph=True)               # ∇_y L: the value
    loss.backward()
    torch.optim.SGD([W], lr=lr).step()
    return _row("linear layer = memory of (x, ∇_y L)", r"W_{t+1} = W_t - \eta\,\nabla_y L\; x_t^\top",
                "torch SGD step vs outer product", W.detach(), W0 - lr * torch.outer(g_y, x))


def momentum_weights(gen, steps=12, beta=0.9) -> dict:
    grads = [torch.randn(3, 4, generator=gen) for _ in range(steps)]
    p = torch.nn.Parameter(torch.zeros(3, 4))
    opt = torch.optim.SGD([p], lr=0.01, momentum=beta)
    for g in grads:
        p.grad = g.clone()
        opt.step()
    closed = sum(beta ** (steps - 1 - t) * g for t, g in enumerate(grads))
    return _row("momentum = β^k-weighted sum", r"m_t = \sum_{k\ge0} \beta^k g_{t-k}",
                "torch SGD momentum buffer vs explicit sum", opt.state[p]["momentum_buffer"], closed)


def adam_buffers(gen, steps=12, betas=(0.9, 0.99)) -> dict:
    grads = [torch.randn(3, 4, generator=gen) for _ in range(steps)]
    p = torch.nn.Parameter(torch.zeros(3, 4))
    opt = torch.optim.Adam([p], lr=0.01, betas=betas)
    for g in grads:
        p.grad = g.clone()
        opt.step()
    b1, b2 = betas
    m = sum((1 - b1) * b1 ** (steps - 1 - t) * g for t, g in enumerate(grads))
    v = sum((1 - b2) * b2 ** (steps - 1 - t) * g * g for t, g in enumerate(grads))
    st = opt.state[p]
    return _row("Adam = two β-weighted memories", r"m_t = (1-\beta_1)\sum_k \beta_1^k g_{t-k},\ v_t = (1-\beta_2)\sum_k \beta_2^k g_{t-k}^2",
                "torch Adam exp_avg, exp_avg_sq vs explicit sums",
                torch.cat([st["exp_avg"], st["exp_avg_sq"]]), torch.cat([m, v]))


def m3_slow_buffer(gen, steps=23, f=5, b3=0.8) -> dict:
    grads = [torch.randn(3, 4, generator=gen) for _ in range(steps)]
    p = torch.nn.Parameter(torch.zeros(3, 4))
    opt = M3([p], lr=0.01, slow_momentum=b3, slow_every=f)
    for g in grads:
        p.grad = g.clone()
        opt.step()
    chunks = [sum(grads[j * f:(j + 1) * f]) for j in range(steps // f)]   # completed chunks only
    closed = sum((1 - b3) * b3 ** (len(chunks) - 1 - j) * c for j, c in enumerate(chunks))
    return _row("M3 slow momentum = β3^j-weighted chunk sums",
                r"M_2 = (1-\beta_3)\sum_{j} \beta_3^{\,j} \sum_{i \in \text{chunk}_{-j}} g_i",
                "M3 state 'slow' vs explicit sum over completed chunks", opt.state[p]["slow"], closed)


def m3_is_muon(gen, steps=10, shape=(6, 4), lr=0.02, momentum=0.9, ns_dtype=torch.float32) -> dict:
    """α = 0, V off: M3's trajectory vs torch.optim.Muon(nesterov=False, weight_decay=0).

    torch.optim.Muon runs Newton–Schulz in bfloat16, M3 by default in float32. The only
    difference is then NS rounding, at most NS_BF16_FACTOR·u of each step's size (u = 2⁻⁸), so
    the trajectories may differ by up to that fraction of the path length Σ‖Δθ_t‖. With
    ns_dtype=bfloat16 the two are the same computation and must agree to float32 precision.
    """
    W0 = torch.randn(*shape, generator=gen)
    a, b = torch.nn.Parameter(W0.clone()), torch.nn.Parameter(W0.clone())
    muon = torch.optim.Muon([a], lr=lr, momentum=momentum, nesterov=False, weight_decay=0.0)
    m3 = M3([b], lr=lr, momentum=momentum, alpha=0.0, beta2=None, ns_dtype=ns_dtype)
    path = 0.0
    for _ in range(steps):
        g = torch.randn(*shape, generator=gen)
        before = a.detach().clone()
        a.grad, b.grad = g.clone(), g.clone()
        muon.step()
        m3.step()
        path += float((a.detach() - before).norm())
    exact = ns_dtype == torch.bfloat16
    tol = 1e-6 * max(1.0, float(W0.abs().max())) if exact else NS_BF16_FACTOR * BF16_UNIT * path
    label = "bfloat16 NS, same ops" if exact else f"float32 NS; tolerance {NS_BF16_FACTOR}·2⁻⁸·path length"
    return _row(f"M3 (α=0, V off) = Muon ({'bf16' if exact else 'fp32'} NS)",
                r"\alpha=0,\ V\ \text{off}:\ \Theta^{\mathrm{M3}}_t = \Theta^{\mathrm{Muon}}_t",
                f"M3 vs torch.optim.Muon over {steps} steps ({label})", b.detach(), a.detach(), tol=tol)


def all_equivalences(seed: int = 0) -> pd.DataFrame:
    """Every check above on fresh random data from one seed."""
    gen = torch.Generator().manual_seed(seed)
    checks = [softmax_closed_form, delta_is_gd, hebbian_is_gd, titans_is_delta,
              lambda g: titans_is_delta(g, chunk=4), linear_layer_is_memory, momentum_weights, adam_buffers,
              m3_slow_buffer, m3_is_muon, lambda g: m3_is_muon(g, ns_dtype=torch.bfloat16)]
    return pd.DataFrame([check(gen) for check in checks])
