"""Fast-weight MLP memories updated by gradient steps inside the forward pass.

This is the shared engine of the Titans neural memory (REFERENCE.md §2) and of the
self-modifying memories of HOPE (§4). A memory is an MLP whose weights are *state*:

    M(x) = [x +] W_L σ(W_{L-1} … σ(W_1 x))          weights W_l: (B, H, out_l, in_l)

Inner loss per token: ℓ_i = ‖M(k_i) − v_i‖² (sum over features; REFERENCE §2, no ½).
Its gradient w.r.t. W_l is an outer product δ_{l,i} in_{l,i}ᵀ (δ: gradient at layer l's output,
in: layer l's input), so every update is a sum of rank-one terms.

Recurrence per token (Titans notation, retention β_t = 1 − α_t):

    u_t = −θ_t (δ_t + λ W_{t-1} in_t) in_tᵀ        λ = 0: Titans; λ = 1: delta gradient descent (HOPE)
    S_t = η_t S_{t-1} + u_t                          momentum of surprise (off: S_t = u_t)
    W_t = β_t W_{t-1} + S_t

Two ways to run it:

* `scan_tokens`: the rule above token by token (the reference; a Python loop over tokens).
* `scan_chunks`: split the sequence into chunks of b tokens and take every gradient in a chunk
  at the chunk-start weights W_0. Then W_t = P_t W_0 + c_t S_0 + Σ_{i≤t} C_{t,i} u_i with
  P_t = Π_{j≤t} β_j, C = D·F (D_{t,s} = Π_{j=s+1..t} β_j, F_{s,i} = Π_{j=i+1..s} η_j), and a
  read W_t x = P_t W_0 x + c_t S_0 x − Σ_i C_{t,i} θ_i (in_i · x) g_i is attention-like: no loop
  over tokens inside a chunk. With b = 1 it is exactly `scan_tokens`; with b > 1 it differs
  (the gradients are stale within a chunk) and `lab.memory.neural` reports by how much.

Read order (`read_order`): "after_write" reads y_t = M_t(q_t), the state after token t's own write
(Titans' retrieval y_t = M*(q_t), §2, as this lab reads it); "before_write" reads o_t = M_{t−1}(q_t),
the state before it, as HOPE's equations write the output (§4, "Read order"). In `scan_chunks`
"before_write" reads row t−1 of the chunk's read matrices at token t, the chunk-start state at
the chunk's first token: only the strictly earlier tokens of the chunk are seen
(C_{t−1,i}, i < t; with the decays up to t−1, not t).

Choices the papers leave open, made here: the read order defaults to "after_write" in these
functions (the Titans memory uses it; HOPE picks its own, `lab.models.hope.HopeConfig.memory_read`);
σ = SiLU; the residual connection is optional (HOPE's memories use it, Titans' not).
"""
from __future__ import annotations

import abc
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from lab.memory.compiled import Compiled
from lab.memory.matmul import matmul

READ_ORDERS = ("after_write", "before_write")   # y_t = M_t(q_t)  |  o_t = M_{t−1}(q_t)


@dataclass
class FastWeights:
    """The state of a fast-weight MLP: one matrix per layer, and the momentum buffers."""

    weights: list[torch.Tensor]               # each (B, H, out, in)
    momentum: list[torch.Tensor] | None = None  # same shapes, or None when momentum is off

    def detach(self) -> "FastWeights":
        mom = None if self.momentum is None else [m.detach() for m in self.momentum]
        return FastWeights([w.detach() for w in self.weights], mom)

    def select_rows(self, row: int, rows: int) -> "FastWeights":
        """Row `row`'s state repeated `rows` times (one stream's memory, for a batch of queries)."""
        def pick(t):
            return t[row:row + 1].expand(rows, *t.shape[1:])
        return FastWeights([pick(w) for w in self.weights],
                           None if self.momentum is None else [pick(m) for m in self.momentum])


