"""Panels of the associative-memory explorer (`lab.sessions.memory_explorer`): the §1 table, memories
run side by side, the exact equivalences, and the optimizers as memories.

Each panel reads its widgets (keys prefixed with `key`; their first values come from the session's
settings, so a lesson preset shows up in them), configures its own part of the session, has the
session compute what is missing, and draws. A refused value is shown in the panel's place and
nothing is drawn there.
"""
from __future__ import annotations

import streamlit as st

from app.components.charts import chart
from app.components.sessions import show_notices
from app.components.shell import panel_guard
from app.panels.registry import panel
from lab.assoc import catalog_entries, catalog_markdown
from lab.optim.toys import SURFACES
from lab.sessions.memory_explorer import TOY_OPTIMIZERS
from lab.viz.memory_view import equivalence_figure, recall_age_figure, sweep_figure
from lab.viz.optim_view import (buffer_weights_figure, orthogonal_tasks_figure, trajectory_figure,
                                trajectory_loss_figure)


def _within(value, lo, hi):
    """A setting as a widget's first value: clamped to the widget's range (a preset may go further)."""
    return type(lo)(min(max(value, lo), hi))


def _ready(session, **changes) -> bool:
    """Apply this panel's widgets and compute what is missing; False (after the message, shown
    here) if the session refused a value."""
    if not session.configure(**changes):
        show_notices(session)
        return False
    session.finish()
    return True


@panel("memory_catalogue", "Everything is an associative memory (REFERENCE.md §1)", session="memory")
def memory_catalogue(session, key="am") -> None:
    """The §1 table from the registry, and each update rule on its own line."""
    st.markdown("Each component is a memory: **keys → values**, a **memory**, an **inner objective** and the "
                "**optimizer that solves it**. Its *frequency* is how often its parameters change. "
                "Generated from `lab.assoc.catalog`.")
    st.markdown(catalog_markdown())
    with st.expander("The update rules, one by one"):
        for entry in catalog_entries():
            st.markdown(f"**{entry.row.component}**" + (f": {entry.row.note}" if entry.row.note else ""))
            st.latex(entry.row.update)


@panel("memory_recall", "Recall error against age", session="memory")
def memory_recall(session, key="am") -> None:
    """Pick memories, the key/value stream and the knobs: the recall error of every pair against its age."""
    with panel_guard("memories side by side"):
        settings, choices = session.settings, session.choices()
        stream, params = settings.stream, settings.params
        names = st.multiselect("Memories", list(choices), default=[n for n in settings.memories if n in choices],
                               format_func=choices.get, key=f"{key}_memories")
        c1, c2, c3, c4 = st.columns(4)
        n_pairs = c1.slider("Pairs written N", 1, 256, _within(stream.n_pairs, 1, 256), key=f"{key}_n")
        d_key = c2.slider("Key dimension d", 2, 128, _within(stream.d_key, 2, 128), key=f"{key}_d")
        correlation = c3.slider("Key correlation ρ", 0.0, 0.95, _within(stream.correlation, 0.0, 0.95), 0.05,
                                key=f"{key}_rho")
        seed = c4.number_input("Seed", 0, 10_000, _within(stream.seed, 0, 10_000), key=f"{key}_seed")
        k1, k2, k3, k4 = st.columns(4)
        decay = k1.slider("Decay: retention per write", 0.5, 1.0, params.decay, 0.01, key=f"{key}_decay",
                          help="Hebbian α; Titans forgets 1 − this. DeltaNet and softmax have no decay.")
        momentum = k2.slider("Titans momentum η", 0.0, 0.95, _within(params.momentum, 0.0, 0.95), 0.05,
                             key=f"{key}_momentum")
        strength = k3.slider("Write strength β", 0.05, 1.95, _within(params.write_strength, 0.05, 1.95), 0.05,
                             key=f"{key}_beta", help="DeltaNet β; Titans θ = β/2.")
        sharpness = k4.slider("Softmax sharpness (0 = √d)", 0.0, 50.0, _within(params.sharpness or 0.0, 0.0, 50.0),
                              0.5, key=f"{key}_sharp")
        log_y = st.toggle("Log scale for errors", value=True, key=f"{key}_log")
        ready = _ready(session, memories=tuple(names),
                       stream={"n_pairs": n_pairs, "d_key": d_key, "d_value": d_key, "correlation": correlation,
                               "seed": int(seed)},
                       params={"decay": decay, "momentum": momentum, "write_strength": strength,
                               "sharpness": sharpness or None})
        if not ready:
            return
        if not names:
            st.info("Pick at least one memory.")
            return
        st.caption(f"Measured mean cosine between two keys: {session.key_cosine():.3f}. Error 0 = perfect recall, "
                   "1 = no better than reading zeros.")
        chart(recall_age_figure(session.recall(), n_pairs, log_y), f"{key}_recall")


