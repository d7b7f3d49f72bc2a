"""Playground: train one model live and look inside it, level by level."""
from __future__ import annotations

from app.components.live_view import live_view
from app.components.optimizer_race import optimizer_race
from app.components.setup_form import setup_form
from app.components.shell import page_setup, show_notices
from app.components.state import current_session, notices, sync_url
from app.components.transport import schedule_line, transport_bar

page_setup(
    "Playground",
    "one model learning a stream of tasks, live: its loss, its accuracy on every task, and inside it "
    "when each CMS level updates, what it computes and how far it drifts.",
    "pick a setup in the sidebar and press Play (or Step). Drag the time scrubber to look back; "
    "the address bar is a link to this exact setup.",
)
session = current_session()
setup_form(session)
session = current_session()
sync_url(session)
show_notices(notices())
transport_bar(session)
schedule_line(session)
live_view(session)
optimizer_race(session)
