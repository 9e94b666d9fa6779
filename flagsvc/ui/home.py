"""Where each person lands, and the getting-started guide for a new install.

Engineers and admins land on the flags, marketing on launch readiness (their work),
viewers (the leaders' role) on the OKRs. A new install has no flag yet; the guide then
names the story's next step and who takes it, and ticks the steps already taken.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import redirect
from flask import url_for
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from flagsvc.domain.roles import Permission
from flagsvc.domain.roles import Role
from flagsvc.services import getting_started
from flagsvc.ui import bp
from flagsvc.ui.auth import current_user
from flagsvc.ui.pages import render
from flagsvc.web.context import db

LANDING = {Role.MARKETING: "ui.readiness_board", Role.VIEWER: "ui.okr_board"}


@dataclass(frozen=True, slots=True)
class Step:
    """One step of the story: what, who does it, where, and whether it was taken."""

    title: str
    who: str
    why: str
    action: str  # the link's words
    endpoint: str
    permission: Permission
    done: bool


def steps(progress: getting_started.Progress) -> list[Step]:
    """The staged-release story as steps, in the order they are taken."""
    return [
        Step("Say what the work is for", "engineer or admin",
             "Every flag serves an OKR key result instead of a due date.",
             "Create an objective and key result", "ui.okr_board", Permission.EDIT_OKRS,
             progress.key_result),
        Step("Create a flag", "engineer",
             "It starts off in every environment, with a readiness checklist for marketing.",
             "New flag", "ui.flag_new", Permission.EDIT_FLAGS, progress.flag),
        Step("Choose early adopters", "engineer",
             "A cohort: customers who opted in, staff, design partners.",
             "New cohort", "ui.cohort_new", Permission.EDIT_COHORTS, progress.cohort),
        Step("Start early access", "engineer",
             "On the flag's page, attach the cohort in production and start early access.",
             "Open the flags", "ui.flag_list", Permission.MOVE_STAGES, progress.early_access),
        Step("Mark launch readiness", "marketing or customer success",
             "Docs, announcement, support, sales: one click per item.",
             "Open readiness", "ui.readiness_board", Permission.MARK_READINESS, progress.ready),
        Step("Roll out to everyone", "engineer, or a scheduled launch",
             "Ramp general rollout 10 → 100 %, then release.",
             "Open the flags", "ui.flag_list", Permission.MOVE_STAGES, progress.general),
        Step("Use it in code", "admin",
             "An SDK key per environment; each flag page shows the code to paste.",
             "Create an SDK key", "ui.admin", Permission.MANAGE_TOKENS, progress.sdk_key),
    ]  # fmt: skip


@bp.get("/")
def home() -> Response:
    """Land each role where its work is."""
    return redirect(url_for(LANDING.get(current_user().role, "ui.flag_list")), 303)


@bp.get("/start")
def getting_started_page() -> Any:
    """The story in seven steps, with the next one to take."""
    with db().read() as session:
        return render("start.html", **guide_context(session))


def guide_context(session: Session) -> dict[str, Any]:
    """The guide's steps and which one comes next (for the page and empty states)."""
    progress = getting_started.progress(session)
    story = steps(progress)
    upcoming = next((step for step in story if not step.done), None)
    return {"steps": story, "next_step": upcoming, "progress": progress}
