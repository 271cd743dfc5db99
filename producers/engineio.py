"""Engine.IO v3 polling payload framing (pure): ``<length>:<packet>`` repeated, length counted
in characters (not bytes), and the ``t`` cache-buster (time in base-64, alphabet 0-9A-Za-z-_)."""

from __future__ import annotations

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_"


class PayloadError(ValueError):
    pass


def encode_payload(packets: list[str]) -> str:
    return "".join(f"{len(p)}:{p}" for p in packets)


def decode_payload(text: str) -> list[str]:
    packets = []
    i = 0
    while i < len(text):
        colon = text.find(":", i)
        if colon == -1 or not text[i:colon].isdigit():
            raise PayloadError(f"bad Engine.IO payload at character {i}: {text[i:i + 20]!r}")
        n = int(text[i:colon])
        packet = text[colon + 1:colon + 1 + n]
        if len(packet) != n:
            raise PayloadError(f"Engine.IO packet truncated: {n} characters announced, {len(packet)} present")
        packets.append(packet)
        i = colon + 1 + n
    return packets


def yeast(ms: int) -> str:
    out = ""
    while True:
        out = ALPHABET[ms % 64] + out
        ms //= 64
        if ms == 0:
            return out
