"""What is kept: the transcript store, editing, search, share links and exports."""
