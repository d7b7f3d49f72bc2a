"""A guided lesson as a session: which lesson and step is shown, the student's predictions, and the
sessions its steps' panels draw (built from the lesson's presets, one per preset, kept while the
lesson is open).

    session = LessonSession(load_library("lessons", panels), factories)    # factories: kind → shipped session
    session.configure({"lesson": "forgetting", "step": 2})
    session.commit("almost none")          # the prediction (a choice or a number) before the panel runs
    while session.busy:
        session.advance(0.3)               # the step's run: train until its target, a sleep, …
    session.observation()                  # its text with the template fields filled from the records
    session.configure(variant=True)        # "try this": the step with its variation preset

Choices: a step without a prediction runs when it is shown; a step with one runs once the student
commits (or the teacher reveals it). The work a step asks for is derived from its `run` target and
the session's state (like the explorer's), so nothing can get out of step; `stop` drops it for this
step until it is revealed again. Sessions of another lesson are dropped when the lesson changes,
so that a browser session holds at most one lesson's runs. In the app the training pool
(lab.sessions.pool) calls `advance` in a worker; the verbs that change the lesson hold `self.lock`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import pandas as pd

from lab.config import Config, ConfigError, bounded, flag
from lab.lessons import Library, fill, source_preset, value_of
from lab.lessons.fields import SHIPPED, fields_in
from lab.sessions.base import Session, exclusive

CHUNK_STEPS = 5                       # playground steps between checks of the time budget


def shipped_factories(assets: str | Path) -> dict[str, Callable[[], Session]]:
    """kind → a new session holding the shipped result of assets/<kind>/ (forgetting, deployment,
    claims), each read once per dict and shared read-only by the sessions it builds; a result that
    cannot be read becomes the session's stated problem. The app passes its own, cached per process."""
    from lab.deploy.summary import Deployment
    from lab.forgetting import Comparison
    from lab.sessions.claims import ClaimsSession
    from lab.sessions.deployment import DeploymentSession
    from lab.sessions.forgetting import ForgettingSession

    assets, loaded = Path(assets), {}

    def shipped(kind: str, cls) -> tuple:
        if kind not in loaded:
            try:
                loaded[kind] = (cls.load(assets / kind), None)
            except ValueError as err:
                loaded[kind] = (None, f"the precomputed result in assets/{kind}/ cannot be read ({err})")
        return loaded[kind]
    return {"forgetting": lambda: ForgettingSession(*shipped("forgetting", Comparison)),
            "deployment": lambda: DeploymentSession(*shipped("deployment", Deployment)),
            "claims": lambda: ClaimsSession.from_folder(assets / "claims")}


@dataclass(frozen=True)
class LessonSettings(Config):
    lesson: str = ""                   # a lesson's id; "" = the list of lessons
    step: int = bounded(1, 1, 99, "the step shown (1 = the first)")
    variant: bool = flag(False, "the step's “try this” preset instead of its own")


