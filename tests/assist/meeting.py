"""A short planning meeting used by the local-AI tests (written for them; speaker ids as the engine gives)."""

LINES = [
    ("S1", "Good morning everyone, today we plan the release of version two."),
    ("S2", "The installer still fails on Windows machines."),
    ("S1", "Then Bob will fix the Windows installer by Thursday."),
    ("S2", "Okay, I will fix the installer by Thursday."),
    ("S1", "We decided to ship the release on Friday."),
    ("S2", "Who writes the release notes for the customers?"),
    ("S1", "Carol will write the release notes."),
    ("S2", "The budget for the launch party is five hundred euros."),
]
