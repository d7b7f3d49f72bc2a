"""The class poll: a teacher starts a class and gets a short code; students on their own devices join
the same server with the code and send their predictions; the teacher's screen shows how the class
answered before the reveal.

    room = Classroom()                                   # one per server, shared by every browser session
    code, teacher = room.start("forgetting")             # "K7QX2M", a secret token of the teacher's
    room.ask(code, teacher, "forgetting/2", "After language 2…", choices=("all", "half", "none"))
    student = room.join("k7qx2m")                        # codes are read without case or spaces
    room.answer(code, student, "forgetting/2", "none")   # again: the answer is replaced, never counted twice
    room.tally(code, teacher, "forgetting/2")            # Tally(counts={"all": 0, "half": 0, "none": 1}, …)

What it keeps, and for how long: in memory only (a restart forgets everything); no names, no
addresses: a student is a random token held by their browser session; answers are choices of the
question or numbers in its range, nothing typed freely. Bounded: at most `max_classes` classes on a
server, `max_students` students and `max_questions` questions in a class (the oldest question goes
first); a class expires `ttl_s` seconds after its last use (4 hours by default). A class is found only
by its code, and every read names it, so no class sees another's answers; the counts of a question
are the teacher's until it is revealed. Thread-safe: one lock around every change and read.
"""
from __future__ import annotations

import math
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"       # no 0/O, no 1/I: a code read aloud or off a projector
CODE_LENGTH = 6
MAX_CLASSES, MAX_STUDENTS, MAX_QUESTIONS = 300, 300, 100
TTL_S = 4 * 3600


class PollError(ValueError):
    """A request the poll refuses; the message is meant for the person who made it."""


@dataclass(frozen=True)
class Question:
    key: str
    title: str
    choices: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None

    def accept(self, value) -> str | float:
        if self.choices:
            if value not in self.choices:
                raise PollError("That answer is not one of the choices of this question.")
            return value
        try:
            x = float(value)
        except (TypeError, ValueError):
            raise PollError("The answer must be a number.") from None
        if not math.isfinite(x) or (self.low is not None and x < self.low) or (self.high is not None and x > self.high):
            raise PollError(f"The answer must be a number between {self.low:g} and {self.high:g}.")
        return x


@dataclass(frozen=True)
class Tally:
    question: Question
    counts: dict                  # choice → number of students (choices questions)
    numbers: tuple[float, ...]    # the answers (number questions)
    answered: int
    students: int
    revealed: bool


@dataclass
class _Class:
    code: str
    teacher: str
    lesson: str
    touched: float
    current: str | None = None
    questions: dict = field(default_factory=dict)     # key → Question, oldest first
    answers: dict = field(default_factory=dict)       # key → {student token → answer}
    revealed: set = field(default_factory=set)
    students: set = field(default_factory=set)


