"""The two client configurations marketpipe builds in many places, built in one.

* Every producer whose records must not be lost or doubled (md.* records, raw frames, order
  commands, the kill switch) is idempotent and waits for all in-sync replicas: the broker then
  drops a retried batch it already has, and an acknowledged record survives a broker failure.
* Every admin client sends librdkafka's log lines to Python logging (the repeat filter of
  :mod:`marketpipe.kafka.quietlog`) instead of raw stderr; a readiness probe silences them.

Both take the client config (``settings.kafka.client_config()``, or a client's own) rather than
the settings, because the public client and the pytest plugin hold only that.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from marketpipe.kafka.quietlog import rdkafka_logger

if TYPE_CHECKING:
    from confluent_kafka.admin import AdminClient

#: what makes a producer durable (a caller's extras come after it, so a test can still turn it off)
DURABLE = {"enable.idempotence": True, "acks": "all"}


def durable_producer_config(client_config: Mapping[str, Any], extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """An idempotent, acks=all producer's configuration: ``client_config``, then :data:`DURABLE`,
    then ``extra`` (tuning: linger, compression, queue sizes, callbacks)."""
    return {**client_config, **DURABLE, **(extra or {})}


def admin(client_config: Mapping[str, Any], *, silent: bool = False) -> AdminClient:
    """An admin client whose librdkafka log goes to Python logging; ``silent`` turns it off
    instead, for a probe that asks again and again whether a starting broker answers yet."""
    from confluent_kafka.admin import AdminClient

    logging = {"log_level": "0"} if silent else rdkafka_logger()
    return AdminClient({**client_config, **logging})
