"""Fuzzing the order-command checks with arbitrary JSON commands and user input.

signing.verify must answer True or False for any mapping (a command that does not even parse is
simply not verified); commands.place must refuse bad user input with ValueError only.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from marketpipe.trader import commands, signing
from tests.schemas.test_fuzz_codec import COMMAND, KEY
from tests.support.fuzzing import FUZZ, JSON


@FUZZ
@given(values=st.fixed_dictionaries({}, optional={f: JSON for f in (*signing.FIELDS, "signature")}),
       key=st.sampled_from([KEY, "", "other"]))
def test_verify_answers_for_any_json_command(values: dict, key: str) -> None:
    command = {**COMMAND, "signature": signing.sign(COMMAND, KEY), **values}
    assert signing.verify(command, key) in (True, False)


@FUZZ
@given(price=st.text(max_size=12) | st.sampled_from(["NaN", "sNaN", "Infinity", "-inf", "1e999999999", "1e-5",
                                                      "12.345", "0"]),
       volume=st.integers(-10, 10**6))
def test_place_refuses_bad_prices_with_value_error(price: str, volume: int) -> None:
    try:
        cmd = commands.place("A1", "600519.SH", "BUY", price, volume, KEY, now_ms=1786775236000)
    except ValueError:
        return
    assert signing.verify(cmd, KEY)
