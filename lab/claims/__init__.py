"""The seed's claims, put to the test: one card per claim with the experiment, its controls, the
verdict computed from ≥ 5 seeds with a 95 % interval, a regime map over the lab's knobs, and the
exact command that reproduces it.

    cards.py     Claim, the effect helpers (paired by seed), the verdict rule
    registry.py  the claims (CLAIMS), in the lab's own words, with their sweeps
    compute.py   running the sweeps (lab.sweep, on Ray Tune) and writing the cards (claims.json)
"""
from __future__ import annotations

from lab.claims.cards import FAILS, HOLDS, MIXED, UNMEASURED, VERDICTS, Claim, verdict
from lab.claims.compute import REGIME_SEEDS, REPORTED_SEEDS, compute, load, rerun_agrees
from lab.claims.registry import CLAIMS

__all__ = ["CLAIMS", "Claim", "verdict", "compute", "load", "rerun_agrees", "VERDICTS", "HOLDS", "FAILS", "MIXED", "UNMEASURED",
           "REPORTED_SEEDS", "REGIME_SEEDS"]