class CarriesState(abc.ABC):
    """A fast-weight memory that a stream of sequences can read one after another with its state
    carried over (lab.online, `carry_memory`): `forward` starts from `start(batch)`."""

    start_from: FastWeights | None = None      # when set, a sequence starts here, not at the initial state
    _state: FastWeights | None = None

    @abc.abstractmethod
    def initial_state(self, batch: int) -> FastWeights:
        """The learned initial state, for `batch` sequences."""

    def start(self, batch: int) -> FastWeights:
        """The state a sequence starts from: `start_from` (the state the stream's previous sequence
        left, set by lab.online) or the learned initial state."""
        if self.start_from is None:
            return self.initial_state(batch)
        if self.start_from.weights[0].shape[0] != batch:
            raise ValueError(f"the carried memory holds {self.start_from.weights[0].shape[0]} streams, the batch "
                             f"has {batch} rows")
        return self.start_from

    def last_state(self) -> FastWeights:
        """The state after the last sequence read (detached)."""
        if self._state is None:
            raise RuntimeError("the memory has read nothing yet")
        return self._state


def listened(*hooks) -> bool:
    """Whether a probe listens to one of these hook points (`lab.hooks.HookPoint.listened`: a forward
    hook or pre-hook on it). What only a hook would see is skipped otherwise."""
    return any(h.listened for h in hooks)


def _act(x):
    return F.silu(x)


def _act_grad(a):
    s = torch.sigmoid(a)
    return s * (1 + a * (1 - s))


def mlp_apply(weights: list[torch.Tensor], x: torch.Tensor, residual: bool):
    """M(x) for x: (B, H, N, d_in). Returns the output and, per layer, its input and pre-activation."""
    inputs, preacts = [], []
    h = x
    for l, w in enumerate(weights):
        inputs.append(h)
        a = matmul(h, w.transpose(-1, -2))    # (B, H, N, out)
        preacts.append(a)
        h = _act(a) if l < len(weights) - 1 else a
    return (x + h if residual else h), inputs, preacts


def token_grads(weights, k, v, residual: bool, delta_term: float):
    """Per-token update directions g_{l,i} (so that ∇_{W_l} ℓ_i + λ W_l in in ᵀ = g_{l,i} in_{l,i}ᵀ).

    k: (B, H, N, d_in), v: (B, H, N, d_out). Returns (g, inputs, loss) with g[l]: (B, H, N, out_l),
    inputs[l]: (B, H, N, in_l) and loss ℓ_i: (B, H, N).
    """
    out, inputs, preacts = mlp_apply(weights, k, residual)
    err = out - v
    loss = err.pow(2).sum(-1)
    delta = 2 * err                            # ∂ℓ/∂(last layer output)
    grads = [None] * len(weights)
    for l in range(len(weights) - 1, -1, -1):
        grads[l] = delta
        if l > 0:
            delta = matmul(delta, weights[l]) * _act_grad(preacts[l - 1])
    if delta_term:
        grads = [g + delta_term * a for g, a in zip(grads, preacts)]
    return grads, inputs, loss


def surprise_norm(grads, inputs) -> torch.Tensor:
    """‖∇ℓ_i‖ over all layers: the Frobenius norm of each rank-one term is a product of norms."""
    sq = sum(g.pow(2).sum(-1) * x.pow(2).sum(-1) for g, x in zip(grads, inputs))
    return sq.sqrt()                           # (B, H, N)


def _check_read_order(read_order: str) -> None:
    if read_order not in READ_ORDERS:
        raise ValueError(f"read_order = {read_order!r} is not allowed: must be one of {', '.join(READ_ORDERS)}")


