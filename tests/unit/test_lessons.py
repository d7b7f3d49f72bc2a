"""Guided lessons (lab.lessons, lab.sessions.lesson) without a browser: the file format, the problems
a bad file gets (file, step, what), every shipped lesson validating, and observations that are read
from the run's records (they change when the run changes), never typed into the text."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from lab.lessons import LESSONS_DIR, build_lesson, fields_in, fill, load_library
from lab.lessons.parse import front_matter, step_parts, steps
from lab.lessons.values import Exact, Measured, Missing
from lab.sessions import SESSIONS
from lab.sessions.lesson import LessonSession

torch.set_num_threads(1)
# The panels a small test lesson uses, as the app's registry gives them (name → session kind).
PANELS = {"loss_accuracy": "playground", "update_timeline": "playground", "run_status": "playground",
          "forgetting_curves": "forgetting", "claim_cards": "claims"}

GOOD = """---
title: A tiny lesson
mechanism: forgetting in a tiny Transformer
minutes: 5
summary: one run, two steps
presets:
  tiny:
    session: playground
    model: transformer
    preset: tiny
    seed: 3
    stream: {n_tasks: 2, steps_per_task: 4}
---
An introduction.

## 1. Look first

What the model reads.

```step
panel: run_status
preset: tiny
```

## 2. Predict, then train

```step
panel: loss_accuracy
preset: tiny
run: {steps: 8}
predict:
  question: What is left of language 1?
  choices: [all, half, nothing]
```

### Observation

After {playground.steps} steps (seed {playground.seed}) language 1 ends at {playground.accuracy.lang1}.

### Try this

