"""Schema-specialised Avro writers: one generated Python function per record schema.

``fastavro.schemaless_writer`` interprets the schema on every call (type dispatch per field, a
branch search per union), which was half of a level-1 record's CPU on the processor hot path
(bench/bench_decode.py). For the shapes the market-data schemas use, :func:`compile_writer`
emits straight-line code instead: string -> length + UTF-8, long/int -> zig-zag varint (memoised,
because rows of one frame repeat their receive time, event time and offset), double -> one
``struct`` pack, boolean -> one byte, ``["null", X]`` -> a branch byte, arrays of ``Level`` -> one pack per level.
The bytes are exactly fastavro's (tests/schemas/test_avro_writer.py compares them on every schema).

A schema using anything else (logical types, other unions, fixed, ...) gets ``None`` and the
caller keeps fastavro. Errors are the ones the generated code runs into (KeyError for a missing
field, TypeError/AttributeError/struct.error for a wrong type, OverflowError beyond 64 bits);
the codec turns them into CodecError as it does fastavro's.
"""

from __future__ import annotations

import struct
from typing import Any, Callable

_DOUBLE = struct.Struct("<d").pack
_LEVEL = struct.Struct("<dd").pack
_SMALL = [bytes([(n << 1) if n >= 0 else ((-n << 1) - 1)]) for n in range(-64, 64)]
_MEMO_LIMIT = 8192


class _Unsupported(Exception):
    pass


def _varint(n: int) -> bytes:
    """Zig-zag varint of a long (Avro ``long``/``int``, and block counts)."""
    if -64 <= n < 64:
        return _SMALL[n + 64]
    if not -(1 << 63) <= n < (1 << 63):
        raise OverflowError(f"{n} does not fit an Avro long")
    z = (n << 1) ^ (n >> 63)
    out = bytearray()
    while z > 0x7F:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


def _memo_varint() -> Callable[[int], bytes]:
    """``_varint`` with a bounded memo: a frame's rows share receive time, offset and clock times."""
    memo: dict[int, bytes] = {}
    get = memo.get

    def varint(n: int) -> bytes:
        b = get(n)
        if b is None:
            if n.__class__ is not int:
                if isinstance(n, bool) or not isinstance(n, int):
                    raise TypeError(f"{n!r} is not an integer")
            b = _varint(n)
            if len(memo) >= _MEMO_LIMIT:
                memo.clear()
            memo[n] = b
        return b

    return varint


def _string(v: str) -> bytes:
    b = v.encode()
    return _varint(len(b)) + b


def _bytes(v: bytes) -> bytes:
    if not isinstance(v, (bytes, bytearray, memoryview)):
        raise TypeError(f"{type(v).__name__} is not bytes")
    return _varint(len(v)) + bytes(v)


def _levels(items: list[dict[str, float]]) -> bytes:
    if not items:
        return b"\x00"
    return _varint(len(items)) + b"".join([_LEVEL(i["price"], i["size"]) for i in items]) + b"\x00"


def _boolean(v: bool) -> bytes:
    if v.__class__ is not bool:
        raise TypeError(f"{v!r} is not a boolean")
    return b"\x01" if v else b"\x00"


def _str_map(m: dict[str, str]) -> bytes:
    if not m:
        return b"\x00"
    parts = [_varint(len(m))]
    for k, v in m.items():
        parts.append(_string(k))
        parts.append(_string(v))
    parts.append(b"\x00")
    return b"".join(parts)


class _Gen:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.env: dict[str, Any] = {"_string": _string, "_bytes": _bytes, "_double": _DOUBLE, "_levels": _levels,
                                    "_str_map": _str_map, "_boolean": _boolean, "_varint": _memo_varint()}
        self.named: dict[str, Any] = {}
        self.n = 0

    def var(self) -> str:
        self.n += 1
        return f"v{self.n}"

    def emit(self, line: str, indent: int) -> None:
        self.lines.append("    " * indent + line)

    def value(self, schema: Any, expr: str, indent: int) -> None:
        """Code appending the encoding of ``expr`` (an expression for the datum) to ``parts``."""
        if isinstance(schema, str) and schema in self.named:
            schema = self.named[schema]
        if isinstance(schema, dict) and schema.get("logicalType"):
            raise _Unsupported(schema["logicalType"])
        if isinstance(schema, dict) and isinstance(schema["type"], (dict, list)):
            return self.value(schema["type"], expr, indent)
        kind = schema["type"] if isinstance(schema, dict) else schema
        if isinstance(schema, list):
            if len(schema) != 2 or schema[0] != "null":
                raise _Unsupported("union other than [null, X]")
            v = self.var()
            self.emit(f"{v} = {expr}", indent)
            self.emit(f"if {v} is None:", indent)
            self.emit("add(b'\\x00')", indent + 1)
            self.emit("else:", indent)
            self.emit("add(b'\\x02')", indent + 1)
            self.value(schema[1], v, indent + 1)
            return
        if kind == "string":
            self.emit(f"add(_string({expr}))", indent)
        elif kind == "bytes":
            self.emit(f"add(_bytes({expr}))", indent)
        elif kind in ("long", "int"):
            self.emit(f"add(_varint({expr}))", indent)
        elif kind == "double":
            self.emit(f"add(_double({expr}))", indent)
        elif kind == "boolean":
            self.emit(f"add(_boolean({expr}))", indent)
        elif kind == "null":
            self.emit(f"if {expr} is not None: raise TypeError('null expected')", indent)
        elif kind == "enum":
            self.named[schema["name"]] = schema
            table = self.var()
            self.env[table] = {s: _varint(i) for i, s in enumerate(schema["symbols"])}
            self.emit(f"add({table}[{expr}])", indent)
        elif kind == "record":
            self.named[schema["name"]] = schema
            r = self.var()
            self.emit(f"{r} = {expr}", indent)
            for f in schema["fields"]:
                if "default" in f:  # a field the datum may leave out, as fastavro allows
                    default = self.var()
                    self.env[default] = f["default"]
                    self.value(f["type"], f"{r}.get({f['name']!r}, {default})", indent)
                else:
                    self.value(f["type"], f"{r}[{f['name']!r}]", indent)
        elif kind == "array":
            items = schema["items"]
            items = self.named.get(items, items) if isinstance(items, str) else items
            if isinstance(items, dict) and items.get("type") == "record":
                self.named[items["name"]] = items
            if _is_level(items):
                self.emit(f"add(_levels({expr}))", indent)
            else:
                raise _Unsupported("array of other than Level")
        elif kind == "map":
            if schema["values"] != "string":
                raise _Unsupported("map of other than string")
            self.emit(f"add(_str_map({expr}))", indent)
        else:
            raise _Unsupported(str(kind))


def _is_level(items: Any) -> bool:
    return (isinstance(items, dict) and items.get("type") == "record"
            and [(f["name"], f["type"]) for f in items["fields"]] == [("price", "double"), ("size", "double")])


def compile_writer(parsed: Any, header: bytes = b"") -> Callable[[Any], bytes] | None:
    """A ``record -> header + Avro body`` function for a fastavro-parsed record schema, or None."""
    gen = _Gen()
    gen.env["_header"] = header
    try:
        gen.value(parsed, "record", 1)
    except _Unsupported:
        return None
    body = "\n".join(gen.lines)
    src = f"def write(record):\n    parts = [_header]\n    add = parts.append\n{body}\n    return b''.join(parts)\n"
    exec(compile(src, f"<avro writer {parsed.get('name', '?')}>", "exec"), gen.env)  # noqa: S102
    return gen.env["write"]
