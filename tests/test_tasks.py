"""A worker's shutdown finishes even when a background task loses its cancellation."""

import asyncio
import contextlib
import logging
import time

from bot import tasks


async def test_a_task_that_swallows_its_cancellation_does_not_hang_the_shutdown(caplog):
    released = asyncio.Event()

    async def stubborn() -> None:  # as a client library that shields its teardown and drops the CancelledError
        while not released.is_set():
            with contextlib.suppress(asyncio.CancelledError):
                await released.wait()

    task = asyncio.get_running_loop().create_task(stubborn(), name="kefu-stubborn")
    await asyncio.sleep(0)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="bot.tasks"):
        await tasks.stop(task, timeout_s=0.3)
    assert time.monotonic() - started < 2
    assert "kefu-stubborn did not stop" in caplog.text
    released.set()  # (the test's own loop must not keep it)
    await task


async def test_a_task_that_stops_is_waited_for():
    finished = asyncio.Event()

    async def polite() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            finished.set()

    task = asyncio.get_running_loop().create_task(polite())
    await asyncio.sleep(0)
    await tasks.stop(task)
    assert finished.is_set() and task.cancelled()


async def test_a_task_that_lost_one_cancellation_is_cancelled_again_and_stops(caplog):
    async def loop_that_lost_one() -> None:  # as an IMAP reader whose command finished as the cancellation came
        lost = False
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                if lost:
                    raise
                lost = True  # asyncio.wait_for on Python 3.11 returns the result instead of raising

    one, two = (asyncio.get_running_loop().create_task(loop_that_lost_one()) for _ in range(2))
    await asyncio.sleep(0)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="bot.tasks"):
        await tasks.stop(one, two, None)
    assert one.cancelled() and two.cancelled() and time.monotonic() - started < 2
    assert "did not stop" not in caplog.text
