"""marketpipe/processors/faust_consumer.py: Faust's per-message race, run in place when the callback does not wait.

The consumer class under test is the fast-path subclass of a real ``mode.Service`` (whose
``wait_first`` Faust's consumer inherits), with an asyncio ``suspend_flow`` event as Faust has.
"""

from __future__ import annotations

import asyncio

import mode

from marketpipe.processors.faust_consumer import fast_flow
from tests.support.paths import ROOT


def consumer() -> mode.Service:
    svc = fast_flow(mode.Service)()
    svc.suspend_flow = asyncio.Event()
    return svc


def test_a_callback_that_does_not_wait_runs_in_place_without_tasks() -> None:
    async def main() -> None:
        c, seen = consumer(), []

        async def callback(x: int) -> None:
            seen.append(x)

        before = len(asyncio.all_tasks())
        for i in range(3):
            await c.wait_first(callback(i), c.suspend_flow.wait())
            assert len(asyncio.all_tasks()) == before
        assert seen == [0, 1, 2]

    asyncio.run(main())


def test_a_callback_blocked_on_a_full_queue_finishes_when_there_is_room() -> None:
    async def main() -> None:
        c, q = consumer(), asyncio.Queue(maxsize=1)
        q.put_nowait("first")

        async def callback() -> None:  # like Faust's conductor: asyncio.wait on puts into a full buffer
            await asyncio.wait([asyncio.ensure_future(q.put("second"))])

        async def drain_later() -> None:
            await asyncio.sleep(0.05)  # the scenario: room only once the callback is blocked
            assert q.get_nowait() == "first"

        drainer = asyncio.ensure_future(drain_later())
        await asyncio.wait_for(c.wait_first(callback(), c.suspend_flow.wait()), 5)
        await drainer
        assert q.get_nowait() == "second"

    asyncio.run(main())


def test_a_blocked_callback_is_cancelled_when_the_flow_is_suspended() -> None:
    async def main() -> None:
        c, q = consumer(), asyncio.Queue(maxsize=1)
        q.put_nowait("first")
        outcome = []

        async def callback() -> None:
            try:
                await asyncio.ensure_future(q.put("second"))  # awaits a task, which the cancel leaves pending
            except asyncio.CancelledError:
                outcome.append("cancelled")
                raise

        async def suspend_later() -> None:
            await asyncio.sleep(0.05)  # the scenario: the flow is suspended while the callback is blocked
            c.suspend_flow.set()

        asyncio.ensure_future(suspend_later())
        await asyncio.wait_for(c.wait_first(callback(), c.suspend_flow.wait()), 5)
        for _ in range(1000):  # the cancelled callback runs once more to see its CancelledError
            if outcome:
                break
            await asyncio.sleep(0)  # the polling step: one turn of the loop
        assert outcome == ["cancelled"]
        assert q.qsize() == 1

    asyncio.run(main())


def test_an_error_in_the_callback_propagates_either_way() -> None:
    async def main() -> None:
        c = consumer()

        async def fails_at_once() -> None:
            raise ValueError("bad message")

        async def fails_later() -> None:
            await asyncio.sleep(0.01)  # the scenario: the error comes after the callback first yields
            raise ValueError("bad later")

        for cb in (fails_at_once, fails_later):
            try:
                await c.wait_first(cb(), c.suspend_flow.wait())
            except ValueError as exc:
                assert "bad" in str(exc)
            else:
                raise AssertionError("the callback's error was swallowed")

    asyncio.run(main())


def test_every_internal_the_consumer_subclasses_use_exists_on_the_installed_versions() -> None:
    from importlib.metadata import version

    from marketpipe.processors.faust_consumer import Reliance, check_reliances, reliances

    assert check_reliances() == [], f"faust-streaming {version('faust-streaming')}, aiokafka {version('aiokafka')}"
    names = {r.member for r in reliances()}
    assert {"_getmany", "_acked", "_read_offset", "_fetch_max_wait_ms", "wait_first"} <= names

    class Lib:
        def start(self) -> None:
            self._other = 1

    # the check can fail: a member gone from a class, or no longer used where it was
    assert not Reliance(Lib, "_getmany").holds() and not Reliance(Lib, "_fetch_max_wait_ms", "start").holds()
    assert Reliance(Lib, "_other", "start").holds()


def test_the_pin_names_the_versions_the_check_ran_on() -> None:
    import re
    from importlib.metadata import version

    pins = ROOT.joinpath("pyproject.toml").read_text()
    for dist in ("faust-streaming", "aiokafka"):
        low, high = re.search(rf'"{dist}>=([\d.]+),<([\d.]+)"', pins).groups()  # type: ignore[union-attr]
        installed = tuple(int(x) for x in version(dist).split(".")[:3])
        assert tuple(int(x) for x in low.split(".")) <= installed < tuple(int(x) for x in high.split(".")), dist
        assert high.split(".")[0] == low.split(".")[0] and int(high.split(".")[1]) == int(low.split(".")[1]) + 1, \
            f"{dist}: the pin spans one minor version, the one checked"


def test_a_worker_refuses_to_start_on_versions_without_them(monkeypatch) -> None:
    import pytest

    from marketpipe.processors import app
    from marketpipe.settings import load

    monkeypatch.setattr(app, "check_reliances", lambda: ["faust.transport.consumer.Consumer._acked"])
    with pytest.raises(RuntimeError, match="Consumer._acked"):
        app.build_app(load({"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}))
