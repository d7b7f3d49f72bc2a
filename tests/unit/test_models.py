"""The model families through the registry: shapes, causality, determinism, sizes; Transformer
and HOPE specifics. (Titans has its own tests; here it only runs through the registry.)"""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from lab.config import ConfigError
from lab.hooks import capture
from lab.engine import Run
from lab.models import MODELS, PRESETS, build_model, default_config, family_of, model_table, scaled_config
from lab.run_config import RunConfig
from lab.models.base import LabModel, ModelConfig
from lab.models.hope import CausalConv, Hope, HopeConfig
from lab.models.transformer import Transformer, TransformerConfig, causal_mask
from lab.models.cms import levels

torch.set_num_threads(1)
V = 23


def toks(B=2, T=20, seed=0, vocab=V):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, vocab, (B, T), generator=g)


# --- registry -----------------------------------------------------------------------------------

def test_registry_names_and_types():
    assert set(MODELS) == {"transformer", "titans", "hope"}
    for name, (config_cls, model_cls) in MODELS.items():
        assert issubclass(config_cls, ModelConfig) and issubclass(model_cls, LabModel)
        model = build_model(name, preset="tiny", vocab_size=V)
        assert type(model) is model_cls and type(model.config) is config_cls
        assert model.family == name and family_of(model.config) == name
        assert model.config.vocab_size == V


def test_build_from_config_and_overrides():
    cfg = HopeConfig(vocab_size=V, d_model=16, n_heads=2, cms_levels=levels((1, 4), (8, 8)))
    model = build_model(cfg)
    assert isinstance(model, Hope) and model.config == cfg
    model = build_model(cfg, n_layers=1)
    assert model.config.n_layers == 1 and len(model.blocks) == 1 and model.config.d_model == 16
    with pytest.raises(TypeError):
        build_model(ModelConfig())
    with pytest.raises(TypeError):
        family_of(ModelConfig())
    with pytest.raises(ConfigError):
        build_model(cfg, d_model=15)


def test_unknown_names_and_presets():
    with pytest.raises(ConfigError) as info:
        build_model("gpt2")
    assert "gpt2" in str(info.value) and "hope" in str(info.value)
    with pytest.raises(ConfigError) as info:
        default_config("hope", preset="huge")
    assert "huge" in str(info.value) and "tiny" in str(info.value)
    with pytest.raises(ConfigError):
        default_config("hope", bogus=1)


@pytest.mark.parametrize("name", list(MODELS))
def test_presets_scale_width(name):
    base = MODELS[name][0]()
    for preset, scale in PRESETS.items():
        cfg = default_config(name, preset=preset, vocab_size=V)
        assert cfg.d_model == int(base.d_model * scale)
        assert cfg.cms_hidden == tuple(max(4, int(h * scale)) for h in base.cms_hidden)
        assert cfg.cms_chunk_tokens == base.cms_chunk_tokens
    assert default_config(name, vocab_size=V, d_model=32).d_model == 32


@pytest.mark.parametrize("name", list(MODELS))
def test_a_scale_beyond_the_presets_widens_like_them(name):
    """The bench's size scan (lab.bench.live_sizes): a preset is its scale, and a run at a scale
    builds that width."""
    for preset, scale in PRESETS.items():
        assert scaled_config(name, scale, vocab_size=V) == default_config(name, preset, vocab_size=V)
        assert (RunConfig(model=name).model_config(V, 9, scale=scale)
                == RunConfig(model=name, preset=preset).model_config(V, 9))
    assert scaled_config(name, 4, vocab_size=V).d_model == 4 * MODELS[name][0]().d_model
    assert Run(RunConfig(model=name, preset="tiny"), scale=3).model.config.d_model == 3 * MODELS[name][0]().d_model
    for bad in (0, -1.0):
        with pytest.raises(ConfigError, match="scale"):
            scaled_config(name, bad)
    with pytest.raises(ConfigError, match="d_model"):                  # wider than the width's bound
        scaled_config(name, 64)


def test_default_parameter_counts_are_comparable():
    counts = {name: build_model(name, vocab_size=78).n_params() for name in MODELS}
    for name, n in counts.items():
        assert n == sum(p.numel() for p in build_model(name, vocab_size=78).parameters())
    lo, hi = min(counts.values()), max(counts.values())
    assert hi <= 1.15 * lo, counts


