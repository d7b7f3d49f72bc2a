"""Join a class: a student enters the teacher's code and sends predictions from their own device."""
from __future__ import annotations

from app.components.lesson_poll import student_view
from app.components.shell import page_setup

page_setup(
    "Join a class",
    "the student's side of a class poll: the question on the teacher's screen, and your prediction for it. No name "
    "is asked or kept.",
    "enter the code shown on the teacher's screen and press Join; answer each question when it appears. You can "
    "change an answer until the teacher reveals the result.",
)
student_view()
