"""Avro encoding of marketpipe records, in the two framings readers must accept.

* **Confluent wire format** (``0x00`` + 4-byte big-endian schema id + Avro body) when a
  Schema Registry is configured: the writer registers the schema under the topic's
  ``<topic>-value`` subject (TopicNameStrategy) once and caches the id.
* **Avro single-object encoding** (``0xC3 0x01`` + 8-byte little-endian CRC-64-AVRO
  fingerprint of the schema's Parsing Canonical Form + body) otherwise. It needs no
  service: the fingerprint names the schema, and every reader ships the ``.avsc`` files.

:meth:`Codec.decode` looks at the first bytes and accepts either framing, so a topic
may hold a mix (e.g. while a registry is being introduced).

Price type: market data prices are Avro ``double``. Providers send decimal strings of
at most ~15 significant digits, which a double round-trips exactly to the same shortest
decimal text, and doubles keep the tick path fast (no Decimal arithmetic per row).
Order prices are ``bytes`` with logicalType ``decimal(18, 3)``: a limit price must be
exactly the tick-aligned number the user typed, and 0.001 is the finest A-share tick.
"""

from __future__ import annotations

import base64
import io
import json
import struct
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Mapping

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form

from marketpipe.schemas.avro_writer import compile_writer

SCHEMA_DIR = Path(__file__).resolve().parent
NAMESPACE = "marketpipe"

#: Load order matters: named types must be parsed before the schemas that use them.
SCHEMA_NAMES: tuple[str, ...] = (
    "SourceRef", "Level", "OrderSide",
    "Tick", "Depth", "Quote", "Kline", "Bar", "DeadLetter", "OrderCommand", "OrderEvent", "FeedStatus",
    "LedgerEntry", "Position", "Completeness",
)

SINGLE_OBJECT_MAGIC = b"\xc3\x01"
CONFLUENT_MAGIC = b"\x00"


class CodecError(ValueError):
    """A payload or record could not be encoded/decoded; the message says why."""


@dataclass(frozen=True)
class Decoded:
    schema: str  # short name, e.g. "Tick"
    record: dict[str, Any]
    framing: str  # "single-object" | "confluent"
    schema_id: int | None = None  # the registry's id of the writer schema (Confluent framing only)


@dataclass(frozen=True)
class LoadedSchema:
    name: str
    parsed: Any
    canonical: str  # Parsing Canonical Form: what the single-object fingerprint is taken over
    document: str  # self-contained JSON with logical types and docs: what the registry stores
    fingerprint: bytes  # 8 bytes, little-endian as written on the wire


def _inline(node: Any, defs: dict[str, Any], seen: set[str]) -> Any:
    """Replace references to other files' named types by their definitions (first use only).

    A self-contained schema is what the registry must store and what the Parsing
    Canonical Form (hence the single-object fingerprint) is defined over.
    """
    if isinstance(node, str):
        full = node if "." in node else f"{NAMESPACE}.{node}"
        if full in defs and full not in seen:
            seen.add(full)
            return _inline(defs[full], defs, seen)
        return node
    if isinstance(node, list):
        return [_inline(n, defs, seen) for n in node]
    if isinstance(node, dict):
        if node.get("type") in ("record", "enum", "fixed") and "name" in node:
            seen.add(f"{node.get('namespace', NAMESPACE)}.{node['name']}")
        return {k: (_inline(v, defs, seen) if k in ("type", "items", "values", "fields") else v)
                for k, v in node.items()}
    return node


@lru_cache(maxsize=1)
def schemas() -> dict[str, LoadedSchema]:
    """Every ``.avsc`` of the contract, made self-contained and parsed once per process."""
    raw = {name: json.loads((SCHEMA_DIR / f"{name}.avsc").read_text(encoding="utf-8")) for name in SCHEMA_NAMES}
    defs = {f"{s.get('namespace', NAMESPACE)}.{s['name']}": s for s in raw.values()}
    return {name: _load(name, _inline(schema_json, defs, set())) for name, schema_json in raw.items()}


def _load(name: str, full: Any) -> LoadedSchema:
    parsed = fastavro.parse_schema(full, named_schemas={})
    canonical = to_parsing_canonical_form(parsed)
    fp = int(fingerprint(canonical, "CRC-64-AVRO"), 16).to_bytes(8, "little")
    return LoadedSchema(name, parsed, canonical, json.dumps(full, ensure_ascii=False), fp)