def scan_tokens(state: FastWeights, k, v, q, theta, retention, eta=None, *,
                residual=False, delta_term=0.0, read_order="after_write"):
    """Token-by-token reference. Gates theta, retention, eta: (B, H, T). q may be None.
    read_order: "after_write" (y_t = M_t(q_t)) or "before_write" (o_t = M_{t−1}(q_t)).

    Returns (y or None, final state, surprise (B, H, T), loss (B, H, T))."""
    _check_read_order(read_order)
    weights = list(state.weights)
    momentum = None if state.momentum is None else list(state.momentum)
    ys, surprises, losses = [], [], []
    for t in range(k.shape[2]):
        sl = slice(t, t + 1)
        if q is not None and read_order == "before_write":
            ys.append(mlp_apply(weights, q[:, :, sl], residual)[0])      # M_{t−1}(q_t)
        grads, inputs, loss = token_grads(weights, k[:, :, sl], v[:, :, sl], residual, delta_term)
        surprises.append(surprise_norm(grads, inputs))
        losses.append(loss)
        th = theta[:, :, t, None, None]
        ret = retention[:, :, t, None, None]
        for l in range(len(weights)):
            u = -th * matmul(grads[l].transpose(-1, -2), inputs[l])  # (B, H, out, in)
            if momentum is not None:
                momentum[l] = eta[:, :, t, None, None] * momentum[l] + u
                u = momentum[l]
            weights[l] = ret * weights[l] + u
        if q is not None and read_order == "after_write":
            ys.append(mlp_apply(weights, q[:, :, sl], residual)[0])      # M_t(q_t)
    y = torch.cat(ys, dim=2) if q is not None else None
    return y, FastWeights(weights, momentum), torch.cat(surprises, 2), torch.cat(losses, 2)


