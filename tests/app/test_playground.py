"""The Playground in AppTest: widgets, transport buttons, per-frequency views, URL state, bad input."""
from __future__ import annotations

import time

import pytest

from app.components.setup_form import NO_LEVELS
from lab.engine import RunConfig
from lab.urlstate import from_params, to_params
from lab.sessions.pool import pool
from tests.app.helpers import FAST, TIMEOUT, assert_healthy, charts, errors, open_page, session, trace_lengths

APPLY = "FormSubmitter:pg_setup-Apply and reset"


def click(at, key: str):
    return at.button(key=key).click().run()


def loss_x(at) -> list:
    data = charts(at)["pg_loss"]["data"]
    return data[0]["x"] if data else []


def test_setting_the_widgets_builds_that_run_and_puts_it_in_the_url():
    at = open_page("playground", FAST)
    at.radio(key="pg_model").set_value("titans")
    at.number_input(key="pg_steps").set_value(8)
    at.checkbox(key="pg_family_levels").uncheck()
    at.text_input(key="pg_chunks").input("72, 144")
    at.number_input(key="pg_seed").set_value(3)
    click(at, APPLY)
    assert_healthy(at)
    config = session(at).config
    assert (config.model, config.stream.steps_per_task, config.cms_chunk_tokens, config.seed) == ("titans", 8, (72, 144), 3)
    assert at.query_params["chunks"] == "72,144" and at.query_params["model"] == "titans"
    schedule = " ".join(m.value for m in at.markdown if "CMS levels" in m.value)
    assert "level 1: every 2 steps = 144 tokens" in schedule
    before = charts(at)
    click(at, "pg_step")
    assert session(at).run.step_count == 1 and charts(at)["pg_loss"]["data"] != before["pg_loss"]["data"]


def test_play_trains_in_the_pool_and_pause_stops():
    at = open_page("playground", {**FAST, "steps": "400"})
    click(at, "pg_play")
    assert_healthy(at)
    run = session(at)
    assert run.playing and run.wants_worker
    assert any("Live: the charts redraw" in c.value for c in at.caption)
    deadline = time.monotonic() + TIMEOUT
    while run.run.step_count < 3 and time.monotonic() < deadline:    # the server's workers train it
        with run.lock:
            pool().want(run)                                          # the live fragment's heartbeat
        time.sleep(0.02)
    assert run.run.step_count >= 3
    click(at, "pg_pause")
    assert not run.playing and at.button(key="pg_play")
    assert len(loss_x(at)) == run.run.step_count                     # the page draws every step trained


def test_the_run_ends_with_a_message_and_play_disabled():
    at = open_page("playground", {**FAST, "steps": "5"})
    click(at, "pg_step10")
    assert session(at).run.done
    assert any("finished" in s.value for s in at.success)
    assert at.button(key="pg_play").disabled and at.button(key="pg_step").disabled


def test_the_scrubber_sets_every_panel_to_that_step():
    at = open_page("playground", FAST)
    click(at, "pg_step10")
    at.slider(key="pg_scrub").set_value(4).run()
    assert_healthy(at)
    figures = charts(at)
    assert max(loss_x(at)) == 4
    cursor = [s for s in figures["pg_loss"]["layout"]["shapes"] if s["type"] == "line" and s["x0"] == 4]
    assert cursor
    assert max(x for t in figures["pg_accuracy"]["data"] for x in t["x"]) <= 4
    at.session_state["pg_view"] = "Attention"
    at.run()
    assert any("as it was at step 0" in c.value for c in at.caption)


def test_replay_plays_the_history_back():
    at = open_page("playground", FAST)
    click(at, "pg_step10")
    click(at, "pg_replay")
    assert session(at).replaying
    first = session(at).shown_step
    at.run()
    assert session(at).replaying and session(at).shown_step > first


