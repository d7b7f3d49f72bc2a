"""Checking a lesson file against the lab: its panels (by name, from the app's panel registry, given
as name → session kind), its presets (each built as its session's Settings: a ConfigError names the
field and the allowed range), its runs, predictions, re-runs and template fields. A file with any
problem is not loaded, and every problem names the file and the step; the other files still load.

    library = load_library("lessons", panels={"loss_accuracy": "playground", …})
    library.lessons, library.problems
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Mapping

from lab.config import ConfigError, shorten
from lab.lessons import parse
from lab.lessons.fields import SHIPPED, check_field, fields_in
from lab.lessons.model import Lesson, Library, Prediction, Preset, Problem, Step
from lab.lessons.runs import SHIPPED_ONLY, check_rerun, check_run, shape_of

FRONT_KEYS = {"title", "mechanism", "minutes", "summary", "presets"}
STEP_KEYS = {"panel", "preset", "run", "predict", "try", "rerun"}
PREDICT_KEYS = {"question", "choices", "number", "answer"}
NUMBER_KEYS = {"min", "max", "step", "unit"}
NEEDS_PRESET = ("playground", "sleep")          # their panels show a run, which a preset describes
ORDER_PREFIX = re.compile(r"^\d+[-_ ]*")


def lesson_id(path: Path) -> str:
    return ORDER_PREFIX.sub("", path.stem) or path.stem


def source_preset(lesson_presets: Mapping[str, Preset], steps, number: int, kind: str) -> str | None:
    """The preset whose session a `kind` field of step `number` reads: the step's own if it is of
    that kind, else the latest earlier step's of that kind, else the lesson's first of that kind."""
    for step in reversed(steps[:number]):
        preset = lesson_presets.get(step.preset) if step.preset else None
        if preset is not None and preset.kind == kind:
            return preset.name
    return next((p.name for p in lesson_presets.values() if p.kind == kind), None)


class _Checker:
    def __init__(self, file: str, panels: Mapping[str, str], sessions: Mapping[str, type]):
        self.file, self.panels, self.sessions = file, panels, sessions
        self.problems: list[Problem] = []
        self.shapes: dict = {}
        self.front_failed = False           # then a step's unknown preset is that failure, not a problem of its own

    def say(self, step: int | None, text: str) -> None:
        self.problems.append(Problem(self.file, step, text))

    def front(self, data: dict) -> dict:
        for key in sorted(set(data) - FRONT_KEYS):
            self.say(None, f"“{key}” is not a front matter key: use {', '.join(sorted(FRONT_KEYS))}")
        for key in ("title", "mechanism"):
            if not isinstance(data.get(key), str) or not data.get(key, "").strip():
                self.say(None, f"{key} is missing: write “{key}: …”")
        minutes = data.get("minutes")
        if isinstance(minutes, bool) or not isinstance(minutes, int) or not 1 <= minutes <= 180:
            self.say(None, f"minutes = {shorten(minutes, 40)!s} is not allowed: must be a whole number between 1 and 180")
        return data

    def presets(self, raw) -> dict[str, Preset]:
        out: dict[str, Preset] = {}
        if raw is None:
            return out
        if not isinstance(raw, dict):
            self.say(None, "presets must be a mapping: name → {session: <kind>, …settings}")
            return out
        for name, spec in raw.items():
            if not isinstance(spec, dict) or "session" not in spec:
                self.say(None, f"preset “{name}” must be a mapping with “session: <kind>” and the settings")
                continue
            kind, settings = spec["session"], {k: v for k, v in spec.items() if k != "session"}
            if kind not in self.sessions or kind == "lesson":
                kinds = ", ".join(k for k in self.sessions if k != "lesson")
                self.say(None, f"preset “{name}”: session “{shorten(kind, 40)}” does not exist; the kinds are {kinds}")
                continue
            if kind in SHIPPED_ONLY and settings:
                self.say(None, f"preset “{name}”: a {kind} preset shows the shipped result and takes no settings (a new "
                               f"comparison takes minutes: run it on the Forgetting page)")
                continue
            try:
                built = self.sessions[kind].Settings.from_dict(settings)
                self.shapes[name] = shape_of(kind, built)
            except ConfigError as err:
                self.say(None, f"preset “{name}”: {shorten(err)} (field {err.field})")
                continue
            except ValueError as err:
                self.say(None, f"preset “{name}” cannot run: {shorten(err)}")
                continue
            out[name] = Preset(str(name), kind, settings)
        return out

    def predict(self, number: int, raw) -> Prediction | None:
        if raw is None:
            return None
        if not isinstance(raw, dict) or not isinstance(raw.get("question"), str):
            self.say(number, "predict needs a question: predict: {question: …, choices: […]} or {question: …, number: "
                             "{min: …, max: …}}")
            return None
        for key in sorted(set(raw) - PREDICT_KEYS):
            self.say(number, f"predict.{key} is not known: use {', '.join(sorted(PREDICT_KEYS))}")
        choices, num = raw.get("choices"), raw.get("number")
        if (choices is None) == (num is None):
            self.say(number, "predict needs either choices (a list) or number ({min: …, max: …}), not both")
            return None
        answer = raw.get("answer")
        if answer is not None:
            found = fields_in(answer if str(answer).startswith("{") else "{" + str(answer) + "}")
            answer = found[0].name if len(found) == 1 else None
            if answer is None:
                self.say(number, f"predict.answer = {shorten(raw['answer'], 60)!r} is not a template field")
        if choices is not None:
            if not isinstance(choices, list) or not 2 <= len(choices) <= 8 or len(set(map(str, choices))) < len(choices):
                self.say(number, "predict.choices must be a list of 2 to 8 different answers")
                return None
            return Prediction(raw["question"], tuple(str(c) for c in choices), answer=answer)
        if not isinstance(num, dict) or set(num) - NUMBER_KEYS:
            self.say(number, f"predict.number must be a mapping with {', '.join(sorted(NUMBER_KEYS))}")
            return None
        low, high, step = num.get("min"), num.get("max"), num.get("step")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)) or low >= high:
            self.say(number, f"predict.number needs min < max (got min = {low!r}, max = {high!r})")
            return None
        return Prediction(raw["question"], low=float(low), high=float(high),
                          step=float(step) if isinstance(step, (int, float)) else None, unit=str(num.get("unit", "")),
                          answer=answer)

    def step(self, raw: dict, presets: dict[str, Preset], claim_ids: tuple[str, ...]) -> Step | None:
        number = raw["number"]
        block, body, observation, try_text, problems = parse.step_parts(raw["lines"])
        for text in problems:
            self.say(number, text)
        spec = {}
        if block is not None:
            data, problem = parse.load_yaml(block, "```step block")
            if problem or not isinstance(data, dict):
                self.say(number, problem or "the ```step block must be a mapping (panel: …, preset: …)")
                return None
            spec = data
        for key in sorted(set(spec) - STEP_KEYS):
            self.say(number, f"“{key}” is not a step key: use {', '.join(sorted(STEP_KEYS))}")
        panel, preset_name, kind = spec.get("panel"), spec.get("preset"), None
        if panel is not None:
            kind = self.panels.get(panel)
            if kind is None or kind == "lesson":
                self.say(number, f"the panel “{shorten(panel, 60)}” does not exist; the panels are "
                                 f"{', '.join(sorted(n for n, k in self.panels.items() if k != 'lesson'))}")
                return None
        if preset_name is not None:
            preset = presets.get(preset_name)
            if preset is None and self.front_failed:
                return None
            if preset is None:
                self.say(number, f"the preset “{shorten(preset_name, 60)}” is not in the front matter's presets "
                                 f"({', '.join(presets) or 'there are none'})")
                return None
            if panel is None:
                self.say(number, "a preset needs a panel to show it: add “panel: …”")
                return None
            if not issubclass(self.sessions[preset.kind], self.sessions[kind]):
                self.say(number, f"the panel “{panel}” draws a {kind} session, but the preset “{preset_name}” is a "
                                 f"{preset.kind} session")
                return None
            kind = preset.kind
        elif kind in NEEDS_PRESET:
            self.say(number, f"the panel “{panel}” shows a {kind} run: give it a preset (the run it shows)")
            return None
        shape = self.shapes.get(preset_name)
        for text in filter(None, (check_run(kind, spec.get("run"), shape) if kind else
                                  ("run needs a panel" if spec.get("run") else None),
                                  check_rerun(kind, spec.get("rerun", False), claim_ids) if kind else None)):
            self.say(number, text)
        try_spec, try_preset = spec.get("try"), None
        if try_spec is not None:
            try_preset = try_spec.get("preset") if isinstance(try_spec, dict) else None
            other = presets.get(try_preset)
            if other is None or preset_name is None or other.kind != presets[preset_name].kind:
                self.say(number, f"try: {{preset: …}} must name another preset of this step's kind ({kind or 'none'})")
        return Step(number, raw["title"], body, panel, preset_name, dict(spec.get("run") or {}),
                    self.predict(number, spec.get("predict")), observation, try_text, try_preset,
                    spec.get("rerun", False))

    def fields(self, steps: list[Step], presets: dict[str, Preset]) -> None:
        for step in steps:
            for text in step.texts():
                for field in fields_in(text):
                    name = source_preset(presets, steps, step.number, field.source)
                    if name is None and field.source not in SHIPPED and field.source in self.sessions:
                        self.say(step.number, f"the template field {field.name} reads a {field.source} session, but "
                                              f"this lesson has no {field.source} preset")
                        continue
                    problem = check_field(field, self.shapes.get(name))
                    if problem:
                        self.say(step.number, problem)


def build_lesson(path: Path, text: str, panels: Mapping[str, str], sessions: Mapping[str, type],
                 shown_as: str | None = None) -> tuple[Lesson | None, list[Problem]]:
    """The lesson in `text` (the file at `path`), or None and every problem found in it."""
    from lab.claims import CLAIMS

    check = _Checker(shown_as or str(path), panels, sessions)
    data, body, problems = parse.front_matter(text)
    for problem in problems:
        check.say(None, problem)
    check.front_failed = bool(problems)
    data = check.front(data) if data else data
    presets = check.presets(data.get("presets"))
    intro, raw_steps, problems = parse.steps(body)
    for number, problem in problems:
        check.say(number, problem)
    steps = [s for s in (check.step(raw, presets, tuple(CLAIMS)) for raw in raw_steps) if s is not None]
    check.fields(steps, presets)
    if check.problems:
        return None, check.problems
    return Lesson(lesson_id(path), shown_as or str(path), data["title"].strip(), data["mechanism"].strip(),
                  data["minutes"], str(data.get("summary") or "").strip(), intro, presets, tuple(steps)), []


def load_library(folder: str | Path, panels: Mapping[str, str], sessions: Mapping[str, type] | None = None) -> Library:
    """Every `*.md` of `folder` (sorted by name; README.md is not a lesson) that validates, and the
    problems of the others."""
    if sessions is None:
        from lab.sessions import SESSIONS as sessions
    folder = Path(folder)
    lessons, problems = [], []
    if not folder.is_dir():
        return Library((), (Problem(str(folder), None, "the lessons folder does not exist"),))
    for path in sorted(folder.glob("*.md")):
        if path.name.lower() == "readme.md":
            continue
        shown = f"{folder.name}/{path.name}"
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            problems.append(Problem(shown, None, f"cannot be read: {err}"))
            continue
        lesson, found = build_lesson(path, text, panels, sessions, shown_as=shown)
        if lesson is not None and any(other.id == lesson.id for other in lessons):
            found, lesson = [Problem(shown, None, f"another lesson already has the id “{lesson.id}”")], None
        problems += found
        if lesson is not None:
            lessons.append(lesson)
    return Library(tuple(lessons), tuple(problems))