def test_model_table():
    rows = model_table(vocab_size=30, preset="tiny")
    assert [r["name"] for r in rows] == list(MODELS)
    for r in rows:
        model = build_model(r["name"], preset="tiny", vocab_size=30)
        assert r["params"] == model.n_params()
        assert r["cms_levels"] == len(r["cms_chunk_tokens"]) == model.config.n_levels


# --- every family -------------------------------------------------------------------------------

CAUSAL_CASES = [(name, {}) for name in MODELS] + [
    ("titans", {"variant": "mac"}),
    ("titans", {"memory_mode": "token"}),
    ("transformer", {"window": 4}),
    ("hope", {"memory_chunk": 1}),
    ("hope", {"cms_variant": "independent"}),
]


@pytest.mark.parametrize("name,overrides", CAUSAL_CASES, ids=[f"{n}-{o}" for n, o in CAUSAL_CASES])
def test_causality(name, overrides):
    """Outputs at positions ≤ t do not change when the tokens after t change."""
    torch.manual_seed(0)
    model = build_model(name, preset="tiny", vocab_size=V, **overrides).double().eval()
    T = 20
    x = toks(T=T)
    with torch.no_grad():
        y = model(x)
        for t in (0, 3, 7, 8, 12, 18):
            x2 = x.clone()
            x2[:, t + 1:] = (x[:, t + 1:] + 1 + toks(T=T - t - 1, seed=t + 1, vocab=V - 1)) % V
            assert (x2[:, t + 1:] != x[:, t + 1:]).all()
            y2 = model(x2)
            torch.testing.assert_close(y2[:, :t + 1], y[:, :t + 1], rtol=0, atol=1e-10)
            assert (y2[:, t + 1:] - y[:, t + 1:]).abs().max() > 1e-6


@pytest.mark.parametrize("name", list(MODELS))
def test_build_and_forward_are_deterministic(name):
    outs = []
    for _ in range(2):
        torch.manual_seed(7)
        model = build_model(name, preset="tiny", vocab_size=V)
        outs.append((model.state_dict(), model(toks(seed=3))))
    (sd1, y1), (sd2, y2) = outs
    assert sd1.keys() == sd2.keys()
    for k in sd1:
        assert torch.equal(sd1[k], sd2[k]), k
    assert torch.equal(y1, y2)
    torch.manual_seed(8)
    other = build_model(name, preset="tiny", vocab_size=V)
    assert not torch.equal(other(toks(seed=3)), y1)


@pytest.mark.parametrize("name", list(MODELS))
def test_output_shape_and_token_checks(name):
    model = build_model(name, preset="tiny", vocab_size=V, max_len=16)
    assert model(toks(B=3, T=11)).shape == (3, 11, V)
    with pytest.raises(ValueError, match="max_len"):
        model(toks(T=17))
    with pytest.raises(ValueError, match="token ids"):
        model(torch.full((1, 4), V, dtype=torch.long))
    with pytest.raises(ValueError, match="token ids"):
        model(torch.full((1, 4), -1, dtype=torch.long))
    with pytest.raises(ValueError, match="integer"):
        model(torch.zeros(1, 4))
    with pytest.raises(ValueError):
        model(torch.zeros(4, dtype=torch.long))


@pytest.mark.parametrize("name", ["transformer", "hope"])
def test_every_parameter_gets_a_finite_gradient(name):
    torch.manual_seed(1)
    model = build_model(name, preset="tiny", vocab_size=V, cms_variant="independent")
    logits = model(toks(T=12))
    F.cross_entropy(logits.reshape(-1, V), toks(T=12, seed=9).reshape(-1)).backward()
    for n, p in model.named_parameters():
        assert p.grad is not None, n
        assert torch.isfinite(p.grad).all(), n
        if not n.startswith("pos_emb") and not (n.endswith("mix_logits") and p.numel() == 1):
            assert p.grad.abs().max() > 0, n


@pytest.mark.parametrize("name", ["transformer", "titans", "hope"])
def test_model_deep_copies_after_a_training_step(name):
    torch.manual_seed(2)
    model = build_model(name, preset="tiny", vocab_size=V)
    model(toks()).sum().backward()
    clone = copy.deepcopy(model)
    torch.testing.assert_close(clone(toks(seed=5)), model(toks(seed=5)))


# --- Transformer ----------------------------------------------------------------------------------

