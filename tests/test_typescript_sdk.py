"""The TypeScript/Node.js SDK (sdk/typescript): its handwritten types and routes agree with the live
OpenAPI document, its node --test suite passes against a live appliance, and its npm package holds what
it should."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from appliance.core.config import Settings
from appliance.transcription.upload_options import UploadOptions
from tests.support import REPO, LiveServer, bootstrap

SDK = REPO / "sdk" / "typescript"
NODE = shutil.which("node")
PACKED = ["README.md", "package.json", "src/index.d.ts", "src/index.js"]


def _node() -> str:
    if NODE is None:
        pytest.fail("node is required (scripts/test installs nodejs): the SDK's own tests did not run")
    return NODE


@pytest.fixture
def live(settings: Settings) -> Iterator[tuple[str, str, dict[str, Any]]]:
    from appliance.web.app import create_app

    key = bootstrap(settings)
    with LiveServer(create_app(settings)) as server:
        yield server.url, key, httpx.get(f"{server.url}/schema/openapi.json").json()


def _interfaces() -> dict[str, dict[str, bool]]:
    """`/** @schema Name */ export interface …` in index.d.ts → {field: optional}, inherited fields included."""
    text = (SDK / "src" / "index.d.ts").read_text(encoding="utf-8")
    found: dict[str, dict[str, bool]] = {}
    by_interface: dict[str, dict[str, bool]] = {}
    pattern = r"/\*\* @schema (\w+) \*/\s*export interface (\w+)(?: extends (\w+))? \{\n(.*?)\n\}"
    for schema, name, parent, body in re.findall(pattern, text, re.S):
        fields = dict(by_interface.get(parent, {})) if parent else {}
        fields.update({m[0]: bool(m[1]) for m in re.findall(r"^  (\w+)(\??):", body, re.M)})
        by_interface[name] = found[schema] = fields
    return found


def _interface_fields(name: str) -> set[str]:
    text = (SDK / "src" / "index.d.ts").read_text(encoding="utf-8")
    body = re.search(rf"export interface {name} \{{\n(.*?)\n\}}", text, re.S)
    assert body, name
    return set(re.findall(r"^  (\w+)\??:", body.group(1), re.M))


def _routes() -> dict[str, list[str]]:
    node = _node()
    out = subprocess.run(
        [node, "--input-type=module", "-e", "import {ROUTES} from './src/index.js'; console.log(JSON.stringify(ROUTES))"],
        cwd=SDK,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return dict(json.loads(out.stdout))


def test_the_types_and_routes_match_the_live_openapi_document(live: tuple[str, str, dict[str, Any]]) -> None:
    _, _, openapi = live
    schemas = openapi["components"]["schemas"]
    declared = _interfaces()
    assert set(declared) >= {"Job", "Transcript", "TranscriptSummary", "TranscriptPage", "Segment", "Word", "Speaker"}
    for name, fields in declared.items():
        schema = schemas[name]
        assert set(fields) == set(schema["properties"]), f"{name}: {sorted(set(fields) ^ set(schema['properties']))}"
        required = {f for f, optional in fields.items() if not optional}
        assert required == set(schema.get("required", [])), f"{name}: required fields differ"
    for what, (method, path) in _routes().items():
        assert method.lower() in openapi["paths"].get(path, {}), f"{what}: {method} {path} is not in the OpenAPI document"
    # The upload options are the appliance's one list (every door shares it), plus the workspace choice.
    assert _interface_fields("UploadOptions") == set(UploadOptions.__struct_fields__) | {"workspace_id"}


def test_node_suite_against_a_live_appliance(live: tuple[str, str, dict[str, Any]], speech_wav: Path) -> None:
    url, key, _ = live
    node = _node()
    env = {**os.environ, "SOTTO_URL": url, "SOTTO_API_KEY": key, "SOTTO_CLIP": str(speech_wav)}
    result = subprocess.run([node, "--test", "test/"], cwd=SDK, env=env, capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "# fail 0" in result.stdout and "# skipped 0" in result.stdout and "# pass 2" in result.stdout, result.stdout


def test_the_offline_bundle_packs_it_as_npm_would(tmp_path: Path) -> None:
    """scripts/offline-bundle.sh packs the SDK without npm (appliance.distribution.bundle npm-pack): the
    entries `npm pack` makes (PACKED: compared with npm 9's own output when this was written; Debian's
    nodejs, which the test command installs, has no npm), reproducibly, with no runtime dependency."""
    import tarfile

    from appliance.distribution import bundle

    first = bundle.npm_pack(SDK, tmp_path / "a")
    again = bundle.npm_pack(SDK, tmp_path / "b")
    assert first.name == "sotto-client-0.1.0.tgz" and first.read_bytes() == again.read_bytes()
    with tarfile.open(first) as tar:
        members = tar.getmembers()
        assert sorted(m.name for m in members) == [f"package/{p}" for p in PACKED]
        manifest = json.load(tar.extractfile("package/package.json"))  # type: ignore[arg-type]
        assert manifest["name"] == "@sotto/client" and manifest["types"] == "./src/index.d.ts"
        assert not manifest.get("dependencies"), "the SDK has no runtime dependencies"
        assert all(m.isfile() and m.mode == 0o644 and m.uid == 0 for m in members)
