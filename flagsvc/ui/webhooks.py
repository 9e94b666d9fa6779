"""Admin → Webhooks: create, change, pause and delete webhooks, read each one's delivery
log and send a delivery again (admins only).

The same service calls as ``/api/v1/webhooks``: the signing secret is shown once, on the
page that made (or replaced) it; a save is guarded by the version the form showed; the
log is ``/api/v1/webhooks/<id>/deliveries``. Marketing's Slack channel is set up here
without a terminal.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flask import request

from flagsvc.domain.errors import DomainError
from flagsvc.domain.errors import NotFoundError
from flagsvc.domain.roles import Permission
from flagsvc.domain.webhooks.events import ALL_EVENTS
from flagsvc.domain.webhooks.events import EventType
from flagsvc.services import environments
from flagsvc.services import value_streams
from flagsvc.services.records import Webhook
from flagsvc.services.webhooks import registry
from flagsvc.ui import bp
from flagsvc.ui import refusals
from flagsvc.ui.admin import Created
from flagsvc.ui.auth import change
from flagsvc.ui.auth import permission_required
from flagsvc.ui.forms import FormInvalidError
from flagsvc.ui.forms import FormState
from flagsvc.ui.forms import optional
from flagsvc.ui.forms import text
from flagsvc.ui.forms import validate
from flagsvc.ui.forms import version_guard
from flagsvc.ui.pages import done
from flagsvc.ui.pages import error_status
from flagsvc.ui.pages import refuse
from flagsvc.ui.pages import render
from flagsvc.ui.refusals import Refusal
from flagsvc.web.context import db
from flagsvc.web.context import state
from flagsvc.web.shapes.webhooks import WebhookCreateSchema
from flagsvc.web.shapes.webhooks import WebhookPatchSchema

SHOWN = 50
"""Deliveries shown for the chosen webhook (the API pages through all of them)."""

EVENT_WORDS = {
    EventType.EARLY_ACCESS_ENTERED: "entered early access",
    EventType.SAFE_TO_PROMISE: "safe to promise (proven in early access)",
    EventType.READINESS_ITEM_DONE: "a readiness item done",
    EventType.READY_TO_LAUNCH: "ready to launch",
    EventType.LAUNCH_SCHEDULED: "launch scheduled",
    EventType.LAUNCHED: "launched",
    EventType.LAUNCH_SKIPPED: "scheduled launch skipped",
    EventType.KILLED: "killed",
    EventType.RELEASED: "released to everyone",
    EventType.STALE: "flag stale",
}
FORMAT_OPTIONS = [("json", "JSON, signed (your own receiver)"), ("slack", "Slack message")]
FORM = "webhook"


@bp.get("/admin/webhooks")
@permission_required(Permission.MANAGE_WEBHOOKS)
def webhooks_page() -> Any:
    """Every webhook, the form for a new one, and the newest deliveries of the chosen one
    (the first by default)."""
    refused = refusals.take()
    if refused is not None:
        return _list_page(refused.form, refused.status, refused.problem)
    return _list_page(FormState(), 200)


def _list_page(
    form: FormState,
    status: int,
    problem: str | None = None,
    created: Created | None = None,
    wanted: str | None = None,
) -> Any:
    """The list, the new-webhook form and the chosen webhook's log (``wanted``: its id,
    else the one the address names, else the first)."""
    with db().read() as session:
        hooks = registry.list_webhooks(session)
        wanted = request.args.get("webhook", "") if wanted is None else wanted
        chosen = _chosen(hooks, wanted)
        if chosen is None and wanted:
            raise NotFoundError("webhook", wanted)
        rows = registry.deliveries(session, chosen.id, SHOWN) if chosen else []
        attempts = registry.attempts_of(session, [row.id for row in rows])
        return render(
            "webhooks.html",
            status,
            section="ui.admin",
            hooks=hooks,
            chosen=chosen,
            deliveries=[(row, attempts.get(row.id, [])) for row in rows],
            shown=SHOWN,
            all_events=len(ALL_EVENTS),
            form=form,
            problem=problem,
            created=created,
            **_choices(session),
        )


def _choices(session: Any) -> dict[str, Any]:
    """What the webhook form offers: events in words, value streams, environments."""
    streams = value_streams.list_streams(session)
    envs = environments.list_environments(session)
    return {
        "event_options": [(event.value, words) for event, words in EVENT_WORDS.items()],
        "stream_options": [(stream.key, stream.name) for stream in streams],
        "environment_options": [(env.key, env.name) for env in envs],
        "format_options": FORMAT_OPTIONS,
    }


def _chosen(hooks: Sequence[Webhook], wanted: str) -> Webhook | None:
    if not wanted:
        return hooks[0] if hooks else None
    return next((hook for hook in hooks if str(hook.id) == wanted), None)


@bp.post("/admin/webhooks")
@permission_required(Permission.MANAGE_WEBHOOKS)
def webhook_create() -> Any:
    """Create a webhook; its signing secret is shown once, on the page this answers."""
    form = request.form
    allow = state().config.webhook_allow_private
    try:
        fields = validate(WebhookCreateSchema(), _sent_fields(form), _must_choose_events(form))
        with db().write() as session:
            made = registry.create_webhook(session, change(), fields, allow)
            hook_id, name, secret = made.webhook.id, made.webhook.name, made.secret
    except FormInvalidError as error:
        return _refused(Refusal(FormState(FORM, form, error.errors), 422))
    except DomainError as error:
        errors = {getattr(error, "field", None) or "url": [error.message]}
        return _refused(Refusal(FormState(FORM, form, errors), error_status(error)))
    return _list_page(FormState(), 201, created=_secret_shown(name, secret), wanted=str(hook_id))


def _sent_fields(form: Any) -> dict[str, Any]:
    """The form as the API's body: every field the form has, lists from checkboxes."""
    fields = optional({name: text(form, name) for name in ("name", "url", "format")})
    for name in ("events", "value_streams", "environments"):
        fields[name] = form.getlist(name)
    fields["active"] = "active" in form
    return fields


