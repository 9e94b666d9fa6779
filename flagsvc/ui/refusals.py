"""Post/redirect/get for refused forms too: the reasons travel to the page's GET.

A refused POST (422, 409, 412) answers 303 to the page the form lives on; that GET
shows the form again with what was typed, each reason next to its field, and answers
with the refusal's status. Reloading it then shows the page as it is now: nothing is
sent twice. The refusal travels in the signed session for one request, so it must be
small: a form whose values would not fit (a pasted list of 100,000 user keys) is
answered in place instead, and the page replaces its history entry with the page's
own address (``data-replace-url``), so a reload there re-sends nothing either.
htmx requests keep their fragment answers (they never enter the history).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from flask import redirect
from flask import session
from flask import url_for
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from flagsvc.ui.forms import FormState

KEY = "ui_refusal"
MAX_CARRIED = 2_500  # bytes of JSON: the session cookie must stay far below 4 KiB
NOT_CARRIED = frozenset({"csrf_token"})


@dataclass(frozen=True, slots=True)
class Refusal:
    """A refused form as its page shows it: the form, the status, the reason in words."""

    form: FormState
    status: int
    problem: str | None = None


def redirect_refused(refusal: Refusal, endpoint: str, **values: Any) -> Response | None:
    """Carry ``refusal`` to ``endpoint``'s page (303), or None when it is too large to carry."""
    form = refusal.form
    carried = {
        "name": form.name,
        "values": _lists(form.values),
        "errors": {k: list(v) for k, v in form.errors.items()},
        "status": refusal.status,
        "problem": refusal.problem,
    }
    if len(json.dumps(carried)) > MAX_CARRIED:
        return None
    session[KEY] = carried
    return redirect(url_for(endpoint, **values), 303)


def take() -> Refusal | None:
    """The refusal the last POST carried here (once: a reload shows the page as it is)."""
    carried = session.pop(KEY, None)
    if not isinstance(carried, dict):
        return None
    values: MultiDict[str, str] = MultiDict()
    for name, items in carried.get("values", {}).items():
        for item in items:
            values.add(name, item)
    form = FormState(str(carried.get("name", "")), values, carried.get("errors", {}))
    return Refusal(form, int(carried.get("status", 422)), carried.get("problem"))


def _lists(values: Any) -> dict[str, list[str]]:
    getlist = getattr(values, "getlist", None)
    names = [name for name in values if name not in NOT_CARRIED]
    if getlist is not None:
        return {name: [str(v) for v in getlist(name)] for name in names}
    return {name: [str(values[name])] for name in names}
