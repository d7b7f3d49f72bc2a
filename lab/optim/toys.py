"""Optimizers as memories, measured on toys small enough to see (REFERENCE.md §1, §5).

* `buffer_weights`: how much each buffer remembers of a gradient k steps old. Measured as an
  impulse response of the real optimizers (one gradient, then zeros) and set next to the closed
  form: momentum β^k, Adam's (1−β)β^k, M3's slow staircase (1−β3)β3^j, j = chunks since.
* `orthogonal_tasks`: each task's gradient is its own direction (orthonormal matrices under the
  Frobenius inner product); the weight each buffer of M3 keeps on every task as later tasks
  arrive.
* `trajectories`: Adam, Muon and M3 from one start on a 2-D loss surface.

Choices made here: the 2-D toy's parameter is a 1×2 matrix (a row vector), so Muon and M3
apply to it. For one vector, Newton–Schulz only normalises (its one singular value goes to
≈ 0.7–1.1 after 5 steps): Muon walks at a nearly constant speed lr, whatever the slope. All
frames are tidy DataFrames.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
import torch

from lab.config import Config, bounded, choice
from lab.optim.m3 import M3


def half_life(beta: float, every: int = 1) -> float:
    """Age (in steps) at which a β-decayed memory has halved: every · ln 0.5 / ln β."""
    if not 0 < beta < 1:
        return math.inf if beta >= 1 else 0.0
    return every * math.log(0.5) / math.log(beta)


@dataclass(frozen=True)
class BufferSpec(Config):
    horizon: int = bounded(60, 1, 5000, "ages shown, in steps")
    momentum: float = bounded(0.9, 0.0, 0.999, "momentum β")
    adam_beta1: float = bounded(0.9, 0.0, 0.999, "Adam β1")
    adam_beta2: float = bounded(0.999, 0.0, 0.9999, "Adam β2")
    m3_beta1: float = bounded(0.95, 0.0, 0.999, "M3 β1 (fast)")
    m3_beta3: float = bounded(0.9, 0.0, 0.999, "M3 β3 (slow)")
    m3_every: int = bounded(10, 1, 1000, "M3 f (steps per slow update)")


@dataclass(frozen=True)
class TasksSpec(Config):
    n_tasks: int = bounded(4, 1, 24, "tasks, one gradient direction each")
    steps_per_task: int = bounded(30, 1, 2000, "steps on each task")
    momentum: float = bounded(0.9, 0.0, 0.999, "M3 β1 (fast)")
    slow_momentum: float = bounded(0.9, 0.0, 0.999, "M3 β3 (slow)")
    slow_every: int = bounded(10, 1, 1000, "M3 f (steps per slow update)")
    seed: int = bounded(0, 0, 2**31 - 1, "seed of the task directions")


@torch.no_grad()
def _impulse(opt_factory, read, horizon: int) -> list[float]:
    p = torch.nn.Parameter(torch.zeros(2, 2))
    opt = opt_factory([p])
    out = []
    for t in range(horizon):
        p.grad = torch.ones(2, 2) if t == 0 else torch.zeros(2, 2)
        opt.step()
        out.append(float(read(opt.state[p])[0, 0]))
    return out


def buffer_weights(horizon: int = 60, momentum: float = 0.9, adam_beta1: float = 0.9, adam_beta2: float = 0.999,
                   m3_beta1: float = 0.95, m3_beta3: float = 0.9, m3_every: int = 10) -> pd.DataFrame:
    """Columns optimizer, buffer, level (0 fast / 1 slow), age, weight (measured), closed_form,
    share and closed_share (weight / the closed-form total over all ages, so every curve sums to 1 and buffers
    compare), half_life (steps). The impulse lands on the first step of an M3 chunk."""
    BufferSpec(horizon, momentum, adam_beta1, adam_beta2, m3_beta1, m3_beta3, m3_every)   # validates
    ks = range(horizon)
    specs = [
        ("momentum", "m", 0, lambda ps: torch.optim.SGD(ps, lr=0.0, momentum=momentum),
         lambda s: s["momentum_buffer"], [momentum ** k for k in ks], momentum, 1, 1 / (1 - momentum)),
        ("adam", "m (1st moment)", 0, lambda ps: torch.optim.Adam(ps, lr=0.0, betas=(adam_beta1, adam_beta2)),
         lambda s: s["exp_avg"], [(1 - adam_beta1) * adam_beta1 ** k for k in ks], adam_beta1, 1, 1.0),
        ("adam", "v (2nd moment)", 0, lambda ps: torch.optim.Adam(ps, lr=0.0, betas=(adam_beta1, adam_beta2)),
         lambda s: s["exp_avg_sq"], [(1 - adam_beta2) * adam_beta2 ** k for k in ks], adam_beta2, 1, 1.0),
        ("m3", "M1 (fast)", 0, lambda ps: M3(ps, lr=0.0, momentum=m3_beta1),
         lambda s: s["fast"], [(1 - m3_beta1) * m3_beta1 ** k for k in ks], m3_beta1, 1, 1.0),
        ("m3", f"M2 (slow, every {m3_every})", 1,
         lambda ps: M3(ps, lr=0.0, slow_momentum=m3_beta3, slow_every=m3_every), lambda s: s["slow"],
         [0.0 if k + 1 < m3_every else (1 - m3_beta3) * m3_beta3 ** ((k + 1) // m3_every - 1) for k in ks],
         m3_beta3, m3_every, float(m3_every)),
    ]
    rows = []
    for opt_name, buffer, level, factory, read, closed, beta, every, total in specs:
        measured = _impulse(factory, read, horizon)
        hl = half_life(beta, every)
        rows += [{"optimizer": opt_name, "buffer": buffer, "level": level, "age": k, "weight": w,
                  "closed_form": c, "share": w / total, "closed_share": c / total, "half_life": hl}
                 for k, w, c in zip(ks, measured, closed)]
    return pd.DataFrame(rows)


def task_directions(n_tasks: int, shape=(4, 6), seed: int = 0) -> torch.Tensor:
    """n_tasks matrices of `shape`, orthonormal in the Frobenius inner product: (n_tasks, *shape)."""
    size = shape[0] * shape[1]
    if not 1 <= n_tasks <= size:
        raise ValueError(f"n_tasks = {n_tasks!r} is not allowed: must be between 1 and {size} for shape {shape}")
    gen = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(size, n_tasks, generator=gen))   # (size, n_tasks), orthonormal columns
    return q.T.reshape(n_tasks, *shape)


@torch.no_grad()
def orthogonal_tasks(n_tasks: int = 4, steps_per_task: int = 30, momentum: float = 0.9,
                     slow_momentum: float = 0.9, slow_every: int = 10, seed: int = 0) -> pd.DataFrame:
    """Feed M3 task 1's gradient for `steps_per_task` steps, then task 2's, …; after each step
    record, for the fast buffer M1 and the slow buffer M2, its coefficient on every task's
    direction (⟨buffer, G_j⟩, in units of one gradient per step: M2 holds chunk sums and is
    divided by f) and that task's share of the buffer's squared norm.
    Columns step, current_task, buffer, level, task, coefficient, share."""
    TasksSpec(n_tasks, steps_per_task, momentum, slow_momentum, slow_every, seed)          # validates
    G = task_directions(n_tasks, seed=seed)                              # (T, 4, 6)
    p = torch.nn.Parameter(torch.zeros(4, 6))
    opt = M3([p], lr=0.0, momentum=momentum, slow_momentum=slow_momentum, slow_every=slow_every)
    rows = []
    for step in range(n_tasks * steps_per_task):
        task = step // steps_per_task
        p.grad = G[task].clone()
        opt.step()
        state = opt.state[p]
        for buffer, level, tensor, scale in (("fast", 0, state["fast"], 1.0), ("slow", 1, state["slow"], slow_every)):
            coef = (G * tensor).sum(dim=(1, 2)) / scale                  # (T,)
            energy = float(coef.pow(2).sum())
            for j in range(n_tasks):
                rows.append({"step": step + 1, "current_task": task, "buffer": buffer, "level": level, "task": j,
                             "coefficient": float(coef[j]),
                             "share": float(coef[j] ** 2) / energy if energy > 0 else float("nan")})
    return pd.DataFrame(rows)


# --- 2-D loss surfaces ------------------------------------------------------------------------

def _valley(x, y):          # an ill-conditioned quadratic, axes rotated by 30°
    c, s = math.cos(math.pi / 6), math.sin(math.pi / 6)
    u, w = c * x + s * y, -s * x + c * y
    return 0.5 * (u ** 2 + 20 * w ** 2)


def _rosenbrock(x, y):
    return (1 - x) ** 2 + 20 * (y - x ** 2) ** 2


def _two_basins(x, y):      # a shallow basin at x ≈ −1 and a deeper one at x ≈ +1
    return (x ** 2 - 1) ** 2 - 0.3 * x + 0.5 * y ** 2


SURFACES = {  # name: (function, start, x range, y range)
    "valley": (_valley, (-2.5, 1.5), (-3.0, 3.0), (-2.0, 2.0)),
    "rosenbrock": (_rosenbrock, (-1.5, 2.0), (-2.0, 2.0), (-1.0, 3.0)),
    "two_basins": (_two_basins, (-1.8, 1.5), (-2.0, 2.0), (-2.0, 2.0)),
}


@dataclass(frozen=True)
class AdamSpec(Config):
    lr: float = bounded(0.1, 1e-4, 2.0, "Adam learning rate")
    beta1: float = bounded(0.9, 0.0, 0.999, "Adam β1")
    beta2: float = bounded(0.999, 0.0, 0.9999, "Adam β2")


@dataclass(frozen=True)
class MuonSpec(Config):
    lr: float = bounded(0.1, 1e-4, 2.0, "Muon learning rate (≈ the length of each step on one vector)")
    momentum: float = bounded(0.9, 0.0, 0.999, "Muon momentum μ")
    nesterov: bool = False


@dataclass(frozen=True)
class M3Spec(Config):
    lr: float = bounded(0.1, 1e-4, 2.0, "M3 learning rate")
    momentum: float = bounded(0.9, 0.0, 0.999, "β1, fast momentum")
    slow_momentum: float = bounded(0.9, 0.0, 0.999, "β3, slow momentum")
    slow_every: int = bounded(10, 1, 1000, "f, steps per slow update")
    alpha: float = bounded(0.5, 0.0, 10.0, "α, weight of the slow term")
    beta2: float | None = bounded(None, 0.0, 0.9999, "β2, second moment (empty = off)")


@dataclass(frozen=True)
class SurfaceSpec(Config):
    surface: str = choice("valley", tuple(SURFACES), "loss surface")
    steps: int = bounded(100, 1, 2000, "optimizer steps")


def surface_grid(surface: str, n: int = 80) -> pd.DataFrame:
    """The loss on an n×n grid: columns x, y, loss (for a contour plot)."""
    fn, _, (x0, x1), (y0, y1) = SURFACES[surface]
    xs, ys = torch.linspace(x0, x1, n), torch.linspace(y0, y1, n)
    X, Y = torch.meshgrid(xs, ys, indexing="xy")                         # (n, n)
    Z = fn(X, Y)
    return pd.DataFrame({"x": X.flatten().tolist(), "y": Y.flatten().tolist(), "loss": Z.flatten().tolist()})


def _optimizer(name: str, spec, params):
    if name == "adam":
        return torch.optim.Adam(params, lr=spec.lr, betas=(spec.beta1, spec.beta2))
    if name == "muon":
        return torch.optim.Muon(params, lr=spec.lr, momentum=spec.momentum, nesterov=spec.nesterov, weight_decay=0.0)
    return M3(params, lr=spec.lr, momentum=spec.momentum, slow_momentum=spec.slow_momentum,
              slow_every=spec.slow_every, alpha=spec.alpha, beta2=spec.beta2)


def trajectories(surface: SurfaceSpec, specs: dict) -> pd.DataFrame:
    """specs: {"adam": AdamSpec, "muon": MuonSpec, "m3": M3Spec} (any subset). Each optimizer
    starts at the surface's start point; columns optimizer, step, x, y, loss (step 0 = start).
    A run that leaves the finite numbers stops there."""
    fn, start, _, _ = SURFACES[surface.surface]
    rows = []
    for name, spec in specs.items():
        if name not in ("adam", "muon", "m3"):
            raise ValueError(f"unknown optimizer {name!r}; the toy runs adam, muon and m3")
        w = torch.nn.Parameter(torch.tensor([list(start)]))               # (1, 2): a row vector
        opt = _optimizer(name, spec, [w])
        for step in range(surface.steps + 1):
            loss = fn(w[0, 0], w[0, 1])
            if not torch.isfinite(loss):
                break
            x, y = w.detach()[0].tolist()
            rows.append({"optimizer": name, "step": step, "x": x, "y": y, "loss": float(loss.detach())})
            if step == surface.steps:
                break
            opt.zero_grad()
            loss.backward()
            opt.step()
    return pd.DataFrame(rows, columns=["optimizer", "step", "x", "y", "loss"])
