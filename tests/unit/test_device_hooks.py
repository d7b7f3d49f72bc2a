"""Device choice (lab.device) and hook points (lab.hooks) on the real models."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lab import device as dev
from lab.device import DeviceError, describe, device_name, get_device, set_device
from lab.hooks import HookPoint, capture, hook_points, name_hook_points
from lab.models import build_model

torch.set_num_threads(1)   # tiny tensors: one thread is faster, and robust to a busy machine


# --- device -----------------------------------------------------------------------------------

@pytest.fixture
def clean_device(monkeypatch):
    monkeypatch.delenv(dev.ENV_VAR, raising=False)
    set_device(None)
    yield monkeypatch
    set_device(None)


def test_env_var_selects_cpu(clean_device):
    clean_device.setenv("NLL_DEVICE", "cpu")
    assert get_device() == torch.device("cpu")
    assert describe()["type"] == "cpu"


def test_set_device_overrides_env(clean_device):
    clean_device.setenv("NLL_DEVICE", "definitely-not-a-device")
    with pytest.raises(DeviceError):
        get_device()
    set_device("cpu")
    assert get_device() == torch.device("cpu")
    set_device(None)
    with pytest.raises(DeviceError):
        get_device()


@pytest.mark.parametrize("name", ["tpu", "gpu0", "cuda:x", "", "meta"])
def test_unknown_device_raises_device_error(clean_device, name):
    with pytest.raises(DeviceError):
        set_device(name)


def test_failed_set_device_keeps_previous_choice(clean_device):
    set_device("cpu")
    with pytest.raises(DeviceError):
        set_device("tpu")
    clean_device.setenv("NLL_DEVICE", "tpu")
    assert get_device() == torch.device("cpu")


def test_env_var_unknown_device_raises(clean_device):
    clean_device.setenv("NLL_DEVICE", "quantum")
    with pytest.raises(DeviceError, match="quantum"):
        get_device()


def test_automatic_choice_without_request(clean_device):
    expected = "cuda" if torch.cuda.is_available() else (
        "mps" if hasattr(torch.backends, "mps") and torch.backends.mps.is_available() else "cpu")
    assert get_device().type == expected


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
@pytest.mark.parametrize("name", ["cuda", "cuda:1"])
def test_cuda_without_cuda_is_a_clear_error(clean_device, name):
    with pytest.raises(DeviceError, match="CUDA is not available"):
        set_device(name)
    clean_device.setenv("NLL_DEVICE", name)
    with pytest.raises(DeviceError, match="CUDA is not available"):
        get_device()


def test_device_name_of_cpu(clean_device):
    name = device_name(torch.device("cpu"))
    assert name.startswith("CPU") and str(torch.get_num_threads()) in name
    assert set(describe()) == {"type", "name", "torch"}


# --- naming -----------------------------------------------------------------------------------

class Level(nn.Module):
    def __init__(self):
        super().__init__()
        self.hook_out = HookPoint()
        self.hook_hidden = HookPoint()


class Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.levels = nn.ModuleList([Level(), Level()])
        self.hook_embed = HookPoint()
        self.memory = nn.Module()
        self.memory.hook_surprise = HookPoint()


def test_name_hook_points_paths():
    toy = Toy()
    names = name_hook_points(toy)
    assert set(names) == {"levels.0.hook_out", "levels.0.hook_hidden", "levels.1.hook_out", "levels.1.hook_hidden", "hook_embed",
                          "memory.hook_surprise"}
    assert toy.levels[1].hook_out.name == "levels.1.hook_out"
    assert set(hook_points(toy)) == set(names)
    assert "levels.1.hook_out" in repr(toy.levels[1].hook_out)


def _names(model):
    return set(name_hook_points(model))


def test_transformer_hook_names():
    model = build_model("transformer", preset="tiny", vocab_size=20, n_layers=2)
    expected = {"hook_embed", "hook_final"}
    for i in range(2):
        expected |= {f"blocks.{i}.{n}" for n in ("attn.hook_pattern", "attn.hook_out", "hook_resid", "cms.hook_out",
                                                 "cms.levels.0.hook_hidden", "cms.levels.0.hook_out")}
    assert _names(model) == expected
    assert set(model.hook_names) == expected


def test_hope_hook_names():
    model = build_model("hope", preset="tiny", vocab_size=20, n_layers=2)
    names = _names(model)
    for i in range(2):
        for lvl in range(3):
            assert f"blocks.{i}.cms.levels.{lvl}.hook_out" in names
            assert f"blocks.{i}.cms.levels.{lvl}.hook_hidden" in names
        for n in ("titans.hook_out", "titans.memory.hook_eta", "titans.memory.hook_alpha", "titans.memory.hook_surprise",
                  "titans.memory.hook_out", "cms.hook_out", "hook_resid"):
            assert f"blocks.{i}.{n}" in names
    assert "blocks.0.cms.levels.1.hook_out" in names
    modules = {path for path, _ in model.named_modules()}        # a hook point is named by its module path,
    assert names <= modules and all(n.split(".")[-1].startswith("hook_") for n in names)   # as a parameter is


# --- capture ----------------------------------------------------------------------------------

B, T, V = 2, 7, 20


def tokens(seed=0, T=T):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, V, (B, T), generator=g)


def test_capture_shapes_transformer():
    torch.manual_seed(0)
    model = build_model("transformer", preset="tiny", vocab_size=V, n_layers=2)
    c = model.config
    D, H, hidden = c.d_model, c.n_heads, c.cms_hidden[0]
    with capture(model) as cache:
        model(tokens())
    assert set(cache) == set(model.hook_names)
    assert cache["hook_embed"].shape == (B, T, D)
    assert cache["hook_final"].shape == (B, T, D)
    assert cache["blocks.1.attn.hook_pattern"].shape == (B, H, T, T)
    assert cache["blocks.0.attn.hook_out"].shape == (B, T, D)
    assert cache["blocks.0.cms.levels.0.hook_hidden"].shape == (B, T, hidden)
    assert cache["blocks.0.cms.levels.0.hook_out"].shape == (B, T, D)
    assert cache["blocks.1.hook_resid"].shape == (B, T, D)
    assert not any(t.requires_grad for t in cache.values())


def test_capture_shapes_hope():
    torch.manual_seed(0)
    model = build_model("hope", preset="tiny", vocab_size=V, n_layers=1)
    c = model.config
    D, H = c.d_model, c.n_heads
    with capture(model, lambda n: n.startswith("blocks.0")) as cache:
        model(tokens())
    assert "hook_embed" not in cache and "blocks.0.cms.levels.2.hook_out" in cache
    for lvl, hidden in enumerate(c.cms_hidden):
        assert cache[f"blocks.0.cms.levels.{lvl}.hook_hidden"].shape == (B, T, hidden)
        assert cache[f"blocks.0.cms.levels.{lvl}.hook_out"].shape == (B, T, D)
    for n in ("eta", "alpha", "surprise"):
        assert cache[f"blocks.0.titans.memory.hook_{n}"].shape == (B, H, T)
    assert cache["blocks.0.titans.memory.hook_out"].shape == (B, H, T, D // H)
    assert cache["blocks.0.titans.hook_out"].shape == (B, T, D)
    eta = cache["blocks.0.titans.memory.hook_eta"]
    assert ((eta > 0) & (eta < c.eta_max)).all()
    alpha = cache["blocks.0.titans.memory.hook_alpha"]
    assert ((alpha > 0) & (alpha < 1)).all()


def test_capture_values_are_the_intermediates():
    """The cached CMS level output is what the level adds: resid = x + level(x) for one level."""
    torch.manual_seed(1)
    model = build_model("transformer", preset="tiny", vocab_size=V, n_layers=1)
    with capture(model, ["hook_embed", "blocks.0.attn.hook_out", "blocks.0.cms.levels.0.hook_out", "blocks.0.hook_resid",
                         "hook_final"]) as cache:
        logits = model(tokens())
    x = cache["hook_embed"] + cache["blocks.0.attn.hook_out"]
    torch.testing.assert_close(cache["blocks.0.hook_resid"], x + cache["blocks.0.cms.levels.0.hook_out"])
    torch.testing.assert_close(cache["hook_final"], F.layer_norm(cache["blocks.0.hook_resid"], (model.config.d_model,),
                                                            model.ln_f.weight, model.ln_f.bias))
    torch.testing.assert_close(logits, cache["hook_final"] @ model.tok_emb.weight.T)


def test_unknown_hook_name_raises_key_error_listing_known():
    model = build_model("transformer", preset="tiny", vocab_size=V, n_layers=1)
    with pytest.raises(KeyError) as info:
        with capture(model, ["hook_embed", "blocks.0.cms.levels.7.hook_out"]):
            pass
    assert "blocks.0.cms.levels.7.hook_out" in str(info.value) and "blocks.0.cms.levels.0.hook_out" in str(info.value)
    assert all(not p._forward_hooks for p in hook_points(model).values())


def test_capture_removes_its_hooks():
    model = build_model("transformer", preset="tiny", vocab_size=V, n_layers=1)
    with capture(model) as cache:
        model(tokens())
    assert cache
    assert all(not p._forward_hooks for p in hook_points(model).values())
    with pytest.raises(RuntimeError):
        with capture(model):
            raise RuntimeError("boom")
    assert all(not p._forward_hooks for p in hook_points(model).values())


# --- the attention pattern ---------------------------------------------------------------------

@pytest.mark.parametrize("window", [0, 3])
def test_attention_pattern_is_causal_softmax_and_does_not_change_outputs(window):
    torch.manual_seed(2)
    model = build_model("transformer", preset="tiny", vocab_size=V, n_layers=2, window=window)
    model.eval()
    toks = tokens(3, T=9)
    with capture(model, ["hook_embed", "blocks.0.attn.hook_out", "blocks.1.attn.hook_out"]) as plain:
        logits_plain = model(toks)
    with capture(model, ["hook_embed", "blocks.0.attn.hook_pattern", "blocks.1.attn.hook_pattern", "blocks.0.attn.hook_out",
                         "blocks.1.attn.hook_out"]) as cache:
        logits_pattern = model(toks)
    torch.testing.assert_close(logits_pattern, logits_plain, rtol=1e-5, atol=1e-6)
    for i in range(2):
        torch.testing.assert_close(cache[f"blocks.{i}.attn.hook_out"], plain[f"blocks.{i}.attn.hook_out"],
                                   rtol=1e-5, atol=1e-6)
        pattern = cache[f"blocks.{i}.attn.hook_pattern"]
        Tn = toks.shape[1]
        torch.testing.assert_close(pattern.sum(-1), torch.ones(B, model.config.n_heads, Tn))
        t_idx, s_idx = torch.meshgrid(torch.arange(Tn), torch.arange(Tn), indexing="ij")
        forbidden = (s_idx > t_idx) | ((t_idx - s_idx >= window) if window else torch.zeros_like(s_idx, dtype=bool))
        assert (pattern[..., forbidden] == 0).all()
        assert (pattern[..., ~forbidden] > 0).all()

    # block 0's pattern by hand from the embedding: softmax(q kᵀ / √d) over the allowed keys
    attn = model.blocks[0].attn
    h = model.blocks[0].norm(cache["hook_embed"])
    H = model.config.n_heads
    d = model.config.d_model // H
    q, k, v = attn.qkv(h).split(model.config.d_model, dim=-1)
    q, k = (z.view(B, -1, H, d).transpose(1, 2) for z in (q, k))
    scores = q @ k.transpose(-1, -2) / math.sqrt(d)
    Tn = toks.shape[1]
    t_idx, s_idx = torch.meshgrid(torch.arange(Tn), torch.arange(Tn), indexing="ij")
    allowed = (s_idx <= t_idx) & ((t_idx - s_idx < window) if window else True)
    expected = torch.softmax(scores.masked_fill(~allowed, float("-inf")), -1)
    torch.testing.assert_close(cache["blocks.0.attn.hook_pattern"], expected.detach(), rtol=1e-5, atol=1e-6)


def test_attention_hook_does_not_break_gradients():
    torch.manual_seed(4)
    model = build_model("transformer", preset="tiny", vocab_size=V, n_layers=1)
    toks = tokens(5)
    model(toks).square().mean().backward()
    g_plain = model.blocks[0].attn.qkv.weight.grad.clone()
    model.zero_grad()
    with capture(model, ["blocks.0.attn.hook_pattern"]):
        model(toks).square().mean().backward()
    torch.testing.assert_close(model.blocks[0].attn.qkv.weight.grad, g_plain, rtol=1e-4, atol=1e-7)
