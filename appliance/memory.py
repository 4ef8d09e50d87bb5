"""Give freed memory back to the operating system after large, short-lived allocations.

Decoding an hour of audio, running the model or building a PDF allocates hundreds of megabytes that
are freed when the work ends, but glibc keeps most of it in its arenas: resident memory then ratchets
up under a mixed load although nothing leaks. `malloc_trim` hands it back (glibc only; elsewhere a no-op).
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import lru_cache
from typing import Any


@lru_cache(maxsize=1)
def _libc() -> Any:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


def release() -> bool:
    """Trim the C heap; True when it was done."""
    libc = _libc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True
