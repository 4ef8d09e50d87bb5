"""Importing a recording from an intranet media link: the media is fetched into memory through the
egress connector's media path (appliance/integrations/media_links.py) and then handed to the upload use
case exactly as a browser upload is, so options, admission, limits and the job are the same.

The slot is reserved before the first byte is fetched, as for an upload. The link itself is not kept:
the job is named after the file name in its path, unless the person asked to keep the link as the
recording's source (then the job and its transcripts are named by the link).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from appliance.accounts import authz
from appliance.app.intake import Recording, UploadIntake
from appliance.integrations.media_links import Fetcher, parse_link
from appliance.transcription.jobs import AudioVault


@dataclass
class LinkImport:
    uploads: UploadIntake
    vault: AudioVault
    fetcher: Fetcher

    async def submit(
        self,
        principal: authz.Principal,
        url: str,
        raw_options: Mapping[str, Any],
        workspace_hint: str | None,
        *,
        keep_source: bool = False,
    ) -> dict[str, Any]:
        """Fetch, check and queue; return the job row. Raises media_links.LinkError (and its kinds), the
        upload's domain errors, and jobs.UploadTooLarge / VaultFull while the media streams in."""
        link = parse_link(url)  # a malformed link is refused before a slot is taken
        slot = await self.uploads.reserve(principal, workspace_hint)
        try:
            upload = self.vault.upload()
            try:
                fetched = await asyncio.to_thread(self.fetcher.fetch, link.url, upload)
            except BaseException:
                upload.discard()
                raise
            name = link.url[:255] if keep_source else fetched.link.filename
            recording = Recording(upload, name, fetched.content_type)
            return await self.uploads.submit(slot, principal, recording, raw_options, workspace_hint)
        finally:
            slot.release()