class Classroom:
    def __init__(self, max_classes: int = MAX_CLASSES, max_students: int = MAX_STUDENTS,
                 max_questions: int = MAX_QUESTIONS, ttl_s: float = TTL_S, clock: Callable[[], float] = time.monotonic):
        self.max_classes, self.max_students, self.max_questions, self.ttl_s = max_classes, max_students, max_questions, ttl_s
        self.clock = clock
        self.lock = threading.Lock()
        self.classes: dict[str, _Class] = {}

    # --- finding a class -------------------------------------------------------------------------
    @staticmethod
    def normalise(code: str) -> str:
        return "".join(c for c in str(code).upper() if c.isalnum())[:32]

    def _purge(self, now: float) -> None:
        for code in [c for c, k in self.classes.items() if now - k.touched > self.ttl_s]:
            del self.classes[code]

    def _find(self, code: str) -> _Class:
        now = self.clock()
        self._purge(now)
        found = self.classes.get(self.normalise(code))
        if found is None:
            raise PollError(f"No class with the code “{self.normalise(code)[:12]}” is running on this server. Check "
                            f"the code on the teacher's screen ({CODE_LENGTH} letters and digits); a class ends "
                            f"{self.ttl_s / 3600:g} hours after its last use.")
        found.touched = now
        return found

    def _teacher(self, code: str, teacher: str) -> _Class:
        found = self._find(code)
        if not secrets.compare_digest(found.teacher, str(teacher)):
            raise PollError("Only the teacher who started this class can do that.")
        return found

    # --- the teacher ---------------------------------------------------------------------------------
    def start(self, lesson: str = "") -> tuple[str, str]:
        """A new class: (its code, the teacher's secret token)."""
        with self.lock:
            now = self.clock()
            self._purge(now)
            if len(self.classes) >= self.max_classes:
                raise PollError(f"This server already runs {self.max_classes} classes, the most it holds. Try again "
                                "later, or end a class that is over.")
            code = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
            while code in self.classes:
                code = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
            teacher = secrets.token_urlsafe(16)
            self.classes[code] = _Class(code, teacher, str(lesson)[:80], now)
            return code, teacher

    def ask(self, code: str, teacher: str, key: str, title: str, choices=(), low: float | None = None,
            high: float | None = None) -> None:
        """Make `key` the question the class answers now (asking it again keeps its answers)."""
        with self.lock:
            found = self._teacher(code, teacher)
            if key not in found.questions:
                while len(found.questions) >= self.max_questions:
                    oldest = next(iter(found.questions))
                    del found.questions[oldest]
                    found.answers.pop(oldest, None)
                    found.revealed.discard(oldest)
                found.questions[key] = Question(str(key)[:120], str(title)[:500], tuple(str(c)[:200] for c in choices),
                                                low, high)
                found.answers[key] = {}
            found.current = key

    def reveal(self, code: str, teacher: str, key: str) -> None:
        with self.lock:
            found = self._teacher(code, teacher)
            if key in found.questions:
                found.revealed.add(key)

    def end(self, code: str, teacher: str) -> None:
        with self.lock:
            found = self._teacher(code, teacher)
            del self.classes[found.code]

    # --- the students ----------------------------------------------------------------------------------
    def join(self, code: str) -> str:
        """A new anonymous student of the class: their secret token."""
        with self.lock:
            found = self._find(code)
            if len(found.students) >= self.max_students:
                raise PollError(f"This class is full: it already has {self.max_students} students.")
            student = secrets.token_urlsafe(16)
            found.students.add(student)
            return student

    def current(self, code: str) -> Question | None:
        """The question the class answers now (what a student's screen shows), or None."""
        with self.lock:
            found = self._find(code)
            return found.questions.get(found.current) if found.current else None

    def answer(self, code: str, student: str, key: str, value) -> str | float:
        with self.lock:
            found = self._find(code)
            if student not in found.students:
                raise PollError("Join the class with its code first.")
            question = found.questions.get(key)
            if question is None:
                raise PollError("This question is no longer open.")
            accepted = question.accept(value)
            found.answers[key][student] = accepted
            return accepted

    def my_answer(self, code: str, student: str, key: str):
        with self.lock:
            return self._find(code).answers.get(key, {}).get(student)

    # --- reading the answers -------------------------------------------------------------------------------
    def tally(self, code: str, teacher: str | None, key: str) -> Tally:
        """How the class answered `key`: the teacher's at any time, everyone's once it is revealed."""
        with self.lock:
            found = self._find(code)
            if key not in found.questions:
                raise PollError("This class has not been asked that question.")
            revealed = key in found.revealed
            if not revealed and (teacher is None or not secrets.compare_digest(found.teacher, str(teacher))):
                raise PollError("The answers are shown after the teacher's reveal.")
            question, answers = found.questions[key], list(found.answers[key].values())
            counts = {c: sum(1 for a in answers if a == c) for c in question.choices}
            numbers = tuple(a for a in answers if isinstance(a, float)) if not question.choices else ()
            return Tally(question, counts, numbers, len(answers), len(found.students), revealed)

    def __len__(self) -> int:
        with self.lock:
            self._purge(self.clock())
            return len(self.classes)
