"""The Forgetting session (lab.sessions.forgetting) without a browser: queueing a comparison,
training it in slices, keeping and showing it, refusing bad settings, stopping, snapshots, and
the live re-run of a reference comparison."""
from __future__ import annotations

import pandas as pd
import pytest
import torch

from lab.forgetting import Comparison, ForgetSettings, run_settings
from lab.sessions import SESSIONS
from lab.sessions.forgetting import SHIPPED, ForgettingSession

torch.set_num_threads(1)
TINY = dict(models=("transformer", "hope"), preset="tiny", n_tasks=2, steps_per_task=3, eval_size=8)


def finish(session: ForgettingSession) -> int:
    """Advance until the pending work is done; returns how many slices it took."""
    slices = 0
    while session.busy:
        session.advance(budget_s=0.01)
        slices += 1
    return slices


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Comparison:
    """A tiny "shipped" comparison, written and read back as the page reads assets/forgetting/."""
    folder = tmp_path_factory.mktemp("shipped")
    run_settings(ForgetSettings(methods=("naive", "replay"), replay=4, **TINY)).save(folder)
    return Comparison.load(folder)


def test_the_session_is_registered_by_kind():
    assert SESSIONS["forgetting"] is ForgettingSession
    session = ForgettingSession()
    assert session.settings == ForgetSettings() and not session.busy and session.shown is None
    assert session.labels == [] and session.records().empty


def test_configure_queues_and_advance_keeps_and_shows_the_result():
    session = ForgettingSession()
    assert session.configure(ForgetSettings(**TINY))
    assert session.busy and session.progress[0] == 0.0 and "Transformer" in session.progress[1]
    assert finish(session) > 1                                                # trained in several slices
    assert not session.busy and len(session.results) == 1
    label = session.shown_label
    assert label in session.results and session.shown is session.results[label].comparison
    assert session.agreement is None and session.notices.pop() == []
    # the session's records are those of the CLI's path on the same settings, to the bit
    direct = run_settings(ForgetSettings(**TINY))
    pd.testing.assert_frame_equal(session.records(), direct.records, check_exact=True)
    pd.testing.assert_frame_equal(session.shown.matrix, direct.matrix, check_exact=True)


def test_the_same_settings_again_show_the_kept_result():
    session = ForgettingSession()
    session.configure(**TINY)
    finish(session)
    first = session.shown
    session.configure(ForgetSettings(**TINY).replace(preset="tiny"))
    assert not session.busy and len(session.results) == 1 and session.shown is first
    kinds = session.notices.pop()
    assert kinds and kinds[0][0] == "info" and "already run in this session" in kinds[0][1]


@pytest.mark.parametrize("changes, field", [({"n_tasks": 1}, "n_tasks"), ({"models": ("transformer", "gpt")}, "models"),
                                            ({"kind": "two_languages", "n_tasks": 5}, "n_tasks")])
def test_a_bad_value_is_an_error_notice_and_changes_nothing(changes, field):
    session = ForgettingSession()
    before, revision = session.settings, session.revision
    assert not session.configure(**changes)
    (kind, text), = session.notices.pop()
    assert kind == "error" and f".{field} = " in text and text.startswith("This comparison cannot run")
    assert session.settings is before and session.revision == revision and not session.busy
    assert not session.configure({"steps_per_task": "many"})
    assert "steps_per_task" in session.notices.pop()[0][1]


def test_stop_drops_the_job_and_keeps_what_was_finished():
    session = ForgettingSession()
    session.configure(**TINY)
    finish(session)
    session.configure(**dict(TINY, steps_per_task=4))
    session.advance(budget_s=0.0)                    # one chunk of the first run
    assert session.busy and 0 < session.progress[0] < 1
    session.stop()
    assert not session.busy and len(session.results) == 1
    (kind, text), = session.notices.pop()
    assert kind == "info" and "Stopped" in text and "nothing of it is kept" in text
    session.stop()                                   # nothing to stop: nothing said
    assert not session.notices