Train longer.
"""


def build(text: str, name: str = "lessons/09-test.md"):
    return build_lesson(Path(name), text, PANELS, SESSIONS, shown_as=name)


# --- the file format -----------------------------------------------------------------------------------

def test_front_matter_and_numbered_steps_are_parsed():
    data, body, problems = front_matter(GOOD)
    assert problems == [] and data["title"] == "A tiny lesson" and data["presets"]["tiny"]["seed"] == 3
    intro, raw, problems = steps(body)
    assert problems == [] and intro == "An introduction."
    assert [(s["number"], s["title"]) for s in raw] == [(1, "Look first"), (2, "Predict, then train")]
    block, text, observation, try_text, problems = step_parts(raw[1]["lines"])
    assert "run: {steps: 8}" in block and problems == []
    assert observation.startswith("After {playground.steps}") and try_text == "Train longer."


def test_a_good_lesson_builds_with_its_prediction_and_fields():
    lesson, problems = build(GOOD)
    assert problems == [] and lesson is not None
    assert lesson.id == "test" and lesson.minutes == 5 and len(lesson.steps) == 2 and lesson.predictions == 1
    second = lesson.step(2)
    assert second.predict.choices == ("all", "half", "nothing") and second.run == {"steps": 8}
    assert [f.name for f in fields_in(second.observation)] == [
        "{playground.steps}", "{playground.seed}", "{playground.accuracy.lang1}"]
    assert second.predict.accept("half") == "half" and second.predict.accept(2) == "nothing"
    with pytest.raises(ValueError, match="one of"):
        second.predict.accept("most")


# --- problems name the file, the step and what is wrong ---------------------------------------------------

@pytest.mark.parametrize("change, step, words", [
    (("panel: loss_accuracy", "panel: loss_acuracy"), 2, "the panel “loss_acuracy” does not exist"),
    (("steps_per_task: 4", "steps_per_task: 0"), None, "steps_per_task"),
    (("{playground.accuracy.lang1}", "{playground.accuracy.lang7}"), 2, "lang7"),
    (("{playground.steps}", "{playground.speed}"), 2, "{playground.speed} does not exist"),
    (("{playground.seed}", "{weather.seed}"), 2, "{weather.seed} does not exist"),
    (("run: {steps: 8}", "run: {steps: 80}"), 2, "run.steps = 80 is not allowed"),
    (("## 2. Predict", "## 3. Predict"), 3, "numbered 1, 2, 3"),
    (("minutes: 5", "minutes: 500"), None, "minutes = 500"),
    (("choices: [all, half, nothing]", "choices: [all]"), 2, "2 to 8 different answers"),
])
def test_a_bad_lesson_gets_a_problem_naming_file_step_and_what(change, step, words):
    lesson, problems = build(GOOD.replace(*change))
    assert lesson is None and problems
    assert any(p.file == "lessons/09-test.md" and p.step == step and words in p.text for p in problems), problems
    where = f"step {step}" if step is not None else "front matter"
    assert any(str(p).startswith(f"lessons/09-test.md, {where}: ") for p in problems)


def test_a_file_without_front_matter_or_steps_is_refused():
    lesson, problems = build("just some text\n")
    assert lesson is None
    assert any("front matter" in p.text for p in problems)
    lesson, problems = build(GOOD.split("## 1.")[0])
    assert lesson is None and any("no steps" in p.text for p in problems)


def test_one_bad_file_does_not_stop_the_others_loading(tmp_path):
    (tmp_path / "01-good.md").write_text(GOOD, encoding="utf-8")
    (tmp_path / "02-bad.md").write_text(GOOD.replace("panel: run_status", "panel: no_such_panel"), encoding="utf-8")
    (tmp_path / "README.md").write_text("not a lesson", encoding="utf-8")
    library = load_library(tmp_path, PANELS)
    assert library.ids == ["good"]
    assert len(library.problems) == 1
    problem = library.problems[0]
    assert problem.file == f"{tmp_path.name}/02-bad.md" and problem.step == 1 and "no_such_panel" in problem.text


# --- the shipped lessons --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def shipped():
    from app.panels import PANELS as APP_PANELS
    return load_library(LESSONS_DIR, {name: p.session for name, p in APP_PANELS.items()})


def test_every_shipped_lesson_validates(shipped):
    assert not shipped.problems, [str(p) for p in shipped.problems]
    files = [p for p in sorted(LESSONS_DIR.glob("*.md")) if p.name.lower() != "readme.md"]
    assert len(shipped.lessons) == len(files) >= 10
    assert len({lesson.mechanism for lesson in shipped.lessons}) == len(shipped.lessons)


def test_every_shipped_lesson_asks_predictions_and_reads_its_numbers(shipped):
    typed = re.compile(r"(?<![\w{.])[−-]?\d+\.\d+|\d+\s?%(?!\s*interval)")   # a decimal or a percentage by hand
    for lesson in shipped.lessons:
        assert lesson.predictions >= 1, lesson.id
        observations = [s.observation for s in lesson.steps if s.observation]
        assert observations and any(fields_in(o) for o in observations), lesson.id
        for text in observations:
            bare = re.sub(r"\{[^{}]*\}", "", text)
            assert not typed.findall(bare), (lesson.id, typed.findall(bare))


# --- observations are read from the records -------------------------------------------------------------------

def run_step(session: LessonSession) -> None:
    while session.busy:
        session.advance(1.0)


@pytest.fixture
def lesson_session():
    lesson, problems = build(GOOD)
    assert not problems
    from lab.lessons import Library
    return LessonSession(Library((lesson,)), {}, PANELS)


def test_an_observation_is_filled_from_the_run_and_changes_with_it(lesson_session):
    session = lesson_session
    assert session.configure({"lesson": "test", "step": 2})
    assert session.observation() is None                 # nothing before the prediction
    assert session.commit("nothing") and session.answer == "nothing"
    run_step(session)
    inner = session.inner
    assert inner.run.step_count == 8
    text = session.observation()
    acc = inner.run.records()
    acc = acc[(acc["metric"] == "accuracy") & (acc["phase"] == "active") & (acc["task"] == "lang1")]
    final = float(acc["value"].iloc[-1])
    assert text.startswith("After 8 steps (seed 3) language 1 ends at ")
    assert f"{final:.2f}".replace("-", "−") in text and "one run, seed 3" in text
    # The same step over another run (another seed): the observation is computed again from it.
    assert inner.configure(seed=4) and inner.run.step_count == 0 and session.busy
    run_step(session)
    again = session.observation()
    assert again != text and again.startswith("After 8 steps (seed 4) language 1 ends at ")


def test_a_field_without_its_record_says_so_in_place():
    text = fill("BWT {forgetting.BWT.transformer.naive} here", lambda kind: None)
    assert text.startswith("BWT (not available) here") and "Not available: This lesson has no forgetting session" in text


def test_values_are_written_with_their_seeds_and_spread():
    assert Measured.of([1.0, 2.0, 3.0], seeds=(0, 1, 2)).text() == "2.00 ± 1.00 (mean ± std over 3 seeds: 0, 1, 2)"
    assert Measured.of([-0.25], seeds=(7,)).text() == "−0.25 (one run, seed 7)"
    assert Measured.of([0.5, 0.7], seeds=(0, 1)).text("mean") == "0.60"
    assert Exact(2048).text() == "2,048" and Missing("x").text() == "(not available)"


def test_a_bad_url_step_is_refused_with_a_notice(lesson_session):
    session = lesson_session
    assert not session.configure({"lesson": "test", "step": 9})
    assert any("step" in text for _, text in session.notices.pop())
    assert not session.configure({"lesson": "nope"})
    assert session.settings.lesson == "" and session.params() == {}
    assert session.configure({"lesson": "test", "step": 2}) and session.params() == {"lesson": "test", "step": "2"}


def test_a_step_with_a_prediction_does_not_run_until_it_is_committed(lesson_session):
    session = lesson_session
    session.configure({"lesson": "test", "step": 2})
    assert not session.busy and not session.revealed_now
    assert not session.commit("most")                  # not a choice: refused, nothing runs
    assert any("cannot be kept" in text for _, text in session.notices.pop()) and not session.busy
    session.reveal()
    assert session.busy and session.answer is None
