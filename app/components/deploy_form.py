"""The deployment comparison's setup form (sidebar): variants, pretraining and deployment lengths,
the online learning rate, seeds and size. Nothing trains until "Run deployment" is pressed; the
values go to `session.configure`, which makes them the `lab.deploy.DeploySettings` that
`python -m lab deploy` builds from its options."""
from __future__ import annotations

import streamlit as st

from lab.deploy import VARIANTS, DeploySettings, variant_label
from lab.models import PRESETS
from lab.sessions.deployment import DeploymentSession

SUBMIT = "Run deployment"
NUMBERS = (("pretrain_steps", "Pretraining steps", 50), ("deploy_steps", "Steps per language visit", 10),
           ("rounds", "Rounds of the new languages", 1), ("seeds", "Seeds", 1))


def _spec(name: str) -> dict:
    return next(s for s in DeploySettings.field_specs() if s["name"] == name)


def deploy_form(session: DeploymentSession, key: str = "dp"):
    """The form in the sidebar; returns a placeholder under it (for the progress of a run)."""
    s = session.settings
    with st.sidebar.form(f"{key}_setup", border=False):
        st.subheader("Deployment")
        variants = st.multiselect("Variants", tuple(VARIANTS), default=list(s.variants), key=f"{key}_variants",
                                  format_func=variant_label,
                                  help="An architecture and how it is deployed: frozen (the knowledge cutoff), "
                                       "fine-tuned, with replay, or with its CMS levels learning online.")
        values = {"variants": tuple(variants)}
        for name, label, step in NUMBERS:
            spec = _spec(name)
            values[name] = int(st.number_input(label, spec["lo"], spec["hi"], getattr(s, name), step=step,
                                               key=f"{key}_{name}", help=spec["doc"]))
        spec = _spec("online_lr")
        values["online_lr"] = float(st.number_input("Online learning rate of the CMS levels", spec["lo"], spec["hi"],
                                                    s.online_lr, step=0.005, format="%g", key=f"{key}_online_lr",
                                                    help=spec["doc"]))
        values["preset"] = st.radio("Size preset", tuple(PRESETS), index=tuple(PRESETS).index(s.preset),
                                    key=f"{key}_preset", horizontal=True)
        if st.form_submit_button(SUBMIT, type="primary", width="stretch"):
            if not variants:
                session.notices.add("error", "Choose at least one variant to deploy.")
            else:
                session.configure(s.to_dict() | values)
    return st.sidebar.empty()
