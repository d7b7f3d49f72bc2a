"""The claims scorecard (lab.claims): the verdict rule, the effects paired by seed, every claim's
sweeps valid, one card computed end to end on Ray with a live re-run that agrees, the command."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from lab.claims import CLAIMS, FAILS, HOLDS, MIXED, UNMEASURED, compute, load, rerun_agrees, verdict
from lab.claims.cards import best_of, judge, paired, per_model, side_of
from lab.cli import main
from lab.sweep.spec import SweepSpec

SHIPPED = Path(__file__).resolve().parents[2] / "assets" / "claims"


def cell(mean, ci):
    return {"mean": mean, "ci95": ci, "n": 5}


def test_the_verdict_is_computed_from_the_interval_and_the_regime_map():
    assert side_of(cell(-0.2, 0.1), -1) == 1 and side_of(cell(0.2, 0.1), -1) == -1 and side_of(cell(0.05, 0.1), 1) == 0
    assert verdict(cell(0.3, 0.1), [cell(0.2, 0.1), cell(0.05, 0.1)], +1) == HOLDS
    assert verdict(cell(0.3, 0.1), [cell(-0.2, 0.1)], +1) == MIXED
    assert verdict(cell(0.02, 0.1), [cell(0.01, 0.1)], +1) == FAILS
    assert verdict(cell(-0.3, 0.1), [], +1) == FAILS
    assert verdict(cell(0.02, 0.1), [cell(0.3, 0.1)], +1) == MIXED
    # no seed gave an effect (every trial of one side failed): nothing is claimed either way
    assert verdict(cell(float("nan"), float("nan")), [], +1) == UNMEASURED
    assert verdict({"mean": None, "ci95": None, "n": 0}, [cell(0.3, 0.1)], +1) == UNMEASURED


def test_an_effect_bought_by_learning_less_is_not_credited():
    # HOPE forgets less (claimed side: negative) but learned clearly less than its control
    assert verdict(cell(-0.26, 0.2), [], -1, matched=cell(-0.15, 0.05)) == MIXED
    decided, reason = judge(cell(-0.26, 0.2), [], -1, matched=cell(-0.15, 0.05), matched_doc="learned")
    assert decided == MIXED and "learned: -0.150 ± 0.050" in reason
    # learning as well (interval includes zero) or better leaves the verdict alone
    assert verdict(cell(-0.26, 0.2), [], -1, matched=cell(-0.02, 0.05)) == HOLDS
    assert "learned less on average (learned: -0.020 ± 0.050)" in judge(cell(-0.26, 0.2), [], -1, cell(-0.02, 0.05),
                                                                         "learned")[1]
    assert verdict(cell(-0.26, 0.2), [], -1, matched=cell(0.2, 0.05)) == HOLDS
    # and it never turns a failed claim into anything else
    assert verdict(cell(0.01, 0.2), [], -1, matched=cell(-0.15, 0.05)) == FAILS
    # though its reason says the claimed side learned clearly less, and only then
    assert "also learned clearly less (learned: -0.150" in judge(cell(0.01, 0.2), [], -1, cell(-0.15, 0.05), "learned")[1]
    assert "learned" not in judge(cell(0.01, 0.2), [], -1, cell(-0.02, 0.05), "learned")[1]
    for args in [(cell(0.3, 0.1), [cell(-0.2, 0.1)], 1), (cell(0.02, 0.1), [cell(0.3, 0.1)], 1),
                 (cell(0.02, 0.1), [], 1), (cell(0.3, 0.1), [], 1)]:
        assert judge(*args)[1].endswith(".")


def _records():
    rows = []
    for seed, (a, b, c) in enumerate([(0.2, 0.5, 0.4), (0.3, 0.6, 0.2)]):
        for model, value in (("hope", a), ("transformer", b), ("titans", c)):
            rows.append({"seed": seed, "cell": 0, "model": model, "method": "naive", "metric": "forgetting",
                         "value": value})
    return pd.DataFrame(rows)


def test_effects_are_paired_by_seed():
    d = paired(_records(), "forgetting", ("hope", "naive"), ("transformer", "naive"))
    assert d["value"].round(6).tolist() == [-0.3, -0.3] and d["seed"].tolist() == [0, 1]
    best = best_of(_records(), "forgetting", ("hope", "naive"), [("transformer", "naive"), ("titans", "naive")])
    assert best["value"].round(6).tolist() == [-0.2, 0.1]


def test_an_effect_within_each_architecture_is_read_for_every_one():
    # M3 against the better of AdamW and Muon, on a regime map that varies the architecture
    losses = {"hope": {"m3": 1.0, "adamw": 1.5, "muon": 1.2}, "transformer": {"m3": 0.9, "adamw": 0.5, "muon": 0.8}}
    records = pd.DataFrame([{"seed": 0, "model": m, "method": o, "metric": "final_loss", "value": v}
                            for m, by in losses.items() for o, v in by.items()])
    effect = per_model(records, lambda m: best_of(records, "final_loss", (m, "m3"), [(m, "adamw"), (m, "muon")])
                       .assign(model=m))
    assert dict(zip(effect["model"], effect["value"].round(6))) == {"hope": -0.2, "transformer": 0.4}


@pytest.mark.parametrize("card", load(SHIPPED), ids=lambda c: c["id"])
def test_a_shipped_card_maps_every_cell_of_its_regime(card):
    """A regime cell whose effect cannot be read (its trials failed, the effect looks for a model the
    grid does not train, or a metric the trial does not measure) drops out of the map silently; a
    shipped card must have them all."""
    claim = CLAIMS[card["id"]]
    grid = claim.regime["grid"] if claim.regime else {}
    assert len(card["regime"]) == math.prod(len(grid[field]) for field in claim.regime_fields)


@pytest.mark.parametrize("claim_id", list(CLAIMS))
@pytest.mark.parametrize("quick", [False, True])
def test_every_claim_has_valid_sweeps_and_says_where_it_is_claimed(claim_id, quick):
    claim = CLAIMS[claim_id]
    head = SweepSpec.from_dict(claim.spec("headline", [0, 1, 2, 3, 4], quick))
    assert len(head.trials) >= 5
    if claim.regime is not None:
        assert SweepSpec.from_dict(claim.spec("regime", [100, 101], quick)).trials
        assert claim.regime_fields
    assert claim.source and claim.caveats and claim.direction in (-1, 1) and claim.effect_doc


@pytest.fixture(scope="module")
def quick_cards(tmp_path_factory):
    out = tmp_path_factory.mktemp("claims")
    return out, compute(out, quick=True, only=["m3"])


def test_a_quick_card_has_every_field_the_page_and_the_cli_promise(quick_cards):
    out, cards = quick_cards
    (card,) = cards
    assert {"id", "claim", "verdict", "effect", "n_seeds", "command"} <= set(card)
    assert card["verdict"] in (HOLDS, FAILS, MIXED) and set(card["effect"]) >= {"mean", "ci95"}
    assert card["reason"].endswith(".") and card["matched"] is None   # M3 compares optimizers: nothing to match
    assert card["n_seeds"] == 2 and len(card["per_seed"]) == 2 and card["regime"] and card["quick"]
    assert card["command"].startswith("python -m lab claims --only m3")
    assert load(out) == json.loads((out / "claims.json").read_text()) and load(out)[0]["id"] == "m3"


def test_the_live_rerun_of_a_stored_trial_agrees_exactly(quick_cards):
    _, (card,) = quick_cards
    check = rerun_agrees(card)
    assert check["identical"] and check["numbers"] > 0
    tampered = json.loads(json.dumps(card))
    tampered["rerun"]["rows"][0]["final_loss"] += 0.5
    assert not rerun_agrees(tampered)["identical"]


def test_the_claims_command_refuses_an_unknown_claim_before_any_work(tmp_path, capsys):
    assert main(["claims", "--out", str(tmp_path / "c"), "--only", "telepathy"]) == 2
    assert "choose from" in capsys.readouterr().err
    assert not (tmp_path / "c" / "claims.json").exists()