@lru_cache(maxsize=1)
def kept_writers() -> dict[bytes, tuple[Any, LoadedSchema]]:
    """Fingerprint -> (writer schema, current schema) for every kept version and the current one.

    Records written with an older kept version are resolved against today's schema, so a
    schema change never makes stored records unreadable (see marketpipe/schemas/evolution.py).
    """
    from marketpipe.schemas.evolution import kept_versions

    current = schemas()
    out = {s.fingerprint: (s.parsed, s) for s in current.values()}
    for name, versions in kept_versions().items():
        if name in current:
            for kept in versions:
                old = _load(name, kept.schema)
                out.setdefault(old.fingerprint, (old.parsed, current[name]))
    return out



def schema(name: str) -> LoadedSchema:
    try:
        return schemas()[name]
    except KeyError:
        raise CodecError(f"unknown schema {name!r}; known: {', '.join(SCHEMA_NAMES)}") from None


class RegistryHTTPError(CodecError):
    """The registry answered with an HTTP error status (``code``)."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


class SchemaRegistry:
    """The calls of the Confluent Schema Registry REST API that the codec needs: set a subject's
    compatibility, register a schema under it, and look a schema up by id."""

    def __init__(self, url: str, basic_auth: str = "", timeout: float = 10.0,
                 compatibility: str = "BACKWARD_TRANSITIVE") -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        # Registries default differently (Confluent: BACKWARD, Apicurio: NONE); each subject is told
        # explicitly, so a breaking change is refused on every registry, against every kept version
        self.compatibility = compatibility
        self._configured: set[str] = set()
        self._headers = {"Content-Type": "application/vnd.schemaregistry.v1+json",
                         "Accept": "application/vnd.schemaregistry.v1+json"}
        if basic_auth:
            self._headers["Authorization"] = "Basic " + base64.b64encode(basic_auth.encode()).decode()
        self._ids: dict[tuple[str, str], int] = {}
        self._by_id: dict[int, Any] = {}

    def _call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=self._headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:200]
            raise RegistryHTTPError(f"schema registry {method} {path}: HTTP {exc.code} {detail}", exc.code) from None
        except urllib.error.URLError as exc:
            raise CodecError(f"schema registry at {self.url} unreachable: {exc.reason}") from None

    def register(self, subject: str, document: str) -> int:
        key = (subject, document)
        if key not in self._ids:
            quoted = urllib.parse.quote(subject, safe="")
            if self.compatibility and subject not in self._configured:
                self._racing("PUT", f"/config/{quoted}", {"compatibility": self.compatibility})
                self._configured.add(subject)
            answer = self._racing("POST", f"/subjects/{quoted}/versions", {"schema": document})
            self._ids[key] = int(answer["id"])
        return self._ids[key]

    def _racing(self, method: str, path: str, body: Mapping[str, Any], attempts: int = 5) -> Any:
        """A call that creates something: when several processes create one subject (or its
        compatibility rule) at once, Apicurio answers the losers 409 "... already exists", and a
        second try finds it (a 409 for an incompatible schema says so and is final)."""
        for attempt in range(attempts):
            try:
                return self._call(method, path, body)
            except RegistryHTTPError as exc:
                if exc.code != 409 or "already exists" not in str(exc) or attempt == attempts - 1:
                    raise
                time.sleep(0.1 * (attempt + 1))
        raise AssertionError("unreachable")

    def writer_schema(self, schema_id: int) -> Any:
        if schema_id not in self._by_id:
            answer = self._call("GET", f"/schemas/ids/{schema_id}")
            try:
                raw = json.loads(answer["schema"])
            except (KeyError, TypeError, ValueError):
                raise CodecError(f"schema registry returned no usable schema for id {schema_id}") from None
            self._by_id[schema_id] = fastavro.parse_schema(raw)
        return self._by_id[schema_id]


class Codec:
    """Encodes records of the contract and decodes either framing."""

    def __init__(self, registry: SchemaRegistry | None = None) -> None:
        self.registry = registry
        self._by_fingerprint = kept_writers()
        self._by_fullname = {f"{NAMESPACE}.{s.name}": s for s in schemas().values()}

    @property
    def framing(self) -> str:
        return "confluent" if self.registry else "single-object"

    def encoder(self, name: str, topic: str | None = None) -> Callable[[Mapping[str, Any]], bytes]:
        """A fast ``record -> bytes`` function for one schema (header computed once)."""
        loaded = schema(name)
        if self.registry is not None:
            subject = f"{topic}-value" if topic else f"{NAMESPACE}.{name}"
            header = CONFLUENT_MAGIC + struct.pack(">I", self.registry.register(subject, loaded.document))
        else:
            header = SINGLE_OBJECT_MAGIC + loaded.fingerprint
        parsed = loaded.parsed
        fast = compile_writer(parsed, header)  # same bytes as fastavro, without its per-call interpretation
        if fast is not None:
            def encode_fast(record: Mapping[str, Any]) -> bytes:
                try:
                    return fast(record)
                except (ValueError, TypeError, KeyError, AttributeError, OverflowError, struct.error) as exc:
                    raise CodecError(f"{name} record does not fit the schema: {exc!r}") from None

            return encode_fast
        write = fastavro.schemaless_writer

        def encode(record: Mapping[str, Any]) -> bytes:
            buf = io.BytesIO()
            buf.write(header)
            try:
                write(buf, parsed, record)
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                raise CodecError(f"{name} record does not fit the schema: {exc}") from None
            return buf.getvalue()

        return encode

    def encode(self, name: str, record: Mapping[str, Any], topic: str | None = None) -> bytes:
        return self.encoder(name, topic)(record)

    def decode(self, data: bytes, expect: str | None = None) -> Decoded:
        """Decode a payload of either framing; ``expect`` checks the schema name."""
        if not data:
            raise CodecError("empty payload: not an Avro record")
        if data[:2] == SINGLE_OBJECT_MAGIC:
            if len(data) < 10:
                raise CodecError(f"truncated single-object header ({len(data)} bytes)")
            known = self._by_fingerprint.get(bytes(data[2:10]))
            if known is None:
                raise CodecError(f"unknown schema fingerprint {bytes(data[2:10])[::-1].hex()} (CRC-64-AVRO); "
                                 "the writer used a schema this reader does not ship")
            writer, loaded = known
            record = self._read(data[10:], writer, loaded.parsed, loaded.name)
            decoded = Decoded(loaded.name, record, "single-object")
        elif data[:1] == CONFLUENT_MAGIC:
            if len(data) < 5:
                raise CodecError(f"truncated Confluent header ({len(data)} bytes)")
            schema_id = struct.unpack(">I", data[1:5])[0]
            if self.registry is None:
                raise CodecError(f"Confluent-framed record with schema id {schema_id} but SCHEMA_REGISTRY_URL is not set")
            writer = self.registry.writer_schema(schema_id)
            fullname = writer.get("name", "") if isinstance(writer, dict) else ""
            named = self._by_fullname.get(fullname)
            if named is None:
                raise CodecError(f"schema id {schema_id} is {fullname or 'not a named record'}, not one of marketpipe's schemas")
            record = self._read(data[5:], writer, named.parsed, named.name)
            decoded = Decoded(named.name, record, "confluent", schema_id)
        else:
            raise CodecError(f"unknown framing: first byte 0x{data[0]:02x} is neither Confluent (0x00) "
                             "nor single-object (0xc3 0x01)")
        if expect is not None and decoded.schema != expect:
            raise CodecError(f"expected a {expect} record, got {decoded.schema}")
        return decoded

    @staticmethod
    def _read(body: bytes, writer: Any, reader: Any, name: str) -> dict[str, Any]:
        buf = io.BytesIO(body)
        try:
            record = fastavro.schemaless_reader(buf, writer, reader)
        except (EOFError, StopIteration, IndexError, struct.error) as exc:
            raise CodecError(f"truncated {name} payload: {str(exc) or 'ran out of bytes'}") from None
        except (ValueError, TypeError, UnicodeDecodeError, KeyError) as exc:
            raise CodecError(f"corrupt {name} payload: {exc}") from None
        if buf.tell() != len(body):
            raise CodecError(f"{len(body) - buf.tell()} trailing bytes after the {name} record")
        return record  # type: ignore[return-value]


def from_settings(settings: Any) -> Codec:
    """The codec a process should use: Confluent framing iff a registry is configured."""
    url = getattr(settings, "schema_registry_url", "")
    if not url:
        return Codec()
    auth = getattr(settings, "schema_registry_basic_auth", None)
    return Codec(SchemaRegistry(url, auth.reveal() if auth else ""))