def test_causal_mask_by_hand():
    m = causal_mask(5, 0, "cpu")
    assert m.tolist() == [[j <= i for j in range(5)] for i in range(5)]
    m = causal_mask(5, 2, "cpu")
    assert m.tolist() == [[i - 2 < j <= i for j in range(5)] for i in range(5)]


def test_transformer_is_a_one_level_cms():
    model = build_model("transformer", vocab_size=V)
    assert isinstance(model, Transformer) and isinstance(model.config, TransformerConfig)
    assert model.config.n_levels == 1 and model.config.cms_chunk_tokens == (1,)
    assert all(len(cms.levels) == 1 for cms in model.cms_modules())


def test_window_limits_what_attention_sees():
    torch.manual_seed(3)
    full = build_model("transformer", preset="tiny", vocab_size=V, n_layers=1).eval()
    windowed = build_model("transformer", preset="tiny", vocab_size=V, n_layers=1, window=3).eval()
    windowed.load_state_dict(full.state_dict())
    x = toks(T=10)
    with torch.no_grad():
        a, b = full(x), windowed(x)
    torch.testing.assert_close(a[:, :3], b[:, :3], rtol=1e-5, atol=1e-6)   # windows not yet full: same
    assert (a[:, 3:] - b[:, 3:]).abs().max() > 1e-5
    # with one layer, position t of the windowed model ignores token t−3 entirely
    x2 = x.clone()
    x2[:, 2] = (x[:, 2] + 1) % V
    with torch.no_grad():
        torch.testing.assert_close(windowed(x2)[:, 5:], b[:, 5:], rtol=1e-5, atol=1e-6)
        assert (full(x2)[:, 5:] - a[:, 5:]).abs().max() > 1e-5


def test_transformer_head_is_tied_to_embedding():
    model = build_model("transformer", preset="tiny", vocab_size=V, n_layers=1)
    with capture(model, ["hook_final"]) as cache:
        logits = model(toks())
    torch.testing.assert_close(logits, cache["hook_final"] @ model.tok_emb.weight.T)


# --- HOPE -------------------------------------------------------------------------------------------

def test_hope_defaults():
    cfg = HopeConfig()
    assert cfg.cms_chunk_tokens == (128, 512, 2048) and cfg.n_levels == 3
    model = build_model("hope", vocab_size=V)
    for block in model.blocks:
        assert block.titans.conv.conv.kernel_size == (4,)
        assert block.titans.memory.chunk_size == cfg.memory_chunk
        assert block.titans.memory.eta_max == cfg.eta_max


def test_causal_conv_by_hand():
    torch.manual_seed(4)
    conv = CausalConv(3, kernel=4)
    x = torch.randn(2, 7, 3)
    y = conv(x)
    w, b = conv.conv.weight[:, 0], conv.conv.bias        # (3, 4): tap j sees x_{t−3+j}
    expected = torch.zeros_like(y)
    for t in range(7):
        acc = b.clone()
        for j in range(4):
            s = t - 3 + j
            if s >= 0:
                acc = acc + w[:, j] * x[:, s]
        expected[:, t] = acc
    torch.testing.assert_close(y, expected)


def test_hope_block_structure_through_hooks():
    """resid = CMS(x + titans(LN(x))) for the first block."""
    torch.manual_seed(5)
    model = build_model("hope", preset="tiny", vocab_size=V, n_layers=1).eval()
    with torch.no_grad(), capture(model, ["hook_embed", "blocks.0.titans.hook_out", "blocks.0.hook_resid"]) as cache:
        model(toks(T=9))
    block = model.blocks[0]
    with torch.no_grad():
        torch.testing.assert_close(block.titans(block.norm(cache["hook_embed"])), cache["blocks.0.titans.hook_out"])
        torch.testing.assert_close(block.cms(cache["hook_embed"] + cache["blocks.0.titans.hook_out"]), cache["blocks.0.hook_resid"])


def test_hope_memory_chunk_changes_the_computation():
    torch.manual_seed(6)
    exact = build_model("hope", preset="tiny", vocab_size=V, memory_chunk=1).eval()
    chunked = build_model("hope", preset="tiny", vocab_size=V, memory_chunk=8).eval()
    chunked.load_state_dict(exact.state_dict())
    with torch.no_grad():
        a, b = exact(toks()), chunked(toks())
    torch.testing.assert_close(a[:, :1], b[:, :1], rtol=1e-5, atol=1e-6)
    assert (a - b).abs().max() > 1e-6
