"""Panels of the Forgetting page, each drawn from a `ForgettingSession` (lab.sessions.forgetting):
the result picker, the live re-run of the shipped comparison, the plain-language reading, the
ACC/BWT/FWT table, the forgetting curves, the accuracy matrices, the difference view and the
exports. Figures come from lab.viz.forgetting, numbers from lab.forgetting; a panel of a session
with nothing to show draws nothing.

Widget and chart keys start with `key` ("fg" on the page): `fg_curves`, `fg_rerun`, … The
figures show the session's `figure_method` (chosen with `forgetting_method`) and the difference
view the metric chosen with its radio (`{key}_diff_metric`), which the HTML export reuses.
"""
from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from app.components.charts import chart
from app.components.sessions import as_text
from app.components.shell import panel_guard
from app.panels.registry import panel
from lab.forgetting import Comparison, differences, drift_from_defaults, method_label
from lab.tasks import anchors
from lab.sessions.forgetting import ForgettingSession
from lab.viz.forgetting import (DIFF_METRICS, accuracy_matrix_figure, difference_figure, forgetting_curves_figure,
                                to_html)
from lab.viz.palette import model_label

REFERENCE = "transformer"            # the difference view: every architecture minus this one


def _diff_metric(key: str) -> str:
    metric = st.session_state.get(f"{key}_diff_metric")
    return metric if metric in DIFF_METRICS else next(iter(DIFF_METRICS))


def _has_differences(comparison: Comparison) -> bool:
    return REFERENCE in comparison.models and len(comparison.models) > 1


# --- the figures, from a comparison and the method shown ----------------------------------------

def curves_figure(c: Comparison, method: str):
    return forgetting_curves_figure(c.records, c.boundaries_tokens, c.task_names, c.models, method, c.phase_tasks)


def matrix_figure(c: Comparison, method: str):
    return accuracy_matrix_figure(c.matrix, c.task_names, c.models, method, c.row_labels)


def differences_figure(c: Comparison, method: str, metric: str):
    return difference_figure(differences(c.matrix, REFERENCE), c.task_names, metric, method, REFERENCE)


# --- what is shown ---------------------------------------------------------------------------------

@panel("forgetting_picker", "Result shown", session="forgetting")
def forgetting_picker(session: ForgettingSession, key: str = "fg") -> None:
    """Choose the result on screen (the shipped one or one run in this session) and say what it is."""
    if session.shipped_problem:
        st.warning(as_text(session.shipped_problem))
    labels, label = session.labels, session.shown_label
    if label is None:
        return
    if len(labels) > 1:
        pick = f"{key}_pick"
        st.session_state[pick] = label
        st.selectbox("Result shown", labels, key=pick, on_change=lambda: session.show(st.session_state[pick]),
                     help="The shipped comparison, and every comparison run in this session (kept until the "
                          "session ends).")
    comparison, s = session.shown, session.shown.summary
    source = f"precomputed, shipped in {session.sources[label]}" if label in session.precomputed else \
        "run live in this session"
    stream = (s.get("config") or {}).get("stream", {})
    tasks = f"{len(comparison.task_names)} tasks × {stream.get('steps_per_task', '?')} steps"
    models = ", ".join(model_label(m) for m in comparison.models)
    st.markdown(f"**Shown:** {label} · {source} · models {models} · stream "
                f"{stream.get('kind', '?')} with {tasks} (overlap {stream.get('overlap', '?')}) · seeds "
                f"{', '.join(map(str, comparison.seeds))}")


@panel("forgetting_reading", "What the numbers show", session="forgetting")
def forgetting_reading(session: ForgettingSession, key: str = "fg") -> None:
    """The comparison in plain sentences, generated from its numbers (lab.forgetting.describe_comparison)."""
    if session.shown is None:
        return
    st.subheader("What the numbers show")
    with st.container(border=True):
        st.markdown(session.shown.describe())


@panel("forgetting_table", "ACC, BWT, FWT and forgetting", session="forgetting")
def forgetting_table(session: ForgettingSession, key: str = "fg") -> None:
    """ACC, BWT, FWT, both forms of forgetting, learned accuracy and intransigence, mean ± std over seeds."""
    if session.shown is None:
        return
    st.subheader("ACC, BWT, FWT and forgetting")
    st.dataframe(session.shown.table(), hide_index=True, width="stretch")
    st.caption(session.shown.table_notes())


