import asyncio
import threading
import time

from appliance.core.notify import JobNotifier


def test_notifier_wakes_waiter_from_another_thread() -> None:
    notifier = JobNotifier()

    async def scenario() -> tuple[bool, bool]:
        threading.Timer(0.05, notifier.changed, args=("job-1",)).start()
        woke = await notifier.wait("job-1", timeout=5)
        timed_out = await notifier.wait("job-2", timeout=0.05)
        return woke, timed_out

    woke, other = asyncio.run(scenario())
    assert woke is True
    assert other is False
    assert notifier._waiters == {}  # no waiter left behind


def test_a_change_while_the_watcher_was_busy_is_not_slept_through() -> None:
    notifier = JobNotifier()

    async def watch() -> tuple[bool, float]:
        seen = notifier.version("job")
        notifier.changed("job")  # while the watcher was reading the row or sending an event
        started = time.monotonic()
        woke = await notifier.wait("job", 5.0, since=seen)
        return woke, time.monotonic() - started

    woke, waited = asyncio.run(watch())
    assert woke and waited < 0.5


def test_without_a_change_the_wait_times_out() -> None:
    notifier = JobNotifier()

    async def watch() -> bool:
        return await notifier.wait("job", 0.05, since=notifier.version("job"))

    assert asyncio.run(watch()) is False
