"""Play / Pause / Step / Reset / Replay, the CSV download, and the CMS schedule line of a
Playground session.

The buttons act through callbacks (they change the session before the page reruns), and they
live outside the live fragment: pressing one reruns the page once, which switches the
fragment's timer on or off.
"""
from __future__ import annotations

import streamlit as st

from app.components.shell import chip
from lab.viz.palette import level_color


def transport_bar(session, key: str = "pg") -> None:
    cols = st.columns([1.2, 1, 1, 1, 1.1, 1])
    if session.playing:
        cols[0].button("Pause", icon=":material/pause:", key=f"{key}_pause", on_click=session.pause, type="primary",
                       width="stretch")
    else:
        cols[0].button("Play", icon=":material/play_arrow:", key=f"{key}_play", on_click=session.play, type="primary",
                       width="stretch", disabled=not session.can_train, help="Train continuously; the charts follow live.")
    cols[1].button("Step", icon=":material/skip_next:", key=f"{key}_step", on_click=session.step, args=(1,),
                   width="stretch", disabled=not session.can_train, help="Pause and train exactly one step.")
    cols[2].button("+10", icon=":material/fast_forward:", key=f"{key}_step10", on_click=session.step, args=(10,),
                   width="stretch", disabled=not session.can_train, help="Pause and train ten steps.")
    cols[3].button("Reset", icon=":material/restart_alt:", key=f"{key}_reset", on_click=session.reset, width="stretch",
                   help="A fresh model with the same setup and seed: the same curves again.")
    cols[4].button("Replay", icon=":material/replay:", key=f"{key}_replay", on_click=session.start_replay,
                   width="stretch", disabled=session.run.step_count == 0 or session.replaying,
                   help="Play back the recorded steps: every panel follows the time scrubber.")
    c = session.config
    cols[5].download_button("CSV", icon=":material/download:", data=session.records_csv, on_click="ignore",
                            width="stretch", file_name=f"nll-{c.model}-{c.stream.kind}-seed{c.seed}.csv",
                            mime="text/csv", key=f"{key}_csv",
                            help="Download every measurement of this run as CSV, one row each (tidy records).")


def schedule_line(session) -> None:
    """Each CMS level's chunk, in steps and in tokens, in the level's colour."""
    run = session.run
    tokens_per_step = run.stream.tokens_per_step
    asked = run.model.config.cms_chunk_tokens
    parts = []
    for row in run.schedule.describe(tokens_per_step):
        level = row["level"]
        steps = "every step" if row["chunk_steps"] == 1 else f"every {row['chunk_steps']} steps"
        text = f"level {level}: {steps} = {row['chunk_tokens']:,} tokens"
        if level < len(asked) and asked[level] != row["chunk_tokens"]:
            text += f" (asked {asked[level]:,})"
        parts.append(chip(level_color(level), text))
    source = "the family's own levels" if not session.config.cms_chunk_tokens else "your levels"
    st.markdown(f"<div class='nll-schedule'><b>CMS levels</b> ({source}; 1 step = {tokens_per_step} tokens): "
                + " ".join(parts) + "</div>", unsafe_allow_html=True)
