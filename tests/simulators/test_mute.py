"""The simulator's ``mute`` fault: one symbol goes silent on a live socket that still answers pings
and keeps delivering the other symbols; ``add=`` does not lift it, ``clear`` does."""

from __future__ import annotations

import time

import websocket

from marketpipe.providers.jvquant import protocol
from marketpipe.simulators.runner import run as run_sim


def codes_for(ws: websocket.WebSocket, seconds: float) -> tuple[set[str], int]:
    """The codes of the data frames received for ``seconds``, and the pongs to one ping."""
    ws.ping("x")
    codes, pongs = set(), 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            opcode, data = ws.recv_data(control_frame=True)
        except websocket.WebSocketTimeoutException:
            continue
        if opcode == websocket.ABNF.OPCODE_PONG:
            pongs += 1
        elif opcode == websocket.ABNF.OPCODE_BINARY:
            codes |= protocol.row_codes(data)
    return codes, pongs


def test_mute_silences_one_symbol_while_the_socket_lives() -> None:
    with run_sim("jvquant", rate=400, symbols=["600519", "000001"], ticks_per_second=20) as sim:
        server = sim.sim.ws_address("ab")
        ws = websocket.create_connection(f"{server}?token=t", timeout=0.2)
        try:
            ws.send(protocol.command(protocol.ADD, ["600519", "000001"], ["lv1", "lv2"]))
            assert codes_for(ws, 1.0)[0] == {"600519", "000001"}
            sim.sim.fault("mute", 0, symbol="600519")
            codes_for(ws, 0.2)  # what was in flight
            assert codes_for(ws, 1.5) == ({"000001"}, 1)
            ws.send(protocol.command(protocol.ADD, ["600519"], ["lv1", "lv2"]))  # a re-subscribe does not help
            assert codes_for(ws, 1.0)[0] == {"000001"}
            sim.sim.fault("clear")
            assert codes_for(ws, 1.0)[0] == {"600519", "000001"}
        finally:
            ws.close()


def lv2_ids(ws: websocket.WebSocket, frames: int) -> list[list[int]]:
    """The lv2 trade ids of the next ``frames`` data frames, per frame."""
    import zlib

    out: list[list[int]] = []
    while len(out) < frames:
        try:
            opcode, data = ws.recv_data()
        except websocket.WebSocketTimeoutException:
            continue
        if opcode != websocket.ABNF.OPCODE_BINARY:
            continue
        text = zlib.decompressobj(protocol.RAW_DEFLATE_WBITS).decompress(data).decode()
        ids = [int(rec.split(",")[1]) for row in text.split("\n") if row.startswith("lv2_")
               for rec in row.partition("=")[2].split("|")]  # the notes dialect: time,id,price,vol
        out.append(ids)
    return out


def test_reorder_swaps_data_frames_and_duplicate_sends_each_twice() -> None:
    with run_sim("jvquant", rate=200, symbols=["600519"], dialect="notes") as sim:
        ws = websocket.create_connection(f"{sim.sim.ws_address('ab')}?token=t", timeout=0.5)
        try:
            ws.send(protocol.command(protocol.ADD, ["600519"], ["lv2"]))
            normal = [i for f in lv2_ids(ws, 6) for i in f]
            assert normal == sorted(normal) and len(set(normal)) == len(normal)
            sim.sim.fault("duplicate", 0)
            lv2_ids(ws, 2)  # in flight
            frames = lv2_ids(ws, 6)
            assert any(a == b for a, b in zip(frames, frames[1:]))
            sim.sim.fault("clear")
            lv2_ids(ws, 2)
            sim.sim.fault("reorder", 0)
            lv2_ids(ws, 2)
            ids = [i for f in lv2_ids(ws, 8) for i in f]
            assert ids != sorted(ids) and len(set(ids)) == len(ids)  # every trade once, not in order
        finally:
            ws.close()
