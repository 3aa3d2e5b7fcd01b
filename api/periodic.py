"""Background work the service repeats (maintenance, audit checkpoints): one
task per kind and process, the blocking call in the thread pool, a failure
logged and retried at the next interval, never ending the loop."""
from __future__ import annotations

import asyncio
import logging
from typing import Callable

from starlette.concurrency import run_in_threadpool

_running: dict[str, asyncio.Task] = {}  # this process's task of each kind


def start_periodic(kind: str, work: Callable[[], object], interval: float, log: logging.Logger) -> Callable[[], None]:
    """Call ``work`` now and then every ``interval`` seconds, unless such a
    task runs already in this process or the interval is not positive.
    Returns the stop function for the app's shutdown."""
    running = _running.get(kind)
    if interval <= 0 or (running is not None and not running.done()):
        return lambda: None

    async def loop() -> None:
        while True:
            try:
                await run_in_threadpool(work)
            except Exception as exc:  # a database hiccup must not end the loop
                log.warning("%s failed: %s", kind, exc)
            await asyncio.sleep(interval)

    task = asyncio.get_running_loop().create_task(loop(), name=f"bridgeca-{kind}")
    _running[kind] = task

    def stop() -> None:
        task.cancel()
        if _running.get(kind) is task:
            del _running[kind]

    return stop
