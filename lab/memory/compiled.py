"""Compiled chunk bodies of the fast-weight memories (speed only: the equations are those of
`lab.memory.fast_weights`, REFERENCE.md §2 and §4).

A training step of HOPE or Titans spends most of its time in the memories' per-chunk loop: many tiny
batched matmuls and elementwise operations whose cost is Python dispatch and autograd bookkeeping, not
arithmetic. `torch.compile` of one chunk's body (static shapes, one graph, forward and backward) fuses
them; compiling the whole model gains nothing (measured in issue 15), so only the chunk bodies are
compiled.

    step = Compiled(chunk_step, "fast_weights.chunk_step")
    step(...)          # compiled when compiling is on and autograd records; eager otherwise

Rules:
* On or off: `set_compile(True | False)` (the bench measures both), else the environment variable
  `NLL_COMPILE` (`1`/`on` or `0`/`off`), else off (`DEFAULT`). Off by default because the first
  training call of each shape waits for the compiler: measured on the shared 2-core CPU, 23 s for
  HOPE's chunk body with a warm on-disk cache and about 220 s cold, which would freeze a live page;
  and the compiled numbers differ from the eager ones in the last bits (~1e-7), while the eager
  path reproduces the recorded runs bit for bit (`python -m lab fingerprint`). The tests keep it
  off (tests/conftest.py) unless a test turns it on.
* Only calls made while autograd records (training steps) run compiled; evaluation, probes and
  inference (`torch.no_grad`) stay eager, so they neither wait for a compile nor add graphs.
* Lazily: nothing compiles until the first training call of a shape; each new shape compiles once
  (PyTorch caches compiled graphs on disk, so a later process loads them in seconds).
* Fallback: if compiling fails (no C++ compiler, an unsupported device) the function warns once and
  stays eager for the rest of the process. A call whose inputs are at fault raises as in eager.
"""
from __future__ import annotations

import os
import threading
import warnings
from contextlib import contextmanager
from typing import Callable, Iterator

import torch

ENV_VAR = "NLL_COMPILE"
DEFAULT = False
BACKEND = "inductor"                 # torch.compile's backend (the tests also use "aot_eager": no C++ compiler)
_override: bool | None = None
_warned = False
_ON, _OFF = ("1", "on", "true", "yes"), ("0", "off", "false", "no")


def set_compile(on: bool | None) -> None:
    """Force compiling on or off in this process; None returns to `NLL_COMPILE` / the default."""
    global _override
    _override = on


def compile_enabled() -> bool:
    """Whether chunk bodies run compiled now (`set_compile`, then `NLL_COMPILE`, then `DEFAULT`)."""
    if _override is not None:
        return _override
    value = os.environ.get(ENV_VAR, "").strip().lower()
    if value in _ON:
        return True
    if value in _OFF:
        return False
    if value:
        raise ValueError(f"{ENV_VAR} = {value!r} is not allowed: use 1/on or 0/off")
    return DEFAULT


_thread = threading.local()


@contextmanager
def eager() -> Iterator[None]:
    """Inside the block, this thread's chunk bodies run eager (other threads, e.g. the training pool's
    workers, keep their setting): for autograd at shapes no training step has (attributions)."""
    previous = getattr(_thread, "eager", False)
    _thread.eager = True
    try:
        yield
    finally:
        _thread.eager = previous


class Compiled:
    """`fn`, compiled on first use when compiling is on and autograd records; eager otherwise.

    `used` counts calls that ran compiled, `failure` holds why compiling was given up (None while
    it works or was never tried)."""

    instances: list["Compiled"] = []

    def __init__(self, fn: Callable, name: str):
        self.fn, self.name = fn, name
        self._compiled: Callable | None = None
        self.used = 0
        self.failure: str | None = None
        Compiled.instances.append(self)

    def reset(self) -> None:
        """Forget the compiled function, the count and any failure (the next call compiles afresh)."""
        self._compiled, self.used, self.failure = None, 0, None

    def active(self) -> bool:
        return (self.failure is None and not getattr(_thread, "eager", False) and compile_enabled()
                and torch.is_grad_enabled())

    def __call__(self, *args):
        if not self.active():
            return self.fn(*args)
        if self._compiled is None:
            self._compiled = torch.compile(self.fn, backend=BACKEND, fullgraph=True, dynamic=False)
        try:
            result = self._compiled(*args)
        except Exception as err:             # noqa: BLE001 - any compiler failure means: stay eager
            result = self.fn(*args)          # inputs at fault: this raises as eager would, compiling stays on
            self._give_up(err)
            return result
        self.used += 1
        return result

    def _give_up(self, err: Exception) -> None:
        global _warned
        lines = str(err).strip().splitlines()
        self.failure = f"{type(err).__name__}: {lines[0] if lines else ''}"
        if _warned:
            return
        _warned = True
        warnings.warn(f"{self.name}: torch.compile failed ({self.failure[:300]}); running eager from now on "
                      f"(set {ENV_VAR}=0 to skip compiling)", RuntimeWarning, stacklevel=3)


def compile_report() -> dict[str, dict]:
    """{name: {"used": compiled calls, "failure": reason or None}} of every compiled body."""
    return {c.name: {"used": c.used, "failure": c.failure} for c in Compiled.instances}