class LessonSession(Session):
    kind = "lesson"
    Settings = LessonSettings
    refusal = "This lesson step cannot be shown, so the page stays where it was"

    def __init__(self, library: Library | None = None, factories: Mapping[str, Callable[[], Session]] | None = None,
                 panels: Mapping[str, str] | None = None):
        super().__init__()
        self.library = library or Library()
        self.factories = dict(factories or {})          # kind → a new session (the shipped ones hold their results)
        self.panels = dict(panels or {})                # panel name → the kind of session it draws
        self.sessions: dict[str, Session] = {}          # preset name, or "shipped:<kind>" → session
        self.answers: dict[tuple[str, int], str | float] = {}
        self.revealed: set[tuple[str, int, bool]] = set()
        self.stopped: set[tuple[str, int, bool]] = set()
        self.slept_at: set[tuple[str, int]] = set()     # (preset, step) where a sleep was asked for

    # --- configure -------------------------------------------------------------------------------
    def _apply(self, settings: LessonSettings) -> None:
        if settings.lesson:
            lesson = self.library.get(settings.lesson)
            if lesson is None:
                raise ConfigError("LessonSettings", "lesson", settings.lesson,
                                  f"must be one of {', '.join(self.library.ids) or '(no lessons loaded)'}")
            if settings.step > len(lesson.steps):
                raise ConfigError("LessonSettings", "step", settings.step, f"must be between 1 and {len(lesson.steps)}")
            if settings.variant and lesson.step(settings.step).try_preset is None:
                raise ConfigError("LessonSettings", "variant", True, "this step has no “try this” preset")
        if settings.lesson != self.settings.lesson:
            for session in self.sessions.values():
                session.stop()
            self.sessions = {}

    def params(self) -> dict[str, str]:
        """The lesson and step as URL query parameters (a link to this exact step)."""
        s = self.settings
        if not s.lesson:
            return {}
        return {"lesson": s.lesson, "step": str(s.step), **({"try": "1"} if s.variant else {})}

    # --- what is shown ---------------------------------------------------------------------------------
    @property
    def lesson(self):
        return self.library.get(self.settings.lesson) if self.settings.lesson else None

    @property
    def step(self):
        lesson = self.lesson
        return lesson.step(self.settings.step) if lesson is not None else None

    @property
    def key(self) -> tuple[str, int, bool]:
        return (self.settings.lesson, self.settings.step, self.settings.variant)

    @property
    def preset_name(self) -> str | None:
        step = self.step
        if step is None:
            return None
        return step.try_preset if self.settings.variant else step.preset

    def _build(self, name: str, kind: str, settings: dict | None) -> Session:
        if name not in self.sessions:
            build = self.factories.get(kind)
            if build is None:
                from lab.sessions import SESSIONS
                build = SESSIONS[kind]
            session = build()
            if settings and not session.configure(settings):
                for level, text in session.notices.pop():
                    self.notices.add(level, text)
            self.sessions[name] = session
        return self.sessions[name]

    def session_named(self, name: str | None, kind: str | None = None) -> Session | None:
        """The session of preset `name` (or the shipped session of `kind` when `name` is None)."""
        lesson = self.lesson
        if name is not None and lesson is not None and name in lesson.presets:
            preset = lesson.presets[name]
            return self._build(name, preset.kind, preset.settings)
        if kind in SHIPPED or kind == "memory":
            return self._build(f"shipped:{kind}", kind, None)
        return None

    @property
    def inner(self) -> Session | None:
        """The session the current step's panel draws (None for a step without a panel)."""
        step = self.step
        if step is None or step.panel is None:
            return None
        return self.session_named(self.preset_name, self.panel_kind)

    @property
    def panel_kind(self) -> str | None:
        """The kind of session the current step's panel draws (its preset's kind if it has one)."""
        step, lesson = self.step, self.lesson
        if step is None or step.panel is None:
            return None
        name = self.preset_name
        return lesson.presets[name].kind if name else self.panels.get(step.panel)

    def session_of(self, kind: str) -> Session | None:
        """The session a `kind` template field of the current step reads (lab.lessons.source_preset)."""
        lesson, step = self.lesson, self.step
        if lesson is None:
            return None
        own = self.preset_name
        if own is not None and lesson.presets[own].kind == kind:
            return self.session_named(own)
        return self.session_named(source_preset(lesson.presets, lesson.steps, step.number, kind), kind)

    # --- predictions and the reveal -----------------------------------------------------------------
    @property
    def answer(self) -> str | float | None:
        return self.answers.get(self.key[:2])

    @property
    def revealed_now(self) -> bool:
        step = self.step
        return step is not None and (step.predict is None or self.key in self.revealed)

    @exclusive
    def commit(self, answer) -> bool:
        """Keep the student's prediction for this step and run it. A bad answer: an error notice, False."""
        step = self.step
        if step is None or step.predict is None:
            return False
        try:
            self.answers[self.key[:2]] = step.predict.accept(answer)
        except ValueError as err:
            self.notices.add("error", f"That prediction cannot be kept: {err}.")
            return False
        self.reveal()
        return True

    @exclusive
    def reveal(self) -> None:
        """Run the step and show its panel and observation (the teacher may reveal without a prediction)."""
        self.revealed.add(self.key)
        self.stopped.discard(self.key)
        self.changed()

    # --- work --------------------------------------------------------------------------------------------
    def _pending(self, session: Session) -> bool:
        step, kind = self.step, self.panel_kind
        run = step.run
        if kind == "playground" and run.get("steps"):
            r = session.run
            return not r.diverged and r.step_count < min(run["steps"], r.stream.total_steps)
        if kind == "sleep" and (run.get("tasks") or run.get("sleep")):
            if session.run is not None and session.run.diverged:
                return False
            if session.tasks_trained < run.get("tasks", 0):
                return True
            return bool(run.get("sleep")) and (self.preset_name, session.run.step_count) not in self.slept_at
        return False

    @property
    def busy(self) -> bool:
        if not self.revealed_now or self.key in self.stopped:
            return False
        inner = self.inner
        return inner is not None and (inner.busy or self._pending(inner))

    @exclusive
    def advance(self, budget_s: float = 0.3) -> int:
        if not self.busy:
            return 0
        inner, step, kind = self.inner, self.step, self.panel_kind
        start, done = time.perf_counter(), 0
        if kind == "playground" and self._pending(inner):
            while (self._pending(inner) and time.perf_counter() - start < budget_s
                   and not self.lock.waited_for):                  # a page waits to draw: it goes first
                target = min(step.run["steps"], inner.run.stream.total_steps)
                inner.step(min(CHUNK_STEPS, target - inner.run.step_count))
                done += 1
            self.changed()
            return done
        if kind == "sleep" and not inner.busy and self._pending(inner):
            if inner.tasks_trained < step.run.get("tasks", 0):
                inner.request_train()
            else:
                self.slept_at.add((self.preset_name, inner.run.step_count))
                inner.request_sleep()
        done = inner.advance(budget_s)
        for level, text in inner.notices.pop():
            self.notices.add(level, text)
        self.changed()
        return done

    @exclusive
    def stop(self) -> None:
        self.stopped.add(self.key)
        inner = self.sessions.get(self.preset_name or f"shipped:{self.panel_kind}")
        if inner is not None:
            inner.stop()

    @property
    def progress(self) -> tuple[float, str]:
        inner, step = self.inner, self.step
        if inner is None:
            return (1.0, "")
        if self.panel_kind == "playground" and step.run.get("steps"):
            target = min(step.run["steps"], inner.run.stream.total_steps)
            return inner.run.step_count / max(1, target), f"training: step {inner.run.step_count} of {target}"
        return inner.progress

    # --- reading ---------------------------------------------------------------------------------------
    def fill(self, text: str) -> str:
        """`text` with its template fields written out from the sessions' records as they are now."""
        return fill(text, self.session_of)

    def observation(self) -> str | None:
        """The step's observation, filled in; None until the step is revealed and its run is done."""
        step = self.step
        if step is None or not step.observation or not self.revealed_now or self.busy:
            return None
        return self.fill(step.observation)

    def measured_answer(self):
        """The Value the step's prediction is compared with (its `answer` field), or None."""
        step = self.step
        if step is None or step.predict is None or step.predict.answer is None or self.busy:
            return None
        field = fields_in(step.predict.answer)[0]
        return value_of(field, self.session_of(field.source))

    @exclusive
    def request_rerun(self) -> bool:
        """Re-run the step's shipped result live (its first seed, or the claim's stored trial)."""
        step, inner = self.step, self.inner
        if step is None or not step.rerun or inner is None:
            return False
        self.stopped.discard(self.key)
        if self.panel_kind == "claims":
            return inner.request_check(step.rerun)
        shipped = inner.shipped
        if shipped is None:
            self.notices.add("error", "There is no shipped result to re-run.")
            return False
        return inner.request_rerun([shipped.seeds[0]], shipped.methods[:1])

    def rerun_agreement(self) -> dict | None:
        """How the live re-run agrees with the shipped numbers: {"identical": bool, …}, or None."""
        step, inner = self.step, self.inner
        if step is None or not step.rerun or inner is None:
            return None
        if self.panel_kind == "claims":
            return inner.checks.get(step.rerun)
        return inner.agreement

    def records(self) -> pd.DataFrame:
        inner = self.inner
        return inner.records() if inner is not None else super().records()

    @exclusive
    def snapshot(self) -> dict:
        return {"settings": self.settings, "answers": dict(self.answers), "revealed": set(self.revealed),
                "sessions": {name: s.snapshot() for name, s in self.sessions.items()}}

    @exclusive
    def restore(self, snap: dict) -> None:
        if snap["settings"].lesson != self.settings.lesson:
            self.sessions = {}
        self.settings, self.answers, self.revealed = snap["settings"], dict(snap["answers"]), set(snap["revealed"])
        for name, state in snap["sessions"].items():
            shipped = name.startswith("shipped:")
            session = self.session_named(None if shipped else name, name.split(":", 1)[1] if shipped else None)
            if session is not None:
                session.restore(state)
        self.stopped = set()
        self.changed()