def _must_choose_events(form: Any) -> dict[str, list[str]]:
    """The API reads no events as all of them; on a page of checkboxes, none ticked is a
    mistake, so the form says so instead."""
    return {} if form.getlist("events") else {"events": ["Choose at least one event."]}


def _secret_shown(name: str, secret: str) -> Created:
    return Created(f"Signing secret of webhook “{name}”", secret)


def _refused(refusal: Refusal, **values: Any) -> Any:
    def in_place(shown: Refusal) -> Any:
        return _list_page(shown.form, shown.status, shown.problem)

    return refuse(refusal, "ui.webhooks_page", in_place, **values)


@bp.get("/admin/webhooks/<int:webhook_id>/edit")
@permission_required(Permission.MANAGE_WEBHOOKS)
def webhook_edit(webhook_id: int) -> Any:
    """One webhook's form, filled in, with its version for the save to check."""
    refused = refusals.take()
    if refused is not None:
        return _edit_page(webhook_id, refused.form, refused.status, refused.problem)
    return _edit_page(webhook_id, FormState(), 200)


def _edit_page(webhook_id: int, form: FormState, status: int, problem: str | None = None) -> Any:
    with db().read() as session:
        hook = registry.get_webhook(session, webhook_id)
        return render("webhook_edit.html", status, section="ui.admin", hook=hook, form=form,
                      problem=problem, **_choices(session))  # fmt: skip


@bp.post("/admin/webhooks/<int:webhook_id>/edit")
@permission_required(Permission.MANAGE_WEBHOOKS)
def webhook_save(webhook_id: int) -> Any:
    """Save the form under the version it showed; a new secret is shown once."""
    form = request.form
    allow = state().config.webhook_allow_private
    sent = {**_sent_fields(form), "rotate_secret": "rotate_secret" in form}
    guard = version_guard("webhook", form.get("version"))
    try:
        fields = validate(WebhookPatchSchema(), sent, _must_choose_events(form))
        with db().write() as session:
            found = registry.update_webhook(session, change(), webhook_id, fields, allow, guard)
            secret = found.secret if isinstance(found, registry.Created) else None
            hook = found.webhook if isinstance(found, registry.Created) else found
            name = hook.name
    except FormInvalidError as error:
        return _refused_edit(webhook_id, Refusal(FormState(FORM, form, error.errors), 422))
    except DomainError as error:
        field = getattr(error, "field", None)
        refusal = Refusal(FormState(FORM, form, {field: [error.message]} if field else {}),
                          error_status(error), None if field else error.message)  # fmt: skip
        return _refused_edit(webhook_id, refusal)
    if secret is not None:
        shown = _secret_shown(name, secret)
        return _list_page(FormState(), 200, created=shown, wanted=str(webhook_id))
    return done(f"Webhook “{name}” saved.", "ui.webhooks_page", webhook=webhook_id)


def _refused_edit(webhook_id: int, refusal: Refusal) -> Any:
    def in_place(shown: Refusal) -> Any:
        return _edit_page(webhook_id, shown.form, shown.status, shown.problem)

    return refuse(refusal, "ui.webhook_edit", in_place, webhook_id=webhook_id)


@bp.post("/admin/webhooks/<int:webhook_id>/delete")
@permission_required(Permission.MANAGE_WEBHOOKS)
def webhook_delete(webhook_id: int) -> Any:
    """Delete a webhook and its log; what it had not sent yet is never sent."""
    guard = version_guard("webhook", request.form.get("version"))
    try:
        with db().write() as session:
            name = registry.delete_webhook(session, change(), webhook_id, guard)
    except DomainError as error:
        return _refused_edit(webhook_id, Refusal(FormState(), error_status(error), error.message))
    return done(f"Webhook “{name}” deleted.", "ui.webhooks_page")


@bp.post("/admin/webhooks/<int:webhook_id>/deliveries/<int:delivery_id>/redeliver")
@permission_required(Permission.MANAGE_WEBHOOKS)
def webhook_redeliver(webhook_id: int, delivery_id: int) -> Any:
    """Send one delivery again now (same event id: a receiver that has it drops it)."""
    try:
        with db().write() as session:
            delivery = registry.redeliver(session, change(), webhook_id, delivery_id)
            event_id = delivery.event_id
    except DomainError as error:
        refusal = Refusal(FormState(), error_status(error), error.message)
        return _refused(refusal, webhook=webhook_id, _anchor="deliveries")
    return done(f"Delivery {event_id} will be sent again within seconds.", "ui.webhooks_page",
                webhook=webhook_id, _anchor="deliveries")  # fmt: skip
