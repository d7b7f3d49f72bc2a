"""Panels of the claims scorecard (a `lab.sessions.claims.ClaimsSession`): the verdicts at a glance,
and one card per claim with its experiment, verdict, figures, regime map, command and caveats."""
from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from app.components.charts import chart
from app.components.sessions import as_text
from app.components.shell import panel_guard
from app.panels.registry import panel
from lab.viz.claims import effect_figure, regime_figure

BADGES = {"holds": ("green", "holds"), "does not hold": ("orange", "does not hold"),
          "mixed at this scale": ("gray", "mixed at this scale"),
          "not measured": ("gray", "not measured: see the failed trials")}


def _effect_text(card: dict) -> str:
    e = card["effect"]
    if e["mean"] is None or not math.isfinite(e["mean"]):
        return "not defined on any seed"
    ci = f" ± {e['ci95']:.3f}" if e["ci95"] is not None and math.isfinite(e["ci95"]) else ""
    return f"{e['mean']:+.3f}{ci} (n = {e['n']} seeds)"


@panel("claims_overview", "The claims at a glance", session="claims")
def claims_overview(session, key: str = "cl") -> None:
    """One row per claim: its verdict, the effect with its 95 % interval, the seeds."""
    if session.problem:
        st.warning(as_text(session.problem))
        return
    rows = [{"claim": c["claim"].split(":")[0].split(".")[0], "verdict": c["verdict"], "effect": _effect_text(c),
             "seeds": c["n_seeds"]} for c in session.cards]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    if any(c.get("quick") for c in session.cards):
        st.warning("These cards were made with --quick (tiny models, two seeds): their verdicts mean nothing.")
    if session.missing:
        st.info("Not computed yet (no verdict is given for these claims):  \n" + "  \n".join(session.missing))


@panel("claim_cards", "Claim cards", session="claims")
def claim_cards(session, key: str = "cl") -> None:
    """Every shown claim as a card: claim and source, experiment and controls, verdict, figures,
    regime map, the command that reproduces it, what the lab's scale cannot say, a live re-run."""
    for card in session.shown:
        with st.container(border=True), panel_guard(f"card {card['id']}"):
            color, label = BADGES[card["verdict"]]
            st.markdown(f"### {card['claim']}")
            st.badge(label, color=color)
            if card.get("reason"):
                st.markdown(f"**Why this verdict:** {card['reason']}")
            st.markdown(f"**Where it is claimed:** {card['source']}  \n**The lab's experiment:** {card['experiment']}  \n"
                        f"**Effect:** {card['effect_doc']}: **{_effect_text(card)}**.")
            left, right = st.columns(2)
            with left:
                chart(effect_figure(card), f"{key}_{card['id']}_effect")
            with right:
                chart(regime_figure(card), f"{key}_{card['id']}_regime")
            if card.get("context"):
                with st.expander("Every model's numbers (mean over the seeds)"):
                    table = pd.DataFrame(card["context"]).pivot_table(index=["model", "method"], columns="metric",
                                                                      values="value", sort=False)
                    st.dataframe(table.round(3), width="stretch")
            st.caption(f"Reproduce: `{card['command']}` · seeds {', '.join(map(str, card['seeds']))}"
                       + (f" (regime map: {', '.join(map(str, card['regime_seeds']))})" if card.get("regime_seeds")
                          else "") + f". What this scale cannot say: {card['caveats']}")
            check = session.checks.get(card["id"])
            if check is not None:
                (st.success if check["identical"] else st.warning)(
                    "The re-run of one stored trial agrees exactly with the shipped numbers." if check["identical"] else
                    f"The re-run differs from the shipped numbers by up to {check['max_abs_diff']:.3g}: other hardware, "
                    "another torch version, or code changed since the cards were made.")
            st.button("Re-run one trial live", key=f"{key}_{card['id']}_rerun", icon=":material/replay:",
                      on_click=session.request_check, args=(card["id"],), disabled=session.busy or not card.get("rerun"),
                      help="Runs the card's first stored trial again (one seed) and compares every number.")
