"""Speed figures for `python -m lab bench` (no timing thresholds live in the tests).

Ratios are measured in one run with the two sides interleaved (A, B, A, B, …) and compared by
their medians, because the machines are shared and noisy.
"""
from __future__ import annotations

import math
import resource
import statistics
import threading
import time

import torch
import torch.nn.functional as F

from lab.device import describe, get_device
from lab.engine import Run, RunConfig
from lab.memory.compiled import compile_enabled, compile_report, set_compile
from lab.memory.neural import NeuralMemory
from lab.models import MODELS, PRESETS, build_model
from lab.models.cms import ContinuumMemory


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def _timed(fn, device) -> float:
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def _interleaved(fns: dict, repeats: int, device, warmup: int = 2) -> dict[str, float]:
    """Median seconds per call of each function, calls interleaved."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            times[name].append(_timed(fn, device))
    return {name: statistics.median(t) for name, t in times.items()}


def training_steps(repeats: int, device, compiled: bool = False) -> dict:
    """Full engine training steps (forward, backward, CMS schedule, optimizers) at default size, the
    families interleaved step by step, with the chunk bodies compiled or eager (lab.memory.compiled).
    The warm-up (which includes the compiler's wait when compiled) is reported, not timed in."""
    set_compile(compiled)
    try:
        runs = {name: Run(RunConfig(model=name, eval_every=100_000), device=device) for name in MODELS}
        start = time.perf_counter()
        for run in runs.values():
            run.step(2)
        warmup = time.perf_counter() - start
        sec = _interleaved({name: lambda run=run: run.step(1) for name, run in runs.items()}, repeats, device, warmup=1)
    finally:
        set_compile(None)
    out = {name: {"steps_per_sec": 1 / sec[name], "tokens_per_sec": run.stream.tokens_per_step / sec[name],
                  "tokens_per_step": run.stream.tokens_per_step, "params": run.model.n_params()}
           for name, run in runs.items()}
    base = sec.get("transformer")
    out["ratios"] = {f"{name}/transformer": sec[name] / base for name in sec if base and name != "transformer"}
    out["compiled"] = compiled
    out["warmup_s"] = warmup
    return out


def length_scaling(device, lengths=(512, 1024, 2048, 4096), families=("titans", "hope"), repeats: int = 3) -> dict:
    """Seconds of one forward+backward pass on one sequence of T tokens (eager; the lengths
    interleaved, so a busy machine slows them alike), and the exponent p of time ∝ T^p fitted by
    least squares on log-log (p ≈ 1: linear cost in sequence length)."""
    out = {}
    for name in families:
        model = build_model(name, vocab_size=64, max_len=max(lengths)).to(device)

        def fwd_bwd(T, model=model):
            tokens = torch.randint(0, 64, (1, T), device=device)
            return lambda: (model.zero_grad(set_to_none=True), model(tokens).float().logsumexp(-1).mean().backward())
        seconds = _interleaved({T: fwd_bwd(T) for T in lengths}, repeats, device, warmup=1)
        xs, ys = [math.log(T) for T in seconds], [math.log(t) for t in seconds.values()]
        mx, my = statistics.fmean(xs), statistics.fmean(ys)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
        out[name] = {"seconds": {str(T): t for T, t in seconds.items()}, "exponent": slope}
    return out


def forward_backward(repeats: int, device, batch: int = 16, seq: int = 64) -> dict:
    """Milliseconds of one forward+backward pass on (batch × seq) tokens at default size."""
    out = {}
    for name in MODELS:
        model = build_model(name, vocab_size=64).to(device)
        tokens = torch.randint(0, 64, (batch, seq), device=device)

        def fwd_bwd(model=model, tokens=tokens):
            model.zero_grad(set_to_none=True)
            model(tokens).float().logsumexp(-1).mean().backward()
        out[name] = {"ms": 1000 * _interleaved({"x": fwd_bwd}, repeats, device)["x"], "batch": batch, "seq": seq}
    return out


def titans_modes(repeats: int, device, seq: int = 256, chunk: int = 16, theta: float = 0.02,
                 eta: float = 0.5) -> dict:
    """Chunked vs per-token Titans memory at `seq` tokens (forward+backward), and their difference.

    Constant gates inside the chunked mode's stable region: with stale gradients a chunk adds up
    about θ·chunk/(1 − η) of a step, which must stay below 1 (here 0.64); with η = 0.9 it diverges."""
    torch.manual_seed(0)
    B, H, d = 16, 4, 16
    memory = NeuralMemory(d, heads=H, chunk_size=chunk, theta=theta, eta=eta).to(device)
    q, k, v = (torch.randn(B, H, seq, d, device=device) for _ in range(3))
    q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)

    def run(mode):
        def fn():
            memory.zero_grad(set_to_none=True)
            memory.mode = mode
            memory(q, k, v).sum().backward()
        return fn
    t = _interleaved({"token": run("token"), "chunk": run("chunk")}, max(3, repeats // 4), device)
    memory.mode = "chunk"
    return {"seq": seq, "chunk_size": chunk, "theta": theta, "eta": eta, "token_ms": 1000 * t["token"], "chunk_ms": 1000 * t["chunk"],
            "speedup_chunk_over_token": t["token"] / t["chunk"],
            "max_abs_diff_chunk1_vs_token": memory.mode_difference(q, k, v, chunk_size=1)["max_abs_diff"],
            "max_abs_diff_chunk16_vs_token": memory.mode_difference(q, k, v, chunk_size=chunk)["max_abs_diff"]}


def cms_overhead(repeats: int, device, d: int = 64, hidden: int = 288, levels: int = 3) -> dict:
    """A 3-level CMS chain against one plain MLP with the same number of parameters."""
    cms = ContinuumMemory(d, (hidden // levels,) * levels).to(device)
    plain = ContinuumMemory(d, (hidden,)).to(device)
    x = torch.randn(16, 64, d, device=device)

    def fn(module):
        def call():
            module.zero_grad(set_to_none=True)
            module(x).sum().backward()
        return call
    t = _interleaved({"cms": fn(cms), "plain": fn(plain)}, repeats, device)
    return {"cms_ms": 1000 * t["cms"], "plain_mlp_ms": 1000 * t["plain"], "ratio": t["cms"] / t["plain"],
            "cms_params": sum(p.numel() for p in cms.parameters()),
            "plain_params": sum(p.numel() for p in plain.parameters())}


def online_read(device, tokens: int = 4096, repeats: int = 2) -> dict:
    """Reading a deployment stream of `tokens` tokens (one stream, one 9-token document a step) with
    the default HOPE frozen, against the same read with its CMS levels learning online (lab.online):
    seconds of each and their ratio (issue target: at most 3×)."""
    from lab.deploy import DeploySettings

    settings = DeploySettings(deploy_batch=1, deploy_steps=1000, eval_every=100_000)
    seconds = {"hope/frozen": [], "hope/cms_online": []}
    read_tokens = 0
    for _ in range(repeats):                                   # interleaved: A, B, A, B …
        for variant in seconds:
            run = Run(settings.deploy_config(variant, 0).replace(eval_every=100_000), device=device)
            steps = -(-tokens // run.stream.tokens_per_step)
            seconds[variant].append(_timed(lambda: run.step(steps), device))
            read_tokens = steps * run.stream.tokens_per_step
    frozen, online = (statistics.median(v) for v in seconds.values())
    return {"tokens": read_tokens, "frozen_s": frozen, "online_s": online, "ratio_online_over_frozen": online / frozen}


def steps_per_s(run: Run, seconds: float, warmup: int = 2, at_least: int = 3) -> float:
    """Training steps a second of `run` stepped bare for about `seconds` (at least `at_least` steps),
    after `warmup` steps that are not timed."""
    run.step(warmup)
    start, before = time.perf_counter(), run.step_count
    while run.step_count - before < at_least or time.perf_counter() - start < seconds:
        run.step(1)
    return (run.step_count - before) / (time.perf_counter() - start)


LIVE_STEPS_PER_S = 10.0      # "trains live": the Playground's redraw target, a step between redraws


def live_sizes(device, scales=(0.5, 1, 2, 4, 8, 16, 32), seconds: float = 1.5,
               floor: float = LIVE_STEPS_PER_S) -> dict:
    """Steps/s of each family's full training step on the default stream at widths `scale` × the
    family default (0.5 = tiny, 1 = small, the default, 2 = medium; beyond, no preset: d_model up to its
    bound of 2048), narrowest first. A family's scan stops at the first width under `floor` steps/s, or
    that does not fit in memory. `largest_live`: per family, the widest that trained at ≥ `floor`."""
    preset_of = {scale: name for name, scale in PRESETS.items()}
    families, largest = {}, {}
    for name in MODELS:
        rows, largest[name] = [], None
        for scale in scales:
            row = {"scale": scale, "preset": preset_of.get(scale)}
            rows.append(row)
            try:
                run = Run(RunConfig(model=name, eval_every=100_000), device=device, scale=scale)
                rate = steps_per_s(run, seconds)
            except torch.OutOfMemoryError:
                row["out_of_memory"] = True
                break
            row.update(d_model=run.model.config.d_model, params=run.model.n_params(), steps_per_s=rate)
            del run
            if device.type == "cuda":
                torch.cuda.empty_cache()                                      # the next width starts from an empty card
            if rate < floor:
                break
            largest[name] = row
        families[name] = rows
    return {"floor_steps_per_s": floor, "families": families, "largest_live": largest}


def rss_mb(pid: int | str = "self") -> float | None:
    """Resident memory of a process now, in MiB (Linux /proc; None elsewhere)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            return int(next(line for line in status if line.startswith("VmRSS:")).split()[1]) / 1024
    except (OSError, StopIteration):
        return None


class _Pages:
    """A 'page' thread per session, as the live fragment of app/components/live.py does it: every
    `redraw_s` it takes the session's lock, asks the pool to go on, and draws the loss and accuracy
    figures. `waits` holds how long each redraw waited for the lock (its length: the redraws)."""

    def __init__(self, sessions: list, pool, redraw_s: float):
        self.waits: list[float] = []
        self._done = threading.Event()
        self._threads = [threading.Thread(target=self._page, args=(s, pool, redraw_s)) for s in sessions]
        for thread in self._threads:
            thread.start()

    def _page(self, session, pool, redraw_s: float) -> None:
        from lab.viz.training import accuracy_figure, loss_figure

        while not self._done.is_set():
            asked = time.perf_counter()
            with session.lock:
                self.waits.append(time.perf_counter() - asked)
                pool.want(session)
                records = session.records_until()
                loss_figure(records, session.layout, session.config.model)
                accuracy_figure(records, session.layout)
            time.sleep(redraw_s)

    def stop(self) -> None:
        self._done.set()
        for thread in self._threads:
            thread.join()


def playground_session(seconds: float = 5.0, redraw_s: float = 0.1) -> dict:
    """The default Playground session as the app runs it: trained by a one-worker pool while a
    page redraws its loss and accuracy under the session's lock every `redraw_s` (`_Pages`); its
    steps/s against the same run stepped bare, and the memory the session holds (RSS before and after)."""
    from lab.sessions.playground import PlaygroundSession
    from lab.sessions.pool import TrainingPool

    bare_rate = steps_per_s(Run(RunConfig()), seconds, warmup=5)    # warm-up: as the session's first steps

    rss_before = rss_mb()
    session, pool = PlaygroundSession(), TrainingPool(workers=1, max_trainers=1)
    session.play()
    pool.want(session)
    while session.run.step_count < 5:
        time.sleep(0.01)
    pages = _Pages([session], pool, redraw_s)
    start, before = time.perf_counter(), session.run.step_count
    time.sleep(seconds)
    in_app = (session.run.step_count - before) / (time.perf_counter() - start)
    pages.stop()
    session.stop()
    pool.close()
    return {"model": session.config.model, "bare_steps_per_s": bare_rate, "in_pool_steps_per_s": in_app,
            "in_pool_over_bare": in_app / bare_rate, "redraws_per_s": len(pages.waits) / seconds,
            "rss_mb_before": rss_before, "rss_mb_with_session": rss_mb()}


def class_sessions(students: int = 10, seconds: float = 10.0, redraw_s: float = 0.2) -> dict:
    """A class on one server without its browsers: `students` tiny-Transformer Playground sessions
    trained by a two-worker pool while a page per session redraws every `redraw_s` (`_Pages`).
    Steps/s of all together, redraws per page, and how long a page waited for its lock (median and
    90th percentile, ms)."""
    from lab.sessions.playground import PlaygroundSession
    from lab.sessions.pool import TrainingPool

    config = RunConfig(model="transformer", preset="tiny", stream={"n_tasks": 2, "steps_per_task": 10_000})
    sessions = [PlaygroundSession(config.replace(seed=seed)) for seed in range(students)]
    pool = TrainingPool(workers=2, max_trainers=students)
    for session in sessions:
        session.play()
        pool.want(session)
    pages = _Pages(sessions, pool, redraw_s)
    time.sleep(min(2.0, seconds / 2))                            # every session under way
    steps, redraws, start = sum(s.run.step_count for s in sessions), len(pages.waits), time.perf_counter()
    time.sleep(seconds)
    elapsed = time.perf_counter() - start
    steps, redraws = sum(s.run.step_count for s in sessions) - steps, len(pages.waits) - redraws
    pages.stop()
    pool.close()
    waits = sorted(pages.waits)
    return {"students": students, "steps_per_s_together": steps / elapsed,
            "redraws_per_s_each": redraws / elapsed / students,
            "lock_wait_ms_median": 1000 * waits[len(waits) // 2],
            "lock_wait_ms_p90": 1000 * waits[int(0.9 * (len(waits) - 1))]}


def run_bench(repeats: int = 20, compiled: bool = True) -> dict:
    """Every figure of issue 15: steps/s per family and the ratios to the Transformer (eager, and with
    the chunk bodies compiled unless `compiled` is False), the cost exponent in sequence length, the
    widest model that trains live (`live_sizes`), peak memory. `compile_default` says whether runs
    outside the bench compile (NLL_COMPILE)."""
    device = get_device()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    result = {
        "device": describe(), "threads": torch.get_num_threads(), "compile_default": compile_enabled(),
        "training_step": training_steps(repeats, device),
        "training_step_compiled": training_steps(repeats, device, compiled=True) if compiled else None,
        "compile_report": compile_report(),
        "length_scaling": length_scaling(device),
        "forward_backward_16x64": forward_backward(repeats, device),
        "titans_memory": titans_modes(repeats, device),
        "cms_vs_plain_mlp": cms_overhead(repeats, device),
        "online_cms_read_4096": online_read(device),
        "live_sizes": live_sizes(device),
        "playground_session": playground_session(),
        "class_of_ten": class_sessions(),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    if device.type == "cuda":
        result["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return result

