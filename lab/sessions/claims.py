"""The claims scorecard as a session: the shipped claim cards (assets/claims/, computed by
`python -m lab claims`), which one is open, and the live re-run of one card's stored trial that
says whether its numbers come out again."""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from lab.claims import CLAIMS, VERDICTS, load, rerun_agrees
from lab.config import Config, choice
from lab.sessions.base import Session, exclusive


@dataclass(frozen=True)
class ClaimsSettings(Config):
    verdicts: str = choice("all", ("all", *VERDICTS), "which cards to show")
    focus: str = choice("", ("", *CLAIMS), "show only this claim's card (empty = every card)")


class ClaimsSession(Session):
    kind = "claims"
    Settings = ClaimsSettings

    def __init__(self, cards: list[dict] | None = None, problem: str | None = None):
        super().__init__()
        self.cards = list(cards or [])             # read-only, possibly shared between users
        self.problem = problem                     # why there are no cards, if there are none
        self.checks: dict[str, dict] = {}          # card id → the re-run's agreement
        self._pending: str | None = None

    @classmethod
    def from_folder(cls, folder) -> "ClaimsSession":
        try:
            return cls(load(folder))
        except ValueError as err:
            return cls(problem=f"The claim cards could not be read: {err}. Make them with `python -m lab claims "
                               f"--out {folder}`.")

    def _apply(self, settings: ClaimsSettings) -> None:
        """Only the filter changes; the cards stay."""

    @property
    def shown(self) -> list[dict]:
        wanted, focus = self.settings.verdicts, self.settings.focus
        return [c for c in self.cards if (wanted == "all" or c["verdict"] == wanted) and focus in ("", c["id"])]

    @property
    def missing(self) -> list[str]:
        """Claims of the registry that have no card yet, each with the command that computes it."""
        have = {c["id"] for c in self.cards}
        return [f"{claim_id}: `python -m lab claims --only {claim_id} --out assets/claims`"
                for claim_id in CLAIMS if claim_id not in have]

    def card(self, claim_id: str) -> dict:
        return next(c for c in self.cards if c["id"] == claim_id)

    # --- the live re-run of one card's trial --------------------------------------------------------
    @exclusive
    def request_check(self, claim_id: str) -> bool:
        if claim_id not in {c["id"] for c in self.cards} or not self.card(claim_id).get("rerun"):
            self.notices.add("error", f"There is no stored trial to re-run for the card {claim_id!r}.")
            return False
        self._pending = claim_id
        self.changed()
        return True

    @property
    def busy(self) -> bool:
        return self._pending is not None

    @property
    def progress(self) -> tuple[float, str]:
        return (0.0, f"re-running one trial of “{self._pending}”") if self._pending else (1.0, "")

    @exclusive
    def advance(self, budget_s: float = 0.25) -> int:
        """Run the pending re-run (one trial: seconds to a few minutes) and keep its agreement."""
        if self._pending is None:
            return 0
        claim_id, self._pending = self._pending, None
        try:
            self.checks[claim_id] = rerun_agrees(self.card(claim_id))
        except (ValueError, RuntimeError) as err:
            self.notices.add("error", f"The re-run of “{claim_id}” could not finish: {err}")
        self.changed()
        return 1

    @exclusive
    def stop(self) -> None:
        self._pending = None

    def records(self) -> pd.DataFrame:
        """One row per card: id, verdict, effect mean and 95 % interval, seeds."""
        return pd.DataFrame([{"id": c["id"], "verdict": c["verdict"], "effect": c["effect"]["mean"],
                              "ci95": c["effect"]["ci95"], "n_seeds": c["n_seeds"]} for c in self.cards])

    @exclusive
    def snapshot(self) -> dict:
        return {"settings": self.settings, "checks": dict(self.checks)}

    @exclusive
    def restore(self, snap: dict) -> None:
        self.settings, self.checks, self._pending = snap["settings"], dict(snap["checks"]), None
        self.changed()
