"""A lesson as data: front matter, presets and numbered steps (parsed by lab.lessons.parse, checked
by lab.lessons.validate). Frozen: a loaded lesson is shared read-only by every user of a server."""
from __future__ import annotations

import math
from dataclasses import dataclass, field


class LessonError(ValueError):
    """A lesson file that cannot be used; `problems` lists every Problem found in it."""

    def __init__(self, problems: list["Problem"]):
        self.problems = list(problems)
        super().__init__("; ".join(str(p) for p in self.problems))


@dataclass(frozen=True)
class Problem:
    """What is wrong with a lesson file, where: `lessons/x.md, step 3: the panel “…” does not exist`."""

    file: str
    step: int | None
    text: str

    def __str__(self) -> str:
        where = f"step {self.step}" if self.step is not None else "front matter"
        return f"{self.file}, {where}: {self.text}"


@dataclass(frozen=True)
class Prediction:
    """What a student commits to before the panel runs: one of `choices`, or a number in [low, high]."""

    question: str
    choices: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None
    step: float | None = None
    unit: str = ""
    answer: str | None = None          # a template field: what the run measured, shown beside the prediction

    @property
    def kind(self) -> str:
        return "choice" if self.choices else "number"

    def accept(self, value) -> str | float:
        """The answer as stored (a choice, or a float), or ValueError saying what is allowed."""
        if self.choices:
            if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(self.choices):
                return self.choices[value]
            if isinstance(value, str) and value in self.choices:
                return value
            raise ValueError(f"the answer must be one of: {'; '.join(self.choices)}")
        try:
            x = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"the answer must be a number between {self.low:g} and {self.high:g}") from None
        if not math.isfinite(x) or not self.low <= x <= self.high:
            raise ValueError(f"the answer must be a number between {self.low:g} and {self.high:g}")
        return x


@dataclass(frozen=True)
class Preset:
    """Settings for one session of the lesson: `kind` is a key of lab.sessions.SESSIONS."""

    name: str
    kind: str
    settings: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    number: int
    title: str
    body: str = ""
    panel: str | None = None
    preset: str | None = None          # a name in the lesson's presets; None: the panel's shipped session
    run: dict = field(default_factory=dict)
    predict: Prediction | None = None
    observation: str = ""
    try_text: str = ""
    try_preset: str | None = None
    rerun: str | bool = False          # a live re-run of a shipped result: True, or a claim's id

    def texts(self) -> list[str]:
        """Every text of the step that may hold template fields."""
        out = [self.title, self.body, self.observation, self.try_text]
        if self.predict is not None:
            out += [self.predict.question, *self.predict.choices]
        return out


@dataclass(frozen=True)
class Lesson:
    id: str                            # the file name without its order prefix: 02-forgetting.md → forgetting
    path: str                          # as the problems name it: lessons/02-forgetting.md
    title: str
    mechanism: str
    minutes: int
    summary: str = ""
    intro: str = ""
    presets: dict = field(default_factory=dict)     # name → Preset
    steps: tuple[Step, ...] = ()

    def step(self, number: int) -> Step:
        return self.steps[number - 1]

    @property
    def predictions(self) -> int:
        return sum(1 for s in self.steps if s.predict is not None)


@dataclass(frozen=True)
class Library:
    """The lessons of a folder that loaded, in file order, and the problems of those that did not."""

    lessons: tuple[Lesson, ...] = ()
    problems: tuple[Problem, ...] = ()

    def get(self, lesson_id: str) -> Lesson | None:
        return next((lesson for lesson in self.lessons if lesson.id == lesson_id), None)

    @property
    def ids(self) -> list[str]:
        return [lesson.id for lesson in self.lessons]
