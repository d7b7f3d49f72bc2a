"""`matmul(a, b)`: a @ b for the fast-weight memories, without the slow outer products (speed only).

A chunk of one token (the last chunk of a 9-token sequence at memory_chunk = 8) makes matrix
products whose inner dimension is 1: the write's Σ_i g_i in_iᵀ over one token in the forward pass,
and in the backward pass the weight gradient of every product with one row (grad_W = gᵀ x). On this
CPU `torch.bmm` takes 100–135 µs for such an outer product of (160, 16, 1) × (160, 1, 16), against
~7 µs for the same numbers by broadcasting (measured; 11 % of a default HOPE training step).

Here, when one of the three dimensions is 1 and the outer products of the batch hold at least
MIN_OUTER elements (HOPE's (160, 16 × 16) do; Titans' (32, 16 × 32) do not, and routing those too
made its step 2 % slower: the function's own Python cost is not repaid), the product goes through an
autograd function that does what `torch.matmul` and its backward (`BmmBackward0`) do, on the same
operands (folded into 3-D batches as matmul folds them), except that a product with inner dimension
1 is a broadcast multiply. That product has one term per element, so every result and every
gradient is the same to the bit (tests/unit/test_matmul.py checks them with torch.equal; `python -m
lab fingerprint` is unchanged). Without autograd only a forward outer product takes it. Other shapes,
and traced or compiled code, use `a @ b` itself.
"""
from __future__ import annotations

import torch


def _bmm(a, b):
    """bmm of (n, M, K) × (n, K, N); a broadcast multiply when K = 1 (exact: one product each)."""
    return a * b if a.shape[-1] == 1 else torch.bmm(a, b)


class _FoldedMatmul(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, b):                     # a: (..., M, K), b: (..., K, N), the same batch shape
        a3, b3 = a.reshape(-1, *a.shape[-2:]), b.reshape(-1, *b.shape[-2:])
        ctx.save_for_backward(a3, b3)
        ctx.shapes = a.shape, b.shape
        return _bmm(a3, b3).view(*a.shape[:-1], b.shape[-1])

    @staticmethod
    def backward(ctx, grad):                    # as BmmBackward0: g bᵀ and aᵀ g
        a3, b3 = ctx.saved_tensors
        a_shape, b_shape = ctx.shapes
        g3 = grad.reshape(-1, *grad.shape[-2:])
        grad_a = _bmm(g3, b3.transpose(1, 2)).view(a_shape) if ctx.needs_input_grad[0] else None
        grad_b = _bmm(a3.transpose(1, 2), g3).view(b_shape) if ctx.needs_input_grad[1] else None
        return grad_a, grad_b


MIN_OUTER = 32768        # elements of a batch of outer products below which the function's cost is not repaid


def outer_size(m: int, k: int, n: int) -> int:
    """Elements of the outer product (inner dimension 1) that an (m × k)(k × n) product makes in its
    forward (k = 1) or backward (m = 1: the gradient of the right factor; n = 1: of the left) pass; 0 if none."""
    return m * n if k == 1 else k * n if m == 1 else m * k if n == 1 else 0


def matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a @ b; through `_FoldedMatmul` when it makes outer products of at least MIN_OUTER elements in
    all (in the forward pass only, without autograd) and both factors have the same batch shape."""
    m, k = a.shape[-2:]
    n = b.shape[-1]
    if (m == 1 or k == 1 or n == 1) and a.dim() >= 3 and a.shape[:-2] == b.shape[:-2]:
        backward = torch.is_grad_enabled() and (a.requires_grad or b.requires_grad)
        outer = outer_size(m, k, n) if backward else m * n * (k == 1)
        if a.shape[:-2].numel() * outer >= MIN_OUTER and not torch.compiler.is_compiling():
            return _FoldedMatmul.apply(a, b)
    return a @ b
