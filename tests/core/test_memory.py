"""The allocator settings the app applies at start (glibc)."""

from __future__ import annotations

import ctypes.util

from appliance.core import memory


def test_arena_cap_and_trim_apply_on_glibc() -> None:
    if ctypes.util.find_library("c") is None:  # not glibc: both are documented no-ops
        assert memory.limit_arenas() is False and memory.release() is False
        return
    assert memory.limit_arenas(2) is True
    assert memory.release() is True
