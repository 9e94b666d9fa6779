"""Admin → Webhooks: each webhook and its delivery log (admins only, read-only).

Webhooks are made and changed through ``/api/v1/webhooks`` (their secret is shown once,
in the API's answer); this page is where an admin sees what was sent, what failed and
why, and when the next attempt is due: the same service calls as
``/api/v1/webhooks/<id>/deliveries``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flask import request

from flagsvc.domain.errors import NotFoundError
from flagsvc.domain.roles import Permission
from flagsvc.domain.webhooks.events import ALL_EVENTS
from flagsvc.services.records import Webhook
from flagsvc.services.webhooks import registry
from flagsvc.ui import bp
from flagsvc.ui.auth import permission_required
from flagsvc.ui.pages import render
from flagsvc.web.context import db

SHOWN = 50
"""Deliveries shown for the chosen webhook (the API pages through all of them)."""


@bp.get("/admin/webhooks")
@permission_required(Permission.MANAGE_WEBHOOKS)
def webhooks_page() -> Any:
    """Every webhook, and the newest deliveries of the chosen one (the first by default)."""
    with db().read() as session:
        hooks = registry.list_webhooks(session)
        chosen = _chosen(hooks, request.args.get("webhook", ""))
        if chosen is None and request.args.get("webhook"):
            raise NotFoundError("webhook", request.args["webhook"])
        rows = registry.deliveries(session, chosen.id, SHOWN) if chosen else []
        attempts = registry.attempts_of(session, [row.id for row in rows])
        return render(
            "webhooks.html",
            section="ui.admin",
            hooks=hooks,
            chosen=chosen,
            deliveries=[(row, attempts.get(row.id, [])) for row in rows],
            shown=SHOWN,
            all_events=len(ALL_EVENTS),
        )


def _chosen(hooks: Sequence[Webhook], wanted: str) -> Webhook | None:
    if not wanted:
        return hooks[0] if hooks else None
    return next((hook for hook in hooks if str(hook.id) == wanted), None)
