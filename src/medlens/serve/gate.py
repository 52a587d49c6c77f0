"""Bounded concurrency for inference: a fixed number running, a bounded number waiting.

A request is *admitted* once its whole body is in (at most ``concurrency + queue_size`` at
once; the rest are refused at once with 503 + Retry-After), so slow or stalled uploads
never hold a place (their time is bounded apart, and :class:`ClientUploads` caps how many
one client may have going). An admitted request waits for one of
``concurrency`` *slots*, and runs in a thread pool of that size with a deadline. A job that
misses its deadline keeps its slot until its thread really ends, so timed-out work can
never pile up threads or memory behind the caller's back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

__all__ = ["ClientUploads", "InferenceGate", "InferenceTimeout", "Saturated"]

T = TypeVar("T")


class Saturated(Exception):
    """No room to take another request now."""


class InferenceTimeout(Exception):
    """The job did not finish before its deadline."""


class ClientUploads:
    """How many uploads each client address is still sending; at most ``limit`` each."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._counts: dict[str, int] = {}

    def enter(self, client: str) -> bool:
        """Count one more upload from ``client``; False (not counted) if it has ``limit``."""
        count = self._counts.get(client, 0)
        if count >= self.limit:
            return False
        self._counts[client] = count + 1
        return True

    def leave(self, client: str) -> None:
        count = self._counts.get(client, 0) - 1
        if count > 0:
            self._counts[client] = count
        else:
            self._counts.pop(client, None)

    def sending(self, client: str) -> int:
        return self._counts.get(client, 0)


class InferenceGate:
    """Admission control, slots and a thread pool, for one event loop."""

    def __init__(
        self,
        concurrency: int,
        queue_size: int,
        timeout_s: float,
        thread_init: Callable[[], None] | None = None,
        on_change: Callable[[int], None] | None = None,
    ) -> None:
        """``on_change`` is called with :attr:`waiting` whenever it may have changed."""
        self.concurrency = concurrency
        self.capacity = concurrency + queue_size
        self.timeout_s = timeout_s
        self.admitted = 0
        self.running = 0
        self._on_change = on_change
        self._slots: asyncio.Semaphore | None = None
        self._pool = ThreadPoolExecutor(
            max_workers=concurrency, thread_name_prefix="medlens-infer", initializer=thread_init
        )

    @property
    def slots(self) -> asyncio.Semaphore:
        if self._slots is None:  # created lazily, inside the running loop
            self._slots = asyncio.Semaphore(self.concurrency)
        return self._slots

    def admit(self) -> None:
        """Take a place in the system or raise :class:`Saturated`."""
        if self.admitted >= self.capacity:
            raise Saturated
        self.admitted += 1
        self._changed()

    def leave(self) -> None:
        self.admitted -= 1
        self._changed()

    @property
    def waiting(self) -> int:
        """Admitted requests not (yet) running."""
        return max(0, self.admitted - self.running)

    async def run(self, func: Callable[[], T], deadline: float | None = None) -> T:
        """Run ``func`` in the pool once a slot is free; raise on timeout."""
        deadline = deadline if deadline is not None else time.monotonic() + self.timeout_s
        try:
            await asyncio.wait_for(self.slots.acquire(), max(0.0, deadline - time.monotonic()))
        except asyncio.TimeoutError:
            raise InferenceTimeout from None
        self.running += 1
        self._changed()
        future = asyncio.get_running_loop().run_in_executor(self._pool, func)
        future.add_done_callback(self._release)
        try:
            return await asyncio.wait_for(
                asyncio.shield(future), max(0.0, deadline - time.monotonic())
            )
        except asyncio.TimeoutError:
            future.add_done_callback(_consume_exception)
            raise InferenceTimeout from None

    def _release(self, _future: asyncio.Future) -> None:
        self.running -= 1
        self.slots.release()
        self._changed()

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change(self.waiting)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _consume_exception(future: asyncio.Future) -> None:
    """An orphaned job's error is not interesting to anyone; do not log it as unhandled."""
    if not future.cancelled():
        future.exception()
