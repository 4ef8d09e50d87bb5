"""Request handlers run off the event loop.

Handlers are written as plain functions and decorated with `@off_loop` (below the route decorator):
they run in a worker thread, where `Databases.get()` hands them the request's pooled connection. The
event loop itself only parses requests and streams bodies, so a query waiting for SQLite's write lock
holds up one thread, never the health check, the progress streams or the other requests.

(Litestar's own `sync_to_thread=True` wraps a handler again each time a route is rebuilt, which happens
when a second method is added to the same path, and the doubly wrapped handler returns a coroutine
instead of a response: the 2.25 behaviour this avoids.)
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")
OFF_LOOP = "__sotto_off_loop__"  # set on the wrapper: what tests/web/test_event_loop.py enumerates


def off_loop(fn: Callable[P, T]) -> Callable[P, Awaitable[T]]:
    @functools.wraps(fn)  # Litestar reads the signature and the type hints through __wrapped__
    async def handler(*args: P.args, **kwargs: P.kwargs) -> T:
        return await asyncio.to_thread(fn, *args, **kwargs)  # the context (the request's state) goes along

    setattr(handler, OFF_LOOP, True)
    return handler
