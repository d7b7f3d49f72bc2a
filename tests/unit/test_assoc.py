"""The associative-memory view (lab.assoc) and the optimizer toys (lab.optim.toys), each checked
against facts computed here, not against numbers the code once printed."""
from __future__ import annotations

import math

import pytest
import torch

from lab.assoc import (KVStream, MemoryParams, all_equivalences, catalog_entries, catalog_frame, catalog_markdown,
                       recall, runnable, sweep)
from lab.assoc import equivalences as eq
from lab.assoc.experiments import key_cosines, make_stream, recall_errors
from lab.config import ConfigError
from lab.memory import DeltaRuleMemory
from lab.optim.toys import (AdamSpec, M3Spec, MuonSpec, SurfaceSpec, buffer_weights, half_life, orthogonal_tasks,
                            surface_grid, task_directions, trajectories)

torch.set_num_threads(1)


# --- the table ---------------------------------------------------------------------------------

def test_catalog_has_every_row_of_reference_section_1_and_m3():
    catalog = catalog_entries()
    components = {e.row.component for e in catalog}
    for name in ("softmax attention", "linear attention", "DeltaNet", "Titans neural memory",
                 "a linear layer trained by backprop", "momentum", "Adam", "Muon"):
        assert name in components
    assert "m3" in {e.key for e in catalog}
    for e in catalog:
        for field in ("keys_values", "memory", "objective", "solved_by", "update", "frequency"):
            assert getattr(e.row, field).strip(), (e.key, field)
    frame = catalog_frame()
    assert set(frame["runnable"].dropna()) <= set(runnable())


def test_catalog_markdown_is_one_table_with_latex_cells():
    text = catalog_markdown()
    lines = text.strip().splitlines()
    assert len(lines) == 2 + len(catalog_entries())
    assert all(line.count("|") == 8 for line in lines)          # 7 columns, no stray pipes
    assert r"$M_t = M_{t-1}(I - \beta k_t k_t^\top) + \beta v_t k_t^\top$" in text
    assert "a per-coordinate regression" in text and r"\text{a per" not in text
    assert list(catalog_frame()["key"]) == [e.key for e in catalog_entries()]


# --- the key/value stream and recall -----------------------------------------------------------

@pytest.mark.parametrize("rho", [0.0, 0.5, 0.9])
def test_keys_are_unit_vectors_with_the_requested_correlation(rho):
    stream = KVStream(n_pairs=150, d_key=64, correlation=rho, seed=3)
    keys, values = make_stream(stream)
    assert keys.shape == (1, 1, 150, 64) and values.shape == (1, 1, 150, 32)
    assert torch.allclose(keys.norm(dim=-1), torch.ones(1, 1, 150), atol=1e-5)
    assert abs(key_cosines(stream) - rho) < 0.05
    assert torch.equal(make_stream(stream)[0], keys)


def test_delta_rule_with_beta_one_recalls_the_newest_pair_exactly():
    # after M ← M − (M k − v) kᵀ with ‖k‖ = 1, M k = v: the newest pair (age 0) has no error
    frame = recall(["delta"], KVStream(n_pairs=20, d_key=16, d_value=16), MemoryParams(write_strength=1.0))
    newest = frame[frame["age"] == 0]["error"].item()
    assert newest < 1e-10 and frame["error"].max() > 1e-3


def test_hebbian_recall_equals_the_superposition_formula():
    stream = KVStream(n_pairs=10, d_key=8, d_value=5, correlation=0.3, seed=1)
    keys, values = (t[0, 0] for t in make_stream(stream))
    decay = 0.9
    weights = torch.tensor([decay ** (9 - i) for i in range(10)])      # a pair i writes ago decayed α^(N−1−i)
    reads = (keys @ keys.T) @ (weights[:, None] * values)              # y_j = Σ_i α^(N−1−i) v_i (k_i·k_j)
    expected = (reads - values).pow(2).sum(-1) / values.pow(2).sum(-1)
    got = recall_errors("hebbian", stream, MemoryParams(decay=decay))
    assert torch.allclose(got, expected, atol=1e-5)


def test_one_layer_titans_without_momentum_or_decay_recalls_like_deltanet():
    stream = KVStream(n_pairs=24, d_key=12, d_value=12, correlation=0.2)
    params = MemoryParams(write_strength=0.7, momentum=0.0, decay=1.0)
    assert torch.allclose(recall_errors("titans", stream, params), recall_errors("delta", stream, params), atol=1e-5)
    with_momentum = recall_errors("titans", stream, params.replace(momentum=0.5))
    assert not torch.allclose(with_momentum, recall_errors("delta", stream, params), atol=1e-3)


def test_capacity_correlation_and_sharpness_trends():
    stream, params = KVStream(d_key=16, d_value=16, seed=2), MemoryParams(write_strength=0.8)
    cap = sweep(["delta", "hebbian"], stream, params, "n_pairs", [4, 128], seeds=2)
    means = cap.groupby(["memory", "value"])["error"].mean()
    assert means["delta", 4] < means["delta", 128] and means["hebbian", 4] < means["hebbian", 128]
    corr = sweep(["hebbian"], stream.replace(n_pairs=16), params, "correlation", [0.0, 0.9]).set_index("value")
    assert corr.loc[0.0, "error"] < corr.loc[0.9, "error"]
    soft = [recall_errors("softmax", stream.replace(n_pairs=32), MemoryParams(sharpness=s)).mean() for s in (1, 30)]
    assert soft[1] < soft[0]


