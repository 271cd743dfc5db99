"""The trader's Kafka consumers: order.control, order.commands (and md.quote for security names).

The kill switch (order.control, compacted, replayed from its start) is read to its end before
the first command: otherwise a restart would act on commands before it has seen a halt. Then
commands are handled in partition order, order.control drained between them and while a command
settles. The command's offset is committed only after its events and ledger entry are
acknowledged by Kafka; an outcome that says not to commit rewinds to the command and pauses.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from marketpipe.kafka import topics
from marketpipe.kafka.clients import FAILOVER
from marketpipe.trader import names
from marketpipe.trader.consumer import Trader
from marketpipe.trader.order_command import RecordRef

log = logging.getLogger(__name__)


def _timestamp_ms(msg: Any) -> int | None:
    kind, ts = msg.timestamp()
    return ts if kind != 0 and ts > 0 else None  # 0: TIMESTAMP_NOT_AVAILABLE


def read_control_to_end(trader: Trader, control: Any, partitions: int, timeout: float = 30.0) -> None:
    """Apply order.control up to its end before any command is handled.

    Otherwise a restart would act on commands before it has seen a halt. If the topic cannot
    be read in time, trading starts halted (fail closed); a later record lifts it."""
    at_end: set[int] = set()
    deadline = time.monotonic() + timeout
    while len(at_end) < partitions and time.monotonic() < deadline:
        for msg in control.consume(100, timeout=0.5):
            if msg.error():
                if msg.error().code() == -191:  # _PARTITION_EOF
                    at_end.add(msg.partition())
                continue
            trader.on_control(msg.key(), msg.value(), RecordRef(msg.topic(), msg.partition(), msg.offset()),
                              _timestamp_ms(msg))
    if len(at_end) < partitions:  # fail closed; a later record lifts it
        trader.switch.fail_closed(f"order.control not read to its end in {timeout:.0f} s")


def open_quote_names(trader: Trader) -> names.QuoteNames | None:
    """The md.quote reader that feeds security names; None (reference names only) when it cannot start."""
    topic = trader.settings.topic(topics.MD_QUOTE)
    try:
        return names.QuoteNames(trader.settings.kafka.client_config(), topic,
                                trader.settings.group_id("marketpipe-trader-names"),
                                lambda v: trader.codec.decode(v, expect="Quote").record, trader.names)
    except Exception as exc:  # a missing topic must not stop trading on reference names
        log.warning("security names from %s unavailable (%s): reference file only", topic, exc)
        return None


def run_loop(trader: Trader, stop: threading.Event, idle_exit: float | None = None) -> None:
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

    s = trader.settings
    # a command or ledger read stuck on a paused broker is retried on the new leader within seconds
    base = {**s.kafka.client_config(), **FAILOVER}
    trader.recover(base)
    control = Consumer({**base, "group.id": trader.groups.control, "enable.auto.commit": False,
                        "enable.partition.eof": True})
    control_topic = s.topic(topics.ORDER_CONTROL)
    md = control.list_topics(control_topic, timeout=15).topics[control_topic]
    control.assign([TopicPartition(control_topic, p, OFFSET_BEGINNING) for p in md.partitions])
    read_control_to_end(trader, control, len(md.partitions))

    def drain_control() -> None:
        for ctl in control.consume(100, timeout=0):
            if not ctl.error():
                trader.on_control(ctl.key(), ctl.value(), RecordRef.of(ctl), _timestamp_ms(ctl))

    trader.switch.refresh = drain_control
    quote_names = open_quote_names(trader)
    commands = Consumer({**base, "group.id": trader.groups.commands, "enable.auto.commit": False,
                         "auto.offset.reset": "earliest", "isolation.level": "read_committed"})

    def on_assign(consumer: Any, partitions: list[Any]) -> None:
        # another instance may have written the ledger since we read it: read it again
        trader.recover(base)

    commands.subscribe([s.topic(topics.ORDER_COMMANDS)], on_assign=on_assign)
    log.info("trader ready: consuming %s for account %s", s.topic(topics.ORDER_COMMANDS), trader.accounts.public)
    last_msg = time.monotonic()
    try:
        while not stop.is_set():
            drain_control()
            if quote_names is not None:
                quote_names.poll()
            msg = commands.poll(0.2)
            trader.maybe_poll()
            if msg is None:
                if idle_exit is not None and time.monotonic() - last_msg > idle_exit:
                    break
                continue
            if msg.error():
                log.warning("consumer: %s", msg.error())
                continue
            last_msg = time.monotonic()
            outcome = trader.handle(msg.value() or b"", time.time_ns(), RecordRef.of(msg))
            trader.events.flush()
            if outcome.commit:
                try:
                    commands.commit(message=msg, asynchronous=False)
                except KafkaException as exc:
                    log.warning("offset commit failed (the command will be seen again and deduplicated): %s", exc)
            else:
                # leave the offset; rewind so the command is retried after a pause
                commands.seek(TopicPartition(msg.topic(), msg.partition(), msg.offset()))
                time.sleep(1.0)
    finally:
        commands.close()
        control.close()
        if quote_names is not None:
            quote_names.close()
        trader.events.flush()