@panel("memory_sweeps", "Capacity, correlated keys, decay and momentum", session="memory")
def memory_sweeps(session, key="am") -> None:
    """Mean recall error as one setting varies, for the memories and knobs of `memory_recall`
    (its log-scale toggle too, when it is on the page)."""
    with panel_guard("memory sweeps"):
        if not session.settings.memories:
            return
        session.finish()
        log_y = st.session_state.get(f"{key}_log", True)
        left, right = st.columns(2)
        with left:
            chart(sweep_figure(session.sweep("n_pairs"), "n_pairs",
                               f"Capacity: error against N at d = {session.settings.stream.d_key}", log_x=True,
                               log_y=log_y), f"{key}_sweep_capacity")
        with right:
            chart(sweep_figure(session.sweep("correlation"), "correlation", "Correlated keys", log_y=log_y),
                  f"{key}_sweep_correlation")
        with left:
            chart(sweep_figure(session.sweep("decay"), "decay", "Decay", log_y=log_y), f"{key}_sweep_decay")
        with right:
            chart(sweep_figure(session.sweep("momentum"), "momentum", "Momentum of surprise (Titans)", log_y=log_y),
                  f"{key}_sweep_momentum")
        st.caption(f"Sweeps: mean over {session.settings.sweep_seeds} seeds, other settings as above; a memory "
                   "without the knob is left out.")


@panel("memory_equivalences", "The exact equivalences, computed live", session="memory")
def memory_equivalences(session, key="am") -> None:
    """Both sides of each equivalence of REFERENCE.md §1 on fresh random data, and their difference."""
    with panel_guard("equivalences"):
        st.markdown("Each row computes both sides on fresh random data: the lab's memory or optimizer on one side, "
                    "an independent computation (autograd, a least-squares solver, an explicit sum, "
                    "`torch.optim.Muon`) on the other.")
        seed = st.number_input("Seed of the random data", 0, 10_000, _within(session.settings.equivalence_seed, 0,
                                                                             10_000), key=f"{key}_eq_seed")
        if not _ready(session, equivalence_seed=int(seed)):
            return
        frame = session.equivalences()
        chart(equivalence_figure(frame), f"{key}_equivalences")
        for row in frame.itertuples():
            st.markdown(f"**{row.name}** — {row.compared}: max |difference| = `{row.max_abs_diff:.3g}` "
                        f"(tolerance `{row.tolerance:.3g}`) {'✓' if row.holds else '✗'}")
            st.latex(row.statement)


