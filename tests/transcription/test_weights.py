"""Model weights checked by SHA-256 before they load: the embedded Whisper and the speaker encoder against
the digests recorded in the repository, a model pack against its signed manifest. Each refusal names the
file; each test changes one byte of a real copy and loads it through the real engine."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from appliance.core.config import ModelSettings, Settings
from appliance.distribution import model_packs
from appliance.distribution.model_packs import build_pack, import_pack
from appliance.transcription import weights
from appliance.transcription.asr import ModelError, ModelInfo, ModelRegistry, WhisperEngine, embedded_model_path
from appliance.transcription.diarization.ge2e import SpeakerEncoder, WeightsError, default_weights_path
from tests.signing_keys import TEST_KEY


def passing_smoke(path: Path, manifest: model_packs.PackManifest) -> dict[str, object]:
    return {"ok": True}


def _flip_one_byte(path: Path, at: int = 4096) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


def test_the_recorded_digests_are_those_of_the_pinned_packages() -> None:
    tiny, encoder = embedded_model_path(), default_weights_path()
    assert tiny is not None and encoder is not None
    weights.check_recorded(weights.EMBEDDED_WHISPER, tiny)
    weights.check_recorded(weights.SPEAKER_ENCODER, encoder.parent)
    assert set(weights.recorded()[weights.EMBEDDED_WHISPER]) == {p.name for p in tiny.iterdir() if p.is_file()}


def test_one_changed_byte_in_the_embedded_model_is_refused_naming_the_file(tmp_path: Path) -> None:
    tiny = embedded_model_path()
    assert tiny is not None
    copy = tmp_path / "model"
    shutil.copytree(tiny, copy)
    engine = WhisperEngine(ModelSettings(device="cpu", compute_type="int8"))
    info = ModelInfo("tiny.en", copy, "embedded", False, 80, 0)
    engine.load(info)  # the untouched copy loads
    engine = WhisperEngine(ModelSettings(device="cpu", compute_type="int8"))
    _flip_one_byte(copy / "model.bin")
    with pytest.raises(ModelError, match=r"model\.bin does not match its recorded SHA-256"):
        engine.load(info)
    (copy / "model.bin").unlink()
    with pytest.raises(ModelError, match=r"model\.bin is missing"):
        engine.load(info)


def test_a_changed_speaker_encoder_is_refused_before_it_is_unpickled(tmp_path: Path) -> None:
    original = default_weights_path()
    assert original is not None
    copy = tmp_path / "pretrained.pt"
    shutil.copy(original, copy)
    assert SpeakerEncoder(copy).embed_mels(np.zeros((1, 160, 40), dtype=np.float32)).shape == (1, 256)
    _flip_one_byte(copy, at=len(copy.read_bytes()) // 2)
    with pytest.raises(WeightsError, match=r"pretrained\.pt does not match its recorded SHA-256"):
        SpeakerEncoder(copy)


def test_a_model_pack_changed_on_disk_after_import_is_refused_at_load(settings: Settings, tmp_path: Path) -> None:
    tiny = embedded_model_path()
    assert tiny is not None
    pack = tmp_path / "tiny.en@r1.tar"
    build_pack(tiny, pack, "tiny.en", "whisper", "r1", TEST_KEY)
    models_dir = settings.models.models_dir
    import_pack(models_dir, pack, [TEST_KEY.public], passing_smoke)
    info = ModelRegistry(models_dir).get("tiny.en")
    assert weights.check_model_dir(info.path) is True  # a pack: checked against its signed manifest
    WhisperEngine(ModelSettings(device="cpu", compute_type="int8")).load(info)
    _flip_one_byte(models_dir / model_packs.PACKS / "tiny.en@r1" / "model.bin")
    with pytest.raises(ModelError, match=r"tiny\.en@r1/model\.bin does not match its recorded SHA-256"):
        WhisperEngine(ModelSettings(device="cpu", compute_type="int8")).load(info)
    # A directory copied in by hand has no signed record: it loads, reported as unverified.
    manual = models_dir / "copied"
    shutil.copytree(tiny, manual)
    assert weights.check_model_dir(manual) is False
