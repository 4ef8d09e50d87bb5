"""The self-test: load every installed model, transcribe and diarize a bundled clip, and report it.

`appliance doctor --selftest` prints the report as JSON: evidence a customer can re-run (under
`network_mode: none`) that the appliance works and made no outbound connection. Model pack imports
use the same checks as their smoke test.
"""

from __future__ import annotations

import gc
import hashlib
import platform
import re
import time
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from appliance import __version__
from appliance.core import egress
from appliance.core.config import Settings

if TYPE_CHECKING:  # pragma: no cover
    from appliance.distribution.model_packs import PackManifest, SmokeTest
    from appliance.transcription.asr import ModelInfo
    from appliance.transcription.diarization.base import Diarizer

# Two synthetic voices (espeak-ng), 16 kHz mono, 6 s: one sentence each.
CLIP = Path(__file__).resolve().parents[1] / "data" / "selftest.wav"
CLIP_TEXT = "Hello, this is the Sotto self test. The quick brown fox jumps over the lazy dog."
CLIP_SPEAKERS = 2
EXPECTED_WORDS = ("hello", "self", "test", "quick", "brown", "fox")
# The smallest model may garble a word of synthetic speech; a broken model or wrong mel count finds none.
MIN_WORDS = 5
VERSIONED = (
    "faster-whisper",
    "ctranslate2",
    "av",
    "numpy",
    "onnxruntime",
    "torch",
    "torchaudio",
    "pyannote-audio",
    "litestar",
    "cryptography",
)


def load_clip() -> np.ndarray:
    from appliance.transcription.audio import decode

    return decode(CLIP.read_bytes()).samples


def words_found(text: str) -> list[str]:
    heard = set(re.findall(r"[a-z]+", text.lower()))
    return [w for w in EXPECTED_WORDS if w in heard]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def check_whisper(model: ModelInfo, settings: Settings, audio: np.ndarray) -> dict[str, Any]:
    """Load one Whisper model on its own, transcribe the clip, then let it go (GPU memory is shared)."""
    from appliance.transcription.asr import AsrOptions, WhisperEngine

    report: dict[str, Any] = {
        "name": model.name,
        "source": model.source,
        "revision": model.revision,
        "path": str(model.path),
        "model_bin_sha256": _sha256(model.path / "model.bin"),
        "size_bytes": model.size_bytes,
        "multilingual": model.multilingual,
        "ok": False,
    }
    engine = WhisperEngine(settings.models)
    try:
        started = time.perf_counter()
        engine.load(model)
        report["load_seconds"] = round(time.perf_counter() - started, 3)
        started = time.perf_counter()
        result = engine.transcribe(model, audio, AsrOptions(language="en"), lambda _s, _t="": None, lambda: False)
        report["transcribe_seconds"] = round(time.perf_counter() - started, 3)
        text = " ".join(s.text for s in result.segments).strip()
        found = words_found(text)
        report.update(text=text, expected_words=list(EXPECTED_WORDS), words_found=found, ok=len(found) >= MIN_WORDS)
        if not report["ok"]:
            report["error"] = f"heard {len(found)} of the {len(EXPECTED_WORDS)} expected words"
    except Exception as exc:
        report["error"] = _error(exc)
    finally:
        del engine
        gc.collect()
    return report


def check_diarizer(engine: Diarizer, audio: np.ndarray) -> dict[str, Any]:
    from appliance.transcription.diarization.base import DiarizationOptions

    report: dict[str, Any] = {"engine": engine.name, "ok": False}
    problem = engine.available()
    if problem:
        return {**report, "error": problem}
    try:
        started = time.perf_counter()
        turns = engine.diarize(audio, DiarizationOptions())
        report["seconds"] = round(time.perf_counter() - started, 3)
    except Exception as exc:
        return {**report, "error": _error(exc)}
    speakers = sorted({t.speaker for t in turns})
    report.update(
        turns=[{"start": round(t.start, 2), "end": round(t.end, 2), "speaker": t.speaker} for t in turns],
        speakers_found=len(speakers),
        speakers_expected=CLIP_SPEAKERS,
        ok=bool(turns),
    )
    return report


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {"python": platform.python_version(), "appliance": __version__}
    for dist in VERSIONED:
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            found[dist] = None
    return found


