"""Webhooks of a workspace: its admins add, list, test and remove them and read the delivery log."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, delete, get, post
from litestar.exceptions import HTTPException, NotFoundException, PermissionDeniedException
from litestar.params import FromPath, JSONBody

from appliance.accounts import audit, workspaces
from appliance.integrations import webhooks
from appliance.web.auth import principal_of
from appliance.web.deps import services_of
from appliance.web.i18n import N_
from appliance.web.offload import off_loop


class NewWebhook(msgspec.Struct):
    url: str
    events: list[str] = msgspec.field(default_factory=lambda: list(webhooks.EVENTS))
    include_text: bool = False  # the transcript's text in job.done bodies (ids and states only otherwise)


class CreatedWebhook(msgspec.Struct):
    webhook: webhooks.Webhook
    secret: str  # shown once: the receiver verifies signatures with it


class WebhookList(msgspec.Struct):
    webhooks: list[webhooks.Webhook]
    allowed_receivers: list[str]  # security.egress_allow: the only hosts a webhook may point at
    events: list[str]


def _admin_of(request: Request[Any, Any, Any], workspace_id: str) -> None:
    role = workspaces.role_of(services_of(request).databases.get(), workspace_id, principal_of(request).user.id)
    if role is None:
        raise NotFoundException(detail=N_("No such workspace."))
    if role != "admin":
        raise PermissionDeniedException(detail=N_("Only the workspace's admins manage its webhooks."))


def _hook(request: Request[Any, Any, Any], webhook_id: str) -> webhooks.Webhook:
    hook = webhooks.get(services_of(request).databases.get(), webhook_id)
    if hook is None:
        raise NotFoundException(detail=N_("No such webhook."))
    try:
        _admin_of(request, hook.workspace_id)
    except PermissionDeniedException:
        raise NotFoundException(detail=N_("No such webhook.")) from None
    return hook


@get("/api/v1/workspaces/{workspace_id:str}/webhooks", tags=["webhooks"], summary="A workspace's webhooks")
@off_loop
def list_webhooks(request: Request[Any, Any, Any], workspace_id: FromPath[str]) -> WebhookList:
    _admin_of(request, workspace_id)
    services = services_of(request)
    return WebhookList(
        webhooks=webhooks.for_workspace(services.databases.get(), workspace_id),
        allowed_receivers=list(services.settings.security.egress_allow),
        events=list(webhooks.EVENTS),
    )


@post(
    "/api/v1/workspaces/{workspace_id:str}/webhooks",
    tags=["webhooks"],
    summary="Add a webhook (its secret is in this answer only)",
    opt={"scope": "transcribe"},
)
@off_loop
def create_webhook(request: Request[Any, Any, Any], workspace_id: FromPath[str], data: JSONBody[NewWebhook]) -> CreatedWebhook:
    _admin_of(request, workspace_id)
    services = services_of(request)
    principal = principal_of(request)
    try:
        hook, secret = webhooks.create(
            services.databases.get(),
            workspace_id,
            data.url,
            data.events,
            include_text=data.include_text,
            created_by=principal.user.id,
            allowed=services.settings.security.egress_allow,
        )
    except webhooks.WebhookError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None
    audit.record(
        services.databases.get(),
        "webhook.created",
        actor=principal.user.email,
        target=workspace_id,
        detail={"url": hook.url, "events": hook.events, "include_text": hook.include_text},
    )
    return CreatedWebhook(webhook=hook, secret=secret)


@delete("/api/v1/webhooks/{webhook_id:str}", tags=["webhooks"], status_code=204, opt={"scope": "transcribe"})
@off_loop
def delete_webhook(request: Request[Any, Any, Any], webhook_id: FromPath[str]) -> None:
    hook = _hook(request, webhook_id)
    db = services_of(request).databases.get()
    webhooks.delete(db, webhook_id)
    audit.record(
        db, "webhook.deleted", actor=principal_of(request).user.email, target=hook.workspace_id, detail={"url": hook.url}
    )


@post("/api/v1/webhooks/{webhook_id:str}/test", tags=["webhooks"], status_code=202, opt={"scope": "transcribe"})
@off_loop
def test_webhook(request: Request[Any, Any, Any], webhook_id: FromPath[str]) -> dict[str, str]:
    """Send a signed `ping` now; its outcome appears in the delivery log."""
    _hook(request, webhook_id)
    services = services_of(request)
    delivery = webhooks.ping(services.databases.get(), webhook_id)
    if services.webhooks is not None:
        services.webhooks.wake()
    return {"delivery_id": delivery}


@get("/api/v1/webhooks/{webhook_id:str}/deliveries", tags=["webhooks"], summary="The delivery log, newest first")
@off_loop
def webhook_deliveries(request: Request[Any, Any, Any], webhook_id: FromPath[str]) -> list[webhooks.Delivery]:
    _hook(request, webhook_id)
    return webhooks.deliveries(services_of(request).databases.get(), webhook_id)


ROUTES = [list_webhooks, create_webhook, delete_webhook, test_webhook, webhook_deliveries]