@panel("optimizer_buffers", "Weights over past gradients", session="memory")
def optimizer_buffers(session, key="am") -> None:
    """How much momentum, Adam and M3's buffers keep of a gradient k steps old, measured and closed form."""
    with panel_guard("buffer weights"):
        st.subheader("Weights over past gradients")
        spec, b = session.settings.buffers, st.columns(6)
        changes = {
            "momentum": b[0].slider("Momentum β", 0.0, 0.99, _within(spec.momentum, 0.0, 0.99), 0.01,
                                    key=f"{key}_mom_beta"),
            "adam_beta1": b[1].slider("Adam β1", 0.0, 0.99, _within(spec.adam_beta1, 0.0, 0.99), 0.01,
                                      key=f"{key}_adam_b1"),
            "adam_beta2": b[2].slider("Adam β2", 0.9, 0.9999, _within(spec.adam_beta2, 0.9, 0.9999), 0.0001,
                                      format="%.4f", key=f"{key}_adam_b2"),
            "m3_beta1": b[3].slider("M3 β1 (fast)", 0.0, 0.99, _within(spec.m3_beta1, 0.0, 0.99), 0.01,
                                    key=f"{key}_m3_b1"),
            "m3_beta3": b[4].slider("M3 β3 (slow)", 0.0, 0.99, _within(spec.m3_beta3, 0.0, 0.99), 0.01,
                                    key=f"{key}_m3_b3"),
            "m3_every": b[5].slider("M3 f (steps)", 1, 50, _within(spec.m3_every, 1, 50), key=f"{key}_m3_f"),
        }
        log_w = st.toggle("Log scale", value=False, key=f"{key}_w_log")
        if not _ready(session, buffers=changes):
            return
        chart(buffer_weights_figure(session.buffer_weights(), log_y=log_w), f"{key}_buffers")
        st.latex(r"\text{half-life} = \frac{\ln 0.5}{\ln \beta}\ \text{steps};\quad"
                 r"\text{M3 slow: } f\,\frac{\ln 0.5}{\ln \beta_3}")
        st.caption("Markers: measured impulse responses of the real optimizers (one gradient, then zeros); "
                   "lines: closed forms. With β = β1, momentum and Adam's m are the same curve: the same memory "
                   "up to scale. M3's slow buffer takes the gradient in only at the end of its chunk.")


@panel("optimizer_tasks", "Orthogonal tasks in M3's fast and slow momentum", session="memory")
def optimizer_tasks(session, key="am") -> None:
    """Tasks with orthogonal gradients one after another: what M3's fast and slow momentum keep of each."""
    with panel_guard("orthogonal tasks"):
        st.subheader("Orthogonal tasks: what survives in the fast and the slow momentum")
        spec, t = session.settings.tasks, st.columns(6)
        changes = {
            "n_tasks": t[0].slider("Tasks", 2, 8, _within(spec.n_tasks, 2, 8), key=f"{key}_t_n"),
            "steps_per_task": t[1].slider("Steps per task", 5, 200, _within(spec.steps_per_task, 5, 200),
                                          key=f"{key}_t_steps"),
            "momentum": t[2].slider("β1 (fast)", 0.0, 0.99, _within(spec.momentum, 0.0, 0.99), 0.01,
                                    key=f"{key}_t_b1"),
            "slow_momentum": t[3].slider("β3 (slow)", 0.0, 0.99, _within(spec.slow_momentum, 0.0, 0.99), 0.01,
                                         key=f"{key}_t_b3"),
            "slow_every": t[4].slider("f (steps)", 1, 50, _within(spec.slow_every, 1, 50), key=f"{key}_t_f"),
        }
        follow = t[5].number_input("Follow task", 1, 8, 1, key=f"{key}_t_follow")
        if not _ready(session, tasks=changes):
            return
        n_tasks = session.settings.tasks.n_tasks
        if follow > n_tasks:
            st.error(f"Follow task = {follow} is not allowed: there are {n_tasks} tasks.")
            return
        chart(orthogonal_tasks_figure(session.orthogonal_tasks(), int(follow) - 1), f"{key}_tasks")


