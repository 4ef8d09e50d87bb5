import asyncio
import threading

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
