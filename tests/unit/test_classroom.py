"""The class poll (lab.classroom): short codes, a clear message for a wrong code, answers counted once
per student, two classes kept apart, the teacher's answers before the reveal, bounds and expiry, and
two students answering at the same time."""
from __future__ import annotations

import threading

import pytest

from lab.classroom import ALPHABET, CODE_LENGTH, Classroom, PollError

CHOICES = ("all", "half", "none")


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def room():
    return Classroom(clock=Clock())


def test_a_class_gets_a_short_code_that_is_read_without_case_or_spaces(room):
    code, teacher = room.start("forgetting")
    assert len(code) == CODE_LENGTH and set(code) <= set(ALPHABET)
    assert "0" not in code and "O" not in code and teacher != code
    student = room.join(f" {code[:3].lower()} {code[3:].lower()} ")
    room.ask(code, teacher, "forgetting/2", "What is left?", CHOICES)
    assert room.current(code.lower()).key == "forgetting/2"
    assert room.answer(code, student, "forgetting/2", "half") == "half"


@pytest.mark.parametrize("bad", ["", "ZZZZZZ", "K7QX2", "' OR 1=1 --", "x" * 500])
def test_a_wrong_code_gets_a_clear_message(room, bad):
    room.start("forgetting")
    with pytest.raises(PollError, match="No class with the code") as err:
        room.join(bad)
    assert "code on the teacher's screen" in str(err.value)
    assert len(str(err.value)) < 300                       # a long code is not echoed whole


def test_answers_are_counted_once_per_student_and_the_teacher_sees_them_first(room):
    code, teacher = room.start("forgetting")
    room.ask(code, teacher, "q", "What is left?", CHOICES)
    ann, bob = room.join(code), room.join(code)
    room.answer(code, ann, "q", "all")
    room.answer(code, ann, "q", "none")                    # a changed answer replaces the first
    room.answer(code, bob, "q", "none")
    with pytest.raises(PollError, match="after the teacher's reveal"):
        room.tally(code, None, "q")                        # a student sees nothing before the reveal
    with pytest.raises(PollError, match="Only the teacher"):
        room.reveal(code, "not-the-token", "q")
    tally = room.tally(code, teacher, "q")
    assert tally.counts == {"all": 0, "half": 0, "none": 2} and tally.answered == 2 and tally.students == 2
    assert not tally.revealed
    room.reveal(code, teacher, "q")
    assert room.tally(code, None, "q").revealed


def test_answers_outside_the_question_are_refused(room):
    code, teacher = room.start()
    room.ask(code, teacher, "n", "How many updates?", low=0, high=120)
    student = room.join(code)
    assert room.answer(code, student, "n", "7") == 7.0
    for bad in ("many", 121, float("nan")):
        with pytest.raises(PollError):
            room.answer(code, student, "n", bad)
    with pytest.raises(PollError, match="Join the class"):
        room.answer(code, "a-stranger", "n", 3)
    with pytest.raises(PollError, match="no longer open"):
        room.answer(code, student, "other", 3)
    assert room.tally(code, teacher, "n").numbers == (7.0,)


def test_two_classes_are_kept_apart(room):
    (one, t1), (two, t2) = room.start("a"), room.start("b")
    assert one != two
    for code, teacher in ((one, t1), (two, t2)):
        room.ask(code, teacher, "same/1", "Same key in both classes", CHOICES)
    s1, s2 = room.join(one), room.join(two)
    room.answer(one, s1, "same/1", "all")
    room.answer(two, s2, "same/1", "none")
    assert room.tally(one, t1, "same/1").counts == {"all": 1, "half": 0, "none": 0}
    assert room.tally(two, t2, "same/1").counts == {"all": 0, "half": 0, "none": 1}
    with pytest.raises(PollError):
        room.answer(two, s1, "same/1", "half")             # a student of one class cannot answer in the other
    with pytest.raises(PollError):
        room.tally(two, t1, "same/1")                      # nor a teacher read the other's answers


def test_a_class_expires_after_its_ttl_and_the_server_is_bounded():
    clock = Clock()
    room = Classroom(max_classes=2, max_students=2, max_questions=2, ttl_s=100, clock=clock)
    code, teacher = room.start()
    room.start()
    with pytest.raises(PollError, match="already runs 2 classes"):
        room.start()
    room.join(code), room.join(code)
    with pytest.raises(PollError, match="full"):
        room.join(code)
    for key in ("q1", "q2", "q3"):
        room.ask(code, teacher, key, key, CHOICES)
    with pytest.raises(PollError, match="not been asked"):
        room.tally(code, teacher, "q1")                    # the oldest question went first
    clock.now = 50
    room.current(code)                                     # a use keeps the class alive
    clock.now = 149
    assert room.current(code).key == "q3" and len(room) == 1   # the unused class expired
    clock.now = 250
    with pytest.raises(PollError, match="No class with the code"):
        room.join(code)
    assert len(room) == 0


def test_two_students_answering_at_once_are_both_counted(room):
    code, teacher = room.start()
    room.ask(code, teacher, "q", "What is left?", CHOICES)
    students = [room.join(code) for _ in range(2)]
    start = threading.Barrier(2)

    def answer(student: str, choice: str) -> None:
        start.wait()
        for _ in range(200):                               # many overlapping writes; each student's last counts
            room.answer(code, student, "q", choice)
        room.answer(code, student, "q", "half" if choice == "all" else "none")

    threads = [threading.Thread(target=answer, args=(s, c)) for s, c in zip(students, ("all", "none"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    tally = room.tally(code, teacher, "q")
    assert tally.answered == 2 and tally.counts == {"all": 0, "half": 1, "none": 1}
