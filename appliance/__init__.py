"""Sotto: an air-gapped transcription appliance."""

__version__ = "0.1.0"
