"""The Lessons page's parts: the lesson library (read once per change of the lessons folder, shared
read-only), this browser session's LessonSession, the address bar (lesson, step, presenter mode: a
link opens that exact step), the list of lessons, and one step: its text, the prediction, the panel,
the observation, "try this", the live re-run of a shipped result, and Back / Next.

Every echo of something a user or a URL supplied goes through `as_text` (or a session's notices).
"""
from __future__ import annotations

import streamlit as st

from app.components.forgetting_shipped import build_deployment_session, build_forgetting_session
from app.components.claims_shipped import build_claims_session
from app.components.sessions import as_text, session_for, show_notices
from app.components.shell import panel_guard
from app.panels import PANELS
from app.panels.forgetting import agreement_note
from lab.lessons import LESSONS_DIR, load_library
from lab.sessions.lesson import LessonSession

PANEL_KINDS = {name: p.session for name, p in PANELS.items()}


@st.cache_resource(show_spinner=False)
def _library(signature: tuple):
    return load_library(LESSONS_DIR, PANEL_KINDS)


def lesson_library():
    """The lessons of lessons/, read again whenever a file there changes (a teacher's edit shows on reload)."""
    files = sorted(LESSONS_DIR.glob("*.md")) if LESSONS_DIR.is_dir() else []
    return _library(tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in files))


def lesson_session() -> LessonSession:
    factories = {"forgetting": build_forgetting_session, "deployment": build_deployment_session,
                 "claims": build_claims_session}
    session = session_for("lesson", lambda: LessonSession(lesson_library(), factories, PANEL_KINDS))
    session.library = lesson_library()
    return session


# --- the address bar --------------------------------------------------------------------------------

def presenting() -> bool:
    return st.query_params.get("present") == "1"


def follow_url(session: LessonSession) -> None:
    """Show the lesson and step the URL names (a bad one: a message, and the URL is set right)."""
    params = st.query_params
    wanted = {"lesson": params.get("lesson", ""), "step": params.get("step", "1") or "1",
              "variant": params.get("try") == "1"}
    current = session.settings
    if (wanted["lesson"], str(wanted["step"]), wanted["variant"]) != (current.lesson, str(current.step), current.variant):
        session.configure(wanted if wanted["lesson"] else {"lesson": ""})
    write_url(session)


def write_url(session: LessonSession) -> None:
    target = {**session.params(), **({"present": "1"} if presenting() else {})}
    if st.query_params.to_dict() != target:
        st.query_params.from_dict(target)


def go(session: LessonSession, lesson: str | None = None, step: int | None = None, variant: bool = False,
       present: bool | None = None) -> None:
    """A button's callback: change the URL; the next run follows it (`follow_url`)."""
    lesson = session.settings.lesson if lesson is None else lesson
    params = {"lesson": lesson, "step": str(step or 1)} if lesson else {}
    if variant:
        params["try"] = "1"
    if present if present is not None else presenting():
        params["present"] = "1"
    st.query_params.from_dict(params)


def presenter_toggle(session: LessonSession) -> None:
    st.toggle("Presenter mode", value=presenting(), key="ls_present",
              help="Large type, no sidebar, one step per screen; the address is a link to this step.",
              on_change=lambda: go(session, step=session.settings.step, variant=session.settings.variant,
                                   present=bool(st.session_state["ls_present"])))


# --- the list of lessons -------------------------------------------------------------------------------

def lesson_index(session: LessonSession) -> None:
    library = session.library
    for problem in library.problems:
        st.error(as_text(f"This lesson file could not be loaded: {problem}"))
    st.markdown(f"**{len(library.lessons)} lessons.** Each names the panels and runs it uses; predictions come "
                "before the panel runs, and every number is read from the run's own records.")
    for lesson in library.lessons:
        with st.container(border=True):
            left, right = st.columns([5, 2])
            left.markdown(f"#### {lesson.title}\n*{lesson.mechanism}* · {lesson.minutes} minutes · "
                          f"{len(lesson.steps)} steps · {lesson.predictions} predictions  \n{lesson.summary}")
            right.button("Open", key=f"ls_open_{lesson.id}", icon=":material/school:", on_click=go,
                         args=(session, lesson.id, 1))
            right.button("Present", key=f"ls_present_{lesson.id}", icon=":material/co_present:", on_click=go,
                         args=(session, lesson.id, 1), kwargs={"present": True})


# --- one step ------------------------------------------------------------------------------------------

