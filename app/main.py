"""Nested Learning Lab: the Streamlit entry point (`streamlit run app/main.py`).

Pages only arrange components; the science lives in `lab/`. The list of pages is
`app.components.registry.PAGES` (the first one is the default).
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from app.components.registry import PAGES  # noqa: E402
from app.components.sessions import sessions_held  # noqa: E402
from app.components.shell import configure_torch, server_status, sidebar_badge, sidebar_legend  # noqa: E402

st.set_page_config(page_title="Nested Learning Lab", page_icon="🧠", layout="wide")
configure_torch()

navigation = st.navigation([
    st.Page(str(page.path), title=page.title, icon=page.icon, url_path=page.url_path, default=(i == 0))
    for i, page in enumerate(PAGES)
])
sidebar_badge()
server_status()
with sessions_held():             # the training pool's workers wait while the page is drawn
    navigation.run()
sidebar_legend()
