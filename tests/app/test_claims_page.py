"""The Claims page in AppTest: the verdicts at a glance, one card per claim with its figures, the
filter, a missing-cards message, and the live re-run's message."""
from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

import app.components.claims_shipped as shipped
import lab.sessions.claims as claims_session
from tests.app.helpers import ROOT, TIMEOUT, assert_healthy, charts, finish

PAGE = ROOT / "app" / "views" / "claims.py"


def card(claim_id, verdict, mean, ci):
    return {"id": claim_id, "claim": f"The claim {claim_id}: something holds.", "source": "a paper", "experiment": "runs",
            "effect_doc": "a − b (negative: good)", "direction": -1, "verdict": verdict,
            "effect": {"mean": mean, "ci95": ci, "std": 0.1, "n": 5}, "n_seeds": 5, "seeds": [0, 1, 2, 3, 4],
            "regime_seeds": [100, 101], "command": f"python -m lab claims --only {claim_id} --out runs/claims",
            "caveats": "small models", "quick": False,
            "per_seed": [{"seed": s, "value": mean + 0.01 * s} for s in range(5)],
            "regime": [{"lr": 0.001, "mean": mean, "ci95": ci, "std": 0.1, "n": 2, "side": 1},
                       {"lr": 0.003, "mean": -mean, "ci95": ci, "std": 0.1, "n": 2, "side": -1}],
            "regime_fields": ["lr"], "context": [], "failed_trials": 0,
            "rerun": {"experiment": "race", "settings": {}, "seed": 0, "rows": [], "key": "k"}}


@pytest.fixture
def page(monkeypatch, tmp_path):
    def open_with(cards):
        folder = tmp_path / "claims"
        folder.mkdir(exist_ok=True)
        if cards is not None:
            (folder / "claims.json").write_text(json.dumps(cards))
        monkeypatch.setattr(shipped, "ASSETS", folder)
        shipped._cards.clear()
        return AppTest.from_file(str(PAGE), default_timeout=TIMEOUT).run()
    return open_with


def test_every_card_is_on_screen_with_its_figures(page):
    mixed = {**card("sleep", "mixed at this scale", 0.01, 0.1), "reason": "The claimed side learned less."}
    at = page([card("m3", "holds", -0.2, 0.05), mixed])
    assert_healthy(at)
    reasons = [m.value for m in at.markdown if m.value.startswith("**Why this verdict:**")]
    assert reasons == ["**Why this verdict:** The claimed side learned less."]     # cards made before reasons: none
    table = at.dataframe[0].value
    assert list(table["verdict"]) == ["holds", "mixed at this scale"]
    figures = charts(at)
    assert {"cl_m3_effect", "cl_m3_regime", "cl_sleep_effect", "cl_sleep_regime"} <= set(figures)
    assert len(figures["cl_m3_effect"]["data"]) == 2                   # the seeds and the mean ± interval
    assert any("python -m lab claims --only m3" in c.value for c in at.caption)
    at.segmented_control(key="cl_filter").set_value("holds").run()
    assert {"cl_m3_effect"} <= set(charts(at)) and "cl_sleep_effect" not in charts(at)


def test_claims_without_a_card_are_listed_with_their_command(page):
    at = page([card("m3", "holds", -0.2, 0.05)])
    assert_healthy(at)
    listed = " ".join(i.value for i in at.info if "Not computed yet" in i.value)
    assert "savings" in listed and "python -m lab claims --only savings" in listed.replace("\\", "")
    assert "m3:" not in listed.replace("\\", "")


def test_missing_cards_are_a_message_not_a_traceback(page):
    at = page(None)
    assert_healthy(at)
    assert any("missing or unreadable" in w.value for w in at.warning)


def test_the_live_rerun_says_whether_the_numbers_agree(page, monkeypatch):
    monkeypatch.setattr(claims_session, "rerun_agrees", lambda c: {"identical": c["id"] == "m3", "max_abs_diff": 0.25,
                                                                    "numbers": 3})
    at = page([card("m3", "holds", -0.2, 0.05), card("sleep", "does not hold", 0.01, 0.1)])
    finish(at.button(key="cl_m3_rerun").click().run(), "claims")
    assert_healthy(at)
    assert any("agrees exactly" in s.value for s in at.success)
    finish(at.button(key="cl_sleep_rerun").click().run(), "claims")
    assert any("differs from the shipped numbers by up to 0.25" in w.value for w in at.warning)
