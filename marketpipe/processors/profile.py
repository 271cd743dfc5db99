"""The processor's latency/throughput trade-off as one setting: ``MARKETPIPE_PROCESSOR_PROFILE``.

Both profiles hand the raw topics' records to the normalizer per fetch
(:func:`~marketpipe.processors.faust_consumer.batch_routed`) and flush each fetch's records before its
offsets are acknowledged (at-least-once, see marketpipe/processors/app.py); a fetch is processed
as soon as it arrives. What they trade is how much each fetch, flush and bar step may hold:

* ``latency`` (default): fetches wait at most 10 ms at the broker and the bar agent of a combined
  worker returns to the loop every 200 ticks, so a frame is decoded and readable about as soon as
  it is fetched.
* ``throughput``: fetches wait up to 100 ms and the bar agent bins whole batches: fewer, larger
  batches and flushes, for replaying a backlog or a worker that runs near its CPU limit.

Both hand over up to 10,000 records per poll and let the output producer linger 20 ms (the flush
that ends every fetch sends at once whatever the linger). The latency profile had 1,000-record
polls, which worked a backlog off in ten flushes instead of one (its p99 at 10,000 records/s was
seconds), and a 1 ms linger, which split a busy fetch into many small produce requests (its p50
at 10,000 records/s was 65-94 ms against 21-35 ms with 20 ms); bench/README.md, issue 19.

The broker wait matters beyond batching: Faust's own 1,500 ms let a busy worker fall into ~1.5 s
fetch cycles (marketpipe/processors/faust_consumer.py, ``fetch_wait``).

Both profiles run Faust on uvloop when it is installed (the asyncio machinery around every event
is a large share of a worker's CPU) and tune the garbage collector (:func:`tune_gc`); both are
applied by ``marketpipe process``. Started as ``faust -A marketpipe.processors.app worker`` instead, pass
``-L uvloop`` (or ``FAUST_LOOP=uvloop``) yourself. bench/bench_latency.py and bench/bench_processors.py measure
each profile; README.md (Scaling out) has the figures.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Profile:
    name: str
    #: raw frames Faust hands from its consumer thread per poll
    max_poll_records: int
    #: events buffered per stream between the consumer and an agent (md.tick for the bar agent)
    stream_buffer_maxsize: int
    #: longest a fetch request waits at the broker for data: also the longest a busy partition
    #: can wait behind a fetch of quiet ones (marketpipe/processors/faust_consumer.py, fetch_wait)
    fetch_max_wait_ms: int
    #: output producer's linger (each fetch ends with a flush, which sends at once anyway)
    linger_ms: int
    #: Faust's event loop: uvloop when importable, else asyncio's own
    loop: str = "uvloop"
    #: md.tick records the bar agent bins (and books it snapshots) before it lets the loop run the
    #: normalize path: a bar batch of thousands of ticks otherwise holds it for tens of ms
    bar_chunk: int = 10_000
    #: bytes a fetch request waits for at the broker, up to ``fetch_max_wait_ms`` (aiokafka's own: 1)
    fetch_min_bytes: int = 1


PROFILES: dict[str, Profile] = {
    "latency": Profile("latency", max_poll_records=10000, stream_buffer_maxsize=8192, fetch_max_wait_ms=10,
                       linger_ms=20, bar_chunk=200),
    "throughput": Profile("throughput", max_poll_records=10000, stream_buffer_maxsize=32768,
                          fetch_max_wait_ms=100, linger_ms=20),
}


#: A bars-only worker's md.tick fetches: each batch snapshots every book it touched to md.bar.state,
#: so fetches of a few ms at 10,000 ticks/s over 1,000 symbols wrote about as many snapshots as ticks
#: (bench/README.md). Bars wait ``MARKETPIPE_BAR_GRACE`` (2 s) past their window anyway: a fetch
#: may wait up to this long for this many bytes, and hands over this many records at most.
BAR_FETCH_WAIT_MS = 500
BAR_FETCH_MIN_BYTES = 256 * 1024
BAR_MAX_POLL_RECORDS = 20_000


def profile(name: str) -> Profile:
    return PROFILES[name]


def bars_only(p: Profile) -> Profile:
    """``p`` for a worker that only makes bars: fewer, larger md.tick fetches (see BAR_FETCH_WAIT_MS)."""
    return replace(p, max_poll_records=max(p.max_poll_records, BAR_MAX_POLL_RECORDS),
                   fetch_max_wait_ms=max(p.fetch_max_wait_ms, BAR_FETCH_WAIT_MS), fetch_min_bytes=BAR_FETCH_MIN_BYTES)


def event_loop(p: Profile) -> str | None:
    """The FAUST_LOOP value for this profile, or None when its loop is not installed."""
    if p.loop == "uvloop":
        import importlib.util

        return "uvloop" if importlib.util.find_spec("uvloop") is not None else None
    return p.loop


#: Allocations between young-generation collections (CPython's default is 700). A worker allocates
#: a few dozen short-lived objects per record (frames, dicts, Faust events), nearly all freed by
#: reference counting; at the default every ~20 records started a collection walking the young
#: objects, and every tenth a scan of Faust's and asyncio's long-lived ones: ~20% of a normalize
#: worker's CPU (bench/bench_processors.py, 30.9k -> 39.6k records per CPU-second).
GC_THRESHOLDS = (50_000, 20, 100)


def tune_gc() -> None:
    """Collect garbage less often, and never scan what exists when the worker starts (modules,
    schemas, Faust's app): call it once, just before the worker runs."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