@pytest.mark.parametrize("model,views", [
    ("transformer", ["Update timeline", "Activations", "Level contributions", "Drift", "Attention", "Attributions"]),
    ("hope", ["Update timeline", "Activations", "Level contributions", "Drift", "Memory", "Attributions"]),
])
def test_every_per_frequency_view_draws_data(model, views):
    at = open_page("playground", {**FAST, "model": model})
    click(at, "pg_step10")
    assert [t.label for t in at.tabs] == views
    keys = {"Update timeline": "pg_timeline", "Activations": "pg_activations",
            "Level contributions": "pg_contributions", "Drift": "pg_drift", "Memory": "pg_memory",
            "Attention": "pg_attention", "Attributions": "pg_attr_flow"}
    for view in views:
        at.session_state["pg_view"] = view
        at.run()
        assert_healthy(at)
        figure = charts(at)[keys[view]]
        assert figure["data"] and max(trace_lengths(figure)) > 0, view


def test_the_url_rebuilds_the_same_setup_and_the_same_seed_gives_the_same_curve():
    params = {"model": "transformer", "preset": "tiny", "steps": "9", "tasks": "2", "seed": "4", "lr": "0.002",
              "chunks": "72"}
    at = open_page("playground", params)
    expected, _ = from_params(params)
    assert session(at).config == expected and dict(at.query_params) == to_params(expected)
    click(at, "pg_step10")
    first = charts(at)["pg_loss"]["data"][0]["y"]
    click(at, "pg_reset")
    assert session(at).run.step_count == 0
    click(at, "pg_step10")
    assert charts(at)["pg_loss"]["data"][0]["y"] == first
    again = open_page("playground", params)
    click(again, "pg_step10")
    assert charts(again)["pg_loss"]["data"][0]["y"] == first


def test_a_tampered_url_gets_messages_and_defaults_never_a_traceback():
    at = open_page("playground", {"model": "gpt", "lr": "banana", "tasks": "0", "preset": "tiny", "zzz": "1"})
    assert_healthy(at)
    text = " ".join(errors(at))
    for part in ("model=gpt", "lr=banana", "tasks=0", "`zzz`"):
        assert part in text
    config = session(at).config
    default = RunConfig()
    assert (config.model, config.lr, config.stream.n_tasks, config.preset) == \
           (default.model, default.lr, default.stream.n_tasks, "tiny")


def test_a_url_chunk_larger_than_the_stream_falls_back_to_the_family_levels():
    at = open_page("playground", {**FAST, "chunks": "9999999"})
    assert_healthy(at)
    assert any("chunks" in e and "at most the stream" in e for e in errors(at))
    assert session(at).config.cms_chunk_tokens == ()


def _keeps_run_after(at, edit) -> None:
    click(at, "pg_step10")
    kept = session(at)
    edit(at)
    click(at, APPLY)
    assert_healthy(at)
    assert session(at) is kept and kept.run.step_count == 10 and charts(at)["pg_loss"]["data"]


def test_a_chunk_larger_than_the_stream_is_refused_and_the_run_stays():
    at = open_page("playground", FAST)

    def edit(at):
        at.checkbox(key="pg_family_levels").uncheck()
        at.text_input(key="pg_chunks").input("128, 99999999")

    _keeps_run_after(at, edit)
    assert any("cms_chunk_tokens" in e and "previous run is kept" in e for e in errors(at))


def test_zero_levels_are_refused_and_the_run_stays():
    at = open_page("playground", FAST)

    def edit(at):
        at.checkbox(key="pg_family_levels").uncheck()
        at.text_input(key="pg_chunks").input(" , ")

    _keeps_run_after(at, edit)
    assert NO_LEVELS in errors(at)


def test_a_diverging_run_stops_with_a_message_and_keeps_its_charts():
    at = open_page("playground", {**FAST, "steps": "30"})
    at.number_input(key="pg_lr").set_value(10.0)
    click(at, APPLY)
    click(at, "pg_step10")
    assert_healthy(at)
    run = session(at).run
    assert run.diverged is not None
    assert run.diverged.message() in errors(at)
    assert at.button(key="pg_play").disabled and charts(at)["pg_loss"]["data"]


def test_records_can_be_downloaded():
    at = open_page("playground", FAST)
    assert at.get("download_button")
    click(at, "pg_step")
    lines = session(at).records_csv().splitlines()
    assert lines[0] == "step,tokens,phase,model,task,level,metric,value" and len(lines) > 1


