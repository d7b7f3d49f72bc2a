"""The registry of stream kinds (lab.tasks.registry): one entry per task family, read by KINDS, the
config, build_stream, the CLI and the forms; the earlier kinds' streams unchanged to the bit."""
import ast
import hashlib
from pathlib import Path

import pytest
import torch

from lab.config import ConfigError
from lab.tasks import KINDS, StreamConfig, build_stream, registry
from lab.tasks.registry import Anchor, anchors, get_kind, kind_names, kinds, labels, register_kind, unregister_kind

ROOT = Path(__file__).resolve().parents[2]
EXPECTED = ("languages", "recall", "two_languages", "split_digits", "permuted_digits", "tracking")


def test_every_family_is_registered_once_in_menu_order():
    assert KINDS == kind_names() == EXPECTED          # the earlier three first: the default and the menus
    by_module = {k.name: registry._ORIGINS[k.name] for k in kinds()}
    assert by_module == {"languages": "lab.tasks.languages", "recall": "lab.tasks.recall",
                         "two_languages": "lab.tasks.two_languages", "split_digits": "lab.tasks.digits",
                         "permuted_digits": "lab.tasks.digits", "tracking": "lab.tasks.tracking"}
    for k in kinds():
        assert k.problems() == [] and k.label and k.doc and k.name in StreamConfig.field_specs()[0]["doc"]
        assert set(k.fields) <= {f["name"] for f in StreamConfig.field_specs()}
    registry.discover()                                # idempotent
    assert kind_names() == EXPECTED


def test_config_choices_cli_and_forms_follow_the_registry(capsys):
    spec = next(s for s in StreamConfig.field_specs() if s["name"] == "kind")
    assert spec["choices"] == KINDS
    from lab.cli import main

    for command in ("train", "forget", "sleep"):             # the CLI's --task offers every kind
        with pytest.raises(SystemExit):
            main([command, "--task", "no_such_kind", "--out", "unused"])
        err = capsys.readouterr().err
        offered = err.split("choose from")[1].strip(" ()\n").replace("'", "").split(", ")
        assert tuple(offered) == KINDS
    for form in ("app/components/setup_form.py", "app/components/forgetting_form.py"):
        tree = ast.parse((ROOT / form).read_text())
        found = [ast.literal_eval(node.value) for node in ast.walk(tree) if isinstance(node, ast.Assign)
                 and any(getattr(t, "id", "") == "STREAM_LABELS" for t in node.targets)]
        assert found == [labels()], f"{form}: STREAM_LABELS must give every kind its registered label"


def test_register_refuses_incomplete_and_duplicate_entries():
    with pytest.raises(ValueError, match="identifier"):
        register_kind("not a name", lambda cfg: None, "label", "doc")
    with pytest.raises(ValueError, match="max_tasks"):
        register_kind("toy_kind", lambda cfg: None, "label", "doc", max_tasks=99)
    with pytest.raises(ValueError, match="label and a doc"):
        register_kind("toy_kind", lambda cfg: None, " ", "doc")
    try:
        entry = register_kind("toy_kind", lambda cfg: None, "toy", "a toy", order=999)
        assert get_kind("toy_kind") is entry and kind_names()[-1] == "toy_kind"
        assert register_kind("toy_kind", lambda cfg: None, "toy again", "a toy").label == "toy again"  # reload
        with pytest.raises(RuntimeError, match="two stream kinds"):
            register_kind("tracking", lambda cfg: None, "clash", "a clash")
    finally:
        unregister_kind("toy_kind")
    assert "toy_kind" not in kind_names()
    with pytest.raises(KeyError, match="registered: languages"):
        get_kind("vision")


def test_build_stream_dispatches_through_the_registry(monkeypatch):
    built = []
    real = get_kind("recall")

    def spy(cfg):
        built.append(cfg)
        return real.build(cfg)

    monkeypatch.setitem(registry._KINDS, "recall", real.__class__(**{**real.__dict__, "build": spy}))
    s = build_stream(StreamConfig(kind="recall", n_tasks=2))
    assert len(built) == 1 and built[0].kind == "recall" and len(s.tasks) == 2

    def wrong(cfg):
        return real.build(cfg.replace(n_tasks=1))

    monkeypatch.setitem(registry._KINDS, "recall", real.__class__(**{**real.__dict__, "build": wrong}))
    with pytest.raises(RuntimeError, match="built 1 tasks for n_tasks = 2"):
        build_stream(StreamConfig(kind="recall", n_tasks=2))


@pytest.mark.parametrize("kind, n", [("languages", 9), ("recall", 9), ("two_languages", 4), ("split_digits", 6),
                                     ("permuted_digits", 21), ("tracking", 5)])
def test_each_kind_has_its_own_task_maximum(kind, n):
    with pytest.raises(ConfigError) as err:
        StreamConfig(kind=kind, n_tasks=n)
    assert err.value.field == "n_tasks" and "n_tasks" in str(err.value)
    StreamConfig(kind=kind, n_tasks=n - 1)             # the largest allowed is fine


def test_anchors_are_data_with_a_source():
    rows = anchors()
    assert {r["kind"] for r in rows} == {"split_digits", "permuted_digits"}
    assert all(r["source"].startswith("REFERENCE.md §7") and 0 <= r["value"] <= 1 for r in rows)
    permuted = {r["method"]: r["value"] for r in anchors("permuted_digits") if r["metric"] == "ACC"}
    assert permuted == {"naive fine-tuning": 0.48, "EWC": 0.68, "GEM": 0.90}
    split = {(r["method"], r["metric"]): r["value"] for r in anchors("split_digits")}
    assert split == {("naive fine-tuning", "ACC"): 0.20, ("naive fine-tuning", "forgetting"): 1.0}
    assert anchors("tracking") == [] and isinstance(get_kind("split_digits").anchors[0], Anchor)


def _stream_hash(configs) -> str:
    h = hashlib.sha256()
    for c in configs:
        s = build_stream(StreamConfig(**c))
        h.update(repr((s.vocab.names, s.seq_len, s.phases, s.task_names)).encode())
        for step in (0, 17, 260, 600):
            for t in s.batch(step):
                h.update(t.numpy().tobytes())
        for x, y in s.eval_sets(16, 2):
            h.update(x.numpy().tobytes())
            h.update(y.numpy().tobytes())
    return h.hexdigest()[:16]


def test_the_earlier_kinds_are_unchanged_to_the_bit():
    """Pinned before the registry existed (the same hash from the if/elif build_stream): a change
    here changes every earlier stream, so every shipped and fingerprinted number."""
    configs = [dict(kind=k, **extra) for k in ("languages", "recall", "two_languages")
               for extra in ({}, {"overlap": 0.0, "seed": 3}, {"joint": True, "schedule": (0, 1), "batch_size": 16})]
    assert _stream_hash(configs) == "6b04a4bad3945af1"
