"""The Titans model (lab.models.titans): shapes, causality, hooks, modes, size, and that it learns."""
import pytest
import torch
import torch.nn.functional as F

from lab.config import ConfigError
from lab.hooks import capture
from lab.models.titans import Titans, TitansConfig
from lab.models.transformer import Transformer, TransformerConfig
from lab.models.cms import levels

V = 60
VARIANTS = ("mag", "mac")


def small(variant, **kw):
    kw = {"vocab_size": V, "d_model": 32, "n_heads": 4, "cms_levels": levels((1,), (32,)), **kw}
    return TitansConfig(variant=variant, **kw)


def tokens(B=2, T=24, seed=0):
    return torch.randint(0, V, (B, T), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("variant", VARIANTS)
def test_output_shape(variant):
    torch.manual_seed(0)
    model = Titans(TitansConfig(vocab_size=V, variant=variant))
    assert model.family == "titans"
    logits = model(tokens(3, 20))
    assert logits.shape == (3, 20, V)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("mode", ("chunk", "token"))
def test_causal(variant, mode):
    torch.manual_seed(0)
    # segment 5, chunk 3, window 4: boundaries fall inside segments, chunks and windows
    model = Titans(small(variant, segment=5, memory_chunk=3, window=4, memory_mode=mode)).double()
    x = tokens(2, 17)
    base = model(x)
    for t in (0, 3, 7, 11):
        changed = x.clone()
        changed[:, t + 1:] = (changed[:, t + 1:] + 1 + torch.arange(17 - t - 1)) % V
        out = model(changed)
        assert torch.allclose(out[:, :t + 1], base[:, :t + 1], atol=1e-10, rtol=0), (variant, t)
        assert not torch.allclose(out[:, t + 1:], base[:, t + 1:], atol=1e-6), "the change must matter"


@pytest.mark.parametrize("variant", VARIANTS)
def test_deterministic_under_seed(variant):
    outs = []
    for _ in range(2):
        torch.manual_seed(123)
        outs.append(Titans(small(variant))(tokens()))
    assert torch.equal(outs[0], outs[1])
    torch.manual_seed(124)
    assert not torch.allclose(Titans(small(variant))(tokens()), outs[0])


@pytest.mark.parametrize("variant", VARIANTS)
def test_gates_in_unit_interval_and_hooked(variant):
    torch.manual_seed(0)
    config = small(variant, theta_max=0.1)
    model = Titans(config)
    names = [f"blocks.{i}.{g}" for i in range(config.n_layers) for g in ("hook_alpha", "hook_eta", "hook_theta")]
    with capture(model, names + ["blocks.0.memory.hook_surprise", "blocks.1.memory.hook_out"]) as cache:
        model(tokens(2, 19))
    for name in names:
        g = cache[name]
        assert g.shape == (2, config.n_heads, 19), name
        assert (g > 0).all() and (g < 1).all(), name
        if name.endswith("theta"):
            assert (g <= config.theta_max).all()
    assert cache["blocks.0.memory.hook_surprise"].shape == (2, config.n_heads, 19)
    assert cache["blocks.1.memory.hook_out"].shape == (2, config.n_heads, 19, config.d_model // config.n_heads)
    for path in ("blocks.0.memory", "blocks.0.attn", "blocks.0.cms", "blocks.1.memory"):
        assert path in dict(model.named_modules())


@pytest.mark.parametrize("variant", VARIANTS)
def test_persistent_tokens_matter(variant):
    torch.manual_seed(0)
    model = Titans(small(variant, n_persistent=4))
    x = tokens()
    base = model(x)
    with torch.no_grad():
        for block in model.blocks:
            assert block.attn.persistent.shape == (4, 32)
            block.attn.persistent.zero_()
    assert not torch.allclose(model(x), base, atol=1e-5)
    torch.manual_seed(0)
    assert Titans(small(variant, n_persistent=0))(x).shape == base.shape


@pytest.mark.parametrize("variant", VARIANTS)
def test_chunk_of_one_equals_token_mode(variant):
    torch.manual_seed(0)
    chunked = Titans(small(variant, memory_mode="chunk", memory_chunk=1))
    per_token = Titans(small(variant, memory_mode="token", memory_chunk=1))
    per_token.load_state_dict(chunked.state_dict())
    x = tokens(2, 21)
    assert torch.allclose(chunked(x), per_token(x), atol=1e-5, rtol=1e-4)
    # and chunks of 8 do differ: gradients inside a chunk are taken at the chunk-start memory
    coarse = Titans(small(variant, memory_mode="chunk", memory_chunk=8, theta_max=1.0))
    exact = Titans(small(variant, memory_mode="token", memory_chunk=8, theta_max=1.0))
    exact.load_state_dict(coarse.state_dict())
    assert not torch.allclose(coarse(x), exact(x), atol=1e-6)


@pytest.mark.parametrize("field, value", [
    ("variant", "mal"), ("n_persistent", 65), ("n_persistent", -1), ("window", 0), ("segment", 0),
    ("memory_depth", 5), ("memory_mode", "scan"), ("memory_chunk", 0), ("theta_max", 1.5),
    ("alpha_init", 0.0), ("eta_init", 1.0), ("conv_kernel", 0),
])
def test_config_validation_names_the_field(field, value):
    with pytest.raises(ConfigError) as err:
        TitansConfig(**{field: value})
    assert err.value.field == field
    assert field in str(err.value)


def test_config_round_trip_and_from_dict():
    config = TitansConfig(vocab_size=70, variant="mac", segment=6)
    assert TitansConfig.from_dict(config.to_dict()) == config
    assert TitansConfig.from_dict({"memory_depth": "3", "theta_max": "0.05"}).memory_depth == 3
    with pytest.raises(ConfigError):
        TitansConfig(d_model=30, n_heads=4)          # inherited cross-field check


@pytest.mark.parametrize("vocab", (60, 100, 120))
@pytest.mark.parametrize("variant", VARIANTS)
def test_parameter_count_close_to_transformer(vocab, variant):
    titans = Titans(TitansConfig(vocab_size=vocab, variant=variant)).n_params()
    transformer = Transformer(TransformerConfig(vocab_size=vocab)).n_params()
    assert abs(titans / transformer - 1) <= 0.15, (titans, transformer)


@pytest.mark.parametrize("variant", VARIANTS)
def test_overfits_one_batch(variant):
    torch.manual_seed(0)
    model = Titans(small(variant, segment=6))
    x = tokens(4, 25, seed=3)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)

    def loss():
        logits = model(x[:, :-1])
        return F.cross_entropy(logits.reshape(-1, V), x[:, 1:].reshape(-1))

    first = loss().item()
    for _ in range(40):
        opt.zero_grad()
        value = loss()
        value.backward()
        opt.step()
    last = loss().item()
    assert last < 0.6 * first, (first, last)


@pytest.mark.parametrize("variant", VARIANTS)
def test_forward_backward_batch_16_by_64(variant):
    torch.manual_seed(0)
    model = Titans(TitansConfig(vocab_size=V, variant=variant))
    x = tokens(16, 65)
    logits = model(x[:, :-1])
    F.cross_entropy(logits.reshape(-1, V), x[:, 1:].reshape(-1)).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert model.blocks[0].memory.init_weights[0].grad.abs().sum() > 0   # learned memory init is trained


# --- banded window attention (issue 15) ---------------------------------------------------------

@pytest.mark.parametrize("T,window,persistent", [(9, 8, 4), (37, 8, 4), (64, 1, 0), (100, 16, 2), (5, 8, 0)])
def test_banded_window_attention_equals_the_masked_product(T, window, persistent):
    """PersistentAttention.windowed against the full (T × T) masked attention: outputs and gradients."""
    from lab.models.titans import PersistentAttention
    from lab.models.transformer import causal_mask
    torch.manual_seed(0)
    att = PersistentAttention(32, 4, persistent)
    x = torch.randn(3, T, 32, requires_grad=True)
    full = att(x, x, causal_mask(T, window, x.device))
    (full * torch.linspace(-1, 1, 32)).sum().backward()
    g_full = [x.grad.clone()] + [p.grad.clone() for p in att.parameters()]
    x.grad = None
    att.zero_grad()
    band = att.windowed(x, window)
    (band * torch.linspace(-1, 1, 32)).sum().backward()
    assert torch.allclose(band, full, atol=1e-6)
    for a, b in zip([x.grad] + [p.grad for p in att.parameters()], g_full):
        assert torch.allclose(a, b, atol=1e-5)


def test_mag_block_uses_bands_on_long_sequences_with_the_same_output(monkeypatch):
    from lab.models import titans
    torch.manual_seed(0)
    model = Titans(TitansConfig(vocab_size=32, window=4))
    tokens = torch.randint(0, 32, (2, 40))                    # 40 > BANDED_FROM · 4: banded
    used = []
    original = titans.PersistentAttention.windowed
    monkeypatch.setattr(titans.PersistentAttention, "windowed", lambda self, x, w: used.append(w) or original(self, x, w))
    banded = model(tokens)
    assert used and set(used) == {4}
    monkeypatch.setattr(titans, "BANDED_FROM", 10_000)        # force the full masked product
    used.clear()
    full = model(tokens)
    assert not used and torch.allclose(banded, full, atol=1e-5)
