"""Voice profiles (known speakers): thin handlers over appliance/speakers.

A workspace's profiles are listed to its members; enrolment needs a member with transcribe access and
the feature turned on (diarization.voice_profiles); rename, merge and delete need the workspace's admin
or the member who enrolled the voice, and stay possible with the feature off (so it can be emptied).
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, delete, get, patch, post
from litestar.exceptions import HTTPException, NotFoundException, PermissionDeniedException
from litestar.params import FromPath, JSONBody, Parameter

from appliance.accounts import audit, authz
from appliance.speakers import profiles, suggestions
from appliance.transcription.audio import AudioError, decode
from appliance.transcripts import editing
from appliance.web.auth import principal_of
from appliance.web.deps import services_of, visible_transcript
from appliance.web.i18n import N_, Detail
from appliance.web.offload import off_loop

MAX_ENROL_BYTES = 20 * 1024 * 1024
MAX_ENROL_SECONDS = 120  # a short recording of one person; longer ones are refused, not cut
MIN_ENROL_SECONDS = 3.0


class ProfileOut(msgspec.Struct):
    id: str
    name: str
    consent_note: str
    created_by: str | None
    created_at: str
    updated_at: str
    engines: list[str]
    samples: int
    can_manage: bool


class ProfileList(msgspec.Struct):
    enabled: bool
    can_enrol: bool
    profiles: list[ProfileOut]


class Rename(msgspec.Struct):
    name: str


class MergeInto(msgspec.Struct):
    into: str


class Enrol(msgspec.Struct):
    name: str | None = None
    consent_note: str | None = None
    profile_id: str | None = None  # add this voice to an existing profile instead


class Confirm(msgspec.Struct):
    learn: bool = True  # fold this voice into the profile's running mean


class SpeakerVoiceOut(msgspec.Struct):
    speaker: str
    engine: str
    profile_id: str | None
    profile_name: str | None
    score: float | None
    state: str


class TranscriptVoices(msgspec.Struct):
    enabled: bool
    can_enrol: bool
    speakers: list[SpeakerVoiceOut]


def _enabled(request: Request[Any, Any, Any]) -> bool:
    return bool(services_of(request).settings.diarization.voice_profiles)


def _require_enabled(request: Request[Any, Any, Any]) -> None:
    if not _enabled(request):
        raise HTTPException(
            status_code=409, detail=N_("Voice profiles are turned off on this appliance; an administrator can turn them on.")
        )


def _db(request: Request[Any, Any, Any]) -> Any:
    return services_of(request).databases.get()


def _workspace(request: Request[Any, Any, Any], workspace_id: str) -> str:
    try:
        return authz.can_see_voices(_db(request), principal_of(request), workspace_id)
    except authz.NotVisible:
        raise NotFoundException(detail=N_("No such workspace.")) from None


def _may(check: Any, *args: Any) -> bool:
    try:
        check(*args)
    except (authz.Forbidden, authz.NotVisible):
        return False
    return True


def _profile(request: Request[Any, Any, Any], profile_id: str, *, manage: bool = True) -> profiles.Profile:
    db = _db(request)
    found = profiles.get(db, profile_id)
    try:
        if found is None:
            raise authz.NotVisible()
        if manage:
            authz.can_manage_voice(
                db, principal_of(request), {"workspace_id": found.workspace_id, "created_by": found.created_by}
            )
        else:
            authz.can_see_voices(db, principal_of(request), found.workspace_id)
    except authz.NotVisible:
        raise NotFoundException(detail=Detail(N_("No voice profile with id %(id)s."), id=repr(profile_id))) from None
    except authz.Forbidden as exc:
        raise PermissionDeniedException(detail=str(exc)) from None
    return found


def _out(request: Request[Any, Any, Any], p: profiles.Profile) -> ProfileOut:
    row = {"workspace_id": p.workspace_id, "created_by": p.created_by}
    manage = _may(authz.can_manage_voice, _db(request), principal_of(request), row)
    return ProfileOut(p.id, p.name, p.consent_note, p.created_by, p.created_at, p.updated_at, list(p.engines), p.samples, manage)


@get(
    "/api/v1/workspaces/{workspace_id:str}/voice-profiles",
    tags=["voice profiles"],
    summary="The workspace's voice profiles (names, consent notes, engines; never the embeddings)",
)
@off_loop
def list_profiles(request: Request[Any, Any, Any], workspace_id: FromPath[str]) -> ProfileList:
    _workspace(request, workspace_id)
    can_enrol = _enabled(request) and _may(authz.can_enrol_voice, _db(request), principal_of(request), workspace_id)
    return ProfileList(
        _enabled(request), can_enrol, [_out(request, p) for p in profiles.for_workspace(_db(request), workspace_id)]
    )


def _voice_of_recording(request: Request[Any, Any, Any], body: bytes) -> Any:
    engine = services_of(request).engines.engine("embedded")
    problem = engine.available()
    if problem:
        raise HTTPException(
            status_code=409,
            detail=Detail(N_("Enrolment from a recording needs the embedded engine: %(problem)s"), problem=problem),
        )
    try:
        audio = decode(body, max_seconds=MAX_ENROL_SECONDS)
    except AudioError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None
    if audio.duration < MIN_ENROL_SECONDS:
        raise HTTPException(
            status_code=400,
            detail=Detail(N_("Record at least %(seconds)s seconds of the person speaking."), seconds=f"{MIN_ENROL_SECONDS:.0f}"),
        )
    voice = engine.voice(audio.samples)  # type: ignore[attr-defined]
    if voice is None:
        raise HTTPException(status_code=400, detail=N_("No speech was found in the recording."))
    return voice


@post(
    "/api/v1/workspaces/{workspace_id:str}/voice-profiles",
    opt={"scope": "transcribe"},
    status_code=201,
    tags=["voice profiles"],
    summary="Enrol a speaker from a short recording of them alone (the body: the audio file)",
    description="Query: `name` and `consent_note` (who agreed to be recognised, and when). The recording is "
    f"decoded in memory, embedded by the embedded engine and dropped; at most {MAX_ENROL_SECONDS} s.",
    request_max_body_size=MAX_ENROL_BYTES,
)
@off_loop
def enrol_recording(
    request: Request[Any, Any, Any],
    workspace_id: FromPath[str],
    body: bytes,
    name: str = Parameter(max_length=profiles.MAX_NAME),
    consent_note: str = Parameter(max_length=profiles.MAX_CONSENT),
) -> ProfileOut:
    db = _db(request)
    principal = principal_of(request)
    try:
        authz.can_enrol_voice(db, principal, workspace_id)
    except authz.NotVisible:
        raise NotFoundException(detail=N_("No such workspace.")) from None
    except authz.Forbidden as exc:
        raise PermissionDeniedException(detail=str(exc)) from None
    _require_enabled(request)
    try:  # name and consent first: a refused enrolment costs no decoding
        profiles.check_name(name), profiles.check_consent(consent_note)
    except profiles.ProfileError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None
    if not body:
        raise HTTPException(status_code=400, detail=N_("Send the recording as the request body."))
    voice = _voice_of_recording(request, body)
    profile_id = profiles.create(
        db,
        workspace_id=workspace_id,
        name=name,
        consent_note=consent_note,
        created_by=principal.user.id,
        engine="embedded",
        voice=voice,
    )
    audit.record(db, "voice_profile.enrolled", actor=principal.user.email, target=profile_id, detail={"from": "recording"})
    found = profiles.get(db, profile_id)
    assert found is not None
    return _out(request, found)


@patch(
    "/api/v1/voice-profiles/{profile_id:str}", opt={"scope": "transcribe"}, tags=["voice profiles"], summary="Rename a profile"
)
@off_loop
def rename_profile(request: Request[Any, Any, Any], profile_id: FromPath[str], data: JSONBody[Rename]) -> ProfileOut:
    _profile(request, profile_id)
    try:
        profiles.rename(_db(request), profile_id, data.name)
    except profiles.ProfileError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None
    found = profiles.get(_db(request), profile_id)
    assert found is not None
    return _out(request, found)


@post(
    "/api/v1/voice-profiles/{profile_id:str}/merge",
    opt={"scope": "transcribe"},
    status_code=200,
    tags=["voice profiles"],
    summary="Merge this profile into another of the same workspace (the same person enrolled twice)",
)
@off_loop
def merge_profile(request: Request[Any, Any, Any], profile_id: FromPath[str], data: JSONBody[MergeInto]) -> ProfileOut:
    source = _profile(request, profile_id)
    target = _profile(request, data.into)
    if source.workspace_id != target.workspace_id:
        raise HTTPException(status_code=400, detail=N_("Only profiles of the same workspace can be merged."))
    try:
        profiles.merge(_db(request), source.id, target.id)
    except profiles.ProfileError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None
    audit.record(_db(request), "voice_profile.merged", actor=principal_of(request).user.email, target=target.id)
    found = profiles.get(_db(request), target.id)
    assert found is not None
    return _out(request, found)


@delete(
    "/api/v1/voice-profiles/{profile_id:str}",
    opt={"scope": "transcribe"},
    status_code=200,
    tags=["voice profiles"],
    summary="Delete a profile for good (its embeddings are removed from the database file)",
)
@off_loop
def delete_profile(request: Request[Any, Any, Any], profile_id: FromPath[str]) -> dict[str, str]:
    _profile(request, profile_id)
    profiles.delete(_db(request), profile_id)
    audit.record(_db(request), "voice_profile.deleted", actor=principal_of(request).user.email, target=profile_id)
    return {"deleted": profile_id}


def _voices(request: Request[Any, Any, Any], transcript_id: str, row: dict[str, Any]) -> TranscriptVoices:
    db = _db(request)
    can_enrol = (
        _enabled(request)
        and _may(authz.can_change, db, principal_of(request), row)
        and _may(authz.can_enrol_voice, db, principal_of(request), row["workspace_id"])
    )
    return TranscriptVoices(
        _enabled(request),
        can_enrol,
        [
            SpeakerVoiceOut(v.speaker, v.engine, v.profile_id, v.profile_name, v.score, v.state)
            for v in suggestions.for_transcript(db, transcript_id)
        ],
    )


@get(
    "/api/v1/transcripts/{transcript_id:str}/voices",
    tags=["voice profiles"],
    summary="Which speakers have a kept voice, and the profile each sounds like (score: cosine similarity)",
)
@off_loop
def transcript_voices(request: Request[Any, Any, Any], transcript_id: FromPath[str]) -> TranscriptVoices:
    row = visible_transcript(request, transcript_id)
    if _enabled(request):  # a profile enrolled since the transcript was made is suggested now
        suggestions.suggest(_db(request), transcript_id)
    return _voices(request, transcript_id, row)


def _answer(fn: Any) -> Any:
    try:
        return fn()
    except (suggestions.SuggestionError, profiles.ProfileError, editing.EditError) as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None


@post(
    "/api/v1/transcripts/{transcript_id:str}/speakers/{speaker:str}/enrol",
    opt={"scope": "transcribe"},
    status_code=200,
    tags=["voice profiles"],
    summary="'This is Alice': a new profile from this speaker's voice (name, consent_note), or add it to profile_id",
)
@off_loop
def enrol_speaker(
    request: Request[Any, Any, Any], transcript_id: FromPath[str], speaker: FromPath[str], data: JSONBody[Enrol]
) -> TranscriptVoices:
    row = visible_transcript(request, transcript_id, change=True)
    _require_enabled(request)
    principal = principal_of(request)
    try:
        authz.can_enrol_voice(_db(request), principal, row["workspace_id"])
    except authz.Forbidden as exc:
        raise PermissionDeniedException(detail=str(exc)) from None
    profile_id, _ = _answer(
        lambda: suggestions.enrol(
            _db(request),
            transcript_id,
            speaker,
            workspace_id=row["workspace_id"],
            user_id=principal.user.id,
            name=data.name,
            consent_note=data.consent_note,
            profile_id=data.profile_id,
        )
    )
    audit.record(
        _db(request), "voice_profile.enrolled", actor=principal.user.email, target=profile_id, detail={"from": "transcript"}
    )
    return _voices(request, transcript_id, row)


@post(
    "/api/v1/transcripts/{transcript_id:str}/speakers/{speaker:str}/confirm",
    opt={"scope": "transcribe"},
    status_code=200,
    tags=["voice profiles"],
    summary="Confirm a suggestion: the speaker takes the profile's name (an edit), and the profile learns this voice",
)
@off_loop
def confirm_suggestion(
    request: Request[Any, Any, Any], transcript_id: FromPath[str], speaker: FromPath[str], data: JSONBody[Confirm]
) -> TranscriptVoices:
    row = visible_transcript(request, transcript_id, change=True)
    learn = data.learn and _enabled(request)  # with the feature off, no profile takes in a new voice
    _answer(lambda: suggestions.confirm(_db(request), transcript_id, speaker, user_id=principal_of(request).user.id, learn=learn))
    return _voices(request, transcript_id, row)


@post(
    "/api/v1/transcripts/{transcript_id:str}/speakers/{speaker:str}/dismiss",
    opt={"scope": "transcribe"},
    status_code=200,
    tags=["voice profiles"],
    summary="'Not them': drop the suggestion for this speaker",
)
@off_loop
def dismiss_suggestion(request: Request[Any, Any, Any], transcript_id: FromPath[str], speaker: FromPath[str]) -> TranscriptVoices:
    row = visible_transcript(request, transcript_id, change=True)
    _answer(lambda: suggestions.dismiss(_db(request), transcript_id, speaker))
    return _voices(request, transcript_id, row)


ROUTES = [
    list_profiles,
    enrol_recording,
    rename_profile,
    merge_profile,
    delete_profile,
    transcript_voices,
    enrol_speaker,
    confirm_suggestion,
    dismiss_suggestion,
]
