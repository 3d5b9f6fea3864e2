"""What a field table row is: :class:`FieldSpec`, and the helpers that compile code from it.

The table itself (every reconciled field, with the model objects it describes) is
:mod:`reconciler.model.fields`; this module holds the vocabulary it is written in and the
generic machinery the diff, the store, the load cache and the import build their per-field
code with, once at import time.

Pure data, no I/O.
"""

from __future__ import annotations

import dataclasses
import enum
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, Final, TypeVar

_T = TypeVar("_T")


class Owner(enum.StrEnum):
    """Who sets a field: the manifests (reconciled) or the application at run time."""

    MANIFEST = "manifest"
    RUNTIME = "runtime"


class Kind(enum.StrEnum):
    """The value type of a field, which decides how it is converted at each boundary.

    Members:
        TEXT, BOOL, INT, FLOAT: plain scalars.
        ENUM: a :class:`enum.StrEnum` member (:attr:`FieldSpec.enum`), stored as its label.
        JSON: a mapping stored as JSONB (an SQL NULL reads as ``{}``).
        LIST: a list of strings stored as JSONB, a tuple on the model objects (an SQL NULL
            reads as ``()``).
        SECRET: a :class:`~reconciler.model.values.SecretValue` on desired objects; the
            store keeps the ciphertext in :attr:`FieldSpec.column` and its fingerprint in
            :attr:`FieldSpec.fingerprint_column`.
        TIMESTAMP: a ``timestamptz``.
    """

    TEXT = "text"
    BOOL = "bool"
    INT = "int"
    FLOAT = "float"
    ENUM = "enum"
    JSON = "json"
    LIST = "list"
    SECRET = "secret"  # noqa: S105 - a kind of field, not a password
    TIMESTAMP = "timestamp"


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One field of one entity.

    Attributes:
        name: the attribute of the model objects and the field name a plan shows.
        column: the database column (for a secret, the ciphertext column); ``None`` when
            the field has no column of its own (the store computes it, or only manifests
            carry it).
        kind: the value type.
        sql_type: the PostgreSQL type the store binds and casts it as.
        owner: manifest (reconciled: compared by the diff, written by apply) or runtime.
        identity: part of the object's identity (never updated, never a field change).
        risk: the code of the risk rule (``core/risk.py``) a change of the field matches.
        enum: the enum of an ENUM field.
        desired: the attribute path on the desired object when it differs from ``name``
            (a dotted path, e.g. ``retry.max_attempts``).
        manifest: the key path in the manifest object (dotted), for writing manifests back.
        set_like: compared as a set (order carries no meaning).
        schedules: its value is the sync interval in minutes: writing a new value moves the
            runtime-owned ``next_sync_at``.
    """

    name: str
    column: str | None
    kind: Kind
    sql_type: str
    owner: Owner = Owner.MANIFEST
    identity: bool = False
    risk: str | None = None
    enum: type[enum.StrEnum] | None = None
    desired: str = ""
    manifest: str = ""
    set_like: bool = False
    schedules: bool = False

    @property
    def secret(self) -> bool:
        """Whether the field is a secret (compared by fingerprint, encrypted, never shown)."""
        return self.kind is Kind.SECRET

    @property
    def reconciled(self) -> bool:
        """Owned by the manifests and not part of the identity: the diff compares it."""
        return self.owner is Owner.MANIFEST and not self.identity

    @property
    def column_name(self) -> str:
        """The database column, named like the field when the declaration gives none."""
        return self.column or self.name

    @property
    def fingerprint_column(self) -> str:
        """The column holding a secret's fingerprint (``<column>_fingerprint``)."""
        return f"{self.column_name}_fingerprint"

    @property
    def desired_path(self) -> str:
        """The attribute path of the value on a desired object."""
        return self.desired or self.name

    @property
    def read(self) -> Any:
        """A getter of the value from an object that carries it under :attr:`name` (an
        actual row, a stored row; an :func:`operator.attrgetter`)."""
        return attrgetter(self.name)

    @property
    def read_desired(self) -> Any:
        """A getter of the value from a desired object (an :func:`operator.attrgetter`)."""
        return attrgetter(self.desired_path)


