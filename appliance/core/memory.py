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


M_ARENA_MAX = -8  # glibc's mallopt parameter number
ARENAS = 2


def limit_arenas(arenas: int = ARENAS) -> bool:
    """Cap glibc's malloc arenas (as MALLOC_ARENA_MAX does), before the app starts its own threads.

    glibc gives threads their own arenas (up to 8 per core), and memory freed in one arena is reused only
    by threads that land there; `malloc_trim` does not shrink them all. Measured with the soak benchmark
    (4 clients, 2 cores): 3 minutes, default arenas +19% resident memory, MALLOC_ARENA_MAX=2 +4.6%
    (the rest of the 10-minute drift was PDF exports parsing every fallback font, see
    docs/benchmarks.md). Throughput is bound by the model, not by malloc contention. True when applied.
    """
    libc = _libc()
    if libc is None or not hasattr(libc, "mallopt"):
        return False
    return bool(libc.mallopt(M_ARENA_MAX, arenas))
