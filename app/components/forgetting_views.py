"""What the Forgetting page shows of one comparison: the plain-language reading, the table, the
forgetting curves, the accuracy matrices, the difference view, the live check of the shipped
numbers and the exports. Figures come from lab.viz.forgetting, numbers from lab.compare."""
from __future__ import annotations

import math

import streamlit as st

from app.components.forgetting_state import (SHIPPED, current_job, results, show, shipped, shown_label,
                                             start_job)
from app.components.charts import chart
from app.components.shell import panel_guard
from lab.compare import Comparison, differences, drift_from_defaults, method_label, model_label, summary_table
from lab.viz.forgetting import (DIFF_METRICS, accuracy_matrix_figure, difference_figure,
                                forgetting_curves_figure, to_html)

REFERENCE = "transformer"


def result_picker() -> tuple[str, Comparison | None, dict | None]:
    """Choose the result on screen: the shipped one or one run in this session."""
    reference, problem = shipped()
    labels = ([SHIPPED] if reference is not None else []) + list(results())
    if problem:
        st.warning(problem)
    if not labels:
        return "", None, None
    label = shown_label()
    if label not in labels:
        label = labels[-1]
    if len(labels) > 1:
        st.session_state["fg_pick"] = label
        st.selectbox("Result shown", labels, key="fg_pick", on_change=lambda: show(st.session_state["fg_pick"]),
                     help="The shipped comparison, and every comparison run in this session (kept until the "
                          "session ends).")
    if label == SHIPPED:
        return label, reference, None
    entry = results()[label]
    return label, entry["comparison"], entry["agreement"]


def reading(comparison: Comparison) -> None:
    st.subheader("What the numbers show")
    with st.container(border=True):
        st.markdown(comparison.describe())


def metrics_table(comparison: Comparison) -> None:
    s = comparison.summary
    st.subheader("ACC, BWT, FWT and forgetting")
    n = s["n_seeds"]
    st.dataframe(summary_table(s), hide_index=True, width="stretch")
    joint = ("Intransigence: accuracy on task k of a fresh model trained on tasks 1..k mixed together for as many "
             "steps, minus R[k][k], averaged over k. " if s.get("joint") else
             "Intransigence needs the joint reference (tick it in the form). ")
    replay = (f"replay: experience replay with a buffer of {s.get('replay')} sequences. "
              if "replay" in s["methods"] else "")
    st.caption(f"Mean ± standard deviation over {n} seed{'s' if n != 1 else ''} (sample std; 0 with one seed). "
               f"naive: naive sequential training. {replay}"
               "ACC: mean accuracy on all tasks after the last. BWT: mean change on earlier tasks from right after "
               "learning them to the end (negative = forgetting). FWT: accuracy on a task before training on it, "
               "minus the untrained model's. "
               f"Forgetting, {s['forgetting_form']}; the final form is {s['forgetting_final_form']}. "
               "Learned: accuracy on each task right after training on it (what there was to forget). " + joint)


def _method_choice(comparison: Comparison) -> str:
    methods = comparison.methods
    if len(methods) == 1:
        return methods[0]
    if st.session_state.get("fg_method") not in methods:
        st.session_state["fg_method"] = methods[0]
    replay = comparison.summary.get("replay")
    return st.radio("Figures show", methods, key="fg_method", horizontal=True,
                    format_func=lambda m: method_label(m, replay))


def figures(comparison: Comparison, label: str) -> dict:
    """Draw the three figures; returns them (for the HTML export)."""
    method = _method_choice(comparison)
    models, names = comparison.models, comparison.task_names
    out = {}
    st.subheader("Forgetting curves")
    st.caption("Accuracy on every task (held out) against tokens seen; each task's phase is shaded in its colour. "
               "When a new task begins, watch what happens to the earlier ones. Lines: mean over seeds; "
               "band: ± one standard deviation.")
    with panel_guard("forgetting curves"):
        out["forgetting_curves"] = forgetting_curves_figure(comparison.records, comparison.boundaries_tokens, names,
                                                            models, method)
        chart(out["forgetting_curves"], "fg_curves")
    st.subheader("Accuracy matrix R")
    st.caption("Row i: after training on tasks 1..i (row 0: untrained). Column j: accuracy on task j. The diagonal "
               "is what each task reached while it was trained; below it, what was kept of it later.")
    with panel_guard("accuracy matrix"):
        out["accuracy_matrix"] = accuracy_matrix_figure(comparison.matrix, names, models, method)
        chart(out["accuracy_matrix"], "fg_matrix")
    st.subheader("Difference view")
    if REFERENCE not in models or len(models) < 2:
        st.info("The difference view compares each architecture with the Transformer: include the Transformer and "
                "at least one other architecture.")
        return out
    metric = st.radio("Difference of", tuple(DIFF_METRICS), key="fg_diff_metric", horizontal=True,
                      format_func=lambda m: DIFF_METRICS[m][0])
    st.caption(f"Per task, paired by seed (same stream, same initialisation seed): {DIFF_METRICS[metric][1]}. "
               "Whiskers: ± one standard deviation over seeds.")
    with panel_guard("difference view"):
        out["differences"] = difference_figure(differences(comparison.matrix, REFERENCE), names, metric, method,
                                               REFERENCE)
        chart(out["differences"], "fg_diff")
    return out