def _decay_matrix(gate: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For gates (B, H, b): M[t, s] = Π_{j=s+1..t} gate_j for s ≤ t (else 0) and P[t] = Π_{j≤t} gate_j."""
    log_cum = gate.clamp_min(1e-12).log().cumsum(-1)                  # (B, H, b)
    diff = log_cum[..., :, None] - log_cum[..., None, :]              # (B, H, b, b)
    b = gate.shape[-1]
    causal = torch.ones(b, b, dtype=torch.bool, device=gate.device).tril()
    mat = torch.where(causal, diff, torch.full_like(diff, float("-inf"))).exp()
    return mat, log_cum.exp()


def _previous_rows(P, Ct, c_mom):
    """The read matrices of "before_write": row t becomes row t−1, row 0 the chunk-start state.

    P: (B, H, b) → [1, P_0, …, P_{b−2}];  Ct: (B, H, b, b) → [0; C_0,:; …; C_{b−2},:], strictly
    lower-triangular (token t sees the writes of tokens i < t, decayed up to t−1);  c_mom likewise
    with 0 first (the momentum S_0 enters through token 0's write only)."""
    P = torch.cat([torch.ones_like(P[..., :1]), P[..., :-1]], -1)
    Ct = torch.cat([torch.zeros_like(Ct[..., :1, :]), Ct[..., :-1, :]], -2)
    if c_mom is not None:
        c_mom = torch.cat([torch.zeros_like(c_mom[..., :1]), c_mom[..., :-1]], -1)
    return P, Ct, c_mom


def chunk_step(weights: list, momentum: list | None, k, v, q, theta, retention, eta, residual: bool,
               delta_term: float, read_order: str, stat_heads: int):
    """One chunk of `scan_chunks` (every gradient at the chunk-start weights, REFERENCE.md §2, the
    chunked form of S_t = η_t S_{t−1} − θ_t ∇ℓ, M_t = (1 − α_t) M_{t−1} + S_t): the read of its tokens
    and the state after it. k, v: (B, H, b, d); q: (B, Hq, b, d) or None; gates (B, H, b).

    stat_heads: of the last `stat_heads` heads, also return the surprise ‖∇ℓ_i‖ and the inner loss ℓ_i
    per token ((B, stat_heads, b) each); 0 skips both (nobody listens: they cost time, and nothing
    else depends on them). Returns (y or None, weights, momentum or None, surprise or None, loss or None).
    """
    grads, inputs, loss = token_grads(weights, k, v, residual, delta_term)
    surprise = None
    if stat_heads:
        heads = slice(k.shape[1] - stat_heads, None)
        surprise = surprise_norm([g[:, heads] for g in grads], [x[:, heads] for x in inputs])
        loss = loss[:, heads]
    th = theta                                                         # (B, H, b)
    D, P = _decay_matrix(retention)
    if momentum is not None:
        Fm, E = _decay_matrix(eta)
        C = matmul(D, Fm)                                              # (B, H, b, b)
        c_mom = matmul(D, E.unsqueeze(-1)).squeeze(-1)                 # (B, H, b)
    else:
        C, c_mom = D, None
    Ct = C * th.unsqueeze(-2)                                          # C_{t,i} θ_i
    y = None
    if q is not None:
        Pr, Cr, cr = (P, Ct, c_mom) if read_order == "after_write" else _previous_rows(P, Ct, c_mom)
        # a view of q for the reads, so that their gradients add up before the residual's (the
        # grouping of the unfused code: the same last bits)
        h, r = q[:, :, :], slice(k.shape[1] - q.shape[1], None)          # r: the heads that are read
        for l, w in enumerate(weights):
            a = Pr[:, r].unsqueeze(-1) * matmul(h, w[:, r].transpose(-1, -2))
            if momentum is not None:
                a = a + cr[:, r].unsqueeze(-1) * matmul(h, momentum[l][:, r].transpose(-1, -2))
            scores = Cr[:, r] * matmul(h, inputs[l][:, r].transpose(-1, -2))    # (B, Hq, b, b)
            a = a - matmul(scores, grads[l][:, r])
            h = _act(a) if l < len(weights) - 1 else a
        y = q + h if residual else h
    last = Ct[..., -1, :]                                              # (B, H, b)
    weights, momentum = list(weights), None if momentum is None else list(momentum)
    for l in range(len(weights)):
        update = -matmul((grads[l] * last.unsqueeze(-1)).transpose(-1, -2), inputs[l])
        new_w = P[..., -1, None, None] * weights[l] + update
        if momentum is not None:
            new_w = new_w + c_mom[..., -1, None, None] * momentum[l]
            f_last = (Fm[..., -1, :] * th).unsqueeze(-1)
            momentum[l] = (E[..., -1, None, None] * momentum[l]
                           - matmul((grads[l] * f_last).transpose(-1, -2), inputs[l]))
        weights[l] = new_w
    return y, weights, momentum, surprise, (loss if stat_heads else None)


compiled_chunk_step = Compiled(chunk_step, "fast_weights.chunk_step")


def scan_chunks(state: FastWeights, k, v, q, theta, retention, eta=None, *, chunk_size: int,
                residual=False, delta_term=0.0, read_order="after_write", stats=True):
    """Chunked-parallel version of `scan_tokens` (gradients at each chunk's start), chunk by chunk
    (`chunk_step`, compiled in training steps when `lab.memory.compiled` allows it).

    q may have fewer heads than the state (Hq ≤ H): then only the last Hq heads are read,
    which lets several memories stacked along the head axis be updated together but read apart.
    read_order "before_write" reads token t from the chunk-start state plus the writes of the
    chunk's tokens before t (`_previous_rows`); "after_write" includes token t's own write.
    stats=False skips the surprise and the loss (returned as None): nobody listens.

    Returns (y or None, final state, surprise (B, H, T) or None, loss (B, H, T) or None).
    """
    _check_read_order(read_order)
    T, stat_heads = k.shape[2], (k.shape[1] if stats else 0)
    weights = list(state.weights)
    momentum = None if state.momentum is None else list(state.momentum)
    ys, surprises, losses = [], [], []
    for start in range(0, T, chunk_size):
        sl = slice(start, min(T, start + chunk_size))
        y, weights, momentum, surprise, loss = compiled_chunk_step(
            weights, momentum, k[:, :, sl], v[:, :, sl], None if q is None else q[:, :, sl], theta[:, :, sl],
            retention[:, :, sl], None if eta is None else eta[:, :, sl], residual, delta_term, read_order, stat_heads)
        if y is not None:
            ys.append(y)
        surprises.append(surprise)
        losses.append(loss)
    y = torch.cat(ys, dim=2) if q is not None else None
    if not stats:
        return y, FastWeights(weights, momentum), None, None
    return y, FastWeights(weights, momentum), torch.cat(surprises, 2), torch.cat(losses, 2)
