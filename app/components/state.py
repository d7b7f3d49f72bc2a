"""The Playground's per-session state in `st.session_state`, and its mirror in the URL.

The first visit of a session reads the configuration from the query parameters (bad values
get a message and their default); every later change writes the applied configuration back,
so the address bar is always a link that rebuilds the same setup.
"""
from __future__ import annotations

import streamlit as st

from app.components.lab_session import LabSession
from lab.config import ConfigError
from lab.engine import RunConfig
from lab.urlstate import check_levels, from_params, key_of, reset_field, to_params

SESSION_KEY = "pg_session"
NOTICES_KEY = "pg_notices"


def notices() -> list[tuple[str, str]]:
    return st.session_state.setdefault(NOTICES_KEY, [])


def add_notice(kind: str, text: str) -> None:
    if (kind, text) not in notices():
        notices().append((kind, text))


def clear_notices() -> None:
    st.session_state[NOTICES_KEY] = []


def try_session(config: RunConfig) -> LabSession | ValueError:
    """A new session for `config`, or the error (a ConfigError, which names the field, or another
    ValueError from building the run) that says why it cannot run."""
    try:
        check_levels(config)
        return LabSession(config)
    except ValueError as err:
        return err


def session_from_url() -> LabSession:
    """Build from the query parameters; each value that cannot be used falls back to its default."""
    config, problems = from_params(st.query_params.to_dict())
    for text in problems:
        add_notice("error", text)
    for _ in range(4):
        with st.spinner("Building the model…"):
            result = try_session(config)
        if isinstance(result, LabSession):
            return result
        if not isinstance(result, ConfigError):
            add_notice("error", f"The setup in the URL cannot run ({result}); the default setup is used instead.")
            break
        key = key_of(result.config, result.field)
        add_notice("error", f"URL parameter `{key or result.field}` cannot be used: {result}. "
                            "The default is used instead.")
        config = reset_field(config, result.config, result.field)
    return LabSession(RunConfig())


def current_session() -> LabSession:
    if SESSION_KEY not in st.session_state:
        st.session_state[SESSION_KEY] = session_from_url()
    return st.session_state[SESSION_KEY]


def replace_session(config: RunConfig) -> bool:
    """Switch to a new run of `config`; on a ConfigError keep the current one and say why."""
    result = try_session(config)
    if not isinstance(result, LabSession):
        add_notice("error", f"This setup cannot run, so the previous run is kept: {result}")
        return False
    clear_notices()
    st.session_state[SESSION_KEY] = result
    return True


def sync_url(session: LabSession) -> None:
    params = to_params(session.config)
    if st.query_params.to_dict() != params:
        st.query_params.from_dict(params)
