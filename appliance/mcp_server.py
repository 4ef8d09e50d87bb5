"""A Model Context Protocol server: local AI assistants transcribe, list, search, read and export
transcripts through an appliance's REST API (appliance.client), so every tool call carries an API key and
the appliance applies that key's scope and its user's workspace rights exactly as it does for the API.

Two doors, both built on the official MCP SDK (the `mcp` package, 1.x):
- stdio (`appliance mcp --url URL --api-key KEY`): one assistant, one key; `transcribe` reads a path on
  this machine (or base64 content).
- HTTP (`appliance mcp --http --url URL`): a separate listener (streamable HTTP at /mcp). Every request
  must carry `Authorization: Bearer <API key>`, which is checked against the appliance before the MCP
  layer sees the request and is then the key of every call that request makes. Over HTTP `transcribe`
  takes base64 content only: a path would let a remote caller read this machine's files.

Nothing here opens a connection except to the configured appliance URL.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import anyio.to_thread
import httpx
from mcp.server.fastmcp import Context, FastMCP
from mcp.server.fastmcp.exceptions import ToolError

from appliance.client import SottoClient, SottoError
from appliance.transcription.upload_options import OptionsError

# The formats a tool can return as text (DOCX and PDF are files: use the API or the CLI for those).
TEXT_EXPORTS = ("txt", "srt", "vtt", "md", "json", "csv")
MAX_UPLOAD_BYTES = 200 * 1024 * 1024  # base64 content decoded; the HTTP door's body limit follows from it

INSTRUCTIONS = (
    "Sotto is a self-hosted transcription appliance. Use `transcribe` to turn a recording into text, "
    "`search_transcripts` to find words in earlier transcripts, `get_transcript` for the text with speakers "
    "and times, `list_transcripts` for the newest ones, and `export_transcript` for subtitles (srt, vtt) "
    "or other text formats."
)

KeyOf = Callable[[Context[Any, Any, Any]], str]


def _clock(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}.{int((seconds - whole) * 10)}"


def transcript_text(doc: Any) -> str:
    """A transcript as lines an assistant reads well: a header, then `[start - end] Speaker: text`."""
    names = {s.id: s.display_name or s.label for s in doc.speakers}
    head = [
        f"Transcript {doc.id}" + (f": {doc.title}" if doc.title else ""),
        f"file: {doc.filename or '-'} · language: {doc.language or '-'} · duration: {doc.duration:.1f} s · "
        f"created: {doc.created_at or '-'}",
    ]
    if names:
        head.append("speakers: " + ", ".join(f"{k} = {v}" for k, v in names.items()))
    lines = []
    for seg in doc.segments:
        who = f" {names.get(seg.speaker, seg.speaker)}:" if seg.speaker else ""
        lines.append(f"[{_clock(seg.start)} - {_clock(seg.end)}]{who} {seg.text.strip()}")
    return "\n".join([*head, "", *lines])


def _summary(item: dict[str, Any]) -> dict[str, Any]:
    keep = ("id", "title", "filename", "language", "duration", "model", "created_at", "private", "workspace_id")
    return {k: item.get(k) for k in keep if k in item}


def build_server(
    url: str,
    key_of: KeyOf,
    *,
    allow_paths: bool,
    verify: bool | str = True,
    host: str = "127.0.0.1",
    port: int = 8765,
) -> FastMCP[Any]:
    """The MCP server's tools; `key_of` gives the API key of the call (fixed for stdio, the caller's for HTTP)."""
    server: FastMCP[Any] = FastMCP(
        "sotto",
        instructions=INSTRUCTIONS,
        host=host,
        port=port,
        log_level="WARNING",
        stateless_http=True,
        json_response=True,
        max_request_body_size=MAX_UPLOAD_BYTES * 4 // 3 + 64 * 1024,
    )

    async def call(ctx: Context[Any, Any, Any], work: Callable[[SottoClient], Any]) -> Any:
        """Run `work` with a client holding the call's key, in a worker thread (a transcription takes
        minutes; the event loop keeps serving other calls meanwhile)."""
        key = key_of(ctx)

        def run() -> Any:
            with SottoClient(url, key, verify=verify) as sotto:
                return work(sotto)

        try:
            return await anyio.to_thread.run_sync(run)
        except SottoError as exc:
            raise ToolError(f"the appliance refused: {exc.status} {exc.detail}") from None
        except OptionsError as exc:
            raise ToolError(str(exc)) from None
        except httpx.TransportError as exc:
            raise ToolError(f"cannot reach the appliance at {url}: {exc}") from None

    path_help = "a path on the machine running this MCP server, or " if allow_paths else ""

    @server.tool(
        description=f"Transcribe a recording (audio or video) and return its transcript with speakers and times. "
        f"Give {path_help}the file's bytes as base64 in `content_base64` with its `filename`. Waits until the job ends."
    )
    async def transcribe(
        ctx: Context[Any, Any, Any],
        path: str | None = None,
        content_base64: str | None = None,
        filename: str | None = None,
        language: str | None = None,
        diarize: bool = False,
        model: str | None = None,
        hotwords: str | None = None,
    ) -> str:
        options: dict[str, Any] = {"language": language, "diarize": diarize or None, "model": model, "hotwords": hotwords}
        if (path is None) == (content_base64 is None):
            raise ToolError("give exactly one of `path` or `content_base64`" if allow_paths else "give `content_base64`")
        if path is not None:
            if not allow_paths:
                raise ToolError("this MCP server takes no paths (it is reached over HTTP): send `content_base64`")
            file = Path(path).expanduser()
            if not file.is_file():
                raise ToolError(f"no file at {path}")

            def upload(sotto: SottoClient) -> dict[str, Any]:
                return sotto.upload(file, **options)

        else:
            try:
                data = base64.b64decode(content_base64 or "", validate=True)
            except (binascii.Error, ValueError):
                raise ToolError("`content_base64` is not base64") from None
            if len(data) > MAX_UPLOAD_BYTES:
                raise ToolError(f"the content is over {MAX_UPLOAD_BYTES // 2**20} MiB: use the API or the CLI")
            name = Path(filename or "recording").name

            def upload(sotto: SottoClient) -> dict[str, Any]:
                return sotto.upload_bytes(name, data, **options)

        def work(sotto: SottoClient) -> str:
            job = upload(sotto)
            done = sotto.wait(job["job_id"])
            return transcript_text(sotto.transcript(done["transcript_id"]))

        return str(await call(ctx, work))

    @server.tool(description="The newest transcripts you may see (id, title, file name, language, duration, date).")
    async def list_transcripts(ctx: Context[Any, Any, Any], limit: int = 20, offset: int = 0) -> str:
        page = await call(ctx, lambda sotto: sotto.transcripts(limit=max(1, min(limit, 500)), offset=max(0, offset)))
        page["items"] = [_summary(item) for item in page.get("items", [])]
        return json.dumps(page, ensure_ascii=False)

    @server.tool(
        description="Full-text search across the transcripts you may see: each hit is a segment with its "
        "transcript id, time and speaker. Optional filters: language, speaker, date_from/date_to (YYYY-MM-DD)."
    )
    async def search_transcripts(
        ctx: Context[Any, Any, Any],
        query: str,
        language: str | None = None,
        speaker: str | None = None,
        date_from: str | None = None,
        date_to: str | None = None,
        limit: int = 20,
    ) -> str:
        found = await call(
            ctx,
            lambda sotto: sotto.search(
                query, language=language, speaker=speaker, date_from=date_from, date_to=date_to, limit=max(1, min(limit, 200))
            ),
        )
        return json.dumps(found, ensure_ascii=False)

    @server.tool(description="One transcript's text, segment by segment, with speakers and start and end times.")
    async def get_transcript(ctx: Context[Any, Any, Any], transcript_id: str) -> str:
        return str(await call(ctx, lambda sotto: transcript_text(sotto.transcript(transcript_id))))

    @server.tool(
        description="A transcript exported as txt, srt, vtt, md, json or csv (the text of the file). "
        "`timestamps` and `speakers` choose what the text formats include."
    )
    async def export_transcript(
        ctx: Context[Any, Any, Any],
        transcript_id: str,
        format: str = "txt",
        timestamps: bool | None = None,
        speakers: bool | None = None,
    ) -> str:
        if format not in TEXT_EXPORTS:
            raise ToolError(f"unknown format {format!r}; choose one of {', '.join(TEXT_EXPORTS)}")
        given = {k: v for k, v in {"timestamps": timestamps, "speakers": speakers}.items() if v is not None}
        content = await call(ctx, lambda sotto: sotto.export(transcript_id, format, **given))
        return bytes(content).decode("utf-8")

    return server


def serve_stdio(url: str, api_key: str, *, verify: bool | str = True) -> None:
    build_server(url, lambda _ctx: api_key, allow_paths=True, verify=verify).run("stdio")


def _bearer(headers: Any) -> str | None:
    value = headers.get("authorization") or ""
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class RequireApiKey:
    """ASGI wrapper of the MCP HTTP app: a request without an API key the appliance accepts gets a 401
    (or the appliance's own refusal) before the MCP layer reads it."""

    def __init__(self, app: Any, url: str, verify: bool | str = True) -> None:
        self.app, self.url, self.verify = app, url.rstrip("/"), verify

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        key = _bearer(headers)
        status, detail = 401, "an API key is required: Authorization: Bearer <key>"
        if key:
            try:
                async with httpx.AsyncClient(verify=self.verify, timeout=30) as http:
                    answer = await http.get(f"{self.url}/api/v1/me", headers={"Authorization": f"Bearer {key}"})
                status = 200 if answer.status_code == 200 else answer.status_code
                detail = "" if status == 200 else "the appliance did not accept this API key"
            except httpx.TransportError:
                status, detail = 502, f"cannot reach the appliance at {self.url}"
        if status == 200:
            await self.app(scope, receive, send)
            return
        body = json.dumps({"detail": detail}).encode()
        extra = [(b"www-authenticate", b"Bearer")] if status == 401 else []
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _caller_key(ctx: Context[Any, Any, Any]) -> str:
    request = ctx.request_context.request
    key = _bearer(request.headers) if request is not None else None
    if not key:  # RequireApiKey let no such request through
        raise ToolError("an API key is required")
    return key


def http_app(url: str, *, verify: bool | str = True, host: str = "127.0.0.1", port: int = 8765) -> tuple[Any, FastMCP[Any]]:
    """The HTTP door as an ASGI app (streamable HTTP at /mcp), each call made with its caller's key."""
    server = build_server(url, _caller_key, allow_paths=False, verify=verify, host=host, port=port)
    return RequireApiKey(server.streamable_http_app(), url, verify), server


def serve_http(url: str, *, host: str, port: int, verify: bool | str = True) -> None:
    import uvicorn

    app, _ = http_app(url, verify=verify, host=host, port=port)
    uvicorn.run(app, host=host, port=port, log_level="warning")