def navigation(session: LessonSession, where: str) -> None:
    lesson, number = session.lesson, session.settings.step
    back, middle, forward = st.columns([1, 3, 1])
    back.button("Back", key=f"ls_back_{where}", icon=":material/arrow_back:", disabled=number <= 1,
                on_click=go, args=(session, None, number - 1), width="stretch")
    middle.markdown(f"<div class='nll-step-count'>Step {number} of {len(lesson.steps)}</div>", unsafe_allow_html=True)
    forward.button("Next", key=f"ls_next_{where}", icon=":material/arrow_forward:", icon_position="right",
                   disabled=number >= len(lesson.steps), on_click=go, args=(session, None, number + 1),
                   width="stretch")


def prediction(session: LessonSession, poll) -> None:
    """The prediction form, or what was predicted; `poll(session)` draws the class's answers, if any."""
    step = session.step
    predict, key = step.predict, f"ls_{session.settings.lesson}_{step.number}"
    with st.container(border=True):
        st.markdown(f"**Predict.** {session.fill(predict.question)}")
        if session.revealed_now:
            answer = session.answer
            st.markdown(f"Your prediction: **{as_text(answer) if answer is not None else 'none (revealed without one)'}**")
            measured = session.measured_answer()
            if measured is not None:
                st.markdown(f"The run measured: **{measured.text()}**")
            poll(session)
            return
        if poll(session):                       # a class is answering: the teacher reveals
            return
        if predict.choices:
            value = st.radio("Your answer", predict.choices, index=None, key=f"{key}_choice")
        else:
            value = st.number_input(f"Your answer{f' ({predict.unit})' if predict.unit else ''}", predict.low,
                                    predict.high, value=None, step=predict.step, key=f"{key}_number")
        cols = st.columns([2, 2, 3])
        cols[0].button("Commit my prediction", key=f"{key}_commit", type="primary", disabled=value is None,
                       on_click=session.commit, args=(value,))
        cols[1].button("Reveal without one", key=f"{key}_reveal", type="tertiary", on_click=session.reveal)


def step_panel(session: LessonSession) -> None:
    step, inner = session.step, session.inner
    if inner is None:
        return
    show_notices(inner)
    if not session.revealed_now:
        st.info("The panel runs once the prediction is in.")
        return
    with panel_guard(step.panel):
        PANELS[step.panel].draw(inner, key=f"ls_{session.settings.lesson}_{session.preset_name}")


def observation(session: LessonSession) -> None:
    text = session.observation()
    if text:
        with st.container(border=True):
            st.markdown("**What the run shows**")
            st.markdown(text)


def rerun(session: LessonSession) -> None:
    step = session.step
    if not step.rerun or not session.revealed_now:
        return
    st.button("Re-run live and check the shipped numbers", key=f"ls_rerun_{session.settings.lesson}_{step.number}",
              icon=":material/replay:", disabled=session.busy, on_click=session.request_rerun,
              help="Runs a shipped trial again in this session (one seed; this can take minutes) and says whether "
                   "its numbers come out identical.")
    agreement = session.rerun_agreement()
    if agreement is None:
        return
    if session.panel_kind == "claims":
        (st.success if agreement["identical"] else st.warning)(
            "The live re-run agrees exactly with the shipped numbers." if agreement["identical"] else
            f"The live re-run differs from the shipped numbers by up to {agreement['max_abs_diff']:.3g}.")
    else:
        agreement_note(agreement)


def try_this(session: LessonSession) -> None:
    step = session.step
    if not step.try_text and step.try_preset is None:
        return
    with st.container(border=True):
        st.markdown(f"**Try this.** {session.fill(step.try_text)}")
        if step.try_preset is not None:
            variant = session.settings.variant
            st.button("Back to the step's own run" if variant else "Try this", key=f"ls_try_{step.number}",
                      icon=":material/science:", on_click=go, args=(session, None, step.number, not variant))


def lesson_step(session: LessonSession, poll):
    """One step, top to bottom; returns the slot where the step's run shows its progress."""
    lesson, step = session.lesson, session.step
    navigation(session, "top")
    st.header(f"{step.number}. {session.fill(step.title)}")
    if step.number == 1 and lesson.intro:
        st.markdown(session.fill(lesson.intro))
    if step.body:
        st.markdown(session.fill(step.body))
    if step.predict is not None:
        prediction(session, poll)
    slot = st.empty()
    step_panel(session)
    observation(session)
    rerun(session)
    try_this(session)
    navigation(session, "bottom")
    return slot
