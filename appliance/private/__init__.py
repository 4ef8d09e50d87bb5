"""Private transcripts: the key hierarchy and envelopes, key records, grants, conversion, sealing at the worker, encrypted share links."""