def test_compare_optimizers_draws_one_curve_per_optimizer():
    at = open_page("playground", FAST)
    at.multiselect(key="pg_race_opts").set_value(["adamw", "m3"])
    at.number_input(key="pg_race_steps").set_value(10)
    at = click(at, "pg_race_go")
    assert_healthy(at)
    figure = charts(at)["pg_race_chart"]
    assert [t["name"] for t in figure["data"]] == ["AdamW", "M3"]
    assert all(len(t["x"]) == 10 for t in figure["data"])


def test_online_levels_show_as_ticks_on_the_update_timeline():
    at = open_page("playground", {**FAST, "model": "hope", "online": "1", "chunks": "9,18", "trainable": "none"})
    assert session(at).config.online.enabled and session(at).run.online is not None
    click(at, "pg_step10")
    assert_healthy(at)
    timeline = charts(at)["pg_timeline"]
    ticks = [t for t in timeline["data"] if t.get("name", "").endswith("online")]
    assert [t["name"] for t in ticks] == ["level 0, online", "level 1, online"]
    assert len(ticks[0]["x"]) == 2 * len(ticks[1]["x"]) > 0          # level 0 every 9 tokens, level 1 every 18
    assert "online" in timeline["layout"]["title"]["text"]
    assert at.query_params["online"] == "True" and at.query_params["trainable"] == "none"


def test_hopes_memory_can_be_unbounded_and_another_family_drops_the_setting():
    at = open_page("playground", {**FAST, "model": "hope"})
    assert {m.bound for m in session(at).run.model.modules() if hasattr(m, "radius")} == {"bounded"}   # the default
    at.selectbox(key="pg_memory_bound").set_value("none")
    click(at, APPLY)
    assert_healthy(at)
    assert session(at).config.memory_bound == "none" and at.query_params["memory"] == "none"
    assert {m.bound for m in session(at).run.model.modules() if hasattr(m, "radius")} == {"none"}
    at.radio(key="pg_model").set_value("transformer")
    click(at, APPLY)                          # the Transformer has no such memory: the setting is dropped
    assert_healthy(at)
    assert session(at).config.model == "transformer" and session(at).config.memory_bound == ""
    assert "memory" not in at.query_params


def test_while_playing_an_inside_view_is_made_again_at_most_once_a_second():
    from app.panels.training import INSIDE_EVERY_S, _inside_figure
    from lab.sessions.playground import PlaygroundSession
    s = PlaygroundSession(RunConfig(model="transformer", preset="tiny"))
    builds, now = [], [100.0]
    make = lambda: builds.append(now[0]) or object()      # noqa: E731
    assert _inside_figure(s, "timeline", make) is not _inside_figure(s, "timeline", make)   # paused: every time
    s.play()
    builds.clear()
    first = _inside_figure(s, "timeline", make, clock=lambda: now[0])
    now[0] += INSIDE_EVERY_S / 2
    assert _inside_figure(s, "timeline", make, clock=lambda: now[0]) is first             # the same chart
    now[0] += INSIDE_EVERY_S
    assert _inside_figure(s, "timeline", make, clock=lambda: now[0]) is not first         # a second later: anew
    assert builds == [100.0, 100.0 + 1.5 * INSIDE_EVERY_S]


def test_the_redraw_governor_shares_half_the_machine_among_the_live_pages():
    from app.components.live import RedrawGovernor
    now = [0.0]
    governor = RedrawGovernor(fastest=0.05, share=0.5, cores=2, clock=lambda: now[0])
    assert governor.period() == 0.05                       # nobody draws yet: the fastest
    for _ in range(50):
        for page in ("a", "b", "c"):
            governor.record(page, 0.2)                      # three pages, 0.2 s a draw
    assert governor.period() == pytest.approx(3 * 0.2 / (2 * 0.5), rel=1e-3)
    now[0] += 6.0                                           # two pages closed: only "a" draws on
    governor.record("a", 0.2)
    assert governor.period() == pytest.approx(0.2, rel=1e-3)