_SQL_TYPES: Final[Mapping[Kind, str]] = {
    Kind.TEXT: "text",
    Kind.BOOL: "boolean",
    Kind.INT: "integer",
    Kind.FLOAT: "double precision",
    Kind.JSON: "jsonb",
    Kind.LIST: "jsonb",
    Kind.SECRET: "text",
    Kind.TIMESTAMP: "timestamptz",
}


def spec(
    name: str,
    kind: Kind,
    sql_type: str = "",
    *,
    column: str | bool | None = True,
    **kw: Any,
) -> FieldSpec:
    """A :class:`FieldSpec`; ``column`` True: the column is named like the field, False: none.

    ``sql_type`` defaults to the usual PostgreSQL type of ``kind``.
    """
    col = name if column is True else (None if column is False else column)
    sql = sql_type or _SQL_TYPES.get(kind, "text")
    return FieldSpec(name, col, kind, sql, **kw)


def secrets_of(fields: tuple[FieldSpec, ...]) -> tuple[FieldSpec, ...]:
    """The secret fields."""
    return tuple(f for f in fields if f.secret)


def plain_of(fields: tuple[FieldSpec, ...]) -> tuple[FieldSpec, ...]:
    """The reconciled fields that are not secrets (compared by value)."""
    return tuple(f for f in fields if f.reconciled and not f.secret)


def identity_of(fields: tuple[FieldSpec, ...]) -> tuple[FieldSpec, ...]:
    """The identity fields."""
    return tuple(f for f in fields if f.identity)


def attribute_path(path: str, root: str = "obj", *, none_safe: bool = False) -> str:
    """The expression reading ``root.path`` (dotted); ``none_safe``: a None step reads None.

    Raises ``ValueError`` unless every step is an identifier, so only names from the field
    table reach :func:`compile_record`.
    """
    steps = path.split(".")
    if not all(step.isidentifier() for step in (root, *steps)):
        raise ValueError(f"not an attribute path: {path!r}")
    expression = f"{root}.{steps[0]}"
    for step in steps[1:]:
        expression = (
            f"(None if {expression} is None else {expression}.{step})"
            if none_safe
            else f"{expression}.{step}"
        )
    return expression


def lookup(mapping: str, key: str) -> str:
    """The expression reading ``key`` from the mapping ``mapping`` (``None`` when absent);
    both must be identifiers."""
    if not (mapping.isidentifier() and key.isidentifier()):
        raise ValueError(f"not a mapping lookup: {mapping!r}, {key!r}")
    return f"{mapping}.get({key!r})"


def item(sequence: str, position: int) -> str:
    """The expression reading ``sequence[position]``; ``sequence`` must be an identifier."""
    if not sequence.isidentifier() or type(position) is not int:
        raise ValueError(f"not an item: {sequence!r}[{position!r}]")
    return f"{sequence}[{position}]"


def call(helper: str, expression: str) -> str:
    """``helper(expression)``; ``helper`` must be an identifier (``""``: no call)."""
    if not helper:
        return expression
    if not helper.isidentifier():
        raise ValueError(f"not a helper name: {helper!r}")
    return f"{helper}({expression})"


def compile_call(
    callee: str, arguments: Sequence[str], helpers: Mapping[str, object], params: str = "obj"
) -> Callable[..., Any]:
    """A function ``(params) -> callee(*arguments)`` compiled once from the field table, as
    :func:`compile_record` compiles a dict display (the arguments built the same way)."""
    if not callee.isidentifier() or not all(p.strip().isidentifier() for p in params.split(",")):
        raise ValueError(f"not a callee and parameters: {callee!r}, {params!r}")
    source = f"def made({params}):\n    return {callee}({', '.join(arguments)})\n"
    namespace: dict[str, Any] = dict(helpers)
    exec(source, namespace)  # noqa: S102 - only identifiers from the table reach the source
    made: Callable[..., Any] = namespace["made"]
    return made


