"""Event-time OHLCV bars from ``md.tick``: the pure windows (:mod:`.book`), the agent's state across
restarts and rebalances (:mod:`.state`, snapshots on ``md.bar.state``), and the gaps it flags bars
with (:mod:`.gaps`, read from ``md.status``)."""
