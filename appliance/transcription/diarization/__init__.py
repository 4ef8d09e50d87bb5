"""Speaker diarization: engines (pyannote, embedded, channel) behind one small interface, and the
merge that gives every word of a transcript its speaker."""

from appliance.transcription.diarization.base import MAX_SPEAKERS, DiarizationError, DiarizationOptions, Diarized, Diarizer, Turn

__all__ = ["MAX_SPEAKERS", "DiarizationError", "DiarizationOptions", "Diarized", "Diarizer", "Turn"]