def _adam_controls(col, spec, key: str) -> dict:
    return {"lr": col.slider("Adam lr", 0.001, 1.0, _within(spec.lr, 0.001, 1.0), 0.001, key=f"{key}_a_lr"),
            "beta1": col.slider("Adam β1", 0.0, 0.99, _within(spec.beta1, 0.0, 0.99), 0.01, key=f"{key}_a_b1"),
            "beta2": col.slider("Adam β2", 0.9, 0.9999, _within(spec.beta2, 0.9, 0.9999), 0.0001, format="%.4f",
                                key=f"{key}_a_b2")}


def _muon_controls(col, spec, key: str) -> dict:
    return {"lr": col.slider("Muon lr", 0.001, 1.0, _within(spec.lr, 0.001, 1.0), 0.001, key=f"{key}_mu_lr"),
            "momentum": col.slider("Muon μ", 0.0, 0.99, _within(spec.momentum, 0.0, 0.99), 0.01, key=f"{key}_mu_mom"),
            "nesterov": col.toggle("Nesterov", value=spec.nesterov, key=f"{key}_mu_nest")}


def _m3_controls(col, spec, key: str) -> dict:
    controls = {
        "lr": col.slider("M3 lr", 0.001, 1.0, _within(spec.lr, 0.001, 1.0), 0.001, key=f"{key}_m3_lr"),
        "momentum": col.slider("M3 β1", 0.0, 0.99, _within(spec.momentum, 0.0, 0.99), 0.01, key=f"{key}_m3_tb1"),
        "slow_momentum": col.slider("M3 β3", 0.0, 0.99, _within(spec.slow_momentum, 0.0, 0.99), 0.01,
                                    key=f"{key}_m3_tb3"),
        "slow_every": col.slider("M3 f", 1, 50, _within(spec.slow_every, 1, 50), key=f"{key}_m3_tf"),
        "alpha": col.slider("M3 α (slow weight)", 0.0, 2.0, _within(spec.alpha, 0.0, 2.0), 0.05,
                            key=f"{key}_m3_alpha"),
    }
    second_moment = col.toggle("Second moment V", value=spec.beta2 is not None, key=f"{key}_m3_v")
    controls["beta2"] = (col.slider("M3 β2", 0.5, 0.9999, _within(spec.beta2 or 0.99, 0.5, 0.9999), 0.0001,
                                    format="%.4f", key=f"{key}_m3_b2") if second_moment else None)
    return controls


@panel("optimizer_trajectories", "Adam, Muon and M3 on a 2-D loss surface", session="memory")
def optimizer_trajectories(session, key="am") -> None:
    """Adam, Muon and M3 from one start on a 2-D loss surface: their paths and their losses."""
    with panel_guard("trajectories"):
        st.subheader("Adam, Muon and M3 on a 2-D loss surface")
        settings = session.settings
        s1, s2, s3 = st.columns(3)
        surfaces = list(SURFACES)
        surface = s1.selectbox("Surface", surfaces, index=surfaces.index(settings.surface.surface),
                               key=f"{key}_surface")
        steps = s2.slider("Steps", 10, 500, _within(settings.surface.steps, 10, 500), key=f"{key}_steps")
        picked = s3.multiselect("Optimizers", list(TOY_OPTIMIZERS), default=list(settings.optimizers),
                                key=f"{key}_opts")
        a, m, n = st.columns(3)
        specs = {"adam": _adam_controls(a, settings.adam, key), "muon": _muon_controls(m, settings.muon, key),
                 "m3": _m3_controls(n, settings.m3, key)}
        if not _ready(session, surface={"surface": surface, "steps": steps}, optimizers=tuple(picked), **specs):
            return
        if not picked:
            st.info("Pick at least one optimizer.")
            return
        paths = session.trajectories()
        chart(trajectory_figure(session.surface_grid(), paths), f"{key}_paths")
        chart(trajectory_loss_figure(paths), f"{key}_path_loss")
        st.caption("The parameter is a 1×2 matrix. For one vector Newton–Schulz only normalises, so Muon's "
                   "steps have nearly constant length lr; M3 adds its slow, chunk-level momentum.")
