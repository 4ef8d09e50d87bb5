"""The web UI's pages: server-rendered, readable without JavaScript; static JS adds behaviour.

Pages are `public` to the API guard and check the session themselves, so a signed-out visitor is sent
to the sign-in page instead of getting a JSON 401.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from litestar import Request, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, Parameter, QueryParameter
from litestar.response import Redirect, Template

from appliance.accounts import apikeys, audit, authz, factors, workspaces
from appliance.accounts import users as accounts
from appliance.accounts.authz import Principal
from appliance.cluster.protocol import ClusterStatus
from appliance.integrations import webhooks
from appliance.private import keys as private_keys
from appliance.speakers import profiles as voice_profiles
from appliance.transcription import asr, jobs
from appliance.transcripts import search
from appliance.transcripts import store as transcripts
from appliance.transcripts.document import Transcript
from appliance.web import factors_api, i18n, layout
from appliance.web.deps import visible_transcript
from appliance.web.i18n import N_
from appliance.web.offload import off_loop

PAGE = {"public": True, "page": True}
NO_STORE = "no-store"  # pages that hold or lead to decrypted text: never in a browser or proxy cache
PAGE_SIZE = 25


_principal = layout.signed_in


def _page(request: Request[Any, Any, Any], name: str, principal: Principal, **context: Any) -> Template:
    # Dates, numbers and names are formatted in the page's language by the template's globals (web/i18n.py).
    return layout.page(request, name, principal, **context)


def _no_store(template: Template) -> Template:
    template.headers["Cache-Control"] = NO_STORE
    return template


def _login(request: Request[Any, Any, Any]) -> Redirect:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return Redirect(f"/login?next={quote(target, safe='')}")


@get("/", opt=PAGE, include_in_schema=False)
@off_loop
def library_page(
    request: Request[Any, Any, Any],
    sort: str = Parameter(default="date", pattern="^(date|title|duration|language|model)$"),
    order: str = Parameter(default="desc", pattern="^(asc|desc)$"),
    q: str = Parameter(default="", max_length=200),
    language: str = Parameter(default="", max_length=20),
    model: str = Parameter(default="", max_length=100),
    page: int = Parameter(default=1, ge=1, le=100_000),
) -> Template | Redirect:
    principal = _principal(request)
    if principal is None:
        return _login(request)
    db = request.app.state.services.databases.get()
    visible = authz.visible_workspace_ids(db, principal)
    listing = transcripts.library(
        db,
        workspace_ids=visible,
        sort=sort,
        descending=order == "desc",
        text=q,
        language=language or None,
        model=model or None,
        limit=PAGE_SIZE,
        offset=(page - 1) * PAGE_SIZE,
    )
    pages = max(1, -(-listing["total"] // PAGE_SIZE))
    query = {"sort": sort, "order": order, "q": q, "language": language, "model": model}
    return _page(
        request,
        "library.html",
        principal,
        listing=listing,
        page=page,
        pages=pages,
        query=query,
        facets=transcripts.facets(db, visible),
        running=jobs.unfinished(db, visible),
        workspaces={w["id"]: w for w in workspaces.for_user(db, principal.user.id)},
    )


@get("/new", opt=PAGE, include_in_schema=False)
@off_loop
def new_page(request: Request[Any, Any, Any]) -> Template | Redirect:
    principal = _principal(request)
    if principal is None:
        return _login(request)
    services = request.app.state.services
    models, _ = services.registry.scan()
    engines = services.engines.status()
    locale = i18n.chosen(request).locale
    names = ((code, i18n.language_name(code, locale)) for code in asr.language_codes())
    languages = sorted(names, key=lambda p: p[1])
    writable = [w for w in workspaces.for_user(services.databases.get(), principal.user.id) if w["role"] in ("member", "admin")]
    return _page(
        request,
        "new.html",
        principal,
        models=models,
        default_model=services.settings.models.default_model,
        languages=languages,
        engines=engines,
        workspaces=writable,
        max_upload=services.settings.server.max_upload_bytes,
        enrolled=private_keys.enrolled(services.databases.get(), principal.user.id),
    )


@get("/jobs/{job_id:str}", opt=PAGE, include_in_schema=False)
@off_loop
def job_page(request: Request[Any, Any, Any], job_id: FromPath[str]) -> Template | Redirect:
    principal = _principal(request)
    if principal is None:
        return _login(request)
    db = request.app.state.services.databases.get()
    row = jobs.get(db, job_id)
    try:
        if row is None:
            raise authz.NotVisible()
        authz.can_read(db, principal, row)
    except authz.NotVisible:
        raise NotFoundException(detail=N_("No such job.")) from None
    return _page(request, "job.html", principal, job=jobs.document(row))


def _transcript_context(request: Request[Any, Any, Any], principal: Principal, transcript_id: str) -> dict[str, Any]:
    row = visible_transcript(request, transcript_id)
    db = request.app.state.services.databases.get()
    doc = transcripts.get(db, transcript_id)
    if doc is None:
        raise NotFoundException(detail=N_("No such transcript."))
    try:
        authz.can_change(db, principal, row)
        editable = True
    except (authz.Forbidden, authz.NotVisible):
        editable = False
    names = doc.speaker_names()
    colours = {s.id: i % 12 for i, s in enumerate(doc.speakers)}
    return {"doc": doc, "names": names, "colours": colours, "editable": editable}


@get("/t/{transcript_id:str}", opt=PAGE, include_in_schema=False)
@off_loop
def transcript_page(request: Request[Any, Any, Any], transcript_id: FromPath[str]) -> Template | Redirect:
    principal = _principal(request)
    if principal is None:
        return _login(request)
    context = _transcript_context(request, principal, transcript_id)
    doc: Transcript = context["doc"]
    db = request.app.state.services.databases.get()
    if doc.private:
        # No text on the server: the chrome, and the metadata the page's module needs to open the envelope.
        model = {
            "id": doc.id,
            "revision": doc.revision,
            "title": doc.title,
            "duration": doc.duration,
            "editable": context["editable"] and doc.created_by == principal.user.id,
            "private": True,
        }
        return _no_store(
            _page(
                request,
                "transcript.html",
                principal,
                model_json=json.dumps(model),
                private=True,
                can_convert=False,
                **{**context, "editable": model["editable"]},
            )
        )
    can_convert = context["editable"] and doc.created_by == principal.user.id and private_keys.enrolled(db, principal.user.id)
    # The editor's model: times in whole milliseconds (decimal seconds cause rounding bugs in the page).
    model = {
        "id": doc.id,
        "revision": doc.revision,
        "title": doc.title,
        "note": doc.note,
        "duration": doc.duration,
        "editable": context["editable"],
        "speakers": [{"id": s.id, "name": s.name, "label": s.label} for s in doc.speakers],
        "segments": [
            {
                "sid": s.sid,
                "speaker": s.speaker,
                "s": round(s.start * 1000),
                "e": round(s.end * 1000),
                "note": s.note,
                "sc": s.speaker_confidence,
                "words": [
                    {
                        "t": w.word.strip(),
                        "s": round(w.start * 1000),
                        "e": round(w.end * 1000),
                        "c": w.probability,
                        "edited": w.edited,
                        "est": w.estimated,
                    }
                    for w in s.words
                ],
            }
            for s in doc.segments
        ],
    }
    return _page(
        request,
        "transcript.html",
        principal,
        model_json=json.dumps(model),
        private=False,
        can_convert=can_convert,
        voices=request.app.state.services.settings.diarization.voice_profiles,
        revisions_kept=request.app.state.services.settings.retention.revisions_per_transcript,
        **context,
    )


@get("/search", opt=PAGE, include_in_schema=False)
@off_loop
def search_page(
    request: Request[Any, Any, Any],
    q: str = Parameter(default="", max_length=500),
    language: str = Parameter(default="", max_length=20),
    speaker: str = Parameter(default="", max_length=100),
    date_from: Annotated[str, QueryParameter(name="from", pattern=r"^(\d{4}-\d{2}-\d{2})?$")] = "",
    date_to: Annotated[str, QueryParameter(name="to", pattern=r"^(\d{4}-\d{2}-\d{2})?$")] = "",
    page: int = Parameter(default=1, ge=1, le=10_000),
) -> Template | Redirect:
    principal = _principal(request)
    if principal is None:
        return _login(request)
    db = request.app.state.services.databases.get()
    visible = authz.visible_workspace_ids(db, principal)
    results = search.search(
        db,
        q,
        workspace_ids=visible,
        language=language or None,
        speaker=speaker or None,
        date_from=date_from or None,
        date_to=date_to or None,
        limit=PAGE_SIZE,
        offset=(page - 1) * PAGE_SIZE,
    )
    return _no_store(
        _page(
            request,
            "search.html",
            principal,
            results=results,
            page=page,
            pages=max(1, -(-results["total"] // PAGE_SIZE)),
            query={"q": q, "language": language, "speaker": speaker, "from": date_from, "to": date_to},
            facets=transcripts.facets(db, visible),
            enrolled=private_keys.enrolled(db, principal.user.id),
            ai_available=request.app.state.services.assistant.describe()["available"],
        )
    )


def word_diff(base: list[str], other: list[str]) -> list[tuple[str, str]]:
    """(kind, word) pairs for the other transcript against the base: same, added or removed."""
    norm = lambda words: [w.lower().strip(".,!?;:\"'") for w in words]  # noqa: E731 - a one-line key
    out: list[tuple[str, str]] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=norm(base), b=norm(other), autojunk=False).get_opcodes():
        if tag == "equal":
            out += [("same", w) for w in other[j1:j2]]
        else:
            out += [("removed", w) for w in base[i1:i2]] + [("added", w) for w in other[j1:j2]]
    return out


@get("/compare/{job_id:str}", opt=PAGE, include_in_schema=False)
@off_loop
def compare_page(request: Request[Any, Any, Any], job_id: FromPath[str]) -> Template | Redirect:
    principal = _principal(request)
    if principal is None:
        return _login(request)
    db = request.app.state.services.databases.get()
    ids = transcripts.for_job(db, job_id)
    docs = []
    for transcript_id in ids:
        visible_transcript(request, transcript_id)
        doc = transcripts.get(db, transcript_id)
        if doc is not None:
            docs.append(doc)
    if not docs:
        raise NotFoundException(detail=N_("This job has no transcripts to compare."))
    base = docs[0].text.split()
    columns = [
        {"doc": d, "diff": word_diff(base, d.text.split()) if i else [("same", w) for w in base]} for i, d in enumerate(docs)
    ]
    return _page(request, "compare.html", principal, job_id=job_id, columns=columns)


@dataclass(frozen=True)
class SsoProof:
    provider: str  # "Sign in again with <provider>"
    fresh: bool  # this session signed in at the provider within security.second_factor_fresh_minutes


def _sso_proof(request: Request[Any, Any, Any], principal: Principal) -> SsoProof | None:
    """For a single sign-on account: its provider's name and whether this session signed in there
    recently (what the private-transcripts card asks for instead of a password); None for the others."""
    services = request.app.state.services
    oidc = services.oidc
    db = services.databases.get()
    if oidc is None or not oidc.enabled or not oidc.owns(db, principal.user.id):
        return None
    minutes = services.settings.security.second_factor_fresh_minutes
    fresh = principal.session is not None and oidc.signed_in_within(db, principal.session.id, minutes)
    return SsoProof(oidc.name, fresh)


@get("/account", opt=PAGE, include_in_schema=False)
@off_loop
def account_page(request: Request[Any, Any, Any]) -> Template | Redirect:
    principal = _principal(request)
    if principal is None:
        return _login(request)
    db = request.app.state.services.databases.get()
    return _no_store(
        _page(
            request,
            "account.html",
            principal,
            keys=apikeys.for_user(db, principal.user.id),
            workspaces=workspaces.for_user(db, principal.user.id),
            invitations=workspaces.invitations_for(db, principal.user.id),
            private_record=private_keys.get(db, principal.user.id),
            has_factor=factors.has_factor(db, principal.user.id),
            sso=_sso_proof(request, principal),
        )
    )


@get("/account/second-factor", opt={**PAGE, "enrolment": True}, include_in_schema=False)
@off_loop
def second_factor_page(request: Request[Any, Any, Any]) -> Template | Redirect:
    principal = _principal(request)
    if principal is None:
        return _login(request)
    return _no_store(_page(request, "second_factor.html", principal, factors=factors_api.summary(request, principal)))


@get("/workspaces", opt=PAGE, include_in_schema=False)
@off_loop
def workspaces_page(request: Request[Any, Any, Any]) -> Template | Redirect:
    principal = _principal(request)
    if principal is None:
        return _login(request)
    db = request.app.state.services.databases.get()
    mine = [
        {**w, "allow_public_links": workspaces.allows_public_links(db, w["id"])}
        for w in workspaces.for_user(db, principal.user.id)
    ]
    return _page(
        request, "workspaces.html", principal, workspaces=mine, invitations=workspaces.invitations_for(db, principal.user.id)
    )


@get("/admin/audit", opt=PAGE, include_in_schema=False)
@off_loop
def audit_page(
    request: Request[Any, Any, Any], offset: int = Parameter(default=0, ge=0, le=1_000_000_000)
) -> Template | Redirect:
    principal = _principal(request)
    if principal is None:
        return _login(request)
    if principal.user.role != "admin":
        raise authz.Forbidden("Only administrators read the audit log.")
    db = request.app.state.services.databases.get()
    size = 100
    entries = audit.entries(db, limit=size + 1, offset=offset)
    return _no_store(
        _page(
            request,
            "audit.html",
            principal,
            entries=entries[:size],
            offset=offset,
            size=size,
            more=len(entries) > size,
            retention=request.app.state.services.settings.retention,
        )
    )


@get("/integrations", opt=PAGE, include_in_schema=False)
@off_loop
def integrations_page(request: Request[Any, Any, Any]) -> Template | Redirect:
    principal = _principal(request)
    if principal is None:
        return _login(request)
    db = request.app.state.services.databases.get()
    administered = [w for w in workspaces.for_user(db, principal.user.id) if w["role"] == "admin"]
    return _page(
        request,
        "integrations.html",
        principal,
        workspaces=administered,
        allowed=list(request.app.state.services.settings.security.egress_allow),
        events=list(webhooks.EVENTS),
    )


@get("/voices", opt=PAGE, include_in_schema=False)
@off_loop
def voices_page(
    request: Request[Any, Any, Any], workspace: str | None = Parameter(default=None, max_length=64)
) -> Template | Redirect:
    """A workspace's voice profiles: listed to its members; rename, merge and delete where allowed."""
    principal = _principal(request)
    if principal is None:
        return _login(request)
    db = request.app.state.services.databases.get()
    mine = workspaces.for_user(db, principal.user.id)
    chosen = next((w for w in mine if w["id"] == workspace), None) or next(
        (w for w in mine if w["id"] == principal.user.personal_workspace_id), mine[0] if mine else None
    )
    rows = []
    if chosen is not None:
        for p in voice_profiles.for_workspace(db, chosen["id"]):
            try:
                authz.can_manage_voice(db, principal, {"workspace_id": p.workspace_id, "created_by": p.created_by})
                manage = True
            except (authz.Forbidden, authz.NotVisible):
                manage = False
            rows.append({"profile": p, "manage": manage})
    enabled = request.app.state.services.settings.diarization.voice_profiles
    can_enrol = False
    if chosen is not None and enabled:
        try:
            authz.can_enrol_voice(db, principal, chosen["id"])
            can_enrol = True
        except (authz.Forbidden, authz.NotVisible):
            pass
    return _no_store(
        _page(request, "voices.html", principal, workspaces=mine, chosen=chosen, rows=rows, enabled=enabled, can_enrol=can_enrol)
    )


