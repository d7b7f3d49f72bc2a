"""Associative memory: attention, the delta rule, Titans and the optimizers as memories
(REFERENCE.md §1 and §5). The page only arranges widgets and figures; everything it shows is
computed by lab.assoc and lab.optim.toys and drawn by lab.viz.memory_view / optim_view."""
from __future__ import annotations

import json

import streamlit as st

from app.components.shell import page_setup, panel_guard
from lab.assoc import CATALOG, RUNNABLE, KVStream, MemoryParams, all_equivalences, catalog_markdown, recall, sweep
from lab.assoc.experiments import key_cosines
from lab.config import ConfigError
from lab.optim.toys import (AdamSpec, BufferSpec, M3Spec, MuonSpec, SurfaceSpec, SURFACES, TasksSpec,
                            buffer_weights, orthogonal_tasks, surface_grid, trajectories)
from lab.viz.memory_view import equivalence_figure, recall_age_figure, sweep_figure
from lab.viz.optim_view import (buffer_weights_figure, orthogonal_tasks_figure, trajectory_figure,
                                trajectory_loss_figure)

CAPACITY_N = (4, 8, 16, 32, 64, 128, 256)
CORRELATIONS = (0.0, 0.2, 0.4, 0.6, 0.8, 0.95)
DECAYS = (0.8, 0.9, 0.95, 0.98, 0.99, 1.0)
MOMENTA = (0.0, 0.2, 0.4, 0.6, 0.8)
SEEDS = 2

page_setup(
    "Associative memory",
    "attention, linear attention, the delta rule, Titans' memory and the optimizers Adam, Muon and M3, each seen "
    "as a memory that stores keys → values by solving an inner objective, run side by side on the same data.",
    "read the table, then pick memories and drag the sliders: the figures rerun on the same key/value stream. "
    "The last tab treats optimizers as memories of past gradients.",
)


def valid(cls, **values):
    """The config, or None after an error message that names the field, the value and the range."""
    try:
        return cls(**values)
    except (ConfigError, ValueError) as err:
        st.error(f"That setting is not allowed: {err}")
        return None


@st.cache_data(show_spinner=False, max_entries=64)
def _recall(names: tuple, stream: str, params: str):
    return recall(list(names), KVStream.from_dict(_json(stream)), MemoryParams.from_dict(_json(params)))


@st.cache_data(show_spinner=False, max_entries=64)
def _sweep(names: tuple, stream: str, params: str, field: str, values: tuple):
    return sweep(list(names), KVStream.from_dict(_json(stream)), MemoryParams.from_dict(_json(params)), field,
                 list(values), seeds=SEEDS)


@st.cache_data(show_spinner=False)
def _equivalences(seed: int):
    return all_equivalences(seed)


@st.cache_data(show_spinner=False, max_entries=32)
def _buffers(spec: str):
    return buffer_weights(**_json(spec))


@st.cache_data(show_spinner=False, max_entries=32)
def _tasks(spec: str):
    return orthogonal_tasks(**_json(spec))


@st.cache_data(show_spinner=False, max_entries=32)
def _paths(surface: str, specs: tuple):
    classes = {"adam": AdamSpec, "muon": MuonSpec, "m3": M3Spec}
    return trajectories(SurfaceSpec.from_dict(_json(surface)),
                        {name: classes[name].from_dict(_json(spec)) for name, spec in specs})


def _json(text: str) -> dict:
    return json.loads(text)


tab_table, tab_run, tab_eq, tab_opt = st.tabs(["The table", "Memories side by side", "Exact equivalences",
                                               "Optimizers are memories"])

with tab_table:
    st.markdown("Each component is a memory: **keys → values**, a **memory**, an **inner objective** and the "
                "**optimizer that solves it**. Its *frequency* is how often its parameters change. "
                "Generated from `lab.assoc.catalog`.")
    st.markdown(catalog_markdown())
    with st.expander("The update rules, one by one"):
        for row in CATALOG:
            st.markdown(f"**{row.component}**" + (f": {row.note}" if row.note else ""))
            st.latex(row.update)

