"""The Playground's optimizer comparison: the current setup trained once per optimizer."""
from __future__ import annotations

import streamlit as st

from lab.config import ConfigError
from lab.optim import OPTIMIZERS
from lab.optimizer_race import race
from lab.viz.optim_view import LABELS, optimizer_race_figure

KEY = "pg_race"


def _request() -> None:
    # a callback, not the button's return value: the page may rerun before the button is read again
    st.session_state[f"{KEY}_requested"] = True


def optimizer_race(session) -> None:
    with st.expander("Compare optimizers on this task", expanded=KEY in st.session_state):
        st.caption("Trains the current setup once per optimizer: the same model, seed and batches, only the "
                   "optimizer differs (REFERENCE.md §1, §5). Muon and M3 update the weight matrices; "
                   "embeddings, biases, norms and memory states use AdamW inside the same optimizer.")
        cols = st.columns([3, 1, 1])
        chosen = cols[0].multiselect("Optimizers", list(OPTIMIZERS), default=["adamw", "muon", "m3"],
                                     format_func=lambda o: LABELS.get(o, o), key=f"{KEY}_opts")
        steps = cols[1].number_input("Steps", min_value=10, max_value=1000, value=150, step=10, key=f"{KEY}_steps")
        cols[2].button("Compare", key=f"{KEY}_go", icon=":material/compare_arrows:", on_click=_request)
        if st.session_state.pop(f"{KEY}_requested", False):
            if not chosen:
                st.error("Choose at least one optimizer.")
            else:
                bar = st.progress(0.0, text="training…")
                try:
                    frame = race(session.config, chosen, int(steps),
                                 progress=lambda f, label: bar.progress(min(1.0, f), text=label))
                except (ConfigError, ValueError) as err:
                    st.error(f"The comparison could not run: {err}")
                else:
                    st.session_state[KEY] = {"config": session.config.to_json(), "frame": frame}
                bar.empty()
        kept = st.session_state.get(KEY)
        if kept is None:
            return
        if kept["config"] != session.config.to_json():
            st.info("These curves are for an earlier setup; press Compare to train the current one.")
        frame = kept["frame"]
        st.plotly_chart(optimizer_race_figure(frame), key=f"{KEY}_chart", width="stretch")
        diverged = sorted(set(frame.loc[frame.metric == "diverged", "optimizer"]))
        if diverged:
            st.warning("Diverged (stopped at the last good step): " + ", ".join(LABELS.get(o, o) for o in diverged))
        final = frame[frame.metric == "loss"].groupby("optimizer", sort=False)["value"].apply(lambda v: v.tail(10).mean())
        st.markdown("Mean loss over the last 10 steps: " + " · ".join(
            f"**{LABELS.get(o, o)}** {v:.3f}" for o, v in final.items()))
