"""Which diarization engines this appliance has, and which one a job gets."""

from __future__ import annotations

import threading

from appliance.core.config import Settings
from appliance.transcription.diarization.base import DiarizationError, Diarizer
from appliance.transcription.diarization.channel import ChannelDiarizer
from appliance.transcription.diarization.embedded import EmbeddedDiarizer
from appliance.transcription.diarization.pyannote_engine import PyannoteDiarizer

NAMES = ("pyannote", "embedded", "channel")


class DiarizationEngines:
    """Engines built once per appliance and kept (their models stay resident after first use)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._engines: dict[str, Diarizer] = {}
        self._lock = threading.Lock()

    def _build(self, name: str) -> Diarizer:
        if name == "pyannote":
            d = self.settings.diarization
            return PyannoteDiarizer(self.settings.models.models_dir / d.pyannote_pipeline, d.device)
        if name == "embedded":
            return EmbeddedDiarizer()
        if name == "channel":
            return ChannelDiarizer()
        raise DiarizationError(f"unknown diarization engine {name!r}; choose one of {', '.join(NAMES)}")

    def engine(self, name: str) -> Diarizer:
        with self._lock:
            if name not in self._engines:
                self._engines[name] = self._build(name)
            return self._engines[name]

    def default_name(self) -> str:
        configured = self.settings.diarization.default_engine
        if configured != "auto":
            return configured
        return "pyannote" if self.engine("pyannote").available() is None else "embedded"

    def get(self, name: str | None) -> Diarizer:
        """The named engine (or the default), refusing one that cannot run here with the reason."""
        engine = self.engine(name or self.default_name())
        problem = engine.available()
        if problem:
            raise DiarizationError(f"the {engine.name} diarization engine is not available: {problem}")
        return engine

    def status(self) -> dict[str, str | None]:
        return {name: self.engine(name).available() for name in NAMES}