@get("/admin/users", opt=PAGE, include_in_schema=False)
@off_loop
def users_page(request: Request[Any, Any, Any]) -> Template | Redirect:
    principal = _principal(request)
    if principal is None:
        return _login(request)
    if principal.user.role != "admin":
        raise authz.Forbidden("Only administrators manage users.")
    services = request.app.state.services
    return _page(
        request,
        "users.html",
        principal,
        users=accounts.list_all(services.databases.get()),
        invite_hours=services.settings.security.invite_hours,
        languages=i18n.LANGUAGES,  # the invitee's language: the UI's languages, without the test language
        invite_language=request.app.state.i18n.accept(services.settings.ui.default_language) or "en",
        with_factor=factors.users_with_factor(services.databases.get()),
        required_roles=factors.required_roles(services.databases.get()),
    )


@get("/admin/models", opt=PAGE, include_in_schema=False)
@off_loop
def models_page(request: Request[Any, Any, Any]) -> Template | Redirect:
    principal = _principal(request)
    if principal is None:
        return _login(request)
    services = request.app.state.services
    models, problems = services.registry.scan()
    return _page(
        request,
        "models.html",
        principal,
        models=[m.describe() for m in models.values()],
        problems=problems,
        default_model=services.settings.models.default_model,
        engines=services.engines.status(),
        # Cluster mode: the worker nodes as the server last saw them (a few seconds old); None when off.
        cluster=(services.cluster_status or ClusterStatus()) if services.worker.cluster is not None else None,
    )


ROUTES = [
    second_factor_page,
    library_page,
    new_page,
    job_page,
    transcript_page,
    search_page,
    compare_page,
    account_page,
    workspaces_page,
    audit_page,
    integrations_page,
    users_page,
    models_page,
    voices_page,
]
