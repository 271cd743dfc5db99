"""OrderClient against the real trade consumer and the jvQuant trade simulator: a command signed
and sent by the client is placed once, and wait_for follows it to its fill or its rejection."""

from __future__ import annotations

from marketpipe.client import OrderClient, OrderEvent
from tests.support.trader_stack import ACCOUNT, KEY, stack, trader  # noqa: F401  (module fixtures)


def test_a_placed_order_is_followed_to_its_fill_and_a_bad_one_to_its_rejection(stack, trader) -> None:  # noqa: F811
    before = stack["counter"].placed
    with OrderClient(signing_key=KEY, account=ACCOUNT, settings=stack["settings"]) as orders:
        command_id = orders.place("600519.SH", "buy", "1500.00", 100)
        filled = orders.wait_for(command_id, states={"FILLED"}, timeout=90)
        assert isinstance(filled, OrderEvent) and filled.filled_volume == 100
        assert [e.state for e in orders.events(command_id)][:2] == ["ACCEPTED", "SUBMITTED"]
        odd_lot = orders.place("600519.SH", "buy", "1500.00", 150)
        rejected = orders.wait_for(odd_lot, timeout=60)
    assert rejected.state == "REJECTED" and rejected.rule
    assert stack["counter"].placed == before + 1
    wrong_key = OrderClient(signing_key="not-the-key", account=ACCOUNT, settings=stack["settings"])
    forged = wrong_key.wait_for(wrong_key.place("600519.SH", "buy", "1500.00", 100), timeout=60)
    wrong_key.close()
    assert (forged.state, forged.rule) == ("REJECTED", "signature")
