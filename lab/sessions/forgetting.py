"""The Forgetting page as a session: comparisons of architectures on one stream (`lab.forgetting`),
run and kept while a user is on the page, beside the shipped reference comparison.

    session = ForgettingSession(shipped=Comparison.load("assets/forgetting"))
    session.configure(models=("transformer", "hope"), preset="tiny")   # queue a comparison
    while session.busy:
        session.advance(budget_s=0.25)                                   # train a slice of it
    session.shown                                                        # the comparison just kept
    session.request_rerun(seeds=[0], methods=["naive"])                  # re-run the shipped one live
    ForgettingSession(shipped=..., library={"Split-Digits …": (comparison, "assets/digits/split/")})
    ...
    session.agreement                                                    # did it come out identical?

What it holds: the comparisons run in this session (label → `Kept`: the comparison, its agreement
with the shipped one for a re-run, the settings key), the label of the one shown, and at most one
pending job. The shipped comparison is given to it, never changed, and may be shared between
sessions (lab never reads Streamlit's caches; the page loads it once per process and passes it in);
so are the other precomputed comparisons of the `library` (the digits benchmarks), each shown and
re-run like the shipped one.

Choices: settings already run in this session show the kept result instead of training again.
A new job replaces an unfinished one (with a notice). A diverging run ends the job with an error
notice that names the run; results already kept stay. A snapshot keeps the pending job's recipe,
not its half-trained models: after `restore` it starts again from its first step, and since every
run is seeded it gives the same numbers.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import pandas as pd

from lab.forgetting import (Comparison, ComparisonError, ComparisonJob, ForgetSettings, check_agreement, rerun_job,
                            describe_settings)
from lab.records import COLUMNS
from lab.sessions.base import Session, exclusive

SHIPPED = "The shipped default comparison (precomputed)"


@dataclass(frozen=True)
class Kept:
    """A finished comparison of this session; `agreement` (lab.forgetting.check_agreement) is set
    for a live re-run of the shipped comparison, `key` says what was run (settings JSON, or the re-run)."""

    comparison: Comparison
    agreement: dict | None
    key: str


@dataclass
class Pending:
    """The job being trained, and how to build it again from nothing (for `restore`)."""

    job: ComparisonJob
    label: str
    purpose: str                            # "run" (from settings) or "rerun" (of a precomputed comparison)
    key: str
    build: Callable[[], ComparisonJob]
    reference: str | None = None            # for a re-run: the label of the precomputed comparison re-run


class ForgettingSession(Session):
    """Forgetting comparisons of this session and the shipped one; see the module docstring."""

    kind = "forgetting"
    Settings = ForgetSettings
    refusal = "This comparison cannot run"
    shipped_label = SHIPPED                         # how the shipped comparison is named in the picker
    assets = "assets/forgetting/"                   # where it ships

    def __init__(self, shipped: Comparison | None = None, shipped_problem: str | None = None,
                 library: dict[str, tuple[Comparison, str]] | None = None):
        super().__init__()
        self.shipped = shipped                      # read-only, possibly shared: never modified here
        self.shipped_problem = shipped_problem      # why there is no shipped comparison, if there is none
        # every precomputed comparison by label (the shipped one first, then the library), and its folder
        self.precomputed: dict[str, Comparison] = {self.shipped_label: shipped} if shipped is not None else {}
        self.sources: dict[str, str] = {self.shipped_label: self.assets}
        for label, (comparison, folder) in (library or {}).items():
            self.precomputed[label], self.sources[label] = comparison, folder
        self.results: dict[str, Kept] = {}
        self.pending: Pending | None = None
        self._shown: str | None = None
        self._method: str | None = None             # the method the figures show (one of the shown one's)

    # --- what is shown ---------------------------------------------------------------------------
    @property
    def labels(self) -> list[str]:
        """The results a user can look at: the precomputed ones first, then this session's, oldest first."""
        return list(self.precomputed) + list(self.results)

    @property
    def shown_label(self) -> str | None:
        """The result on screen: the one chosen last, else the newest, else the shipped one."""
        if self._shown in self.labels:
            return self._shown
        return next(reversed(self.results), None) if self.results else next(iter(self.precomputed), None)

    @exclusive
    def show(self, label: str) -> None:
        """Put the result `label` on screen (an unknown label changes nothing)."""
        if label in self.labels and label != self.shown_label:
            self._shown = label
            self.changed()

    @property
    def shown(self) -> Comparison | None:
        label = self.shown_label
        return self.precomputed[label] if label in self.precomputed else self.results[label].comparison if label else None

    @property
    def reference_label(self) -> str | None:
        """The precomputed comparison a re-run repeats: the one on screen, else the shipped one."""
        label = self.shown_label
        return label if label in self.precomputed else next(iter(self.precomputed), None)

    @property
    def reference(self) -> Comparison | None:
        label = self.reference_label
        return self.precomputed[label] if label is not None else None

    @property
    def agreement(self) -> dict | None:
        """For a live re-run on screen: how it agrees with the shipped numbers; else None."""
        label = self.shown_label
        return self.results[label].agreement if label in self.results else None

    @property
    def figure_method(self) -> str | None:
        """The method (naive, replay) the figures show: the one chosen if the shown comparison ran
        it, else its first."""
        comparison = self.shown
        if comparison is None:
            return None
        return self._method if self._method in comparison.methods else comparison.methods[0]

    @exclusive
    def choose_method(self, method: str) -> None:
        """Show `method` in the figures (kept while another comparison without it is on screen)."""
        if method != self._method:
            self._method = method
            self.changed()

    def kept_label(self, key: str) -> str | None:
        """The label of a kept result made with the same settings (key), if any."""
        return next((label for label, kept in self.results.items() if kept.key == key), None)

    def records(self) -> pd.DataFrame:
        """The tidy records of the comparison on screen (with seed and method columns)."""
        comparison = self.shown
        return comparison.records if comparison is not None else pd.DataFrame(columns=COLUMNS)

    # --- queueing work ---------------------------------------------------------------------------
    def _apply(self, settings: ForgetSettings) -> None:
        """Queue the comparison `settings` describe, unless it was already run in this session."""
        self.limits.check_run(settings.base_config())          # what this server allows (lab.limits)
        key = settings.to_json()
        kept = self.kept_label(key)
        if kept is not None:
            self.show(kept)
            self.notices.add("info", f"These settings were already run in this session: showing the kept "
                                     f"result “{kept}”.")
            return
        self._queue(lambda: ComparisonJob.from_settings(settings), describe_settings(settings), "run", key)

    @exclusive
    def request_rerun(self, seeds: list[int], methods: list[str], joint: bool = False) -> bool:
        """Queue a live re-run of the precomputed comparison on screen (else the shipped one) for these
        seeds and methods (and its joint reference, if it has one and `joint`). Refused with an error
        notice: False."""
        name, reference = self.reference_label, self.reference
        if reference is None:
            self.notices.add("error", "There is no shipped comparison to re-run.")
            return False
        seeds, methods = [int(s) for s in seeds], list(methods)
        if not seeds or not methods:
            self.notices.add("error", "Choose at least one seed and one method to re-run.")
            return False
        joint = bool(joint and reference.summary.get("joint"))
        try:
            rerun_job(reference, seeds, methods, joint)              # check the choice before queueing it
        except ValueError as err:
            self.notices.add("error", f"This re-run cannot start: {err}")
            return False
        seeds_text = ", ".join(str(s) for s in seeds)
        what = "the shipped comparison" if name == self.shipped_label else f"“{name}”"
        label = (f"Live re-run of {what} (seed{'s' if len(seeds) > 1 else ''} {seeds_text}, "
                 f"{', '.join(methods)}{', joint' if joint else ''})")
        self._queue(lambda: rerun_job(reference, seeds, methods, joint), label, "rerun",
                    f"rerun:{name}:{seeds}:{methods}:{joint}", reference=name)
        return True

    def _queue(self, build: Callable[[], ComparisonJob], label: str, purpose: str, key: str,
               reference: str | None = None) -> None:
        """Make `build()` the pending job (an unfinished one is dropped, with a notice)."""
        job = build()
        if self.pending is not None:
            self.notices.add("info", f"The unfinished comparison “{self.pending.label}” was dropped for the new "
                                     "one.")
        self.pending = Pending(job, label, purpose, key, build, reference)
        self.changed()

    # --- work --------------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self.pending is not None

    @property
    def rerunning(self) -> bool:
        """The pending job is a live re-run of a precomputed comparison."""
        return self.pending is not None and self.pending.purpose == "rerun"

    @property
    def progress(self) -> tuple[float, str]:
        if self.pending is None:
            return (1.0, "")
        return (self.pending.job.fraction, self.pending.job.label)

    @property
    def pending_label(self) -> str:
        return self.pending.label if self.pending is not None else ""

    @exclusive
    def advance(self, budget_s: float = 0.25) -> int:
        """Train the pending job for about `budget_s` seconds; keep and show its result when it
        ends. A run that diverges ends the job with an error notice naming it. Returns the steps."""
        if self.pending is None:
            return 0
        pending = self.pending
        try:
            steps = pending.job.advance(budget_s=budget_s)
        except ComparisonError as err:
            self.pending = None
            self.notices.add("error", f"The comparison could not finish: {err}")
            self.changed()
            return 0
        if pending.job.done:
            self._keep(pending)
        return steps

    def _keep(self, pending: Pending) -> None:
        comparison = pending.job.result()
        agreement = None
        if pending.purpose == "rerun" and pending.reference in self.precomputed:
            agreement = check_agreement(self.precomputed[pending.reference], comparison)
        label = pending.label
        if label in self.results:
            label = f"{label} ({len(self.results) + 1})"
        self.results[label] = Kept(comparison, agreement, pending.key)
        self.pending = None
        self._shown = label
        self.changed()

    @exclusive
    def stop(self) -> None:
        """Drop the pending job (nothing of it is kept; the results already kept stay)."""
        if self.pending is None:
            return
        self.notices.add("info", f"Stopped “{self.pending.label}” at {100 * self.pending.job.fraction:.0f} %; "
                                 "nothing of it is kept.")
        self.pending = None
        self.changed()

    # --- snapshot ----------------------------------------------------------------------------------
    @exclusive
    def snapshot(self) -> dict:
        """The settings, the kept results, the one shown and the pending job's recipe (finished
        comparisons are read-only, so they are shared with the snapshot, not copied)."""
        pending = None
        if self.pending is not None:
            p = self.pending
            pending = {"label": p.label, "purpose": p.purpose, "key": p.key, "build": p.build,
                       "reference": p.reference}
        return {"settings": self.settings, "results": dict(self.results), "shown": self._shown,
                "method": self._method, "pending": pending}

    @exclusive
    def restore(self, snap: dict) -> None:
        """Back to `snap`; a job pending then is pending again, from its first step."""
        self.settings = snap["settings"]
        self.results = dict(snap["results"])
        self._shown, self._method = snap["shown"], snap["method"]
        p = snap["pending"]
        self.pending = None if p is None else Pending(p["build"](), p["label"], p["purpose"], p["key"], p["build"],
                                                      p["reference"])
        self.changed()
