"""The server's limits in the app: shown in the sidebar, a malformed one is said, a run beyond them refused."""
from __future__ import annotations

import pytest

import lab.limits
from tests.app.helpers import assert_healthy, errors, open_page, session


@pytest.fixture
def limits_from(monkeypatch):
    def use(**environ):
        for key, value in environ.items():
            monkeypatch.setenv(key, value)
        monkeypatch.setattr(lab.limits, "_SERVER", None)        # read the environment again
    yield use
    lab.limits._SERVER = None


def test_the_sidebar_shows_the_load_and_the_limits(limits_from):
    limits_from(NLL_MAX_TRAINERS="7", NLL_MAX_PRESET="small")
    at = open_page("home")
    assert_healthy(at)
    sidebar = " ".join(m.value for m in at.sidebar.markdown)
    assert "This server:" in sidebar and "at most 7 train at once" in sidebar and "sizes up to small" in sidebar


def test_a_malformed_limit_is_named_on_the_page(limits_from):
    limits_from(NLL_MAX_TRAINERS="lots")
    at = open_page("home")
    assert not at.exception
    assert any("NLL_MAX_TRAINERS" in e and "'lots'" in e for e in errors(at)), errors(at)


def test_a_run_beyond_the_servers_cost_is_refused_with_the_reason(limits_from):
    limits_from(NLL_MAX_STEP_COST="2")
    at = open_page("playground", {"model": "transformer", "preset": "medium", "steps": "12", "tasks": "2"})
    assert_healthy(at)
    assert session(at).config.preset == "small"                 # the URL's value fell back to the default
    assert any("`preset`" in e and "NLL_MAX_STEP_COST" in e for e in errors(at)), errors(at)