def device_report(settings: Settings) -> dict[str, Any]:
    import ctranslate2

    from appliance.transcription.asr import resolve_device

    device, compute = resolve_device(settings.models)
    report: dict[str, Any] = {
        "selected": device,
        "compute_type": compute,
        "cuda_devices": ctranslate2.get_cuda_device_count(),
        "nvidia_driver": None,
    }
    if report["cuda_devices"]:
        try:
            import pynvml

            pynvml.nvmlInit()
            report["nvidia_driver"] = pynvml.nvmlSystemGetDriverVersion()
            report["gpus"] = [
                pynvml.nvmlDeviceGetName(pynvml.nvmlDeviceGetHandleByIndex(i)) for i in range(pynvml.nvmlDeviceGetCount())
            ]
        except Exception as exc:
            report["nvidia_driver_error"] = _error(exc)
    return report


def _pyannote_hashes(directory: Path) -> dict[str, str]:
    from appliance.distribution.model_packs import PYANNOTE_FILES

    return {f: _sha256(directory / f) for f in PYANNOTE_FILES if (directory / f).is_file()}


def run(settings: Settings) -> dict[str, Any]:
    """The whole self-test; `ok` is true only when every model and engine passed and nothing left the box."""
    from appliance.transcription.asr import ModelRegistry
    from appliance.transcription.diarization.engines import DiarizationEngines

    egress.install()
    already = list(egress.attempts)
    started = time.perf_counter()
    audio = load_clip()
    report: dict[str, Any] = {
        "versions": versions(),
        "device": device_report(settings),
        "clip": {"file": CLIP.name, "sha256": _sha256(CLIP), "seconds": round(len(audio) / 16000, 2), "text": CLIP_TEXT},
    }
    models, problems = ModelRegistry(settings.models.models_dir).scan()
    report["models"] = [check_whisper(info, settings, audio) for info in models.values()]
    report["model_problems"] = problems
    engines = DiarizationEngines(settings)
    diarization = [check_diarizer(engines.engine("embedded"), audio)]
    pyannote = engines.engine("pyannote")
    if pyannote.available() is None:
        pipeline_dir = settings.models.models_dir / settings.diarization.pyannote_pipeline
        diarization.append({**check_diarizer(pyannote, audio), "files_sha256": _pyannote_hashes(pipeline_dir)})
    report["diarization"] = diarization
    report["egress_attempts"] = [a for a in egress.attempts if not any(a is b for b in already)]
    report["seconds"] = round(time.perf_counter() - started, 3)
    report["ok"] = (
        bool(report["models"])
        and all(m["ok"] for m in report["models"])
        and not problems
        and all(d["ok"] for d in diarization)
        and not report["egress_attempts"]
        and settings.models.default_model in models
    )
    return report


def smoke_tester(settings: Settings) -> SmokeTest:
    """The check a model pack must pass before the appliance switches to it."""
    from appliance.transcription.asr import ModelError, inspect_model_dir
    from appliance.transcription.diarization.pyannote_engine import PyannoteDiarizer

    def smoke(path: Path, manifest: PackManifest) -> dict[str, Any]:
        egress.install()
        audio = load_clip()
        if manifest.kind == "pyannote":
            return check_diarizer(PyannoteDiarizer(path, settings.diarization.device), audio)
        try:
            info = inspect_model_dir(path, manifest.name, "pack")
        except ModelError as exc:
            return {"ok": False, "error": str(exc)}
        return check_whisper(info, settings, audio)

    return smoke
