import json
from pathlib import Path

import numpy as np
import pytest

from appliance.core.config import ModelSettings
from appliance.transcription.asr import (
    EMBEDDED_MODEL,
    AsrOptions,
    ModelError,
    ModelRegistry,
    WhisperEngine,
    check_options,
    device_count,
    embedded_model_path,
    gpu_indices,
    inspect_model_dir,
    resolve_device,
)
from appliance.transcription.audio import decode


@pytest.fixture(scope="module")
def engine() -> WhisperEngine:
    return WhisperEngine(ModelSettings())


@pytest.fixture(scope="module")
def tiny() -> "object":
    return ModelRegistry(Path("/nonexistent")).get(EMBEDDED_MODEL)


def _copy_model(tmp_path: Path, name: str, drop: str | None = None) -> Path:
    source = embedded_model_path()
    assert source is not None
    target = tmp_path / name
    target.mkdir()
    for f in source.iterdir():
        if f.name != drop:
            (target / f.name).symlink_to(f)
    return target


def test_registry_lists_embedded_default_and_models_dir(tmp_path: Path) -> None:
    _copy_model(tmp_path, "tiny-copy")
    models, problems = ModelRegistry(tmp_path).scan()
    assert set(models) == {EMBEDDED_MODEL, "tiny-copy"}
    assert models[EMBEDDED_MODEL].source == "embedded"
    assert models[EMBEDDED_MODEL].multilingual is False
    assert models[EMBEDDED_MODEL].n_mels == 80
    assert problems == {}


def test_registry_refuses_model_without_tokenizer(tmp_path: Path) -> None:
    # Without tokenizer.json the native tokenizer would try to fetch one from the hub.
    _copy_model(tmp_path, "broken", drop="tokenizer.json")
    models, problems = ModelRegistry(tmp_path).scan()
    assert "broken" not in models
    assert "tokenizer.json" in problems["broken"]
    with pytest.raises(ModelError, match="tokenizer.json"):
        ModelRegistry(tmp_path).get("broken")


def test_registry_unknown_model_lists_known(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="unknown model 'large-v9'.*tiny.en"):
        ModelRegistry(tmp_path).get("large-v9")


def test_inspect_infers_128_mels_for_v3_without_preprocessor(tmp_path: Path) -> None:
    model = _copy_model(tmp_path, "v3like", drop="config.json")
    config = json.loads((embedded_model_path() / "config.json").read_text())  # type: ignore[operator]
    config["lang_ids"] = list(range(100))
    (model / "config.json").write_text(json.dumps(config))
    assert inspect_model_dir(model, "v3like", "models_dir").n_mels == 128
    (model / "preprocessor_config.json").write_text(json.dumps({"feature_size": 80}))
    assert inspect_model_dir(model, "v3like", "models_dir").n_mels == 80


def test_check_options_refuses_what_english_only_model_cannot_do(tiny) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ModelError, match="tiny.en understands English only, so it cannot transcribe German"):
        check_options(tiny, AsrOptions(language="de"))
    with pytest.raises(ModelError, match="cannot translate"):
        check_options(tiny, AsrOptions(task="translate"))
    with pytest.raises(ModelError, match="not a language code"):
        check_options(tiny, AsrOptions(language="xx"))
    check_options(tiny, AsrOptions(language="en"))


def test_engine_transcribes_speech_with_word_timings(engine: WhisperEngine, tiny, speech_bytes: bytes) -> None:  # type: ignore[no-untyped-def]
    audio = decode(speech_bytes)
    seen: list[float] = []
    texts: list[str] = []
    result = engine.transcribe(
        tiny, audio.samples, AsrOptions(), lambda s, text="": (seen.append(s), texts.append(text)), lambda: False
    )
    assert texts == [s.text for s in result.segments]  # each segment's text is offered as it is decoded
    text = " ".join(s.text for s in result.segments).lower()
    for word in ("fox", "lazy", "dog", "stella"):
        assert word in text
    words = [w for s in result.segments for w in s.words]
    assert len(words) >= 12
    assert all(0 <= w.start <= w.end <= audio.duration + 0.5 for w in words)
    assert all(0 < w.probability <= 1 for w in words)
    assert [w.start for w in words] == sorted(w.start for w in words)
    assert result.language == "en"
    assert seen and seen[-1] <= audio.duration


