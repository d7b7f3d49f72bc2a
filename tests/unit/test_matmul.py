"""lab.memory.matmul: the same numbers as `@` and its gradients, to the bit, without bmm's outer products."""
from __future__ import annotations

import pytest
import torch

import lab.memory.matmul as mm
from lab.memory.matmul import matmul, outer_size

ident = lambda t: t                                              # noqa: E731
LAYOUTS = {                                                      # how the factors reach the product
    "contiguous": (ident, ident),
    "left transposed": (lambda t: t.mT, ident),
    "right transposed": (ident, lambda t: t.mT),
    "right expanded": (ident, lambda t: t.expand(8, -1, -1, -1)),
    "head slices": (lambda t: t[:, 4:], lambda t: t[:, :20]),
}


def _factors(layout, m, k, n):
    """The stored tensors, before LAYOUTS[layout] makes the factors (8, 20, m, k) and (8, 20, k, n)."""
    g = torch.Generator().manual_seed(m * 100 + k * 10 + n)
    left = {"left transposed": (8, 20, k, m), "head slices": (8, 24, m, k)}.get(layout, (8, 20, m, k))
    right = {"right transposed": (8, 20, n, k), "right expanded": (1, 20, k, n),
             "head slices": (8, 24, k, n)}.get(layout, (8, 20, k, n))
    return torch.randn(*left, generator=g), torch.randn(*right, generator=g)


def _product_and_grads(fn, a0, b0, shape_a, shape_b):
    a, b = a0.clone().requires_grad_(), b0.clone().requires_grad_()
    y = fn(shape_a(a), shape_b(b))
    y.backward(torch.linspace(-1, 1, y.numel()).reshape(y.shape))
    return y, a.grad, b.grad


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("mkn", [(16, 1, 16), (1, 16, 16), (16, 16, 1), (1, 1, 16), (8, 16, 16)])
def test_the_folded_product_equals_matmul_and_its_gradients_to_the_bit(layout, mkn, monkeypatch):
    calls = []
    apply = mm._FoldedMatmul.apply
    monkeypatch.setattr(mm._FoldedMatmul, "apply", lambda a, b: calls.append(1) or apply(a, b))
    a, b = _factors(layout, *mkn)
    mine = _product_and_grads(matmul, a, b, *LAYOUTS[layout])
    torchs = _product_and_grads(torch.matmul, a, b, *LAYOUTS[layout])
    for x, y in zip(mine, torchs):
        assert torch.equal(x, y)
    assert bool(calls) == (8 * 20 * outer_size(*mkn) >= mm.MIN_OUTER)    # the fold was used where it pays


def test_without_autograd_only_a_forward_outer_product_takes_the_fold(monkeypatch):
    calls = []
    apply = mm._FoldedMatmul.apply
    monkeypatch.setattr(mm._FoldedMatmul, "apply", lambda a, b: calls.append(a.shape) or apply(a, b))
    with torch.no_grad():
        matmul(torch.randn(8, 20, 1, 16), torch.randn(8, 20, 16, 16))                # M = 1: no backward to spare
        assert torch.equal(
            matmul(torch.ones(8, 20, 16, 1), torch.ones(8, 20, 1, 16)), torch.ones(8, 20, 16, 16))
    assert calls == [torch.Size([8, 20, 16, 1])]


def test_outer_size_names_the_outer_product_of_each_pass():
    assert outer_size(16, 1, 32) == 512          # forward: Σ over one term
    assert outer_size(1, 16, 32) == 512          # backward: the right factor's gradient aᵀ g
    assert outer_size(16, 32, 1) == 512          # backward: the left factor's gradient g bᵀ
    assert outer_size(8, 16, 16) == 0


def test_a_default_hope_step_uses_the_fold_and_titans_does_not(monkeypatch):
    from lab.engine import Run, RunConfig
    calls = []
    apply = mm._FoldedMatmul.apply
    monkeypatch.setattr(mm._FoldedMatmul, "apply",
                        lambda a, b: calls.append(torch.is_grad_enabled()) or apply(a, b))
    Run(RunConfig(model="hope", eval_every=100_000)).step(1)
    assert any(calls)                             # training: the one-token chunk of a 9-token sequence
    calls.clear()
    Run(RunConfig(model="titans", eval_every=100_000)).step(1)
    assert not any(calls)                         # its outer products are small: plain bmm is as fast
