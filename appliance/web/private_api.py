"""Private transcripts over HTTP: key records (and the move off records wrapped under the sign-in password), transcript envelopes.
Every envelope is checked against the URL and the caller (type, ids, shape) before it is stored; the
server holds no key that opens any of them."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, delete, get, post, put
from litestar.exceptions import (
    HTTPException,
    NotFoundException,
    PermissionDeniedException,
)
from litestar.params import FromPath, JSONBody

from appliance.accounts import audit, authz
from appliance.private import convert as private_convert
from appliance.private import crypto as private_crypto
from appliance.private import grants as private_grants
from appliance.private import keys as private_keys
from appliance.web import factors_api
from appliance.web.auth import principal_of
from appliance.web.deps import visible_transcript
from appliance.web.i18n import N_
from appliance.web.offload import off_loop

NO_STORE = {"Cache-Control": "no-store"}  # key material and ciphertext: never in a browser or proxy cache
MAX_BODY_REQUEST = private_crypto.MAX_DOCUMENT_CT * 4 // 3 + 64 * 1024


class KeyRecord(msgspec.Struct):
    current_password: str  # the sign-in password: a step-up check, and what the passphrase must differ from
    kdf: dict[str, Any]
    wrapped_dk: str
    recovery_dk: str
    public_key: str
    wrapped_private_key: str

    def record(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in private_keys.RECORD_FIELDS}


class PassphraseChange(msgspec.Struct):
    current_password: str  # the sign-in password (the passphrase itself never reaches the server)
    kdf: dict[str, Any]
    wrapped_dk: str


class Rekey(msgspec.Struct):
    """A new passphrase for a key record wrapped the old way: a whole new record, and every transcript
    key the old keys opened re-wrapped under the new ones (transcript id → envelope)."""

    current_password: str
    record: dict[str, Any]
    owned: dict[str, str]
    received: dict[str, str]


class KeyEnvelope(msgspec.Struct):
    key_envelope: str


class BodyEnvelope(msgspec.Struct):
    body: str
    base_revision: int


class Conversion(msgspec.Struct):
    key_envelope: str  # "tk": the new transcript key under the owner's data key
    body: str  # "transcript": the document the browser read, under that key
    base_revision: int


def _dbs(request: Request[Any, Any, Any]) -> Any:
    return request.app.state.services.databases


def _db(request: Request[Any, Any, Any]) -> Any:
    return _dbs(request).get()


def _bad(exc: Exception) -> HTTPException:
    return HTTPException(status_code=400, detail=str(exc))


@get(
    "/api/v1/me/private-keys",
    tags=["private"],
    opt={"credentials": True},
    summary="My wrapped keys (404 until private transcripts are on)",
)
@off_loop
def get_key_record(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    record = private_keys.get(_db(request), principal_of(request).user.id)
    if record is None:
        raise NotFoundException(detail=private_keys.NOT_ENROLLED)
    return Response(record, headers=NO_STORE)


SAME_AS_PASSWORD = (
    "Choose a passphrase that is not your sign-in password: the appliance receives your password at "
    "every sign-in, and it must never see what opens your private transcripts."
)


def _check_secrets(request: Request[Any, Any, Any], password: str, kdf: dict[str, Any], wrapped_dk: str) -> None:
    """The sign-in password is right, and it is not the passphrase that opens `wrapped_dk` (the server
    tries it: one key derivation it can afford, at enrolment and passphrase changes only). A single
    sign-on account has no password here: it proves itself with a fresh sign-in at its provider."""
    principal = principal_of(request)
    uid = principal.user.id
    # Directory accounts: their directory password, checked by the directory; single sign-on accounts: a
    # fresh sign-in at their provider, else a 403 saying so (factors_api.password_ok).
    if not factors_api.password_ok(request, principal, password):
        raise HTTPException(status_code=400, detail=N_("The sign-in password is not right."))
    if factors_api.fresh_sso_sign_in(request, principal) is not None:
        return  # single sign-on: the appliance never sees that password, so the passphrase cannot be one it saw
    try:
        same = private_crypto.opens_data_key(password, kdf, wrapped_dk, uid)
    except (private_crypto.CryptoRefused, KeyError, TypeError) as exc:
        raise _bad(exc) from None
    if same:
        raise HTTPException(status_code=400, detail=SAME_AS_PASSWORD)


@put(
    "/api/v1/me/private-keys",
    status_code=201,
    tags=["private"],
    opt={"credentials": True},
    summary="Turn private transcripts on: store my keys, wrapped in my browser under a passphrase the appliance never sees",
)
@off_loop
def put_key_record(request: Request[Any, Any, Any], data: JSONBody[KeyRecord]) -> dict[str, Any]:
    principal = principal_of(request)
    try:
        private_keys.check_record(data.record(), principal.user.id)
    except private_keys.KeyRecordError as exc:
        raise _bad(exc) from None
    _check_secrets(request, data.current_password, data.kdf, data.wrapped_dk)
    try:
        private_keys.create(_dbs(request).get(), principal.user.id, data.record())
    except private_keys.AlreadyEnrolled as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None
    except private_keys.KeyRecordError as exc:
        raise _bad(exc) from None
    audit.record(_db(request), "private.enabled", actor=principal.user.email)
    return {"enabled": True}


@post(
    "/api/v1/me/private-keys/passphrase",
    status_code=200,
    tags=["private"],
    opt={"credentials": True},
    summary="Change my private passphrase (or set a new one with the recovery key): the data key re-wrapped in my browser",
)
@off_loop
def change_passphrase(request: Request[Any, Any, Any], data: JSONBody[PassphraseChange]) -> dict[str, Any]:
    principal = principal_of(request)
    _check_secrets(request, data.current_password, data.kdf, data.wrapped_dk)
    try:
        private_keys.change_passphrase(_dbs(request).get(), principal.user.id, msgspec.structs.asdict(data))
    except private_keys.NeedsNewPassphrase as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None
    except private_keys.KeyRecordError as exc:
        raise _bad(exc) from None
    audit.record(_db(request), "private.passphrase_changed", actor=principal.user.email)
    return {"changed": True}


@get(
    "/api/v1/me/private-keys/rekey",
    tags=["private"],
    opt={"credentials": True},
    summary="Every transcript key my keys open: what a move to a new key record must re-wrap",
)
@off_loop
def rekey_inventory(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    uid = principal_of(request).user.id
    if not private_keys.enrolled(_db(request), uid):
        raise NotFoundException(detail=private_keys.NOT_ENROLLED)
    return Response(private_keys.inventory(_db(request), uid), headers=NO_STORE)


@post(
    "/api/v1/me/private-keys/rekey",
    status_code=200,
    tags=["private"],
    opt={"credentials": True},
    request_max_body_size=64 * 1024 * 1024,
    summary="Move to a new passphrase, data key and key pair; every transcript key re-wrapped in my browser (all or nothing)",
)
@off_loop
def rekey(request: Request[Any, Any, Any], data: JSONBody[Rekey]) -> dict[str, Any]:
    principal = principal_of(request)
    try:
        private_keys.check_record(data.record, principal.user.id)
    except private_keys.KeyRecordError as exc:
        raise _bad(exc) from None
    _check_secrets(request, data.current_password, data.record["kdf"], data.record["wrapped_dk"])
    try:
        count = private_keys.rekey(_dbs(request).get(), principal.user.id, data.record, data.owned, data.received)
    except private_keys.InventoryChanged as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None
    except private_keys.KeyRecordError as exc:
        raise _bad(exc) from None
    audit.record(_db(request), "private.rekeyed", actor=principal.user.email, detail={"transcript_keys": count})
    return {"rekeyed": count}


def _envelopes_or_404(request: Request[Any, Any, Any], transcript_id: str, *, change: bool) -> dict[str, Any]:
    visible_transcript(request, transcript_id, change=change)
    found = private_keys.envelopes(_db(request), transcript_id)
    if found is None:
        raise NotFoundException(detail=N_("This transcript is not private."))
    if change and found["user_id"] != principal_of(request).user.id:
        # Only the owner's data key can wrap its transcript key or re-encrypt its text.
        raise PermissionDeniedException(detail=N_("Only the owner of a private transcript can change its envelopes."))
    return found


@get(
    "/api/v1/transcripts/{transcript_id:str}/envelope",
    tags=["private"],
    summary="A private transcript's encrypted document, and the key envelope the caller's keys open",
    description="For the owner, the transcript key sealed by the worker (`tk-sealed`) or wrapped under their data key "
    "(`tk`); for a teammate it was shared with, the key sealed to their public key (`key_uid` is theirs); for "
    "other members of the workspace, no key (`kind: none`). The document's ids are always the owner's.",
)
@off_loop
def get_envelope(request: Request[Any, Any, Any], transcript_id: FromPath[str]) -> Response[dict[str, Any]]:
    found = dict(_envelopes_or_404(request, transcript_id, change=False))
    me = principal_of(request).user.id
    if found["user_id"] != me:
        grant = private_grants.key_for(_db(request), transcript_id, me)
        found.update(kind="tk-sealed" if grant else "none", key_envelope=grant)
    return Response({**found, "key_uid": me}, headers=NO_STORE)


@put(
    "/api/v1/transcripts/{transcript_id:str}/envelope/key",
    opt={"scope": "transcribe"},
    tags=["private"],
    summary="Store the transcript key re-wrapped under my data key (replaces the sealed one)",
)
@off_loop
def put_key_envelope(
    request: Request[Any, Any, Any], transcript_id: FromPath[str], data: JSONBody[KeyEnvelope]
) -> dict[str, Any]:
    found = _envelopes_or_404(request, transcript_id, change=True)
    try:
        private_keys.replace_key_envelope(_dbs(request).get(), transcript_id, found["user_id"], data.key_envelope)
    except private_keys.KeyRecordError as exc:
        raise _bad(exc) from None
    return {"kind": "tk"}


@put(
    "/api/v1/transcripts/{transcript_id:str}/envelope/body",
    opt={"scope": "transcribe"},
    tags=["private"],
    request_max_body_size=MAX_BODY_REQUEST,
    summary="Save an edit: the document re-encrypted in the browser, based on a revision (409 if stale)",
)
@off_loop
def put_body_envelope(
    request: Request[Any, Any, Any], transcript_id: FromPath[str], data: JSONBody[BodyEnvelope]
) -> dict[str, Any]:
    found = _envelopes_or_404(request, transcript_id, change=True)
    try:
        revision = private_keys.replace_body(_dbs(request).get(), transcript_id, found["user_id"], data.body, data.base_revision)
    except private_keys.KeyRecordError as exc:
        raise _bad(exc) from None
    except private_keys.StaleRevision:
        raise HTTPException(
            status_code=409, detail=N_("This transcript changed since you opened it. Reload to see the new version.")
        ) from None
    return {"revision": revision}


@post(
    "/api/v1/transcripts/{transcript_id:str}/convert-to-private",
    opt={"scope": "transcribe"},
    status_code=200,
    tags=["private"],
    request_max_body_size=MAX_BODY_REQUEST,
    summary="Make a standard transcript private: store the envelopes sealed in my browser and delete the plaintext for good",
)
@off_loop
def convert_to_private(
    request: Request[Any, Any, Any], transcript_id: FromPath[str], data: JSONBody[Conversion]
) -> dict[str, Any]:
    visible_transcript(request, transcript_id, change=True)
    principal = principal_of(request)
    try:
        revision = private_convert.convert(
            _dbs(request).get(),
            transcript_id,
            principal.user.id,
            key_envelope=data.key_envelope,
            body=data.body,
            base_revision=data.base_revision,
        )
    except private_keys.StaleRevision:
        raise HTTPException(
            status_code=409, detail=N_("This transcript changed since your browser read it. Try again.")
        ) from None
    except private_keys.KeyRecordError as exc:
        raise _bad(exc) from None
    audit.record(_db(request), "transcript.made_private", actor=principal.user.email, target=transcript_id)
    return {"private": True, "revision": revision}


@get(
    "/api/v1/private/transcripts",
    tags=["private"],
    summary="The private transcripts my keys open (mine, and those shared with me): for searching in the browser",
)
@off_loop
def openable_transcripts(request: Request[Any, Any, Any]) -> Response[list[dict[str, Any]]]:
    db = _db(request)
    principal = principal_of(request)
    rows = private_keys.openable(db, principal.user.id, authz.visible_workspace_ids(db, principal))
    return Response(rows, headers=NO_STORE)


def _owned_private(request: Request[Any, Any, Any], transcript_id: str) -> str:
    found = _envelopes_or_404(request, transcript_id, change=True)
    return str(found["user_id"])


@get(
    "/api/v1/transcripts/{transcript_id:str}/recipients",
    tags=["private"],
    summary="Teammates a private transcript can be shared with: members of its workspace with private transcripts on, "
    "and their public keys",
)
@off_loop
def list_recipients(request: Request[Any, Any, Any], transcript_id: FromPath[str]) -> Response[list[dict[str, Any]]]:
    owner = _owned_private(request, transcript_id)
    return Response(private_grants.recipients(_db(request), transcript_id, owner), headers=NO_STORE)


@put(
    "/api/v1/transcripts/{transcript_id:str}/grants/{user_id:str}",
    opt={"scope": "transcribe"},
    tags=["private"],
    summary="Share a private transcript with a teammate: its key, sealed in my browser to their public key",
)
@off_loop
def put_grant(
    request: Request[Any, Any, Any], transcript_id: FromPath[str], user_id: FromPath[str], data: JSONBody[KeyEnvelope]
) -> dict[str, Any]:
    owner = _owned_private(request, transcript_id)
    try:
        private_grants.grant(_dbs(request).get(), transcript_id, owner, user_id, data.key_envelope)
    except private_keys.KeyRecordError as exc:
        raise _bad(exc) from None
    audit.record(
        _db(request), "private.shared", actor=principal_of(request).user.email, target=transcript_id, detail={"with": user_id}
    )
    return {"shared": True}


@delete(
    "/api/v1/transcripts/{transcript_id:str}/grants/{user_id:str}",
    opt={"scope": "transcribe"},
    status_code=204,
    tags=["private"],
    summary="Stop sharing a private transcript with a teammate (their copy of its key is deleted)",
)
@off_loop
def delete_grant(request: Request[Any, Any, Any], transcript_id: FromPath[str], user_id: FromPath[str]) -> None:
    _owned_private(request, transcript_id)
    if not private_grants.revoke(_db(request), transcript_id, user_id):
        raise NotFoundException(detail=N_("This transcript is not shared with that person."))
    audit.record(
        _db(request), "private.unshared", actor=principal_of(request).user.email, target=transcript_id, detail={"with": user_id}
    )


ROUTES = [
    get_key_record,
    put_key_record,
    change_passphrase,
    rekey_inventory,
    rekey,
    get_envelope,
    put_key_envelope,
    put_body_envelope,
    convert_to_private,
    openable_transcripts,
    list_recipients,
    put_grant,
    delete_grant,
]
