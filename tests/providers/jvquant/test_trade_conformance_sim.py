"""The trade simulator answers in the corpus shapes: the documented ones by default (what real
servers send per the jvQuant trade document), protocols.md's code-"0"-everywhere ones with ``dialect="notes"``.

Shape = the set of fields and the JSON type of each value (rows of lists included).
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from typing import Any, Iterator

import pytest

from marketpipe.providers.jvquant.trade_simulator import TradeCounter
from marketpipe.simulators.runner import run as run_sim
from tests.support.trade_stub import case

DIALECT_CASES = {
    "documented": {"login": "login_documented", "buy": "buy_documented_placed", "sale": "sale_documented_placed",
                   "refused": "buy_documented_refused", "check_order": "check_order_documented",
                   "check_hold": "check_hold_documented", "cancel": "cancel_documented",
                   "cancel_refused": "cancel_refused"},
    "notes": {"login": "login_notes", "buy": "buy_notes_placed", "sale": "buy_notes_placed",
              "refused": "buy_notes_refused", "check_order": "check_order_notes", "check_hold": "check_hold_notes",
              "cancel": "cancel_documented", "cancel_refused": "cancel_refused"},
}


def shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


def same_shape(answer: dict[str, Any], name: str) -> None:
    expected, got = shape(case(name)["body"]), shape(answer)
    for key in ("list", "hold_list"):  # rows are compared when both sides have some
        if key in got and key in expected and (not got[key] or not expected[key]):
            got[key] = expected[key] = []
    assert got == expected, (name, answer)


@pytest.fixture(params=["documented", "notes"])
def counter(request: pytest.FixtureRequest) -> Iterator[tuple[TradeCounter, str, str]]:
    c = TradeCounter(fill_seconds=60.0) if request.param == "documented" else TradeCounter(fill_seconds=60.0,
                                                                                             dialect="notes")
    with run_sim("jvquant", rate=1, extra_routes=c.add_routes) as sim:
        yield c, sim.base_url, request.param


def get(base: str, path: str, **params: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{base}{path}?{urllib.parse.urlencode(params)}", timeout=10) as resp:
        return json.loads(resp.read())


def test_default_dialect_is_the_documented_one() -> None:
    assert TradeCounter().dialect == "documented"
    with pytest.raises(ValueError):
        TradeCounter(dialect="other")


def test_every_answer_has_the_corpus_shape(counter: tuple[TradeCounter, str, str]) -> None:
    c, base, dialect = counter
    names = DIALECT_CASES[dialect]
    login = get(base, "/login", token="tok", acc="000000000042", **{"pass": "pw"})
    same_shape(login, names["login"])
    t = {"token": "tok", "ticket": login["ticket"]}
    buy = get(base, "/buy", **t, code="600519", name="贵州茅台", price="1500.00", volume="100")
    same_shape(buy, names["buy"])
    same_shape(get(base, "/sale", **t, code="600519", name="贵州茅台", price="1500.00", volume="100"), names["sale"])
    same_shape(get(base, "/check_order", **t), names["check_order"])
    c.placed_orders()[0].deal_volume = 100  # a position to list
    same_shape(get(base, "/check_hold", **t), names["check_hold"])
    same_shape(get(base, "/cancel", **t, order_id=buy["order_id"]), names["cancel"])
    same_shape(get(base, "/cancel", **t, order_id="no-such-order"), names["cancel_refused"])
    c.fault("reject")
    refused = get(base, "/buy", **t, code="600519", name="贵州茅台", price="1500.00", volume="100")
    same_shape(refused, names["refused"])
    assert refused["message"]
    if dialect == "documented":
        assert "code" not in buy and "code" not in refused
        bad = get(base, "/check_order", token="tok", ticket="expired")
        assert "code" not in bad and "list" not in bad and bad["message"]  # never an empty list
