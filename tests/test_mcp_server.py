"""`appliance mcp`: the MCP server over stdio and over HTTP, driven by the official MCP SDK's own client
against a live appliance; every tool works with, and only with, its API key's rights."""

from __future__ import annotations

import base64
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

from appliance.core.config import Settings
from appliance.mcp_server import http_app
from tests.support import LiveServer, bootstrap

TOOLS = {"transcribe", "list_transcripts", "search_transcripts", "get_transcript", "export_transcript"}


@pytest.fixture
def live(settings: Settings) -> Iterator[tuple[str, str, str]]:
    """The appliance served, a transcribe-scoped key and a read-scoped key of another user."""
    from appliance.web.app import create_app

    key = bootstrap(settings)
    reader = bootstrap(settings, "reader@example.org", role="viewer", scope="read")
    with LiveServer(create_app(settings)) as server:
        yield server.url, key, reader


def _text(result: Any) -> str:
    return "".join(block.text for block in result.content if getattr(block, "type", "") == "text")


def _stdio(url: str, key: str) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable, args=["-m", "appliance.cli", "mcp", "--url", url, "--api-key", key], env=dict(os.environ)
    )


async def _stdio_round_trip(url: str, key: str, reader: str, speech_wav: Path) -> None:
    async with stdio_client(_stdio(url, key)) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        tools = {tool.name: tool for tool in (await session.list_tools()).tools}
        assert set(tools) == TOOLS
        assert "path" in tools["transcribe"].inputSchema["properties"]

        done = await session.call_tool("transcribe", {"path": str(speech_wav), "language": "en"})
        assert not done.isError, _text(done)
        text = _text(done)
        assert "quick brown fox" in text.lower() and "[00:00:00.0 - " in text
        transcript_id = text.split()[1].rstrip(":")

        found = await session.call_tool("search_transcripts", {"query": "fox"})
        assert not found.isError, _text(found)
        hits = json.loads(_text(found))
        assert hits["total"] >= 1 and hits["items"][0]["transcript_id"] == transcript_id

        listed = json.loads(_text(await session.call_tool("list_transcripts", {})))
        assert [item["id"] for item in listed["items"]] == [transcript_id]

        fetched = await session.call_tool("get_transcript", {"transcript_id": transcript_id})
        assert "lazy dog" in _text(fetched).lower()

        srt = _text(await session.call_tool("export_transcript", {"transcript_id": transcript_id, "format": "srt"}))
        assert srt.startswith("1\n00:00:") and "-->" in srt
        refused = await session.call_tool("export_transcript", {"transcript_id": transcript_id, "format": "pdf"})
        assert refused.isError and "unknown format" in _text(refused)
        missing = await session.call_tool("get_transcript", {"transcript_id": "nope"})
        assert missing.isError and "404" in _text(missing)

    # A read-scoped key: reading is allowed (nothing of its own to see), transcribing is refused by the appliance.
    async with stdio_client(_stdio(url, reader)) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        denied = await session.call_tool("transcribe", {"path": str(speech_wav)})
        assert denied.isError and "403" in _text(denied), _text(denied)
        assert json.loads(_text(await session.call_tool("list_transcripts", {})))["total"] == 0
        hidden = await session.call_tool("get_transcript", {"transcript_id": transcript_id})
        assert hidden.isError


def test_stdio_tools_with_the_keys_rights(live: tuple[str, str, str], speech_wav: Path) -> None:
    url, key, reader = live
    anyio.run(_stdio_round_trip, url, key, reader, speech_wav)


async def _http_round_trip(mcp_url: str, key: str, reader: str, speech_wav: Path) -> None:
    content = base64.b64encode(speech_wav.read_bytes()).decode()
    async with (
        httpx.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=300) as http,
        streamable_http_client(mcp_url, http_client=http) as (read, write, _),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        tools = {tool.name: tool for tool in (await session.list_tools()).tools}
        assert set(tools) == TOOLS
        no_path = await session.call_tool("transcribe", {"path": str(speech_wav)})
        assert no_path.isError and "no paths" in _text(no_path)
        done = await session.call_tool("transcribe", {"content_base64": content, "filename": "speech.wav", "language": "en"})
        assert not done.isError, _text(done)
        assert "quick brown fox" in _text(done).lower()
        hits = json.loads(_text(await session.call_tool("search_transcripts", {"query": "Stella"})))
        assert hits["total"] >= 1
    async with (
        httpx.AsyncClient(headers={"Authorization": f"Bearer {reader}"}, timeout=300) as http,
        streamable_http_client(mcp_url, http_client=http) as (read, write, _),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        denied = await session.call_tool("transcribe", {"content_base64": content, "filename": "speech.wav"})
        assert denied.isError and "403" in _text(denied), _text(denied)


def test_http_door_needs_a_key_and_applies_its_scope(live: tuple[str, str, str], speech_wav: Path) -> None:
    url, key, reader = live
    app, _ = http_app(url)
    with LiveServer(app) as door:
        mcp_url = f"{door.url}/mcp"
        hello = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
        accept = {"Accept": "application/json, text/event-stream"}
        assert httpx.post(mcp_url, json=hello, headers=accept).status_code == 401
        wrong = httpx.post(mcp_url, json=hello, headers={**accept, "Authorization": "Bearer sotto_wrong"})
        assert wrong.status_code == 401
        anyio.run(_http_round_trip, mcp_url, key, reader, speech_wav)


def test_fastmcp_settings_from_the_environment_or_a_dotenv_change_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SDK's settings read FASTMCP_* variables and a .env file in the working directory; every
    setting is passed explicitly, and explicit values win, so neither can move the server."""
    from appliance.mcp_server import build_server

    (tmp_path / ".env").write_text("FASTMCP_PORT=1\nFASTMCP_HOST=0.0.0.0\nFASTMCP_DEBUG=true\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FASTMCP_STATELESS_HTTP", "false")
    monkeypatch.setenv("FASTMCP_LOG_LEVEL", "DEBUG")
    server = build_server("http://127.0.0.1:9", lambda _ctx: "key", allow_paths=False)
    assert (server.settings.host, server.settings.port, server.settings.debug) == ("127.0.0.1", 8765, False)
    assert server.settings.stateless_http and server.settings.log_level == "WARNING"