def test_engine_silence_gives_empty_transcript(engine: WhisperEngine, tiny) -> None:  # type: ignore[no-untyped-def]
    result = engine.transcribe(tiny, np.zeros(16000 * 60, np.float32), AsrOptions(), lambda s, text="": None, lambda: False)
    assert result.segments == []


def test_engine_silence_without_vad_invents_nothing_long(engine: WhisperEngine, tiny) -> None:  # type: ignore[no-untyped-def]
    result = engine.transcribe(
        tiny, np.zeros(16000 * 20, np.float32), AsrOptions(vad_filter=False), lambda s, text="": None, lambda: False
    )
    assert sum(len(s.text.split()) for s in result.segments) <= 3


def test_engine_tiny_clip(engine: WhisperEngine, tiny) -> None:  # type: ignore[no-untyped-def]
    result = engine.transcribe(tiny, np.zeros(1600, np.float32), AsrOptions(), lambda s, text="": None, lambda: False)
    assert result.duration == pytest.approx(0.1)
    assert result.segments == []


def test_engine_cancel_stops(engine: WhisperEngine, tiny, speech_bytes: bytes) -> None:  # type: ignore[no-untyped-def]
    from appliance.transcription.asr import Cancelled

    audio = decode(speech_bytes)
    with pytest.raises(Cancelled):
        engine.transcribe(tiny, audio.samples, AsrOptions(vad_filter=False), lambda s, text="": None, lambda: True)


def test_engine_hotwords_and_prompt_accepted(engine: WhisperEngine, tiny, speech_bytes: bytes) -> None:  # type: ignore[no-untyped-def]
    audio = decode(speech_bytes)
    result = engine.transcribe(
        tiny,
        audio.samples,
        AsrOptions(hotwords="Stella", initial_prompt="A note about Stella.", beam_size=2),
        lambda s, text="": None,
        lambda: False,
    )
    assert "stella" in " ".join(s.text for s in result.segments).lower()


def test_multilingual_model_detects_german_and_translates(base_model_dir: Path, tmp_path: Path) -> None:
    from tests.support import speak

    registry = ModelRegistry(base_model_dir)
    base = registry.get("base")
    assert base.multilingual
    engine = WhisperEngine(ModelSettings(models_dir=base_model_dir))
    german = speak(
        tmp_path / "de.wav", "Guten Morgen. Heute ist das Wetter in Berlin sehr schön, und wir gehen in den Park.", voice="de"
    )
    audio = decode(german.read_bytes())
    result = engine.transcribe(base, audio.samples, AsrOptions(), lambda s, text="": None, lambda: False)
    assert result.language == "de"
    assert result.language_probability is not None and result.language_probability > 0.5
    translated = engine.transcribe(base, audio.samples, AsrOptions(task="translate"), lambda s, text="": None, lambda: False)
    text = " ".join(s.text for s in translated.segments).lower()
    assert any(w in text for w in ("morning", "weather", "park", "today"))


def test_batch_size_is_smaller_on_the_cpu_unless_configured() -> None:
    from appliance.transcription.asr import batch_size

    assert batch_size(ModelSettings(), "cpu") == 4
    assert batch_size(ModelSettings(), "cuda") == 8
    assert batch_size(ModelSettings(batch_size=16), "cpu") == 16


def test_recognition_uses_the_gpus_named(monkeypatch: pytest.MonkeyPatch) -> None:
    import ctranslate2

    monkeypatch.setattr(ctranslate2, "get_cuda_device_count", lambda: 4)  # a pretend 4-GPU box
    assert gpu_indices(ModelSettings(device="auto")) == [0, 1, 2, 3]
    assert gpu_indices(ModelSettings(device="cuda:1,3")) == [1, 3]
    assert device_count(ModelSettings(device="cuda:1,3")) == 2
    assert device_count(ModelSettings(device="cuda")) == 4
    assert resolve_device(ModelSettings(device="cuda:2")) == ("cuda", "float16")
    with pytest.raises(ModelError, match=r"models\.device: cuda:4 was asked for, but only 4 GPU"):
        gpu_indices(ModelSettings(device="cuda:4"))
    monkeypatch.setattr(ctranslate2, "get_cuda_device_count", lambda: 0)
    assert gpu_indices(ModelSettings(device="auto")) == []
    assert (resolve_device(ModelSettings()), device_count(ModelSettings())) == (("cpu", "int8"), 1)
    with pytest.raises(ModelError, match="none is visible"):
        gpu_indices(ModelSettings(device="cuda:0"))