def compile_tuple(
    expressions: Sequence[str], helpers: Mapping[str, object] | None = None, params: str = "obj"
) -> Callable[..., tuple[Any, ...]]:
    """A function ``(params) -> (expressions...)`` compiled once from the field table (the
    expressions built as for :func:`compile_record`)."""
    if not all(p.strip().isidentifier() for p in params.split(",")):
        raise ValueError(f"not parameter names: {params!r}")
    source = f"def values({params}):\n    return ({''.join(e + ', ' for e in expressions)})\n"
    namespace: dict[str, Any] = dict(helpers or {})
    exec(source, namespace)  # noqa: S102 - only identifiers from the table reach the source
    values: Callable[..., tuple[Any, ...]] = namespace["values"]
    return values


def fast_constructor(model: type[_T]) -> Callable[..., _T]:
    """A function ``(*values) -> model(*values)`` that fills the fields of a frozen, slotted
    dataclass without running its ``__init__``, for objects made by the hundred thousand.

    A frozen dataclass's ``__init__`` sets each field through ``object.__setattr__``; setting
    each slot through its descriptor takes half the time. Every field is positional, in
    declaration order, and required: the function is only made for dataclasses whose
    ``__init__`` does nothing else (no ``__post_init__``, no field left out of ``__init__``;
    defaults are not applied).
    """
    if not dataclasses.is_dataclass(model) or hasattr(model, "__post_init__"):
        raise ValueError(f"{model.__name__}: not a dataclass without __post_init__")
    fields = dataclasses.fields(model)
    slots: list[Any] = [model.__dict__.get(f.name) for f in fields]
    if not all(f.init for f in fields) or not all(
        isinstance(slot, types.MemberDescriptorType) for slot in slots
    ):
        raise ValueError(f"{model.__name__}: every field must be an __init__ field in a slot")
    names = [f"v{i}" for i in range(len(fields))]
    body = "".join(f"    set_{name}(obj, {name})\n" for name in names)
    source = f"def made({', '.join(names)}):\n    obj = new(model)\n{body}    return obj\n"
    namespace: dict[str, Any] = {"new": object.__new__, "model": model}
    namespace.update({f"set_{n}": slot.__set__ for n, slot in zip(names, slots, strict=True)})
    exec(source, namespace)  # noqa: S102 - generated names only
    made: Callable[..., _T] = namespace["made"]
    made.__qualname__ = made.__name__ = f"make_{model.__name__}"
    return made


def compile_constructor(
    model: type[_T], values: Mapping[str, str], helpers: Mapping[str, object], params: str
) -> Callable[..., _T]:
    """A function ``(params) -> model`` object whose every field is the expression
    ``values[field]`` (built as for :func:`compile_record`), made by
    :func:`fast_constructor`. Raises ``ValueError`` unless ``values`` names exactly the
    model's fields (the field table and the model disagree)."""
    names = [f.name for f in dataclasses.fields(model)]  # type: ignore[arg-type]
    if sorted(values) != sorted(names):
        raise ValueError(f"{model.__name__} has the fields {names}, not {sorted(values)}")
    helpers = {**helpers, "model": fast_constructor(model)}
    return compile_call("model", [values[name] for name in names], helpers, params)


def compile_record(
    items: Sequence[tuple[str, str]],
    helpers: Mapping[str, object] | None = None,
    params: str = "obj",
) -> Callable[..., dict[str, Any]]:
    """A function ``(params) -> {key: expression}`` compiled once from the field table.

    The expressions are built with :func:`attribute_path` and :func:`call` (names from
    the table and helper names only). The diff, the store and state building run these per
    object at fleet scale, where one generated dict display is several times faster than a
    loop over getters (the technique :mod:`dataclasses` uses for ``__init__``).
    """
    if not all(p.strip().isidentifier() for p in params.split(",")):
        raise ValueError(f"not parameter names: {params!r}")
    body = ", ".join(f"{key!r}: {expression}" for key, expression in items)
    source = f"def record({params}):\n    return {{{body}}}\n"
    namespace: dict[str, Any] = dict(helpers or {})
    exec(source, namespace)  # noqa: S102 - only identifiers from the table reach the source
    record: Callable[..., dict[str, Any]] = namespace["record"]
    return record