with tab_run, panel_guard("memories side by side"):
    names = st.multiselect("Memories", list(RUNNABLE), default=["softmax", "hebbian", "delta", "titans"],
                           format_func=lambda n: RUNNABLE[n].label, key="am_memories")
    c1, c2, c3, c4 = st.columns(4)
    n_pairs = c1.slider("Pairs written N", 1, 256, 32, key="am_n")
    d_key = c2.slider("Key dimension d", 2, 128, 32, key="am_d")
    correlation = c3.slider("Key correlation ρ", 0.0, 0.95, 0.0, 0.05, key="am_rho")
    seed = c4.number_input("Seed", 0, 10_000, 0, key="am_seed")
    k1, k2, k3, k4 = st.columns(4)
    decay = k1.slider("Decay: retention per write", 0.5, 1.0, 1.0, 0.01, key="am_decay",
                      help="Hebbian α; Titans forgets 1 − this. DeltaNet and softmax have no decay.")
    momentum = k2.slider("Titans momentum η", 0.0, 0.95, 0.3, 0.05, key="am_momentum")
    strength = k3.slider("Write strength β", 0.05, 1.95, 0.5, 0.05, key="am_beta", help="DeltaNet β; Titans θ = β/2.")
    sharpness = k4.slider("Softmax sharpness (0 = √d)", 0.0, 50.0, 0.0, 0.5, key="am_sharp")
    log_y = st.toggle("Log scale for errors", value=True, key="am_log")
    stream = valid(KVStream, n_pairs=n_pairs, d_key=d_key, d_value=d_key, correlation=correlation, seed=int(seed))
    params = valid(MemoryParams, decay=decay, momentum=momentum, write_strength=strength,
                   sharpness=sharpness or None)
    if not names:
        st.info("Pick at least one memory.")
    elif stream and params:
        sj, pj, picked = stream.to_json(), params.to_json(), tuple(names)
        st.caption(f"Measured mean cosine between two keys: {key_cosines(stream):.3f}. Error 0 = perfect recall, "
                   "1 = no better than reading zeros.")
        st.plotly_chart(recall_age_figure(_recall(picked, sj, pj), n_pairs, log_y), width="stretch")
        left, right = st.columns(2)
        left.plotly_chart(sweep_figure(_sweep(picked, sj, pj, "n_pairs", CAPACITY_N), "n_pairs",
                                       f"Capacity: error against N at d = {d_key}", log_x=True, log_y=log_y),
                          width="stretch")
        right.plotly_chart(sweep_figure(_sweep(picked, sj, pj, "correlation", CORRELATIONS), "correlation",
                                        "Correlated keys", log_y=log_y), width="stretch")
        left.plotly_chart(sweep_figure(_sweep(picked, sj, pj, "decay", DECAYS), "decay", "Decay", log_y=log_y),
                          width="stretch")
        right.plotly_chart(sweep_figure(_sweep(picked, sj, pj, "momentum", MOMENTA), "momentum",
                                        "Momentum of surprise (Titans)", log_y=log_y), width="stretch")
        st.caption(f"Sweeps: mean over {SEEDS} seeds, other settings as above; a memory without the knob is left out.")

with tab_eq, panel_guard("equivalences"):
    st.markdown("Each row computes both sides on fresh random data: the lab's memory or optimizer on one side, "
                "an independent computation (autograd, a least-squares solver, an explicit sum, "
                "`torch.optim.Muon`) on the other.")
    eq_seed = st.number_input("Seed of the random data", 0, 10_000, 0, key="am_eq_seed")
    frame = _equivalences(int(eq_seed))
    st.plotly_chart(equivalence_figure(frame), width="stretch")
    for row in frame.itertuples():
        st.markdown(f"**{row.name}** — {row.compared}: max |difference| = `{row.max_abs_diff:.3g}` "
                    f"(tolerance `{row.tolerance:.3g}`) {'✓' if row.holds else '✗'}")
        st.latex(row.statement)

