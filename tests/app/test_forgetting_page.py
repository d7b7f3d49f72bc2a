"""The Forgetting page in AppTest: the shipped comparison at once, a live run that gives the very
matrix `python -m lab forget` gives, the live re-run check of the shipped numbers, bad input."""
from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

import app.components.forgetting_shipped as state
from app.components.registry import PAGES
from lab import cli
from lab.forgetting import Comparison
from tests.app.helpers import ROOT, TIMEOUT, assert_healthy, charts, errors, finish, open_page, session

PAGE = ROOT / "app" / "views" / "forgetting.py"
SUBMIT = "FormSubmitter:fg_setup-Run comparison"
# the same small comparison, once as CLI options and once as the page's widgets
CLI_ARGS = ["--models", "transformer,hope", "--tasks", "2", "--steps-per-task", "4", "--seeds", "1", "--preset", "tiny"]
WIDGETS = {"fg_models": ["transformer", "hope"], "fg_tasks": 2, "fg_steps": 4, "fg_seeds": 1}


def plain(text: str) -> str:
    """A message as the reader sees it: notices are shown as text, with Markdown characters escaped."""
    return re.sub(r"\\(.)", r"\1", text)


def session(at: AppTest):
    """The page's ForgettingSession (lab.sessions.forgetting), as the page keeps it in st.session_state."""
    return at.session_state["session:forgetting"]


def open_forgetting() -> AppTest:
    """Through main.py once the page is registered (as `streamlit run` does), else on its own."""
    spec = next((p for p in PAGES if p.file == PAGE.name), None)
    if spec is not None:
        return open_page(spec)
    return AppTest.from_file(str(PAGE), default_timeout=TIMEOUT).run()


def fill(at: AppTest, values: dict) -> AppTest:
    at.multiselect(key="fg_models").set_value(values.get("fg_models", ["transformer", "titans", "hope"]))
    for key in ("fg_tasks", "fg_steps", "fg_seeds"):
        if key in values:
            at.number_input(key=key).set_value(values[key])
    at.radio(key="fg_preset").set_value(values.get("fg_preset", "tiny"))
    if "fg_kind" in values:
        at.selectbox(key="fg_kind").set_value(values["fg_kind"])
    if "fg_naive" in values:
        at.checkbox(key="fg_naive").set_value(values["fg_naive"])
    return at


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("forget") / "cli"
    assert cli.main(["forget", *CLI_ARGS, "--out", str(out)]) == 0
    return out


@pytest.fixture
def shipped_at(monkeypatch):
    """Point the page at another "shipped" comparison folder."""
    def use(folder):
        # The page file on its own: through main.py the page module's ASSETS is looked up afresh.
        monkeypatch.setattr(state, "ASSETS", folder)
        return AppTest.from_file(str(PAGE), default_timeout=TIMEOUT).run()
    return use


def test_the_shipped_comparison_is_on_screen_at_once():
    at = open_forgetting()
    assert_healthy(at)
    assert at.title[0].value == "Forgetting"
    assert any("What you are looking at" in m.value for m in at.markdown)
    figures = charts(at)
    assert {"fg_curves", "fg_matrix", "fg_diff"} <= set(figures)
    assert all(f["data"] for k, f in figures.items() if k in ("fg_curves", "fg_matrix", "fg_diff"))
    shipped = Comparison.load(state.ASSETS)
    reading = " ".join(m.value for m in at.markdown)
    assert shipped.describe().split("\n\n")[0] in reading           # the plain-language reading is shown
    assert not session(at).busy
    assert at.dataframe and len(at.dataframe[0].value) == len(shipped.methods) * len(shipped.models)
    exports = {b.proto.label for b in at.get("download_button")}
    assert {"Accuracy matrix (CSV)", "Records (CSV)", "Forgetting curves (HTML)", "Accuracy matrix (HTML)",
            "Difference view (HTML)"} <= exports


def test_the_shipped_digits_benchmark_is_in_the_picker_beside_the_anchors():
    at = open_forgetting()
    labels = at.selectbox(key="fg_pick").options
    split = next(label for label in labels if label.startswith("Split-Digits"))
    at.selectbox(key="fg_pick").set_value(split).run()
    assert_healthy(at)
    shown = session(at).shown
    assert shown is session(at).precomputed[split] and shown.summary["config"]["stream"]["kind"] == "split_digits"
    assert any("assets/digits/split/" in m.value for m in at.markdown)
    anchors = next(d.value for d in at.dataframe if "benchmark" in d.value.columns)
    assert "Split MNIST, 5 tasks, class-incremental" in set(anchors["benchmark"])
    assert {"the lab, 8×8 digits"} <= set(anchors["benchmark"]) and len(anchors) >= 2 + 2 * len(shown.models)