def test_sweep_leaves_out_memories_without_the_knob_and_flags_divergence():
    stream = KVStream(n_pairs=40, d_key=8, d_value=8)
    frame = sweep(["delta", "titans"], stream, MemoryParams(), "momentum", [0.0, 0.9])
    assert set(frame["memory"]) == {"titans"}
    blown = recall(["titans"], stream, MemoryParams(write_strength=1.9, momentum=0.95))
    assert blown["diverged"].all() and blown["error"].isna().all()
    with pytest.raises(ValueError, match="sweepable"):
        sweep(["delta"], stream, MemoryParams(), "colour", [1])
    with pytest.raises(ValueError, match="unknown memory"):
        recall(["gpt"], stream, MemoryParams())


def test_configs_name_the_bad_field():
    with pytest.raises(ConfigError, match="correlation"):
        KVStream(correlation=1.5)
    with pytest.raises(ConfigError, match="write_strength"):
        MemoryParams(write_strength=2.5)


# --- the equivalences --------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1])
def test_every_equivalence_holds_as_expected(seed):
    frame = all_equivalences(seed)
    assert len(frame) == 11 and frame["holds"].all(), frame[~frame["holds"]][["name", "max_abs_diff", "tolerance"]]
    assert (~frame["expected_equal"]).sum() == 1                   # the chunked-Titans counterexample


def test_an_equivalence_check_fails_on_a_broken_memory(monkeypatch):
    """The checks can fail: a delta rule that writes at 0.9 β no longer equals one GD step."""
    original = DeltaRuleMemory._step
    monkeypatch.setattr(DeltaRuleMemory, "_step", staticmethod(lambda M, k, v, b: original(M, k, v, 0.9 * b)))
    row = eq.delta_is_gd(torch.Generator().manual_seed(0))
    assert not row["holds"] and row["max_abs_diff"] > 100 * row["tolerance"]


# --- optimizers as memories --------------------------------------------------------------------

def test_half_life_matches_reference_numbers():
    assert half_life(0.9) == pytest.approx(6.58, abs=0.01)             # REFERENCE.md §1: about 6.6 steps
    assert min(k for k in range(1, 200) if 1 - 0.9 ** k >= 0.99) == 44  # 99 % of the mass within about 44
    assert half_life(0.9, every=10) == pytest.approx(65.8, abs=0.1)


def test_buffer_weights_are_the_measured_impulse_responses():
    b1, b3, f = 0.8, 0.5, 3
    frame = buffer_weights(horizon=12, momentum=0.7, adam_beta1=0.6, adam_beta2=0.9, m3_beta1=b1,
                           m3_beta3=b3, m3_every=f).set_index(["buffer", "age"])
    for k in range(12):
        assert frame.loc[("m", k), "weight"] == pytest.approx(0.7 ** k, rel=1e-5)
        assert frame.loc[("v (2nd moment)", k), "weight"] == pytest.approx(0.1 * 0.9 ** k, rel=1e-4)
        assert frame.loc[("M1 (fast)", k), "weight"] == pytest.approx((1 - b1) * b1 ** k, rel=1e-5)
        chunks_done = (k + 1) // f                                     # impulse on the first step of a chunk
        slow = 0.0 if chunks_done == 0 else (1 - b3) * b3 ** (chunks_done - 1)
        assert frame.loc[(f"M2 (slow, every {f})", k), "weight"] == pytest.approx(slow, abs=1e-7)


def test_slow_momentum_keeps_task_one_longer_than_fast_momentum():
    S, b1 = 20, 0.8
    frame = orthogonal_tasks(n_tasks=3, steps_per_task=S, momentum=b1, slow_momentum=0.9, slow_every=5)
    task1 = frame[frame["task"] == 0].set_index(["buffer", "step"])["coefficient"]
    # fast EMA: after S steps of task 1 it holds 1 − β1^S of it; S steps later β1^S times that
    assert task1["fast", S] == pytest.approx(1 - b1 ** S, rel=1e-5)
    assert task1["fast", 2 * S] == pytest.approx(b1 ** S * (1 - b1 ** S), rel=1e-4)
    assert task1["slow", 3 * S] > 10 * task1["fast", 3 * S]
    shares = frame[frame["step"] == 3 * S].groupby("buffer")["share"].sum()
    assert shares.to_numpy() == pytest.approx([1.0, 1.0])
    G = task_directions(3)
    assert torch.allclose(torch.einsum("ixy,jxy->ij", G, G), torch.eye(3), atol=1e-5)


def test_trajectories_descend_and_muon_walks_at_constant_speed():
    specs = {"adam": AdamSpec(lr=0.05), "muon": MuonSpec(lr=0.05), "m3": M3Spec(lr=0.05)}
    paths = trajectories(SurfaceSpec(surface="valley", steps=60), specs)
    for name, path in paths.groupby("optimizer"):
        assert path["loss"].iloc[-1] < 0.2 * path["loss"].iloc[0], name
    adam = paths[paths["optimizer"] == "adam"]
    first = math.hypot(adam["x"].iloc[1] - adam["x"].iloc[0], adam["y"].iloc[1] - adam["y"].iloc[0])
    assert first == pytest.approx(0.05 * math.sqrt(2), rel=1e-4)        # Adam's first step: lr·sign(g)
    muon = paths[paths["optimizer"] == "muon"]
    steps = (muon[["x", "y"]].diff().dropna() ** 2).sum(axis=1) ** 0.5
    assert steps.between(0.5 * 0.05, 1.2 * 0.05).all()                  # NS on one vector only normalises
    grid = surface_grid("valley", n=10)
    assert len(grid) == 100 and grid["loss"].min() >= 0
