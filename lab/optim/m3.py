"""M3, Multi-scale Momentum Muon (REFERENCE.md §5; NL arXiv version, Algorithm 1).

As printed, for each weight matrix Θ with gradient g_t:

    M1 += β1 g_t                 fast momentum, every step          O1 = NS(M1)
    V  += β2 g_t²                second moment (optional)
    every f steps: M2 += β3 Σ_{chunk} g       slow momentum         O2 = NS(M2)
    Θ  −= η (O1 + α O2) / (√V + ε)

Choices made here, where the paper leaves the detail open (each is shown on the app's page):

* **Buffers are exponential moving averages** (`rule="ema"`, the default):
  M1 ← β1 M1 + (1−β1) g, V ← β2 V + (1−β2) g², M2 ← β3 M2 + (1−β3) Σ_chunk g. The printed
  algorithm has no (1−β) and no decay at all (`rule="printed"`: M1 += β1 g, V += β2 g²,
  M2 += β3 Σ_chunk g, sums that never forget). The decayed form is what makes "fast" and "slow"
  mean something (a gradient k steps old weighs β1^k in M1, a chunk j chunks old β3^j in M2),
  and it is `torch.optim.Muon`'s own buffer (`buf.lerp_(g, 1−β)`). Because NS first divides by
  the Frobenius norm, the scale of M1 and M2 does not change O1 and O2 (up to NS's ε); it
  matters only for V, where the EMA is Adam's convention.
* **No bias correction**, as printed (Adam would divide M by 1−β1^t and V by 1−β2^t).
* **Denominator √V + ε** (Adam's and PyTorch's convention), not √(V + ε): the two readings
  differ only where V ≲ ε. With `beta2=None` the denominator is 1 (V off).
* **When the slow momentum updates**: the chunk's gradients are summed as they arrive; at the
  end of every f-th step of this optimizer (steps f, 2f, …) M2 absorbs the chunk and O2 is
  recomputed. A step uses the O2 of the chunks that are complete *before* it (Algorithm 1
  updates M2 at the start of the next outer iteration), so the slow term lags by up to f
  steps and is zero during the first chunk. f counts this optimizer's `step()` calls: in the
  engine a slow CMS level's optimizer steps only every C steps, so its M3 chunk spans f·C.
* **Newton–Schulz** (`newton_schulz`): the quintic iteration of REFERENCE.md §1's Muon row,
  coefficients (3.4445, −4.7750, 2.0315), `ns_steps` = 5; the matrix is divided by its
  Frobenius norm (clamped at 1e-7) so that every singular value is ≤ 1; a tall matrix
  (rows > cols) is transposed before and after, so the Gram matrix X Xᵀ is the smaller one.
  It runs in float32 by default (`ns_dtype`); `torch.optim.Muon` runs it in bfloat16.
  The result is not exactly U Vᵀ: its singular values land roughly in (0.6, 1.2).
* **Scale of the step**: lr · max(1, rows/cols)^0.5 (`adjust_lr_fn=None` or "original",
  REFERENCE.md §1 and Keller Jordan's Muon), or lr · 0.2 · √max(rows, cols)
  ("match_rms_adamw", Moonshot's rule: the step then has about AdamW's RMS, so an AdamW rate
  can be reused). Both as in `torch.optim.Muon`.
* **Weight decay** is decoupled and, as in `torch.optim.Muon`, uses the unscaled rate:
  Θ ← Θ (1 − lr·λ) before the step.
* Only 2-D parameters (weight matrices) are accepted, like `torch.optim.Muon`; give
  embeddings, biases and norms to AdamW (`lab.optim.make_optimizer` does that for you).
* A parameter whose `.grad` is None is skipped entirely (its chunk does not advance).

With α = 0, `beta2=None` and `rule="ema"` an M3 step is a Muon step with `nesterov=False`;
with `ns_dtype=torch.bfloat16` as well it is `torch.optim.Muon`'s step bit for bit
(tests/unit/test_m3.py checks both).
"""
from __future__ import annotations

import math

import torch
from torch.optim import Optimizer

NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)
NS_EPS = 1e-7
RULES = ("ema", "printed")
ADJUST_LR = (None, "original", "match_rms_adamw")