def test_the_page_and_the_cli_give_the_same_accuracy_matrix(cli_run):
    at = fill(open_forgetting(), WIDGETS)
    finish(at.button(key=SUBMIT).click().run(), "forgetting")
    assert_healthy(at)
    kept = session(at).results
    assert len(kept) == 1 and not session(at).busy
    page = next(iter(kept.values())).comparison
    cli_result = Comparison.load(cli_run)
    pd.testing.assert_frame_equal(page.matrix, cli_result.matrix, check_exact=True)
    assert page.summary["results"] == cli_result.summary["results"]
    # and the heatmap the page draws is that matrix
    hope = next(t for t in charts(at)["fg_matrix"]["data"] if "HOPE" in t["hovertemplate"])
    R = cli_result.matrix[cli_result.matrix.model == "hope"].sort_values(["after_task", "eval_task"])
    np.testing.assert_array_equal(np.array(hope["z"], dtype=float).ravel(), R.accuracy.to_numpy())
    # coming back with the same settings reuses the kept result instead of training again
    at.button(key=SUBMIT).click().run()
    assert len(session(at).results) == 1 and not session(at).busy
    assert any("already run in this session" in i.value for i in at.info)


def test_rerunning_the_shipped_comparison_says_whether_the_numbers_agree(cli_run, shipped_at, tmp_path):
    at = shipped_at(cli_run)
    assert_healthy(at)
    finish(at.button(key="fg_rerun").click().run(), "forgetting")
    assert_healthy(at)
    assert any("agrees with the shipped numbers exactly" in s.value for s in at.success)
    assert not at.warning

    tampered = tmp_path / "tampered"
    shutil.copytree(cli_run, tampered)
    matrix = pd.read_csv(tampered / "accuracy_matrix.csv")
    matrix.loc[4, "accuracy"] += 0.5
    matrix.to_csv(tampered / "accuracy_matrix.csv", index=False)
    at = shipped_at(tampered)
    finish(at.button(key="fg_rerun").click().run(), "forgetting")
    assert_healthy(at)
    warning = " ".join(w.value for w in at.warning)
    assert "differs from the shipped numbers" in warning and "is 0.5" in warning
    assert not at.success


@pytest.mark.parametrize("values, message", [
    ({"fg_models": []}, "Choose at least one architecture"),
    ({"fg_naive": False}, "Choose at least one method"),
    ({"fg_kind": "two_languages", "fg_tasks": 5}, "n_tasks"),
])
def test_bad_input_gets_a_message_and_nothing_runs(values, message):
    at = fill(open_forgetting(), values)
    at.button(key=SUBMIT).click().run()
    assert_healthy(at)
    assert any(message in plain(e) for e in errors(at)), errors(at)
    assert not session(at).busy
    assert not session(at).results


def test_a_missing_or_broken_shipped_comparison_is_said_not_raised(shipped_at, tmp_path):
    at = shipped_at(tmp_path / "nothing")
    assert_healthy(at)
    assert any("missing" in w.value for w in at.warning) and not charts(at)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "summary.json").write_text(json.dumps({"not": "a comparison"}))
    at = shipped_at(broken)
    assert_healthy(at)
    assert any("cannot read" in w.value or "does not hold" in w.value for w in at.warning)


@pytest.fixture(scope="module")
def tiny_deployment(tmp_path_factory):
    """A tiny deployment written as `python -m lab deploy` writes it."""
    from lab.deploy import DeployJob, DeploySettings

    out = tmp_path_factory.mktemp("deploy") / "d"
    settings = DeploySettings(variants=("hope/frozen", "hope/cms_online"), preset="tiny", pretrain_steps=20,
                              deploy_steps=4, base_tasks=1, new_tasks=2, rounds=2, seeds=1, eval_every=2, eval_size=8)
    DeployJob(settings).run_to_end().save(out)
    return out


def test_the_deployment_setting_shows_the_shipped_deployment_in_the_same_panels(monkeypatch, tiny_deployment):
    monkeypatch.setattr(state, "DEPLOY_ASSETS", tiny_deployment)
    at = AppTest.from_file(str(PAGE), default_timeout=TIMEOUT).run()
    at.segmented_control(key="fg_mode").set_value("deployment").run()
    assert_healthy(at)
    deploy = at.session_state["session:deployment"]
    assert deploy.shipped is not None and deploy.shown is deploy.shipped
    table = at.dataframe[0].value
    assert "savings on revisit" in table.columns and len(table) == 2
    figures = charts(at)
    matrix = figures["fg_matrix"]
    assert matrix["data"][0]["y"][0] == "after pretraining" and len(matrix["data"][0]["y"]) == 5
    reading = " ".join(m.value for m in at.markdown)
    assert "Deployment after pretraining" in reading
    at.segmented_control(key="fg_mode").set_value("scratch").run()
    assert session(at).shown is not None and at.session_state["session:deployment"] is deploy   # both kept


def test_a_missing_shipped_deployment_is_a_message_and_the_form_still_runs(monkeypatch, tmp_path):
    monkeypatch.setattr(state, "DEPLOY_ASSETS", tmp_path / "nothing")
    at = AppTest.from_file(str(PAGE), default_timeout=TIMEOUT).run()
    at.segmented_control(key="fg_mode").set_value("deployment").run()
    assert_healthy(at)
    assert any("missing" in w.value for w in at.warning)
    assert at.button(key="FormSubmitter:dp_setup-Run deployment")