with tab_opt:
    with panel_guard("buffer weights"):
        st.subheader("Weights over past gradients")
        b = st.columns(6)
        spec = valid(BufferSpec, momentum=b[0].slider("Momentum β", 0.0, 0.99, 0.9, 0.01, key="am_mom_beta"),
                     adam_beta1=b[1].slider("Adam β1", 0.0, 0.99, 0.9, 0.01, key="am_adam_b1"),
                     adam_beta2=b[2].slider("Adam β2", 0.9, 0.9999, 0.999, 0.0001, format="%.4f", key="am_adam_b2"),
                     m3_beta1=b[3].slider("M3 β1 (fast)", 0.0, 0.99, 0.95, 0.01, key="am_m3_b1"),
                     m3_beta3=b[4].slider("M3 β3 (slow)", 0.0, 0.99, 0.9, 0.01, key="am_m3_b3"),
                     m3_every=b[5].slider("M3 f (steps)", 1, 50, 10, key="am_m3_f"), horizon=100)
        log_w = st.toggle("Log scale", value=False, key="am_w_log")
        if spec:
            st.plotly_chart(buffer_weights_figure(_buffers(spec.to_json()), log_y=log_w), width="stretch")
            st.latex(r"\text{half-life} = \frac{\ln 0.5}{\ln \beta}\ \text{steps};\quad"
                     r"\text{M3 slow: } f\,\frac{\ln 0.5}{\ln \beta_3}")
            st.caption("Markers: measured impulse responses of the real optimizers (one gradient, then zeros); "
                       "lines: closed forms. With β = β1, momentum and Adam's m are the same curve: the same memory "
                       "up to scale. M3's slow buffer takes the gradient in only at the end of its chunk.")
    with panel_guard("orthogonal tasks"):
        st.subheader("Orthogonal tasks: what survives in the fast and the slow momentum")
        t = st.columns(6)
        tspec = valid(TasksSpec, n_tasks=t[0].slider("Tasks", 2, 8, 4, key="am_t_n"),
                      steps_per_task=t[1].slider("Steps per task", 5, 200, 30, key="am_t_steps"),
                      momentum=t[2].slider("β1 (fast)", 0.0, 0.99, 0.9, 0.01, key="am_t_b1"),
                      slow_momentum=t[3].slider("β3 (slow)", 0.0, 0.99, 0.9, 0.01, key="am_t_b3"),
                      slow_every=t[4].slider("f (steps)", 1, 50, 10, key="am_t_f"))
        follow = t[5].number_input("Follow task", 1, 8, 1, key="am_t_follow")
        if tspec:
            if follow > tspec.n_tasks:
                st.error(f"Follow task = {follow} is not allowed: there are {tspec.n_tasks} tasks.")
            else:
                st.plotly_chart(orthogonal_tasks_figure(_tasks(tspec.to_json()), int(follow) - 1), width="stretch")
    with panel_guard("trajectories"):
        st.subheader("Adam, Muon and M3 on a 2-D loss surface")
        s1, s2, s3 = st.columns(3)
        surface = valid(SurfaceSpec, surface=s1.selectbox("Surface", list(SURFACES), key="am_surface"),
                        steps=s2.slider("Steps", 10, 500, 150, key="am_steps"))
        picked = s3.multiselect("Optimizers", ["adam", "muon", "m3"], default=["adam", "muon", "m3"], key="am_opts")
        a, m, n = st.columns(3)
        specs = {
            "adam": valid(AdamSpec, lr=a.slider("Adam lr", 0.001, 1.0, 0.1, 0.001, key="am_a_lr"),
                          beta1=a.slider("Adam β1", 0.0, 0.99, 0.9, 0.01, key="am_a_b1"),
                          beta2=a.slider("Adam β2", 0.9, 0.9999, 0.999, 0.0001, format="%.4f", key="am_a_b2")),
            "muon": valid(MuonSpec, lr=m.slider("Muon lr", 0.001, 1.0, 0.1, 0.001, key="am_mu_lr"),
                          momentum=m.slider("Muon μ", 0.0, 0.99, 0.9, 0.01, key="am_mu_mom"),
                          nesterov=m.toggle("Nesterov", value=False, key="am_mu_nest")),
            "m3": valid(M3Spec, lr=n.slider("M3 lr", 0.001, 1.0, 0.1, 0.001, key="am_m3_lr"),
                        momentum=n.slider("M3 β1", 0.0, 0.99, 0.9, 0.01, key="am_m3_tb1"),
                        slow_momentum=n.slider("M3 β3", 0.0, 0.99, 0.9, 0.01, key="am_m3_tb3"),
                        slow_every=n.slider("M3 f", 1, 50, 10, key="am_m3_tf"),
                        alpha=n.slider("M3 α (slow weight)", 0.0, 2.0, 0.5, 0.05, key="am_m3_alpha"),
                        beta2=(n.slider("M3 β2", 0.5, 0.9999, 0.99, 0.0001, format="%.4f", key="am_m3_b2")
                               if n.toggle("Second moment V", value=False, key="am_m3_v") else None)),
        }
        chosen = tuple((k, specs[k].to_json()) for k in picked if specs[k] is not None)
        if not picked:
            st.info("Pick at least one optimizer.")
        elif surface and len(chosen) == len(picked):
            paths = _paths(surface.to_json(), chosen)
            st.plotly_chart(trajectory_figure(surface_grid(surface.surface), paths), width="stretch")
            st.plotly_chart(trajectory_loss_figure(paths), width="stretch")
            st.caption("The parameter is a 1×2 matrix. For one vector Newton–Schulz only normalises, so Muon's "
                       "steps have nearly constant length lr; M3 adds its slow, chunk-level momentum.")
