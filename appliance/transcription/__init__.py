"""Turning audio into a transcript: decoding, the ASR engine, options, the pipeline, diarization, the job queue and its admission, and the model weights' verification."""
