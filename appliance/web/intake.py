"""Upload intake: stream the request body into RAM under the caps. Never a temp file, never a spool.

Litestar's own form parsing would put file parts in a SpooledTemporaryFile that rolls over to disk
above 1 MiB, so multipart bodies are parsed here with a push parser, chunk by chunk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote

from litestar import Request
from litestar.exceptions import HTTPException
from multipart import MultipartError, MultipartSegment, PushMultipartParser, parse_options_header

from appliance.transcription.jobs import AudioVault, Upload, UploadTooLarge, VaultFull
from appliance.web.i18n import N_, Detail

MAX_FIELD_BYTES = 64 * 1024  # a form field (options JSON, prompt) larger than this is not an option
MAX_FIELDS = 32
FILE_FIELDS = {"file", "audio"}


@dataclass
class Intake:
    upload: Upload
    filename: str
    content_type: str | None
    fields: dict[str, str] = field(default_factory=dict)


def _too_large(vault: AudioVault) -> HTTPException:
    gib = vault.max_upload / 1024**3
    size = f"{gib:.1f} GiB" if gib >= 1 else f"{vault.max_upload / 1024**2:.0f} MiB"
    return HTTPException(
        status_code=413, detail=Detail(N_("The file is larger than this appliance accepts (%(size)s per file)."), size=size)
    )


def _busy(retry_after: int) -> HTTPException:
    return HTTPException(
        status_code=503,
        detail=N_("The appliance is holding as much audio in memory as it is allowed to. Please retry shortly."),
        headers={"Retry-After": str(retry_after)},
    )


async def read(request: Request, vault: AudioVault, retry_after: int) -> Intake:
    """Read a multipart (`file` field) or raw-body upload into memory."""
    length = request.headers.get("content-length")
    if length and length.isdigit():
        if int(length) > vault.max_upload + MAX_FIELDS * MAX_FIELD_BYTES:
            raise _too_large(vault)
        if not vault.has_room(min(int(length), vault.max_upload)):
            raise _busy(retry_after)
    media_type, params = parse_options_header(request.headers.get("content-type", ""))
    upload = vault.upload()
    try:
        if media_type == "multipart/form-data":
            intake = await _read_multipart(request, upload, params.get("boundary", ""))
        elif media_type in {"application/x-www-form-urlencoded", "application/json"}:
            raise HTTPException(
                status_code=415,
                detail=N_("Send the recording as a multipart form with a 'file' field, or as the raw request body."),
            )
        else:
            async for chunk in request.stream():
                upload.append(chunk)
            name = request.query_params.get("filename") or unquote(request.headers.get("x-filename", "")) or "upload"
            intake = Intake(upload, name, media_type or None)
    except UploadTooLarge:
        raise _too_large(vault) from None
    except VaultFull:
        raise _busy(retry_after) from None
    except BaseException:
        upload.discard()
        raise
    if intake.upload.size == 0:
        upload.discard()
        raise HTTPException(status_code=400, detail=N_("The file is empty."))
    return intake


async def _read_multipart(request: Request, upload: Upload, boundary: str) -> Intake:
    if not boundary:
        raise HTTPException(status_code=400, detail=N_("The multipart request has no boundary in its Content-Type."))
    fields: dict[str, str] = {}
    filename: str | None = None
    content_type: str | None = None
    current: MultipartSegment | None = None
    buffer = bytearray()
    seen_file = False
    try:
        with PushMultipartParser(boundary, max_segment_count=MAX_FIELDS + 1) as parser:
            async for chunk in request.stream():
                for event in parser.parse(chunk):
                    if isinstance(event, MultipartSegment):
                        current, buffer = event, bytearray()
                        if current.name in FILE_FIELDS and seen_file:
                            raise HTTPException(status_code=400, detail=N_("Send one file per request."))
                        if current.name in FILE_FIELDS:
                            seen_file = True
                            filename = current.filename or "upload"
                            content_type = current.content_type
                    elif event:
                        if current is not None and current.name in FILE_FIELDS:
                            upload.append(event)
                        else:
                            buffer += event
                            if len(buffer) > MAX_FIELD_BYTES:
                                name = current.name if current else "?"
                                raise HTTPException(
                                    status_code=400, detail=Detail(N_("The form field %(name)s is too large."), name=repr(name))
                                )
                    elif current is not None:
                        if current.name not in FILE_FIELDS and current.name:
                            value = buffer.decode("utf-8", "replace")
                            # A repeated field (timestamp_granularities[]) keeps every value, comma-joined.
                            fields[current.name] = f"{fields[current.name]},{value}" if current.name in fields else value
                        current = None
    except MultipartError as exc:
        # Includes a body cut off mid-part: closing the parser on the final empty chunk raises.
        raise HTTPException(
            status_code=400, detail=Detail(N_("The multipart form could not be read: %(reason)s"), reason=str(exc))
        ) from None
    if not seen_file:
        raise HTTPException(
            status_code=400,
            detail=N_("No file was sent: use a multipart form with a 'file' field, or send the audio as the request body."),
        )
    return Intake(upload, filename or "upload", content_type, fields)