def agreement_note(agreement: dict | None) -> None:
    """Whether a live rerun reproduced the shipped numbers, and by how much it differs if not."""
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


def rerun_panel(reference: Comparison):
    """Re-run the shipped comparison live, for some of its seeds, and say whether the numbers agree.
    Returns a placeholder under the button (for the progress of a re-run)."""
    s = reference.summary
    with st.expander("Re-run the shipped comparison live and check the numbers", expanded=False):
        st.caption("Runs the stored configuration again with the same seeds: on a CPU with this code the accuracy "
                   f"matrix must come out identical. The shipped comparison took {s.get('wall_seconds', 0) / 60:.0f} "
                   f"minutes for {s['n_seeds']} seeds where it was made; one seed takes about a third of that.")
        changed = drift_from_defaults(reference)
        if changed:
            st.info("Since the shipped comparison was made, the defaults changed in: " + "; ".join(changed) +
                    ". The re-run uses the shipped configuration, so it can still reproduce the shipped numbers; a "
                    "new comparison from the form uses today's defaults.")
        cols = st.columns([2, 2, 1])
        seeds = cols[0].multiselect("Seeds to re-run", reference.seeds, default=reference.seeds[:1], key="fg_re_seeds")
        methods = cols[1].multiselect("Methods", reference.methods, default=reference.methods[:1], key="fg_re_methods",
                                      format_func=lambda m: method_label(m, s.get("replay")))
        joint = cols[2].checkbox("Joint reference", value=False, key="fg_re_joint", disabled=not s.get("joint"))
        pressed = st.button("Re-run live", key="fg_rerun", icon=":material/replay:", disabled=current_job() is not None)
        slot = st.empty()
        if pressed:
            if not seeds or not methods:
                st.error("Choose at least one seed and one method to re-run.")
                return slot
            try:
                job = reference.rerun_job(seeds, methods, bool(joint and s.get("joint")))
            except ValueError as err:
                st.error(f"This re-run cannot start: {err}")
                return slot
            seeds_text = ", ".join(str(x) for x in seeds)
            start_job(job, f"Live re-run of the shipped comparison (seed{'s' if len(seeds) > 1 else ''} {seeds_text}, "
                           f"{', '.join(methods)}{', joint' if joint else ''})", "rerun",
                      f"rerun:{seeds}:{methods}:{joint}")
            st.rerun()
    return slot


def exports(comparison: Comparison, figs: dict, label: str) -> None:
    stem = "nll-forgetting-shipped" if label == SHIPPED else "nll-forgetting"
    with st.expander("Export: the accuracy matrix and the records as CSV, the figures as standalone HTML"):
        cols = st.columns(3)
        cols[0].download_button("Accuracy matrix (CSV)", data=lambda: comparison.matrix.to_csv(index=False),
                                file_name=f"{stem}-accuracy_matrix.csv", mime="text/csv", on_click="ignore",
                                key="fg_dl_matrix", icon=":material/download:")
        cols[1].download_button("Records (CSV)", data=lambda: comparison.records.to_csv(index=False),
                                file_name=f"{stem}-records.csv", mime="text/csv", on_click="ignore",
                                key="fg_dl_records", icon=":material/download:")
        cols[2].download_button("Summary table (CSV)", data=lambda: summary_table(comparison.summary, numeric=True)
                                .to_csv(index=False), file_name=f"{stem}-summary.csv", mime="text/csv",
                                on_click="ignore", key="fg_dl_summary", icon=":material/download:")
        cols = st.columns(3)
        titles = {"forgetting_curves": "Forgetting curves", "accuracy_matrix": "Accuracy matrix",
                  "differences": "Difference view"}
        for col, (name, fig) in zip(cols, figs.items()):
            col.download_button(f"{titles[name]} (HTML)", data=lambda fig=fig: to_html(fig),
                                file_name=f"{stem}-{name}.html", mime="text/html", on_click="ignore",
                                key=f"fg_dl_{name}", icon=":material/download:")
        if comparison.joint is not None:
            st.download_button("Joint reference (CSV)", data=lambda: comparison.joint.to_csv(index=False),
                               file_name=f"{stem}-joint.csv", mime="text/csv", on_click="ignore", key="fg_dl_joint",
                               icon=":material/download:")


def result_view(label: str, comparison: Comparison, agreement: dict | None) -> None:
    s = comparison.summary
    source = "shipped in assets/forgetting/" if label == SHIPPED else "run live in this session"
    stream = (s.get("config") or {}).get("stream", {})
    tasks = f"{len(comparison.task_names)} tasks × {stream.get('steps_per_task', '?')} steps"
    models = ", ".join(model_label(m) for m in comparison.models)
    st.markdown(f"**Shown:** {label} · {source} · models {models} · stream "
                f"{stream.get('kind', '?')} with {tasks} (overlap {stream.get('overlap', '?')}) · seeds "
                f"{', '.join(map(str, comparison.seeds))}")
    agreement_note(agreement)
    reading(comparison)
    metrics_table(comparison)
    figs = figures(comparison, label)
    exports(comparison, figs, label)
