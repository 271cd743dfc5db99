"""Faust's consumer without two tasks and an ``asyncio.wait`` per Kafka message.

Faust's fetcher hands every message to the streams with
``await self.wait_first(callback(message), self.suspend_flow.wait())``: four tasks, an
``asyncio.wait`` and their cancellation, per message, so that a rebalance (``suspend_flow``)
can interrupt a callback that is blocked on a full stream buffer. Almost always the callback
does not block at all (it puts the event into a stream queue that has room), and that race was
~15-20% of a normalize worker's CPU (py-spy, bench/bench_processors.py).

:class:`FastFlowConsumer` runs the callback in place up to its first suspension. If it
finishes there (the usual case) nothing else is created. If it must wait, the rest of it runs
as a task raced against ``suspend_flow`` exactly as Faust does. Any other ``wait_first`` call
goes to Faust unchanged.
"""

from __future__ import annotations

import asyncio
from typing import Any

from mode.utils.locks import Event as ModeEvent

_EVENT_WAIT = (ModeEvent.wait.__code__, asyncio.Event.wait.__code__)


class _Resume:
    """Awaitable that continues a coroutine from its first suspension, with ``yield from``
    semantics: what it yields goes to the driving Task untouched (a future still flagged as
    blocking), and what the Task sends or throws goes back into it, as if the Task had driven it
    from the start."""

    __slots__ = ("coro", "first")

    def __init__(self, coro: Any, first: Any) -> None:
        self.coro, self.first = coro, first

    def __await__(self) -> Any:
        coro, yielded = self.coro, self.first
        while True:
            try:
                sent = yield yielded
            except BaseException as exc:  # noqa: BLE001 - handed to the coroutine, as a Task does
                try:
                    yielded = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    yielded = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


async def _finish(coro: Any, first: Any) -> Any:
    return await _Resume(coro, first)


def fast_flow(consumer_cls: type) -> type:
    """A subclass of a Faust transport consumer class with the in-place fast path."""

    class FastFlowConsumer(consumer_cls):
        async def wait_first(self, *coros: Any, timeout: Any = None) -> Any:
            if (len(coros) == 2 and timeout is None and asyncio.iscoroutine(coros[0])
                    and getattr(coros[1], "cr_code", None) in _EVENT_WAIT and not self.suspend_flow.is_set()):
                callback, flow = coros
                try:
                    yielded = callback.send(None)
                except StopIteration:
                    flow.close()
                    return None  # the fetcher does not look at the result
                except BaseException:
                    flow.close()
                    raise
                return await super().wait_first(_finish(callback, yielded), flow)
            return await super().wait_first(*coros, timeout=timeout)

    return FastFlowConsumer
