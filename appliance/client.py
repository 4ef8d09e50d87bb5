"""A small Python client for the appliance's API: upload (or import a link), wait with progress, fetch, export,
subtitle a video, delete, summarise, ask.

from appliance.client import SottoClient
with SottoClient("https://sotto.example:8443", api_key) as sotto:
    doc = sotto.transcribe("meeting.m4a", language="en", diarize=True, progress=print)
    pdf = sotto.export(doc["id"], "pdf")
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from appliance.transcription.upload_options import UploadOptions
from appliance.transcripts.document import Transcript, from_builtins

Progress = Callable[[dict[str, Any]], None]
VIDEO_POLL_SECONDS = 0.5  # a render's progress is asked for this often


def _form_fields(options: UploadOptions | None, given: dict[str, Any]) -> dict[str, str]:
    chosen = UploadOptions.of({**(options.fields() if options else {}), **{k: v for k, v in given.items() if v is not None}})
    return {k: (json.dumps(v) if isinstance(v, bool) else str(v)) for k, v in chosen.fields().items()}


class SottoError(Exception):
    """The appliance refused or failed a request; `status` and the appliance's own message."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail


class SottoClient:
    def __init__(self, base_url: str, api_key: str, *, timeout: float = 600.0, verify: bool | str = True) -> None:
        self.http = httpx.Client(
            base_url=base_url.rstrip("/"), headers={"Authorization": f"Bearer {api_key}"}, timeout=timeout, verify=verify
        )

    def __enter__(self) -> SottoClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def _check(self, response: httpx.Response) -> httpx.Response:
        if response.is_error:
            try:
                detail = response.json().get("detail") or response.text
            except ValueError:
                detail = response.text
            raise SottoError(response.status_code, str(detail))
        return response

    def upload(self, path: str | Path, options: UploadOptions | None = None, **given: Any) -> dict[str, Any]:
        """Queue a recording. Options are UploadOptions (the same names as every other door: model,
        language, diarize, hotwords, …), as an object or as keyword arguments; an unknown name or a wrong
        type raises OptionsError before anything is sent."""
        path = Path(path)
        fields = _form_fields(options, given)
        with path.open("rb") as fh:
            return self._check(self.http.post("/api/v1/transcriptions", files={"file": (path.name, fh)}, data=fields)).json()

    def upload_bytes(self, filename: str, data: bytes, options: UploadOptions | None = None, **given: Any) -> dict[str, Any]:
        """Queue a recording held in memory, under `filename` (its extension helps the decoder)."""
        fields = _form_fields(options, given)
        return self._check(self.http.post("/api/v1/transcriptions", files={"file": (filename, data)}, data=fields)).json()

    def import_link(
        self,
        link: str,
        options: UploadOptions | None = None,
        *,
        keep_source: bool = False,
        workspace_id: str | None = None,
        **given: Any,
    ) -> dict[str, Any]:
        """Queue a recording from an intranet media link (a file, or a page with a <video>/<audio> in it)
        on a host the appliance's administrator listed; the appliance fetches it. The link is not kept
        unless `keep_source` (then it names the job and its transcripts). Returns the job, as upload()."""
        chosen = UploadOptions.of({**(options.fields() if options else {}), **{k: v for k, v in given.items() if v is not None}})
        body = {"url": link, "options": chosen.fields(), "keep_source": keep_source, "workspace_id": workspace_id}
        return self._check(self.http.post("/api/v1/transcriptions/from-link", json=body)).json()

    def wait(self, job_id: str, progress: Progress | None = None) -> dict[str, Any]:
        """Follow the job's server-sent events until it ends; raise SottoError if it did not succeed."""
        job: dict[str, Any] = {}
        with self.http.stream("GET", f"/api/v1/jobs/{job_id}/events") as events:
            self._check(events) if events.is_error else None
            for line in events.iter_lines():
                if line.startswith("data:"):
                    job = json.loads(line[5:])
                    if progress:
                        progress(job)
        if job.get("state") != "done":
            raise SottoError(422, job.get("error") or f"the job ended {job.get('state', 'unexpectedly')}")
        return job

    def transcribe(
        self, path: str | Path, progress: Progress | None = None, options: UploadOptions | None = None, **given: Any
    ) -> Transcript:
        job = self.upload(path, options, **given)
        done = self.wait(job["job_id"], progress)
        return self.transcript(done["transcript_id"])

    def transcript(self, transcript_id: str) -> Transcript:
        """The typed transcript document (appliance.transcripts.document), checked field by field."""
        return from_builtins(self._check(self.http.get(f"/api/v1/transcripts/{transcript_id}")).json())

    def transcripts(self, limit: int = 50, offset: int = 0) -> dict[str, Any]:
        return self._check(self.http.get("/api/v1/transcripts", params={"limit": limit, "offset": offset})).json()

    def search(self, query: str, limit: int = 50, offset: int = 0, **filters: str | None) -> dict[str, Any]:
        """Full-text search (GET /api/v1/search): filters language, speaker, date_from, date_to (YYYY-MM-DD)."""
        names = {"date_from": "from", "date_to": "to"}
        params: dict[str, Any] = {"q": query, "limit": limit, "offset": offset}
        params.update({names.get(k, k): v for k, v in filters.items() if v is not None})
        return self._check(self.http.get("/api/v1/search", params=params)).json()

    def export(self, transcript_id: str, fmt: str = "txt", **options: Any) -> bytes:
        params = {"format": fmt, **{k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in options.items()}}
        return self._check(self.http.get(f"/api/v1/transcripts/{transcript_id}/export", params=params)).content

    def video(
        self,
        transcript_id: str,
        video: str | Path,
        output: str | Path,
        *,
        progress: Progress | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """Put a transcript's subtitles on a video (sent again: the appliance keeps no media) and save the
        result to `output`. Options: kind (burn, mp4, mkv-srt, mkv-ass), size (small, medium, large),
        position (bottom, top), speakers (bool), max_chars_per_line. Returns the finished render's record."""
        import time

        video = Path(video)
        fields = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in options.items() if v is not None}
        with video.open("rb") as fh:
            render = self._check(
                self.http.post(f"/api/v1/transcripts/{transcript_id}/video", files={"file": (video.name, fh)}, data=fields)
            ).json()
        try:
            while render["state"] == "running":
                if progress:
                    progress(render)
                time.sleep(VIDEO_POLL_SECONDS)
                render = self._check(self.http.get(f"/api/v1/video-renders/{render['id']}")).json()
            if progress:
                progress(render)
            if render["state"] != "done":
                raise SottoError(422, render.get("error") or f"the render ended {render['state']}")
            with self.http.stream("GET", f"/api/v1/video-renders/{render['id']}/file") as response:
                if response.is_error:
                    response.read()
                    self._check(response)
                with Path(output).open("wb") as out:
                    for chunk in response.iter_bytes():
                        out.write(chunk)
        except BaseException:
            # Interrupted or failed: do not leave the render holding the appliance's memory.
            self.http.delete(f"/api/v1/video-renders/{render['id']}")
            raise
        return dict(render)

    def delete(self, transcript_id: str) -> None:
        self._check(self.http.delete(f"/api/v1/transcripts/{transcript_id}"))

    # Local AI (summaries and questions with cited moments) ------------------------------------------

    def summarize(
        self, transcript_id: str, *, language: str | None = None, on_text: Callable[[str], None] | None = None
    ) -> dict[str, Any]:
        """Start a summary, follow its text as it is written (`on_text` gets each piece), and return the
        stored version (the summaries document's `latest`); raise SottoError if it failed or was cancelled."""
        body = {"language": language} if language else {}
        run = self._check(self.http.post(f"/api/v1/transcripts/{transcript_id}/summaries", json=body)).json()
        state: dict[str, Any] = run
        event = ""
        with self.http.stream("GET", f"/api/v1/summary-runs/{run['id']}/events") as events:
            self._check(events) if events.is_error else None
            for line in events.iter_lines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data = json.loads(line[5:])
                    if event == "text":
                        if on_text:
                            on_text(data["text"])
                    else:
                        state = data
        if state.get("state") != "done":
            raise SottoError(422, state.get("error") or f"the summary ended {state.get('state', 'unexpectedly')}")
        latest: dict[str, Any] = self.summaries(transcript_id, version=state["version"])["latest"]
        return latest

    def summaries(self, transcript_id: str, version: int | None = None) -> dict[str, Any]:
        """The latest summary (or `version`), the list of versions, a run in progress, and whether AI is available."""
        params = {"version": version} if version else {}
        return self._check(self.http.get(f"/api/v1/transcripts/{transcript_id}/summaries", params=params)).json()

    def ask_library(self, question: str, *, language: str | None = None) -> dict[str, Any]:
        """A question across every transcript this key's user may see: the answer, its cited moments (each
        with its transcript and link), and `found` false when none of them is about it."""
        body: dict[str, Any] = {"question": question, **({"language": language} if language else {})}
        return self._check(self.http.post("/api/v1/ask", json=body)).json()

    def ask(self, transcript_id: str, question: str, *, language: str | None = None) -> dict[str, Any]:
        """An answer from the transcript's own words with cited moments; `found` is false when it is not in it."""
        body: dict[str, Any] = {"question": question, **({"language": language} if language else {})}
        return self._check(self.http.post(f"/api/v1/transcripts/{transcript_id}/ask", json=body)).json()