@panel("literature_anchors", "The field's benchmarks beside the lab's numbers", session="forgetting")
def literature_anchors(session: ForgettingSession, key: str = "fg") -> None:
    """For a stream with known anchors in the literature (Split- and Permuted-Digits: Split and
    Permuted MNIST, REFERENCE.md §7), the published numbers beside the lab's ACC and forgetting."""
    comparison = session.shown
    kind = ((comparison.summary.get("config") or {}).get("stream") or {}).get("kind") if comparison else None
    rows = anchors(kind) if kind else []
    if not rows:
        return
    st.subheader("Beside the field's benchmarks")
    st.caption("Published numbers for the MNIST versions of this benchmark (quoted with their source, not the lab's), "
               "and the lab's own on the 8×8 digits, mean over seeds. The digits are smaller and fewer than MNIST's: "
               "compare the pattern (naive forgets, replay keeps), not the level.")
    lab_rows = [{"benchmark": "the lab, 8×8 digits", "method": f"{model_label(model)}, {method}", "metric": metric,
                 "value": round(cells[metric]["mean"], 3), "source": "this comparison"}
                for method, by_model in comparison.summary["results"].items() for model, cells in by_model.items()
                for metric in ("ACC", "forgetting") if metric in cells]
    table = pd.DataFrame([{k: r[k] for k in ("benchmark", "method", "metric", "value", "source")} for r in rows] + lab_rows)
    st.dataframe(table, hide_index=True, width="stretch")


# --- the figures --------------------------------------------------------------------------------------

@panel("forgetting_method", "Figures show (method)", session="forgetting")
def forgetting_method(session: ForgettingSession, key: str = "fg") -> None:
    """Which method (naive, replay) the figures show, when the comparison ran both."""
    comparison = session.shown
    if comparison is None or len(comparison.methods) < 2:
        return
    widget = f"{key}_method"
    if st.session_state.get(widget) not in comparison.methods:
        st.session_state[widget] = session.figure_method
    replay = comparison.summary.get("replay")
    session.choose_method(st.radio("Figures show", comparison.methods, key=widget, horizontal=True,
                                   format_func=lambda m: method_label(m, replay)))


@panel("forgetting_curves", "Forgetting curves", session="forgetting")
def forgetting_curves(session: ForgettingSession, key: str = "fg") -> None:
    """Accuracy on every task against tokens seen, one panel per architecture."""
    if session.shown is None:
        return
    st.subheader("Forgetting curves")
    st.caption("Accuracy on every task (held out) against tokens seen; each task's phase is shaded in its colour. "
               "When a new task begins, watch what happens to the earlier ones. Lines: mean over seeds; "
               "band: ± one standard deviation.")
    with panel_guard("forgetting curves"):
        chart(curves_figure(session.shown, session.figure_method), f"{key}_curves")


@panel("accuracy_matrix", "Accuracy matrix R", session="forgetting")
def accuracy_matrix(session: ForgettingSession, key: str = "fg") -> None:
    """The accuracy matrix R of each architecture as a heatmap, mean over seeds."""
    if session.shown is None:
        return
    st.subheader("Accuracy matrix R")
    st.caption("Row i: after training on tasks 1..i (row 0: untrained). Column j: accuracy on task j. The diagonal "
               "is what each task reached while it was trained; below it, what was kept of it later.")
    with panel_guard("accuracy matrix"):
        chart(matrix_figure(session.shown, session.figure_method), f"{key}_matrix")


@panel("forgetting_differences", "Difference view", session="forgetting")
def forgetting_differences(session: ForgettingSession, key: str = "fg") -> None:
    """Per task, each architecture minus the Transformer, paired by seed on the identical stream."""
    if session.shown is None:
        return
    st.subheader("Difference view")
    if not _has_differences(session.shown):
        st.info("The difference view compares each architecture with the Transformer: include the Transformer and "
                "at least one other architecture.")
        return
    metric = st.radio("Difference of", tuple(DIFF_METRICS), key=f"{key}_diff_metric", horizontal=True,
                      format_func=lambda m: DIFF_METRICS[m][0])
    st.caption(f"Per task, paired by seed (same stream, same initialisation seed): {DIFF_METRICS[metric][1]}. "
               "Whiskers: ± one standard deviation over seeds.")
    with panel_guard("difference view"):
        chart(differences_figure(session.shown, session.figure_method, metric), f"{key}_diff")


# --- checking and taking away ---------------------------------------------------------------------

def _request_rerun(session: ForgettingSession, key: str) -> None:
    state = st.session_state
    session.request_rerun(state[f"{key}_re_seeds"], state[f"{key}_re_methods"], bool(state[f"{key}_re_joint"]))


