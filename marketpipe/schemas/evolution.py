"""Schema history and the Avro resolution rules that every schema change must pass.

Every released version of every schema is kept under ``marketpipe/schemas/history/`` as the
self-contained document the codec writes with (``<Name>.v<N>.avsc``). Three days of raw
frames and weeks of ``md.*`` records outlive any deployment, so:

* a reader of the current code must resolve data written with **any** kept version
  (backward compatibility), and
* a reader that still holds an **older** kept version must resolve data written with the
  current one (forward compatibility: consumers upgrade after producers).

Both directions are checked statically (:func:`resolution_errors`, the rules of the Avro
specification's "Schema Resolution" section) for every pair of kept versions. The codec
decodes single-object records of every kept fingerprint by resolving the old writer schema
against the current one; Confluent-framed records resolve through the registry id.

``python -m marketpipe.schemas.evolution freeze`` appends the current schema as the next version when
it differs from the newest kept one, and refuses a change that breaks either direction.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HISTORY_DIR = Path(__file__).resolve().parent / "history"
_FILE = re.compile(r"^(?P<name>[A-Za-z]+)\.v(?P<version>\d+)\.avsc$")

#: writer primitive -> reader primitives it may be promoted to (Avro spec, Schema Resolution)
_PROMOTIONS: dict[str, frozenset[str]] = {
    "int": frozenset({"int", "long", "float", "double"}),
    "long": frozenset({"long", "float", "double"}),
    "float": frozenset({"float", "double"}),
    "string": frozenset({"string", "bytes"}),
    "bytes": frozenset({"bytes", "string"}),
}


@dataclass(frozen=True)
class KeptVersion:
    name: str
    version: int
    document: str  # self-contained JSON, exactly as kept
    path: Path

    @property
    def schema(self) -> Any:
        return json.loads(self.document)


def kept_versions(directory: Path = HISTORY_DIR) -> dict[str, list[KeptVersion]]:
    """Every kept version per schema name, oldest first."""
    out: dict[str, list[KeptVersion]] = {}
    if not directory.is_dir():
        return out
    for path in sorted(directory.iterdir()):
        match = _FILE.match(path.name)
        if match:
            out.setdefault(match["name"], []).append(
                KeptVersion(match["name"], int(match["version"]), path.read_text(encoding="utf-8"), path))
    for versions in out.values():
        versions.sort(key=lambda v: v.version)
    return out


def _full_name(schema: dict[str, Any], namespace: str) -> str:
    name = schema["name"]
    return name if "." in name else f"{schema.get('namespace', namespace)}.{name}"


class _Names:
    """Named types met so far on one side, so later references by name resolve."""

    def __init__(self) -> None:
        self.types: dict[str, Any] = {}

    def deref(self, schema: Any, namespace: str) -> Any:
        if isinstance(schema, str) and schema not in _PRIMITIVES:
            full = schema if "." in schema else f"{namespace}.{schema}"
            return self.types.get(full, schema)
        if isinstance(schema, dict) and schema.get("type") in ("record", "enum", "fixed"):
            self.types.setdefault(_full_name(schema, namespace), schema)
        return schema


_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})


def _kind(schema: Any) -> str:
    if isinstance(schema, list):
        return "union"
    if isinstance(schema, str):
        return schema
    kind = schema["type"]
    return kind if isinstance(kind, str) and kind in _PRIMITIVES | {"record", "enum", "fixed", "array", "map"} \
        else _kind(kind)


def _unwrap(schema: Any) -> Any:
    """``{"type": "long", "logicalType": ...}`` resolves like ``"long"``."""
    if isinstance(schema, dict) and schema.get("type") in _PRIMITIVES:
        return schema["type"]
    return schema


def resolution_errors(writer: Any, reader: Any, namespace: str = "marketpipe") -> list[str]:
    """Why data written with ``writer`` cannot be read with ``reader`` (empty: it can)."""
    return _resolve(writer, reader, _Names(), _Names(), namespace, "$", set())


def _resolve(writer: Any, reader: Any, wn: _Names, rn: _Names, ns: str, at: str,
             busy: set[tuple[str, str]]) -> list[str]:
    writer = _unwrap(wn.deref(writer, ns))
    reader = _unwrap(rn.deref(reader, ns))
    wk, rk = _kind(writer), _kind(reader)
    if wk == "union":
        # every branch the writer may have used must resolve against the reader
        return [e for branch in writer for e in _resolve(branch, reader, wn, rn, ns, at, busy)]
    if rk == "union":
        if any(not _resolve(writer, branch, wn, rn, ns, at, set(busy)) for branch in reader):
            return []
        return [f"{at}: writer type {wk} matches no branch of the reader's union"]
    if wk in _PRIMITIVES or rk in _PRIMITIVES:
        if wk == rk or rk in _PROMOTIONS.get(wk, frozenset()):
            return []
        return [f"{at}: writer type {wk} cannot be read as {rk}"]
    if wk != rk:
        return [f"{at}: writer {wk} cannot be read as {rk}"]
    if wk in ("record", "enum", "fixed"):
        wname, rname = _full_name(writer, ns), _full_name(reader, ns)
        aliases = {a if "." in a else f"{ns}.{a}" for a in reader.get("aliases", [])}
        if wname != rname and wname not in aliases:
            return [f"{at}: writer {wk} {wname} is not the reader's {rname}"]
    if wk == "fixed":
        return [] if writer["size"] == reader["size"] else [f"{at}: fixed size {writer['size']} != {reader['size']}"]
    if wk == "enum":
        missing = [s for s in writer["symbols"] if s not in reader["symbols"]]
        if missing and "default" not in reader:
            return [f"{at}: enum symbols {missing} unknown to the reader, which has no default"]
        return []
    if wk == "array":
        return _resolve(writer["items"], reader["items"], wn, rn, ns, f"{at}[]", busy)
    if wk == "map":
        return _resolve(writer["values"], reader["values"], wn, rn, ns, f"{at}{{}}", busy)
    # record: recursion guard for recursive types
    key = (_full_name(writer, ns), _full_name(reader, ns))
    if key in busy:
        return []
    busy = busy | {key}
    inner = writer.get("namespace", ns)
    written = {f["name"]: f for f in writer["fields"]}
    for f in writer["fields"]:
        for alias in f.get("aliases", []):
            written.setdefault(alias, f)
    errors: list[str] = []
    for field in reader["fields"]:
        source = written.get(field["name"]) or next(
            (written[a] for a in field.get("aliases", []) if a in written), None)
        if source is None:
            if "default" not in field:
                errors.append(f"{at}.{field['name']}: new reader field has no default")
            continue
        errors += _resolve(source["type"], field["type"], wn, rn, inner, f"{at}.{field['name']}", busy)
    return errors


def compatibility_errors(older: Any, newer: Any) -> list[str]:
    """Both directions: the new reader reads old data, an old reader reads new data."""
    return ([f"new reader, old data: {e}" for e in resolution_errors(older, newer)]
            + [f"old reader, new data: {e}" for e in resolution_errors(newer, older)])


def freeze(directory: Path = HISTORY_DIR) -> list[str]:
    """Keep the current version of every schema that changed; returns what was written."""
    from marketpipe.schemas.codec import SCHEMA_NAMES, schemas

    directory.mkdir(parents=True, exist_ok=True)
    kept = kept_versions(directory)
    written: list[str] = []
    for name in SCHEMA_NAMES:
        current = schemas()[name]
        versions = kept.get(name, [])
        if versions and json.loads(versions[-1].document) == json.loads(current.document):
            continue
        problems = [f"v{v.version}: {e}" for v in versions
                    for e in compatibility_errors(v.schema, json.loads(current.document))]
        if problems:
            raise ValueError(f"{name}: the change breaks schema resolution:\n  " + "\n  ".join(problems))
        path = directory / f"{name}.v{(versions[-1].version if versions else 0) + 1}.avsc"
        path.write_text(json.dumps(json.loads(current.document), indent=2, ensure_ascii=False) + "\n",
                        encoding="utf-8")
        written.append(path.name)
    return written


def main(argv: list[str]) -> int:
    if argv != ["freeze"]:
        print("usage: python -m marketpipe.schemas.evolution freeze   (keep every changed schema as its next version)",
              file=sys.stderr)
        return 2
    try:
        written = freeze()
    except ValueError as exc:
        print(f"schemas: {exc}", file=sys.stderr)
        return 1
    print("kept " + ", ".join(written) if written else "every schema is already kept")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
