"""Pieces every page shares: the torch set-up, the device badge, the colour legend, the page
header with its two-line "what am I looking at", and a guard that turns a failing panel into a
message instead of a traceback."""
from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path

import streamlit as st
import torch
from streamlit.errors import FragmentHandledException

from lab.device import configure_threads, describe
from lab.limits import server_limits
from lab.sessions.pool import pool
from lab.viz.palette import ARCH_COLORS, LEVEL_COLORS

CSS = Path(__file__).resolve().parents[2] / "assets" / "app.css"
PANEL_FAILED = "This view could not be drawn"
log = logging.getLogger("nll.app")


def configure_torch() -> None:
    """The thread count the CLI and the tests use too (`lab.device.configure_threads`)."""
    configure_threads()


@st.cache_data(show_spinner=False)
def _device() -> dict:
    return describe()


def device_label(dev: dict) -> str:
    if dev["type"] == "cpu":
        threads = torch.get_num_threads()
        return f"CPU · {threads} thread{'s' if threads != 1 else ''}"
    return dev["name"]


def sidebar_badge() -> None:
    dev = _device()
    icon = ":material/memory:" if dev["type"] == "cpu" else ":material/bolt:"
    st.sidebar.markdown(f"{icon} **Device:** {device_label(dev)}  \n<small>torch {dev['torch']}</small>",
                        unsafe_allow_html=True)


def server_status() -> None:
    """This server's load and limits in the sidebar (a class shares one server); a malformed limit
    (an NLL_ variable) stops every page with a message naming it, before any session is built."""
    try:
        limits = server_limits()
    except ValueError as err:
        st.error(f"This server's settings cannot be used: {err}. Fix the variable and restart the server.")
        st.stop()
    load = pool().load
    st.sidebar.markdown(f":material/groups: **This server:** {load['training']} training, {load['waiting']} waiting  \n"
                        f"<small>at most {limits.max_trainers} train at once; sizes up to {limits.max_preset}</small>",
                        unsafe_allow_html=True)


def chip(color: str, text: str) -> str:
    return (f"<span class='nll-chip'><span class='nll-dot' style='background:{color}'></span>"
            f"{text}</span>")


def sidebar_legend() -> None:
    """The colours used on every page: one per architecture and one per CMS level."""
    archs = " ".join(chip(c, name) for name, c in ARCH_COLORS.items())
    levels = " ".join(chip(c, f"level {i}") for i, c in enumerate(LEVEL_COLORS[:4]))
    st.sidebar.markdown(f"**Colours** (colour-blind safe)<br>{archs}<br>{levels} "
                        "<small>(level 0 = fastest)</small>", unsafe_allow_html=True)


PRESENT_MARK = "<div class='nll-present'></div>"


def page_setup(title: str, what: str, how: str, present: bool = False) -> None:
    """Title plus the two-line 'what am I looking at' every page opens with. In presenter mode
    (`present`): the title only, large type and no sidebar (assets/app.css, keyed on PRESENT_MARK)."""
    if CSS.is_file():
        # st.html of a CSS-only body goes to Streamlit's event container, which this version does not
        # keep in the page (no rule applied, checked in Chromium): the rules come as a <style> block.
        st.markdown(f"<style>{CSS.read_text(encoding='utf-8')}</style>", unsafe_allow_html=True)
    if present:
        st.markdown(PRESENT_MARK, unsafe_allow_html=True)
    st.title(title)
    if not present:
        st.markdown(f"**What you are looking at:** {what}  \n**How to use it:** {how}")


@contextmanager
def panel_guard(name: str):
    """Run one panel; if it fails, say so on the page (no traceback) and keep the rest."""
    try:
        yield                     # st.rerun / st.stop raise BaseExceptions and pass through
    except FragmentHandledException:
        raise
    except Exception as err:  # noqa: BLE001 - a teaching page must not show a traceback
        log.exception("panel %s failed", name)
        st.error(f"{PANEL_FAILED} ({name}): {err}")
