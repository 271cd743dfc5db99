"""``--line`` (A/B capture): a line header on every frame, and nothing new without one."""

from __future__ import annotations

from typing import Any

from marketpipe.cli.produce import default_connection
from marketpipe.market import markethours
from marketpipe.producers.session import Feed, Session
from marketpipe.rawframe import RawMeta, line_of, parse_meta


class PlainFeed(Feed):
    provider = "test"


class MetaSink:
    def __init__(self) -> None:
        self.metas: list[RawMeta] = []

    def send(self, value: bytes, meta: Any) -> None:
        self.metas.append(meta)


def sent_headers(line: str) -> list[tuple[str, bytes]]:
    sink = MetaSink()
    session = Session(PlainFeed(), sink, "c1", calendar=markethours.ALWAYS, line=line)
    session.emit(b"x", "text", "data")
    return sink.metas[0].headers()


def test_without_a_line_the_headers_are_those_of_before() -> None:
    names = [name for name, _ in sent_headers("")]
    assert names == ["provider", "connection", "seq", "session", "recv_ns", "opcode", "frame"]


def test_a_line_is_one_more_header_and_parses_back() -> None:
    headers = sent_headers("B")
    assert headers[-1] == ("line", b"B")
    assert line_of(parse_meta(headers)) == "B"
    assert line_of(parse_meta(sent_headers(""))) == ""


def test_both_lines_share_the_default_connection_id_so_key_and_partition() -> None:
    assert default_connection("jvquant", "A") == default_connection("jvquant", "B") == "jvquant-ab"
    assert default_connection("jvquant", None).startswith("jvquant-") and "-ab" not in default_connection("jvquant", None)