def test_a_new_job_replaces_an_unfinished_one_with_a_notice():
    session = ForgettingSession()
    session.configure(**TINY)
    session.configure(**dict(TINY, steps_per_task=2))
    assert session.busy and "2 × 2 steps" in session.pending_label
    assert "was dropped for the new one" in session.notices.pop()[0][1]


def test_a_diverging_run_ends_the_job_with_a_message_naming_it(monkeypatch):
    import lab.engine

    session = ForgettingSession()
    session.configure(**TINY)
    finish(session)
    real = lab.engine.masked_loss
    monkeypatch.setattr(lab.engine, "masked_loss", lambda logits, targets: real(logits, targets) * float("inf"))
    session.configure(**dict(TINY, models=("transformer",)))
    finish(session)
    (kind, text), = session.notices.pop()
    assert kind == "error" and "Transformer, seed 0, naive sequential training diverged" in text
    assert len(session.results) == 1 and not session.busy


def test_snapshot_and_restore():
    session = ForgettingSession()
    session.configure(**TINY)
    finish(session)
    snap = session.snapshot()
    kept = dict(session.results)
    session.configure(**dict(TINY, models=("hope",)))
    finish(session)
    assert len(session.results) == 2
    session.restore(snap)
    assert session.results == kept and session.shown_label == next(iter(kept)) and not session.busy
    # a pending job comes back from its first step and gives the same numbers
    longer = dict(TINY, steps_per_task=4)
    session.configure(**longer)
    session.advance(budget_s=0.0)                    # the first of its two runs
    half = session.snapshot()
    session.stop()
    session.restore(half)
    assert session.busy and session.progress[0] == 0.0
    finish(session)
    direct = run_settings(ForgetSettings(**longer))
    pd.testing.assert_frame_equal(session.shown.matrix, direct.matrix, check_exact=True)


def test_a_rerun_of_the_reference_agrees_identically(reference):
    session = ForgettingSession(shipped=reference)
    assert session.labels == [SHIPPED] and session.shown is reference and session.records() is reference.records
    assert session.request_rerun([0], ["naive"])
    assert session.busy and session.rerunning and "seed 0, naive" in session.pending_label
    finish(session)
    assert session.shown_label != SHIPPED and session.agreement["identical"]
    assert session.agreement["cells"] == 2 * 3 * 2                  # models × (T+1) × T, the naive method
    session.show(SHIPPED)
    assert session.shown is reference and session.agreement is None
    session.show("no such result")
    assert session.shown is reference


def test_a_precomputed_benchmark_is_shown_and_rerun_like_the_shipped_one(reference, tmp_path):
    folder = tmp_path / "digits"
    run_settings(ForgetSettings(**{**TINY, "models": ("transformer",), "kind": "split_digits"})).save(folder)
    digits = Comparison.load(folder)
    session = ForgettingSession(shipped=reference, library={"Split-Digits": (digits, "assets/digits/split/")})
    assert session.labels == [SHIPPED, "Split-Digits"] and session.shown is reference
    assert session.reference is reference and session.sources["Split-Digits"] == "assets/digits/split/"
    session.show("Split-Digits")
    assert session.shown is digits and session.reference is digits and session.reference_label == "Split-Digits"
    assert session.request_rerun([0], ["naive"]) and "“Split-Digits”" in session.pending_label
    session.show(SHIPPED)                                  # looking elsewhere meanwhile changes nothing
    finish(session)
    # checked against the benchmark it re-ran (1 model × (T+1) × T cells), not the shipped one
    assert session.agreement["identical"] and session.agreement["cells"] == 1 * 3 * 2
    assert session.shown.models == ["transformer"]


@pytest.mark.parametrize("seeds, methods, message", [([], ["naive"], "at least one seed"),
                                                     ([0], [], "at least one seed and one method"),
                                                     ([7], ["naive"], "cannot start: 7 is not part")])
def test_a_bad_rerun_request_is_an_error_notice(reference, seeds, methods, message):
    session = ForgettingSession(shipped=reference)
    assert not session.request_rerun(seeds, methods)
    (kind, text), = session.notices.pop()
    assert kind == "error" and message in text and not session.busy
    assert not ForgettingSession(shipped_problem="missing").request_rerun([0], ["naive"])
