"""Suggestions beside a stored transcript: matched in the workspace and the engine only, never renamed
without a person, confirmed through the transcript's edit operations, gone with the transcript."""

from __future__ import annotations

import numpy as np
import pytest

from appliance.core.config import Settings
from appliance.speakers import profiles, suggestions
from appliance.transcripts import store as transcripts
from tests.support import Scenario


def _voice(seed: int, dim: int = 256) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


def _near(v: np.ndarray, seed: int, amount: float = 0.1) -> np.ndarray:
    w = v + amount * _voice(seed, v.shape[0])
    return w / np.linalg.norm(w)


def test_best_matches_gives_a_profile_to_one_speaker_only_and_respects_the_threshold() -> None:
    bob, eve = _voice(1), _voice(2)
    cands = [profiles.Candidate("b", "Bob", bob), profiles.Candidate("e", "Eve", eve)]
    found = suggestions.best_matches({"S1": _near(bob, 3, 0.05), "S2": _near(bob, 4, 0.3), "S3": _voice(5)}, cands, 0.9)
    assert set(found) == {"S1"} and found["S1"].name == "Bob" and found["S1"].score > 0.9
    assert suggestions.best_matches({"S1": _voice(6)}, cands, 0.5) == {}


@pytest.fixture
def world(settings: Settings) -> Scenario:
    return Scenario(settings)


def test_suggest_confirm_and_dismiss(world: Scenario) -> None:
    alice = world.person("alice@example.org")
    ws = alice.user.personal_workspace_id
    bob = _voice(1)
    pid = profiles.create(
        world.db, workspace_id=ws, name="Bob", consent_note="Bob, 3 Dec", created_by=alice.id, engine="embedded", voice=bob
    )
    other_ws = world.workspace("Elsewhere", alice)
    profiles.create(
        world.db,
        workspace_id=other_ws,
        name="Bob elsewhere",
        consent_note="yes",
        created_by=alice.id,
        engine="embedded",
        voice=bob,
    )
    profiles.create(
        world.db, workspace_id=ws, name="Bob in pyannote", consent_note="yes", created_by=alice.id, engine="pyannote", voice=bob
    )

    tid = world.transcript(alice, "hello there my friend", speaker="S1")
    suggestions.keep(world.db, tid, "embedded", {"S1": _near(bob, 7, 0.05)})
    (voice,) = suggestions.for_transcript(world.db, tid)
    assert voice.profile_id == pid and voice.profile_name == "Bob" and voice.state == "open"
    # Suggested, not applied: the speaker still has no name until someone confirms.
    assert transcripts.get(world.db, tid).speakers[0].display_name is None  # type: ignore[union-attr]

    suggestions.confirm(world.db, tid, "S1", user_id=alice.id)
    assert transcripts.get(world.db, tid).speakers[0].display_name == "Bob"  # type: ignore[union-attr]
    assert profiles.get(world.db, pid).samples == 2  # type: ignore[union-attr]
    assert suggestions.for_transcript(world.db, tid)[0].state == "confirmed"

    second = world.transcript(alice, "good morning again", speaker="S1")
    suggestions.keep(world.db, second, "embedded", {"S1": _near(bob, 8, 0.05)})
    suggestions.dismiss(world.db, second, "S1")
    (voice,) = suggestions.for_transcript(world.db, second)
    assert voice.state == "dismissed" and voice.profile_id is None
    assert suggestions.suggest(world.db, second) == {}  # not made again
    with pytest.raises(suggestions.SuggestionError, match="no suggestion"):
        suggestions.confirm(world.db, second, "S1", user_id=alice.id)
    with pytest.raises(suggestions.SuggestionError, match="no voice was kept"):
        suggestions.dismiss(world.db, second, "S9")


def test_enrol_from_a_transcript_speaker_and_deleting_the_transcript_drops_its_voices(world: Scenario) -> None:
    alice = world.person("alice@example.org")
    ws = alice.user.personal_workspace_id
    tid = world.transcript(alice, "this is me talking", speaker="S1")
    voice = _voice(11)
    suggestions.keep(world.db, tid, "embedded", {"S1": voice})
    with pytest.raises(profiles.ProfileError, match="consent"):
        suggestions.enrol(world.db, tid, "S1", workspace_id=ws, user_id=alice.id, name="Carol")
    assert profiles.for_workspace(world.db, ws) == []
    pid, _ = suggestions.enrol(
        world.db, tid, "S1", workspace_id=ws, user_id=alice.id, name="Carol", consent_note="Carol, in the meeting"
    )
    assert transcripts.get(world.db, tid).speakers[0].display_name == "Carol"  # type: ignore[union-attr]
    assert [p.id for p in profiles.for_workspace(world.db, ws)] == [pid]
    assert transcripts.delete(world.db, tid)
    assert list(world.db.query("SELECT * FROM transcript_voices")) == []
    assert profiles.get(world.db, pid) is not None  # the profile is the person's, not the transcript's


def test_a_profile_enrolled_later_is_suggested_and_not_twice_in_one_recording(world: Scenario) -> None:
    alice = world.person("alice@example.org")
    ws = alice.user.personal_workspace_id
    bob, eve = _voice(21), _voice(22)
    tid = world.transcript(alice, "two people talking here", speaker="S1")
    world.db.execute("INSERT INTO speakers (transcript_id, key, label, position) VALUES (?, 'S2', 'Speaker 2', 1)", [tid])
    suggestions.keep(world.db, tid, "embedded", {"S1": _near(bob, 23, 0.05), "S2": _near(bob, 24, 0.1)})
    assert all(v.profile_id is None for v in suggestions.for_transcript(world.db, tid))  # nobody enrolled yet
    pid = profiles.create(
        world.db, workspace_id=ws, name="Bob", consent_note="Bob, 3 Dec", created_by=alice.id, engine="embedded", voice=bob
    )
    profiles.create(
        world.db, workspace_id=ws, name="Eve", consent_note="Eve, 3 Dec", created_by=alice.id, engine="embedded", voice=eve
    )
    assert {k: m.name for k, m in suggestions.suggest(world.db, tid).items()} == {"S1": "Bob"}  # the closer speaker only
    suggestions.confirm(world.db, tid, "S1", user_id=alice.id)
    assert suggestions.suggest(world.db, tid) == {}  # Bob is S1 now: not offered for S2 as well
    assert {v.speaker: v.profile_id for v in suggestions.for_transcript(world.db, tid)} == {"S1": pid, "S2": None}


def test_a_speaker_merged_away_in_the_editor_takes_its_voice_with_it(world: Scenario) -> None:
    from appliance.transcripts import editing

    alice = world.person("alice@example.org")
    tid = world.transcript(alice, "two people talking here", speaker="S1")
    world.db.execute("INSERT INTO speakers (transcript_id, key, label, position) VALUES (?, 'S2', 'Speaker 2', 1)", [tid])
    suggestions.keep(world.db, tid, "embedded", {"S1": _voice(31), "S2": _voice(32)})
    editing.apply(world.db, tid, base_revision=1, ops=[{"op": "merge_speakers", "from": "S2", "into": "S1"}], user_id=alice.id)
    assert [v.speaker for v in suggestions.for_transcript(world.db, tid)] == ["S1"]
