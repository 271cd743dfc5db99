"""The two client configurations marketpipe builds in many places, built in one.

* Every producer whose records must not be lost or doubled (md.* records, raw frames, order
  commands, the kill switch) is idempotent and waits for all in-sync replicas: the broker then
  drops a retried batch it already has, and an acknowledged record survives a broker failure.
* Every admin client sends librdkafka's log lines to Python logging (the repeat filter of
  :mod:`marketpipe.kafka.quietlog`) instead of raw stderr; a readiness probe silences them.

Both take the client config (``settings.kafka.client_config()``, or a client's own) rather than
the settings, because the public client and the pytest plugin hold only that.

:func:`readable_now` is how a reader that stamps arrival times (the demo's view, the latency
benchmark) takes records.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from marketpipe.kafka.quietlog import rdkafka_logger

if TYPE_CHECKING:
    from confluent_kafka.admin import AdminClient

#: what makes a producer durable (a caller's extras come after it, so a test can still turn it off)
DURABLE = {"enable.idempotence": True, "acks": "all"}

#: librdkafka timeouts so a request stuck on a paused (SIGSTOPped, frozen, partitioned) broker is
#: abandoned and retried on the partition's new leader within seconds. Leadership moves off such a
#: node after the broker session timeout (KRaft: 9 s). With librdkafka's defaults a request in
#: flight to it waited 60 s (``socket.timeout.ms``: the client-side timeout of every request,
#: produce requests included) and a reconnect to it 30 s (``socket.connection.setup.timeout.ms``:
#: the TCP connect succeeds, the ApiVersion request is never answered), so a 30 s pause stalled
#: the stream for the whole pause (tests/test_fault_suite.py). A request that times out is only
#: retried: producers are idempotent, so a retried batch is never written twice; a consumer fetches
#: again. A healthy request takes milliseconds; fetches add ``fetch.wait.max.ms`` to this.
#: For every librdkafka client (consumers and admin clients too); :data:`FAILOVER_PRODUCER` for producers.
FAILOVER = {"socket.timeout.ms": 5_000, "socket.connection.setup.timeout.ms": 5_000}
#: and the acks=all wait the broker allows a produce request (``request.timeout.ms``, 30 s by
#: default, is enforced by the broker only): a partition waiting for a paused in-sync follower
#: answers REQUEST_TIMED_OUT after 5 s and the batch is retried, instead of holding it 30 s
FAILOVER_PRODUCER = {**FAILOVER, "request.timeout.ms": 5_000}


def durable_producer_config(client_config: Mapping[str, Any], extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """An idempotent, acks=all producer's configuration: ``client_config``, then :data:`DURABLE` and
    :data:`FAILOVER_PRODUCER`, then ``extra`` (tuning: linger, compression, queue sizes, callbacks)."""
    return {**client_config, **DURABLE, **FAILOVER_PRODUCER, **(extra or {})}


def admin(client_config: Mapping[str, Any], *, silent: bool = False) -> AdminClient:
    """An admin client whose librdkafka log goes to Python logging; ``silent`` turns it off
    instead, for a probe that asks again and again whether a starting broker answers yet."""
    from confluent_kafka.admin import AdminClient

    logging = {"log_level": "0"} if silent else rdkafka_logger()
    return AdminClient({**client_config, **logging})


def readable_now(consumer: Any, wait_s: float, most: int = 1000) -> list[Any]:
    """The records a consumer can hand over now, waiting up to ``wait_s`` for the first one only.

    ``consume(n, timeout)`` returns only once it has ``n`` records or the timeout ran out, so a
    reader that stamps arrival times after it would stamp a record up to that timeout late."""
    first = consumer.poll(wait_s)
    if first is None:
        return []
    return [first, *consumer.consume(most, timeout=0)]