def newton_schulz(G: torch.Tensor, steps: int = 5, coefficients=NS_COEFFICIENTS,
                  dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Quintic Newton–Schulz orthogonalisation of G (rows, cols) -> (rows, cols), in `dtype`.

    X ← X/‖X‖_F, then `steps` times A = X Xᵀ, X ← a X + (b A + c A²) X. Same operations, in
    the same order, as `torch.optim.Muon`, so that in bfloat16 the two agree bit for bit.
    """
    if G.dim() != 2:
        raise ValueError(f"Newton–Schulz needs a 2-D matrix, got shape {tuple(G.shape)}")
    a, b, c = coefficients
    X = G.to(dtype)                                   # copy when the dtype changes
    tall = G.size(0) > G.size(1)
    if tall:
        X = X.T                                       # (cols, rows): the Gram matrix is the small one
    X = X / X.norm().clamp(min=NS_EPS)                # all singular values ≤ 1
    for _ in range(steps):
        A = X @ X.T                                   # (short, short)
        B = torch.addmm(A, A, A, beta=b, alpha=c)     # b A + c A²
        X = torch.addmm(X, B, X, beta=a)              # a X + B X
    return X.T if tall else X


def lr_scale(shape: torch.Size, adjust_lr_fn: str | None) -> float:
    """The shape-dependent factor on the learning rate (see the module docstring)."""
    rows, cols = shape[0], shape[1]
    if adjust_lr_fn == "match_rms_adamw":
        return 0.2 * math.sqrt(max(rows, cols))
    return math.sqrt(max(1.0, rows / cols))


def _check(name: str, value, ok: bool, allowed: str) -> None:
    if not ok:
        raise ValueError(f"M3: {name} = {value!r} is not allowed: {allowed}")


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


class M3(Optimizer):
    """Multi-scale Momentum Muon. See the module docstring for every choice made.

    Args: lr (η), momentum (β1, fast), slow_momentum (β3), slow_every (f, in steps), alpha
    (weight of the slow term), beta2 (second moment; None turns it off), ns_steps, eps (ε of
    √V + ε), weight_decay (decoupled), rule ("ema" or "printed"), adjust_lr_fn (None /
    "original" / "match_rms_adamw"), ns_dtype (dtype Newton–Schulz runs in).

    State per parameter (all (rows, cols) unless noted): "step" (int), "fast" (M1), "chunk"
    (Σ g since the last slow update), "slow" (M2), "slow_ortho" (O2), "second" (V, when on).
    """

    def __init__(self, params, lr: float = 0.02, momentum: float = 0.95, slow_momentum: float = 0.9,
                 slow_every: int = 10, alpha: float = 0.5, beta2: float | None = None, ns_steps: int = 5,
                 eps: float = 1e-8, weight_decay: float = 0.0, rule: str = "ema",
                 adjust_lr_fn: str | None = None, ns_dtype: torch.dtype = torch.float32):
        _check("lr", lr, _number(lr) and lr >= 0, "must be a number ≥ 0")
        _check("momentum", momentum, _number(momentum) and 0 <= momentum < 1, "must be in [0, 1)")
        _check("slow_momentum", slow_momentum, _number(slow_momentum) and 0 <= slow_momentum < 1,
               "must be in [0, 1)")
        _check("slow_every", slow_every, isinstance(slow_every, int) and not isinstance(slow_every, bool)
               and slow_every >= 1, "must be an integer ≥ 1")
        _check("alpha", alpha, _number(alpha) and alpha >= 0, "must be a number ≥ 0")
        _check("beta2", beta2, beta2 is None or (_number(beta2) and 0 <= beta2 < 1),
               "must be None (off) or in [0, 1)")
        _check("ns_steps", ns_steps, isinstance(ns_steps, int) and 0 <= ns_steps < 100,
               "must be an integer in [0, 100)")
        _check("eps", eps, _number(eps) and eps > 0, "must be a number > 0")
        _check("weight_decay", weight_decay, _number(weight_decay) and weight_decay >= 0, "must be ≥ 0")
        _check("rule", rule, rule in RULES, f"must be one of {RULES}")
        _check("adjust_lr_fn", adjust_lr_fn, adjust_lr_fn in ADJUST_LR, f"must be one of {ADJUST_LR}")
        defaults = dict(lr=lr, momentum=momentum, slow_momentum=slow_momentum, slow_every=slow_every,
                        alpha=alpha, beta2=beta2, ns_steps=ns_steps, eps=eps, weight_decay=weight_decay,
                        rule=rule, adjust_lr_fn=adjust_lr_fn, ns_dtype=ns_dtype)
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                if p.dim() != 2:
                    raise ValueError(f"M3 only takes 2-D weight matrices, got a parameter of shape "
                                     f"{tuple(p.shape)}; give it to AdamW (lab.optim.make_optimizer does)")

    def _state(self, p: torch.Tensor, beta2) -> dict:
        state = self.state[p]
        if not state:
            state["step"] = 0
            for key in ("fast", "chunk", "slow", "slow_ortho"):
                state[key] = torch.zeros_like(p, memory_format=torch.preserve_format)
        if beta2 is not None and "second" not in state:
            state["second"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        return state

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            b1, b2, b3 = group["momentum"], group["beta2"], group["slow_momentum"]
            ema = group["rule"] == "ema"
            ns = dict(steps=group["ns_steps"], dtype=group["ns_dtype"])
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad                                             # (rows, cols)
                if g.is_sparse:
                    raise RuntimeError("M3 does not support sparse gradients")
                state = self._state(p, b2)
                state["step"] += 1
                fast = state["fast"]
                if ema:
                    fast.lerp_(g, 1 - b1)                              # M1 ← β1 M1 + (1−β1) g
                else:
                    fast.add_(g, alpha=b1)                             # M1 += β1 g (as printed)
                direction = newton_schulz(fast, **ns).to(p.dtype)      # O1
                if group["alpha"]:
                    direction = direction + group["alpha"] * state["slow_ortho"]
                if b2 is not None:
                    V = state["second"]
                    if ema:
                        V.mul_(b2).addcmul_(g, g, value=1 - b2)        # V ← β2 V + (1−β2) g²
                    else:
                        V.addcmul_(g, g, value=b2)                     # V += β2 g² (as printed)
                    direction = direction / (V.sqrt() + group["eps"])  # √V + ε
                lr = group["lr"]
                p.mul_(1 - lr * group["weight_decay"])
                p.add_(direction, alpha=-lr * lr_scale(p.shape, group["adjust_lr_fn"]))
                state["chunk"].add_(g)
                if state["step"] % group["slow_every"] == 0:           # end of a chunk of f steps
                    slow = state["slow"]
                    if ema:
                        slow.lerp_(state["chunk"], 1 - b3)             # M2 ← β3 M2 + (1−β3) Σ g
                    else:
                        slow.add_(state["chunk"], alpha=b3)            # M2 += β3 Σ g (as printed)
                    state["slow_ortho"].copy_(newton_schulz(slow, **ns))   # O2, used by the next f steps
                    state["chunk"].zero_()
        return loss