@panel("forgetting_rerun", "Re-run the shipped comparison live", session="forgetting")
def forgetting_rerun(session: ForgettingSession, key: str = "fg") -> None:
    """Re-run the precomputed comparison on screen (else the shipped one) live for some of its seeds,
    and say whether the numbers agree."""
    reference = session.reference
    if reference is not None:
        s = reference.summary
        with st.expander("Re-run the precomputed comparison live and check the numbers", expanded=False):
            st.caption(f"Runs “{session.reference_label}” again from its stored configuration with the same seeds: on "
                       "a CPU with this code the accuracy matrix must come out identical. It took "
                       f"{s.get('wall_seconds', 0) / 60:.0f} minutes for {s['n_seeds']} seeds where it was made; one "
                       f"seed takes about 1/{s['n_seeds']} of that.")
            changed = drift_from_defaults(reference)
            if changed:
                st.info("Since the shipped comparison was made, the defaults changed in: " + "; ".join(changed) +
                        ". The re-run uses the shipped configuration, so it can still reproduce the shipped numbers; "
                        "a new comparison from the form uses today's defaults.")
            cols = st.columns([2, 2, 1])
            cols[0].multiselect("Seeds to re-run", reference.seeds, default=reference.seeds[:1], key=f"{key}_re_seeds")
            cols[1].multiselect("Methods", reference.methods, default=reference.methods[:1], key=f"{key}_re_methods",
                                format_func=lambda m: method_label(m, s.get("replay")))
            cols[2].checkbox("Joint reference", value=False, key=f"{key}_re_joint", disabled=not s.get("joint"))
            st.button("Re-run live", key=f"{key}_rerun", icon=":material/replay:", disabled=session.busy,
                      on_click=_request_rerun, args=(session, key))
    agreement_note(session.agreement)


def agreement_note(agreement: dict | None) -> None:
    """Whether a live re-run reproduced the shipped numbers, and by how much it differs if not."""
    if agreement is None:
        return
    if agreement["cells"] == 0:
        st.warning("The live re-run shares no cell with the shipped accuracy matrix, so nothing could be compared.")
        return
    joint = agreement.get("joint_max_abs_diff")
    joint_known = joint is not None and not (isinstance(joint, float) and math.isnan(joint))
    joint_text = "" if not joint_known else (" The joint reference is identical too." if joint == 0 else
                                             f" The joint reference differs by at most {joint:.3g}.")
    if agreement["identical"] and (not joint_known or joint == 0):
        st.success(f"The live re-run agrees with the shipped numbers exactly: all {agreement['cells']} cells of the "
                   "accuracy matrix it recomputed are identical." + joint_text)
        return
    worst = agreement.get("worst") or {}
    where = (f" (largest at {worst.get('model')}, {worst.get('method')}, seed {worst.get('seed')}, after task "
             f"{worst.get('after_task')}, task {worst.get('eval_task')}: live {worst.get('live', 0):.4f}, shipped "
             f"{worst.get('shipped', 0):.4f})") if worst else ""
    st.warning(f"The live re-run differs from the shipped numbers: the largest difference over {agreement['cells']} "
               f"cells is {agreement['max_abs_diff']:.3g}{where}.{joint_text} On the same CPU code the numbers are "
               "identical; a difference means other hardware (a GPU computes in another order), another torch "
               "version, or code changed since the shipped comparison was made.")


@panel("forgetting_exports", "Export", session="forgetting")
def forgetting_exports(session: ForgettingSession, key: str = "fg") -> None:
    """The accuracy matrix, the records and the table as CSV, the figures as standalone HTML."""
    comparison, method = session.shown, session.figure_method      # fixed now: a download later gets these
    if comparison is None:
        return
    stem = f"nll-{session.kind}" + ("-shipped" if session.shown_label in session.precomputed else "")
    csv = {"mime": "text/csv", "on_click": "ignore", "icon": ":material/download:"}
    html = {"mime": "text/html", "on_click": "ignore", "icon": ":material/download:"}
    with st.expander("Export: the accuracy matrix and the records as CSV, the figures as standalone HTML"):
        cols = st.columns(3)
        cols[0].download_button("Accuracy matrix (CSV)", data=lambda: comparison.matrix.to_csv(index=False),
                                file_name=f"{stem}-accuracy_matrix.csv", key=f"{key}_dl_matrix", **csv)
        cols[1].download_button("Records (CSV)", data=lambda: comparison.records.to_csv(index=False),
                                file_name=f"{stem}-records.csv", key=f"{key}_dl_records", **csv)
        cols[2].download_button("Summary table (CSV)", data=lambda: comparison.table(numeric=True)
                                .to_csv(index=False), file_name=f"{stem}-summary.csv", key=f"{key}_dl_summary", **csv)
        figures = {"forgetting_curves": ("Forgetting curves", lambda: curves_figure(comparison, method)),
                   "accuracy_matrix": ("Accuracy matrix", lambda: matrix_figure(comparison, method))}
        if _has_differences(comparison):
            metric = _diff_metric(key)
            figures["differences"] = ("Difference view", lambda: differences_figure(comparison, method, metric))
        for col, (name, (title, build)) in zip(st.columns(3), figures.items()):
            col.download_button(f"{title} (HTML)", data=lambda build=build: to_html(build()),
                                file_name=f"{stem}-{name}.html", key=f"{key}_dl_{name}", **html)
        if comparison.joint is not None:
            st.download_button("Joint reference (CSV)", data=lambda: comparison.joint.to_csv(index=False),
                               file_name=f"{stem}-joint.csv", key=f"{key}_dl_joint", **csv)
