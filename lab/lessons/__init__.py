"""Guided lessons: Markdown files in lessons/ whose steps name the app's panels with presets,
ask for a prediction before the panel runs, and fill their observations from the run's own
records (template fields such as `{forgetting.BWT.transformer}`, never numbers typed into the text).

    parse.py      the file format (front matter, numbered steps, the ```step block, sections)
    validate.py   checks against the panels, the sessions' Settings, runs and fields; load_library
    model.py      Lesson, Step, Prediction, Preset, Problem, Library (frozen data)
    runs.py       what a step's session does before it is shown (run:), re-runs of shipped results
    fields.py     template fields: syntax, checks, filling;  observe.py: reading them from sessions
    values.py     measured numbers with seeds and spread, exact numbers, texts, missing records

No Streamlit here: the Lessons page (app/views/lesson.py) draws what lab.sessions.lesson holds.
"""
from __future__ import annotations

from pathlib import Path

from lab.lessons.fields import Field, check_field, fields_in, fill, value_of
from lab.lessons.model import Lesson, LessonError, Library, Prediction, Preset, Problem, Step
from lab.lessons.validate import build_lesson, load_library, source_preset

LESSONS_DIR = Path(__file__).resolve().parents[2] / "lessons"
ASSETS_DIR = Path(__file__).resolve().parents[2] / "assets"        # the shipped results a lesson reads

__all__ = ["LESSONS_DIR", "ASSETS_DIR", "Lesson", "LessonError", "Library", "Prediction", "Preset", "Problem", "Step", "Field",
           "build_lesson", "load_library", "source_preset", "fields_in", "check_field", "fill", "value_of"]
