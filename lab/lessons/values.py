"""What a template field of a lesson turns into: a measured number with its seeds and spread, an
exact number (a count, a setting), or a text (a verdict, a claim) — and how each is written.

    Measured(mean=-0.949, std=0.009, n=3, seeds=(0, 1, 2)).text()  → "−0.95 ± 0.009 (mean ± std over 3 seeds: 0, 1, 2)"
    Measured.of([0.2], seeds=(0,)).text()                                 → "0.20 (one run, seed 0)"
    Exact(4).text()                                                       → "4"
    Missing("the claims scorecard has not been computed yet").text()     → "(not available)", the reason once below

Formats (after a colon in the field, `{forgetting.BWT.hope:mean}`): `mean` (the number alone),
`std`, `ci` (mean and 95 % interval), `n`, `seeds`, `pct` (as a percentage, with its spread). A number
is never typed into a lesson: it is read from records when the step is shown (lab.lessons.observe).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from lab import metrics

FORMATS = ("mean", "std", "ci", "n", "seeds", "pct")
MINUS = "−"


def number(x: float | int | None, pct: bool = False) -> str:
    """A number as a lesson writes it: a proper minus sign, 2 decimals (3 below 0.1), integers as
    integers, a percentage with `pct`."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "undefined"
    if pct:
        x = 100 * x
        text = f"{x:.0f}" if abs(x) >= 10 else f"{x:.1f}"
        return text.replace("-", MINUS) + " %"
    if isinstance(x, int) or (isinstance(x, float) and x.is_integer() and abs(x) >= 10):
        text = f"{int(x):,}"
    elif abs(x) >= 0.1 or x == 0:
        text = f"{x:.2f}"
    else:
        text = f"{x:.3f}"
    return text.replace("-", MINUS)


def seeds_text(seeds) -> str:
    return ", ".join(str(s) for s in seeds)


@dataclass(frozen=True)
class Measured:
    """A measurement over runs (seeds) or items (pairs, tasks): mean, std, 95 % interval, n."""

    mean: float
    std: float = math.nan
    ci95: float = math.nan
    n: int = 1
    seeds: tuple = ()
    over: str = "seeds"            # what n counts: "seeds", or e.g. "pairs" for a memory's recall

    @classmethod
    def of(cls, values, seeds=(), over: str = "seeds") -> "Measured":
        cell = metrics.mean_ci([float(v) for v in values])
        return cls(cell["mean"], cell["std"], cell["ci95"], int(cell["n"]), tuple(seeds), over)

    @property
    def value(self) -> float:
        return self.mean

    def _where(self, spread: bool) -> str:
        seeds, what = self.seeds, "mean ± std" if spread else "mean"
        if self.over != "seeds":
            tail = f", seed {seeds_text(seeds)}" if seeds else ""
            return f"{what} over {self.n} {self.over}{tail}"
        if self.n <= 1:
            return f"one run, seed {seeds_text(seeds)}" if seeds else "one run"
        return f"{what} over {self.n} seeds: {seeds_text(seeds)}" if seeds else f"{what} over {self.n} seeds"

    def text(self, fmt: str | None = None) -> str:
        pct = fmt == "pct"
        spread = math.isfinite(self.std) and self.n > 1
        if fmt == "mean":
            return number(self.mean)
        if fmt == "std":
            return number(self.std) if spread else "undefined (one value)"
        if fmt == "n":
            return str(self.n)
        if fmt == "seeds":
            return seeds_text(self.seeds) or "none recorded"
        if fmt == "ci":
            ci = f" ± {number(self.ci95)} (95 % interval" if math.isfinite(self.ci95) else " (no interval"
            return f"{number(self.mean)}{ci}, {self._where(False)})"
        body = number(self.mean, pct)
        if spread:
            body += f" ± {number(self.std, pct)}"
        return f"{body} ({self._where(spread)})"


@dataclass(frozen=True)
class Exact:
    """A number that is not measured with noise: a count, a setting, a closed form."""

    number: float | int

    @property
    def value(self) -> float:
        return float(self.number)

    def text(self, fmt: str | None = None) -> str:
        if fmt in ("n", "seeds", "std", "ci"):
            return "exact" if fmt != "n" else "1"
        return number(self.number, fmt == "pct")


@dataclass(frozen=True)
class Text:
    """Words read from a record (a verdict, a claim as the lab words it)."""

    words: str

    @property
    def value(self) -> str:
        return self.words

    def text(self, fmt: str | None = None) -> str:
        return self.words


@dataclass(frozen=True)
class Missing:
    """A field whose record does not exist (yet): said plainly where the number would be."""

    why: str

    @property
    def value(self) -> None:
        return None

    def text(self, fmt: str | None = None) -> str:
        return "(not available)"                 # the reason is said once, below the text (lab.lessons.fill)


@dataclass(frozen=True)
class Pending:
    """A field of a run that has not run yet."""

    @property
    def value(self) -> None:
        return None

    def text(self, fmt: str | None = None) -> str:
        return "…"


Value = Measured | Exact | Text | Missing | Pending
