"""Known speakers: voice profiles of a workspace, and the names they suggest on new transcripts."""
