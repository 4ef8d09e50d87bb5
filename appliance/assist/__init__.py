"""Local AI over transcripts: a text-generation engine, summaries with cited moments, questions answered."""
