"""Done-when check: ``marketpipe trade`` (real Kafka) against a counter answering exactly in the
documented shapes (tests/data/conformance/jvquant_trade: no ``code`` on /buy, /check_order,
/check_hold; allocation only at the documented ``/server``, address without a scheme) sends
exactly one /buy per command — accepted, refused, or answered with neither id nor reason —
and reports ACCEPTED/SUBMITTED, or ACCEPTED/FAILED with the broker's message.
"""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from marketpipe.trader import commands
from tests.support.trade_stub import StubConfig, TradeStub, case
from tests.support.trader_stack import ACCOUNT, KEY, Events, start_trader, trader_env, with_topics

ANSWERS = {"000001": "buy_documented_refused", "300750": "buy_documented_neither"}


@pytest.fixture(scope="module")
def documented(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("trade-documented")
    config = StubConfig(allocation="server_documented", allocation_paths=("/server",), place="buy_documented_placed",
                        place_by_code=ANSWERS, hidden_polls=2)
    with TradeStub(config) as stub:
        env = trader_env(kafka_bootstrap, tmp, stub.url, MARKETPIPE_TRADER_MAX_ORDER_NOTIONAL="1000000")
        s = with_topics(env)
        log = tmp / "marketpipe.trader.log"
        proc = start_trader(env, log)
        try:
            yield {"settings": s, "stub": stub, "log": log}
        finally:
            proc.terminate()
            proc.wait(30)


def buys(stub: TradeStub, code: str) -> int:
    return sum(1 for q in stub.queries("/buy") if q.get("code") == code)


def test_documented_answers_one_buy_per_command_accepted_or_refused(documented: dict[str, Any]) -> None:
    stub: TradeStub = documented["stub"]
    s = documented["settings"]
    accepted = commands.place(ACCOUNT, "600519.SH", "buy", "1500.00", 100, KEY)
    refused = commands.place(ACCOUNT, "000001.SZ", "buy", "11.00", 100, KEY)
    neither = commands.place(ACCOUNT, "300750.SZ", "buy", "200.00", 100, KEY, ttl_s=60)
    for cmd in (accepted, refused, neither):
        commands.send(s, cmd)
    commands.send(s, accepted)  # a redelivery changes nothing
    events = Events(s)
    try:
        done = {"SUBMITTED", "FAILED"}
        events.wait(lambda: all(done & set(events.states(c["command_id"])) for c in (accepted, refused, neither)),
                    timeout=90)
        assert events.states(accepted["command_id"])[:2] == ["ACCEPTED", "SUBMITTED"]
        submitted = [e for e in events.of(accepted["command_id"]) if e["state"] == "SUBMITTED"]
        assert len(submitted) == 1 and submitted[0]["broker_order_id"] == stub.placed[0].row["order_id"]

        assert events.states(refused["command_id"]) == ["ACCEPTED", "FAILED"]
        failed = events.of(refused["command_id"])[-1]
        assert case("buy_documented_refused")["body"]["message"] in failed["reason"]

        states = events.states(neither["command_id"])
        assert states[0] == "ACCEPTED" and "UNKNOWN" in states and states[-1] == "SUBMITTED"
        adopted = events.of(neither["command_id"])[-1]
        assert "reconciled" in adopted["reason"] and adopted["broker_order_id"] == stub.placed[1].row["order_id"]
    finally:
        events.close()
    assert (buys(stub, "600519"), buys(stub, "000001"), buys(stub, "300750")) == (1, 1, 1), \
        documented["log"].read_text()[-3000:]
    assert stub.count("/login") == 1  # no answer above was taken for a refusal of the ticket
    assert stub.count("/server") >= 1 and stub.count("/query/server") <= stub.count("/server")
