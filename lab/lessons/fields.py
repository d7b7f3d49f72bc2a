"""Template fields in a lesson's text: `{source.path[:format]}`, checked when the lesson loads and
filled from a session's records when the step is shown (lab.lessons.observe reads them).

    fields_in("BWT {forgetting.BWT.transformer:mean}")      → [Field("forgetting", ("BWT", "transformer"), "mean")]
    check_field(field, shape)                               → None, or what is wrong with it
    fill(text, session_of)                                  → the text with every field written out

`session_of(kind)` gives the session a field of that kind reads (the step's own, or the lesson's
shipped one), or None when the lesson has none; a field whose session is missing says so in place.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from lab.lessons import observe
from lab.lessons.values import FORMATS, Missing, Value

FIELD = re.compile(r"\{([a-z_]+)((?:\.[^\s{}.:]+)+)(?::([a-z]+))?\}")


@dataclass(frozen=True)
class Field:
    source: str
    parts: tuple[str, ...]
    fmt: str | None = None

    @property
    def name(self) -> str:
        return "{" + ".".join((self.source, *self.parts)) + (f":{self.fmt}" if self.fmt else "") + "}"


def _forgetting_check(parts, shape):
    from lab.forgetting import METHODS
    from lab.forgetting.summary import METRIC_KEYS
    from lab.models import MODELS
    return observe.comparison_check(parts, (*METRIC_KEYS, "intransigence"), tuple(MODELS), tuple(METHODS),
                                     "forgetting")


def _deployment_check(parts, shape):
    from lab.deploy.settings import VARIANTS
    from lab.deploy.summary import KEYS
    return observe.comparison_check(parts, KEYS, tuple(VARIANTS), ("deploy",), "deployment", knowledge=True)


def _claims_check(parts, shape):
    from lab.claims import CLAIMS
    return observe.check_claims(parts, shape, tuple(CLAIMS))


# source → (check(parts, shape) → problem or None, read(parts, session) → Value)
SOURCES: dict[str, tuple[Callable, Callable]] = {
    "playground": (observe.check_playground, observe.read_playground),
    "sleep": (observe.check_sleep, observe.read_sleep),
    "memory": (observe.check_memory, observe.read_memory),
    "forgetting": (_forgetting_check, observe.read_comparison),
    "deployment": (_deployment_check, observe.read_comparison),
    "claims": (_claims_check, observe.read_claims),
}
SHIPPED = ("forgetting", "deployment", "claims")      # sources a lesson can read without a preset of its own


def fields_in(text: str) -> list[Field]:
    return [Field(m.group(1), tuple(m.group(2)[1:].split(".")), m.group(3)) for m in FIELD.finditer(text or "")]


def check_field(field: Field, shape: observe.Shape | None = None) -> str | None:
    """None if the field exists, else why not (for the lesson's problem message)."""
    if field.source not in SOURCES:
        return (f"the template field {field.name} does not exist: its source “{field.source}” is not one of "
                f"{', '.join(SOURCES)}")
    if field.fmt is not None and field.fmt not in FORMATS:
        return f"the template field {field.name} has an unknown format “{field.fmt}”: use {', '.join(FORMATS)}"
    problem = SOURCES[field.source][0](list(field.parts), shape)
    return None if problem is None else f"the template field {field.name} does not exist: {problem}"


def value_of(field: Field, session) -> Value:
    """The field's value now (Missing when there is no session or the read fails on a missing record)."""
    if session is None:
        return Missing(f"this lesson has no {field.source} session to read {field.name} from")
    try:
        return SOURCES[field.source][1](list(field.parts), session)
    except (KeyError, IndexError, ValueError, TypeError) as err:
        return Missing(f"{field.name} could not be read ({err})")


def fill(text: str, session_of: Callable[[str], object]) -> str:
    """`text` with each template field replaced by its value, written out with seeds and spread; a
    field whose record is missing reads "(not available)", and why is said once at the end."""
    reasons: list[str] = []

    def one(match: re.Match) -> str:
        field = Field(match.group(1), tuple(match.group(2)[1:].split(".")), match.group(3))
        if field.source not in SOURCES:
            return match.group(0)
        value = value_of(field, session_of(field.source))
        if isinstance(value, Missing) and value.why not in reasons:
            reasons.append(value.why)
        return value.text(field.fmt)
    out = FIELD.sub(one, text or "")
    for why in reasons:
        out += f"\n\n*Not available: {why[0].upper()}{why[1:]}.*"
    return out
