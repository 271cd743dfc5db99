"""The processor's latency/throughput trade-off as one setting: ``MARKETPIPE_PROCESSOR_PROFILE``.

A normalize agent takes raw frames in batches (``take_events``) and flushes the batch's records
before Faust acknowledges its offsets (at-least-once, see marketpipe/processors/app.py). The batch window is
what a frame waits for before it is decoded, and every batch costs one flush round trip and one
acknowledgement pass, so the window trades latency for CPU per record:

* ``latency`` (default): a 2 ms window; a frame is decoded about as soon as it is fetched. At
  1,000 frames/s a batch holds a few frames, so the per-batch cost shows in CPU per record, and
  the window's timer wakes an idle worker 500 times a second per agent (3.7% of a core idle,
  against 0.8% in the throughput profile).
* ``throughput``: the raw topics' records go to the normalizer per fetch, without a Faust event
  each (:func:`~marketpipe.processors.fastpath.batch_routed`), with larger fetch hand-offs and a
  longer producer linger: about half the CPU per record of the latency profile, for replaying a
  backlog or a worker that runs near its CPU limit. A fetch is processed as soon as it arrives,
  so there is no window to wait for; but at 10,000 records/s such a worker settled more often
  than one of the latency profile into ~1.5 s fetch cycles (bench/README.md).

Both profiles run Faust on uvloop when it is installed (the asyncio machinery around every event
is a large share of a worker's CPU) and tune the garbage collector (:func:`tune_gc`); both are
applied by ``marketpipe process``. Started as ``faust -A marketpipe.processors.app worker`` instead, pass
``-L uvloop`` (or ``FAUST_LOOP=uvloop``) yourself. bench/bench_latency.py and bench/bench_processors.py measure
each profile; README.md (Scaling out) has the figures.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    name: str
    #: take_events window of the normalize agents, seconds: the longest a fetched frame waits
    batch_within: float
    #: raw frames Faust hands from its consumer thread per poll
    max_poll_records: int
    #: events buffered per stream between the consumer and the agent
    stream_buffer_maxsize: int
    #: longest a fetch request waits at the broker for data: also the longest a busy partition
    #: can wait behind a fetch of quiet ones (marketpipe/processors/fastpath.py, fetch_wait)
    fetch_max_wait_ms: int
    #: output producer's linger (each batch ends with a flush, which sends at once anyway)
    linger_ms: int
    #: Faust's event loop: uvloop when importable, else asyncio's own
    loop: str = "uvloop"
    #: raw records handed to the normalizer per fetch, not as one Faust event each
    #: (marketpipe/processors/fastpath.py, batch_routed); the window above then no longer applies.
    #: Not in the latency profile: at 10,000 records/s a worker reading per fetch settled into
    #: ~1.5 s fetch cycles (p50 ~1 s, bench/README.md), cause not found
    batch_path: bool = False
    #: md.tick records the bar agent bins (and books it snapshots) before it lets the loop run the
    #: normalize path: a bar batch of thousands of ticks otherwise holds it for tens of ms
    bar_chunk: int = 10_000


PROFILES: dict[str, Profile] = {
    "latency": Profile("latency", batch_within=0.002, max_poll_records=1000, stream_buffer_maxsize=8192,
                       fetch_max_wait_ms=10, linger_ms=1, bar_chunk=200),
    "throughput": Profile("throughput", batch_within=0.1, max_poll_records=10000, stream_buffer_maxsize=32768,
                          fetch_max_wait_ms=100, linger_ms=20, batch_path=True),
}


def profile(name: str) -> Profile:
    return PROFILES[name]


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
