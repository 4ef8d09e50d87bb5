"""Voice profiles in a real SQLite file: consent required, engines kept apart, running mean, merge, and
deletion that leaves no embedding bytes in the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from appliance.core.config import Settings
from appliance.speakers import profiles
from tests.support import Scenario


def _voice(seed: int, dim: int = 256) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


def _files_containing(folder: Path, needle: bytes) -> list[str]:
    return [p.name for p in folder.rglob("*") if p.is_file() and needle in p.read_bytes()]


@pytest.fixture
def world(settings: Settings) -> Scenario:
    return Scenario(settings)


def test_enrolment_needs_a_name_and_a_consent_note(world: Scenario) -> None:
    alice = world.person("alice@example.org")
    ws = alice.user.personal_workspace_id
    with pytest.raises(profiles.ProfileError, match="consent note"):
        profiles.create(
            world.db, workspace_id=ws, name="Bob", consent_note=" ", created_by=alice.id, engine="embedded", voice=_voice(1)
        )
    with pytest.raises(profiles.ProfileError, match="name of 1 to"):
        profiles.create(
            world.db, workspace_id=ws, name="", consent_note="Bob, 3 Dec", created_by=alice.id, engine="embedded", voice=_voice(1)
        )
    with pytest.raises(profiles.ProfileError, match="no usable embedding"):
        profiles.create(
            world.db,
            workspace_id=ws,
            name="Bob",
            consent_note="Bob, 3 Dec",
            created_by=alice.id,
            engine="embedded",
            voice=np.zeros(256),
        )
    assert profiles.for_workspace(world.db, ws) == []  # nothing half-made


def test_engines_are_kept_apart_and_voices_average(world: Scenario) -> None:
    alice = world.person("alice@example.org")
    ws = alice.user.personal_workspace_id
    pid = profiles.create(
        world.db,
        workspace_id=ws,
        name="Bob",
        consent_note="Bob agreed, 3 Dec 2026",
        created_by=alice.id,
        engine="embedded",
        voice=_voice(1),
    )
    assert [c.name for c in profiles.candidates(world.db, ws, "embedded")] == ["Bob"]
    assert profiles.candidates(world.db, ws, "pyannote") == []  # never compared across engines
    profiles.add_voice(world.db, pid, "embedded", _voice(2))
    (only,) = profiles.candidates(world.db, ws, "embedded")
    expected = (_voice(1) + _voice(2)) / np.linalg.norm(_voice(1) + _voice(2))
    assert np.allclose(only.voice, expected, atol=1e-5)
    profiles.add_voice(world.db, pid, "pyannote", _voice(3, 192))
    got = profiles.get(world.db, pid)
    assert got is not None and got.engines == ("embedded", "pyannote") and got.samples == 3


def test_rename_merge_and_delete_leave_no_embedding_in_the_file(world: Scenario, settings: Settings) -> None:
    alice = world.person("alice@example.org")
    ws = alice.user.personal_workspace_id
    one = profiles.create(
        world.db, workspace_id=ws, name="Bob", consent_note="yes", created_by=alice.id, engine="embedded", voice=_voice(1)
    )
    two = profiles.create(
        world.db, workspace_id=ws, name="Robert", consent_note="yes", created_by=alice.id, engine="embedded", voice=_voice(2)
    )
    profiles.rename(world.db, one, "Bob Smith")
    with pytest.raises(profiles.ProfileError):
        profiles.rename(world.db, one, "x" * 101)
    blob_two = profiles.to_bytes(_voice(2))
    assert _files_containing(settings.storage.data_dir, blob_two)  # the scan can see an embedding
    profiles.merge(world.db, two, one)
    assert [p.name for p in profiles.for_workspace(world.db, ws)] == ["Bob Smith"]
    assert profiles.get(world.db, one).samples == 2  # type: ignore[union-attr]
    assert _files_containing(settings.storage.data_dir, blob_two) == []
    merged = profiles.to_bytes(profiles.candidates(world.db, ws, "embedded")[0].voice)
    assert profiles.delete(world.db, one)
    assert profiles.get(world.db, one) is None
    assert _files_containing(settings.storage.data_dir, merged) == []
    assert _files_containing(settings.storage.data_dir, b"Bob Smith") == []


def test_a_data_export_lists_the_profiles_a_person_enrolled_without_embeddings(world: Scenario) -> None:
    import io
    import json
    import zipfile

    from appliance.app import privacy

    alice = world.person("alice@example.org")
    ws = world.workspace("Team", alice)
    profiles.create(
        world.db, workspace_id=ws, name="Bob", consent_note="Bob, 3 Dec", created_by=alice.id, engine="embedded", voice=_voice(1)
    )
    account = json.loads(zipfile.ZipFile(io.BytesIO(privacy.export_user(world.db, alice.id))).read("account.json"))
    (listed,) = account["voice_profiles_enrolled"]
    assert listed["name"] == "Bob" and listed["consent_note"] == "Bob, 3 Dec" and listed["workspace_id"] == ws
    assert "embedding" not in json.dumps(account)
