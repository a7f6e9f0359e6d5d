"""A sources file's mistake in one line: pydantic's :class:`ValidationError` turned into the
:class:`ConfigError` an operator reads, naming the file, the table or source, and the cause.

Of all pydantic finds, the first is told, in the order a person fixes them: a table's unknown
keys and values of the wrong type, then missing keys, then values out of bounds, and the
checks across keys last. A cause a validator of :mod:`aggregator.config.schema` words is
told as it words it; a bound (``ge``, ``gt``, ``le``) and a type are worded here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from annotated_types import Ge, Gt, Le
from pydantic import ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from aggregator.config.schema import Source, SourcesFile, fields_of, file_keys
from aggregator.errors import ConfigError

# A value of the wrong type: what it must be, by pydantic's error type.
_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "float_type": "an integer or a number",
    "bool_type": "true/false",
    "tuple_type": "a list",
    "list_type": "a list",
}
# A key the table does not take: pydantic's (extra="forbid"), or the schema's own (a field's
# name that is not its key in the file).
_UNKNOWN = ("unexpected_keyword_argument", "unknown_key")
_TABLE_TYPES = ("dataclass_type", "dataclass_exact_type", "model_type", "dict_type")


def _rank(error: ErrorDetails) -> int:
    """Which mistakes are told first: keys and types, then missing keys, then values."""
    kind = error["type"]
    if kind in _UNKNOWN or kind == "wrong_type" or kind in _EXPECTED:
        return 0
    return 1 if kind == "missing" else 2


def first_mistake(
    error: ValidationError, raw: Mapping[str, Any], where: str, at: Sequence[str | int] = ()
) -> ConfigError:
    """The first of ``error``'s mistakes as one line. ``raw`` is the file as read (it names a
    source by its id, and gives the order of its keys); ``at`` is where in the file the
    validated part sits (``("workers",)`` for that table alone), so the line names the same
    place whichever part was validated."""
    found = [(_in_file((*at, *d["loc"])), d) for d in error.errors()]
    # A table's or a source's mistakes together, in the file's order; within one, keys and
    # types first, in the order the file gives the keys.
    units: list[tuple[str | int, ...]] = []
    for loc, _ in found:
        if loc[: _depth(loc)] not in units:
            units.append(loc[: _depth(loc)])

    def order(item: tuple[tuple[str | int, ...], ErrorDetails]) -> tuple[int, int, int]:
        loc, detail = item
        unit = loc[: _depth(loc)]
        rank = _rank(detail)
        place = _position(raw, unit, loc[len(unit)] if len(loc) > len(unit) else None)
        return units.index(unit), rank, place if rank == 0 else found.index(item)

    loc, first = min(found, key=order)
    return ConfigError(_line(first, loc, raw, where))


def _in_file(loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """``loc`` with its first step named as the file names it (``sources``: ``source``)."""
    info = fields_of(SourcesFile).get(str(loc[0])) if loc else None
    return (info.alias, *loc[1:]) if info is not None and info.alias else loc


def _depth(loc: tuple[str | int, ...]) -> int:
    """How much of ``loc`` names the table or source: ``(source, 3)``, ``(settings,)``."""
    return 2 if loc[:1] == ("source",) else min(len(loc), 1)


def _position(raw: Mapping[str, Any], unit: tuple[str | int, ...], key: str | int | None) -> int:
    """Where ``key`` comes in its table or source in the file (the end when it is not there)."""
    table: Any = raw
    for step in unit:
        try:
            table = table[step]
        except (KeyError, IndexError, TypeError):
            return 1 << 30
    keys = list(table) if isinstance(table, Mapping) else []
    return keys.index(key) if key in keys else 1 << 30


def _line(
    error: ErrorDetails, loc: tuple[str | int, ...], raw: Mapping[str, Any], where: str
) -> str:
    """``where: place: cause`` for one mistake found at ``loc``."""
    if not loc or (len(loc) == 1 and error["type"] == "unexpected_keyword_argument"):
        return f"{where}: {_document_cause(error, loc)}"
    head, *rest = loc
    if head == "source":
        return _source_line(error, rest, raw, where)
    table = _table_class(str(head))
    if not rest and error["type"] in _TABLE_TYPES:
        return f"{where}: [{head}] must be a table"
    key = str(rest[0]) if rest else None
    known = ", ".join(sorted(file_keys(table)))
    return f"{where}: [{head}]: {_cause(error, key, table, known)}"


def _source_line(
    error: ErrorDetails, rest: list[str | int], raw: Mapping[str, Any], where: str
) -> str:
    if not rest:  # the [[source]] list itself
        return f"{where}: {_cause(error, None, Source, '')}"
    index = int(rest[0])
    entries = raw.get("source")
    entry = entries[index] if isinstance(entries, list) and index < len(entries) else None
    if not isinstance(entry, Mapping) or (len(rest) == 1 and error["type"] in _TABLE_TYPES):
        return f"{where}: source #{index + 1} must be a table"
    given = entry.get("id")
    label = f"source {given!r}" if isinstance(given, str) else f"source #{index + 1}"
    key = str(rest[1]) if len(rest) > 1 else None
    return f"{where}: {label}: {_cause(error, key, Source, ', '.join(file_keys(Source)))}"


def _document_cause(error: ErrorDetails, loc: tuple[str | int, ...]) -> str:
    """A mistake of the file as a whole: a key outside its tables, two sources of one id."""
    if error["type"] in _UNKNOWN:
        key = error.get("ctx", {}).get("key", loc[0] if loc else "")
        tables = [f"[{k}]" for k in file_keys(SourcesFile) if k != "source"]
        return f"unknown top-level key {key!r} (use {', '.join(tables)}, [[source]])"
    return _cause(error, None, SourcesFile, "")


def _field(cls: type, key: str) -> FieldInfo | None:
    """The field of ``cls`` a key of the file names (by its alias, else its name)."""
    return next((f for name, f in fields_of(cls).items() if (f.alias or name) == key), None)


def _table_class(table: str) -> type:
    """The class of a top-level table (``settings``: Settings), from the file's schema."""
    info = _field(SourcesFile, table)
    annotation = info.annotation if info is not None else None
    return annotation if isinstance(annotation, type) else SourcesFile


def _cause(error: ErrorDetails, key: str | None, table: type, known: str) -> str:
    """What is wrong, worded for the operator: the part after the table or source."""
    kind = error["type"]
    ctx = error.get("ctx", {})
    value = error["input"]
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    if kind in _UNKNOWN:
        return f"unknown key {ctx.get('key', key)!r} (known: {known})"
    if kind == "missing":
        return f"missing required key {key!r}"
    if kind == "wrong_type":
        return f"{key} must be {ctx['expected']}, not {value!r}"
    if kind in _EXPECTED:
        return f"{key} must be {_EXPECTED[kind]}, not {value!r}"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal") and key:
        return f"{key} {_bounds(table, key)}"
    return f"{key}: {error['msg']}" if key else error["msg"]


def _bounds(table: type, key: str) -> str:
    """A field's bounds in words: "must be at least 1", "must be from 1 to 59", ..."""
    info = _field(table, key)
    metadata = info.metadata if info is not None else []
    low = next((m.ge for m in metadata if isinstance(m, Ge)), None)
    above = next((m.gt for m in metadata if isinstance(m, Gt)), None)
    high = next((m.le for m in metadata if isinstance(m, Le)), None)
    if low is not None and high is not None:
        return f"must be from {low} to {high}"
    if above == 0:
        return "must be positive"
    if low == 0:
        return "must not be negative"
    return f"must be at least {low}" if low is not None else f"must be above {above}"
