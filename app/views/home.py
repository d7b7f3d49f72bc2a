"""Home: what nested learning is, the three architectures as diagrams, where to start."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from app.components.shell import page_setup
from lab.models import model_table

ASSETS = Path(__file__).resolve().parents[2] / "assets"
ARCHITECTURES = (
    ("transformer", "**Transformer.** Attention remembers the context exactly but only inside its window; "
                    "the MLP weights are the one slow memory, changed only by training."),
    ("titans", "**Titans.** Adds a neural long-term memory that keeps learning while it reads: surprising "
               "tokens are written in, the gates α, η, θ decide how fast it forgets and how strongly it writes."),
    ("hope", "**HOPE.** Titans that modify themselves, followed by a Continuum Memory System: a chain of MLP "
             "levels, each updated at its own frequency, from fast to slow."),
)

page_setup(
    "Nested Learning Lab",
    "a lab that trains small HOPE, Titans and Transformer models live and shows what happens inside them.",
    "read the three sentences below, look at the diagrams, then open the Playground.",
)
st.markdown(
    "*Nested learning* sees a model as a set of nested learning problems, each with its own update "
    "frequency: attention and fast memories change at every token, slower blocks every few hundred tokens, "
    "the weights of a Transformer only during training. The **Continuum Memory System (CMS)** makes this "
    "explicit: a chain of MLP levels, each updated once per chunk of tokens of its own size, so that what a "
    "fast level forgets can survive in a slower one. This lab lets you watch that happen."
)

cols = st.columns(3)
for col, (name, text) in zip(cols, ARCHITECTURES):
    with col:
        st.image(str(ASSETS / f"{name}.svg"), width="stretch")
        st.markdown(text)

st.subheader("Where to start")
st.page_link("views/playground.py", label="Playground: train one model live and look inside it", icon=":material/science:")
st.markdown(
    "1. Press **Play** with the default HOPE model and watch the loss fall and the accuracy on each task rise.\n"
    "2. Open **Update timeline**: the fast level updates often, the slow level rarely.\n"
    "3. Watch the first task's accuracy when the second task begins, then try a Transformer on the same stream."
)


@st.cache_data(show_spinner=False)
def _models() -> pd.DataFrame:
    return pd.DataFrame(model_table())                # immutable: safe to share between sessions


with st.expander("The default models, in numbers"):
    st.dataframe(_models(), hide_index=True, width="stretch")
