"""Run a simulator in a background thread (tests, demo).

    from marketpipe.simulators.runner import run
    with run("jvquant", rate=500, symbols=["600519", "000001"], record=tmp_path / "sent.jsonl") as sim:
        sim.base_url       # http://127.0.0.1:PORT  (jvQuant allocation base, Jin10 base)
        sim.url            # what a client connects to: jvQuant/Jin10 = base_url, Infoway = ws://127.0.0.1:PORT/ws
        sim.port
        sim.sim.fault("drop")          # fault switches: drop|stall|garbage|reject_auth|rate_limit|restart|clear
        sim.sim.fault("mute", 0, symbol="600519")  # one symbol silent, the socket up and answering pings
        sim.stats()                    # counters: totals/per_connection frames, rows, trades, garbage, bytes
        # with record=FILE: one JSON line per frame sent ({conn, seq, type, bytes, ts_ns, rows}),
        # flushed every push tick
    # or: sim = run(...); ...; sim.stop()

``run(provider_or_instance, **options)`` accepts a provider name of the registry
(marketpipe/providers/) or an already-built ``SimServer``; options are ``SimConfig`` fields
(host, port, rate, symbols, seed, clock_speed, record, ticks_per_second, api_key) plus
provider-specific keyword arguments.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from marketpipe import providers
from marketpipe.simulators.server import SimServer


def build(provider: str, **options: Any) -> SimServer:
    try:
        entry = providers.get(provider)
    except providers.UnknownProvider as exc:
        raise ValueError(str(exc)) from None
    return entry.load_simulator()(**options)


class Running:
    """A simulator serving from its own thread and event loop."""

    def __init__(self, sim: SimServer) -> None:
        self.sim = sim
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name=f"sim-{sim.provider}", daemon=True)
        self._thread.start()
        if not self._started.wait(15):
            raise RuntimeError("simulator did not start within 15 s")
        if self._error:
            raise RuntimeError(f"simulator failed to start: {self._error}") from self._error

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self.sim.start())
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
            self._started.set()
            return
        self._started.set()
        self._loop.run_forever()
        try:
            self._loop.run_until_complete(self.sim.stop())
        finally:
            leftovers = asyncio.all_tasks(self._loop)  # handlers of connections that were aborted
            for task in leftovers:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
            self._loop.close()

    @property
    def port(self) -> int:
        return self.sim.port

    @property
    def base_url(self) -> str:
        return self.sim.base_url

    @property
    def url(self) -> str:
        return self.sim.url

    def call(self, coro: Any, timeout: float = 10.0) -> Any:
        """Run a coroutine on the simulator's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def stats(self) -> dict[str, Any]:
        """Counters of what was sent (totals and per connection), read on the simulator's loop."""
        return self.call(self.sim.astats())

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(15)

    def __enter__(self) -> "Running":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run(provider: str | SimServer, **options: Any) -> Running:
    sim = provider if isinstance(provider, SimServer) else build(provider, **options)
    return Running(sim)


async def serve(provider: str, **options: Any) -> None:
    """Run one provider's simulator until cancelled; prints its addresses (``NAME=URL`` lines) and
    its control endpoints first, for a caller that reads them."""
    sim = build(provider, **options)
    await sim.start()
    try:
        for name, address in sim.addresses().items():
            print(f"{name}={address}", flush=True)
        print(f"# control: {sim.base_url}/_control/fault  stats: {sim.base_url}/_control/stats", flush=True)
        await asyncio.Event().wait()
    finally:
        await sim.stop()
