"""Pydantic validation errors translated into the loader's findings: one plain-English
message and rule id per problem, at the field path it concerns."""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ValidationError

from reconciler.load.findings import Finding, show
from reconciler.load.manifest_model import (
    RUNTIME_OWNED_FIELDS,
    SECRET_FIELDS,
)

_TYPE_WORDS = {
    "string_type": "text",
    "int_type": "a whole number",
    "int_from_float": "a whole number",
    "int_parsing": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "list_type": "a list",
}
_BOUND_WORDS = {
    "greater_than_equal": ("ge", "at least"),
    "greater_than": ("gt", "above"),
    "less_than_equal": ("le", "at most"),
    "less_than": ("lt", "below"),
}
_NAME_HINT = "use lower-case letters, digits and dashes, starting with a letter or digit (1-63)"
_FIELD_MESSAGES: dict[str, tuple[str, str]] = {
    "interval_minutes": ("RCN-SYNC-1", "must be a whole number of minutes from 1 to 10080"),
    "max_attempts": ("RCN-WH-8", "must be a whole number from 1 to 25"),
    "initial_delay_seconds": ("RCN-WH-8", "must be a whole number of seconds from 1 to 300"),
    "multiplier": ("RCN-WH-8", "must be a number from 1.5 to 10"),
    "max_delay_seconds": ("RCN-WH-8", "must be a whole number of seconds from 1 to 21600 (6 h)"),
    "failure_threshold": ("RCN-WH-9", "must be a whole number from 1 to 100"),
    "reset_after_seconds": ("RCN-WH-9", "must be a whole number of seconds from 10 to 3600"),
    "stripe_account_id": (
        "RCN-ID-1",
        "must be a Stripe account id: acct_ and 8-32 letters or digits (acct_1Nv0FGQ9RKHgCVdK)",
    ),
    "portal_id": ("RCN-ID-2", "must be a HubSpot portal id: a positive number, unquoted"),
    "user_id": ("RCN-ID-2", "must be a HubSpot user id: a positive number, unquoted"),
    "realm_id": (
        "RCN-ID-3",
        'must be a QuickBooks realm id: 1-20 digits in quotes ("9130347596263942"), so it '
        "stays text",
    ),
    "tenant": ("RCN-S007", f"is not a valid tenant name: {_NAME_HINT}"),
    "template": ("RCN-S007", f"is not a valid template name: {_NAME_HINT}"),
}
_QUOTED = re.compile(r"'([^']*)'")


def _unwrap(tp: Any) -> Any:
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(args) != 1:
                return tp
            tp = args[0]
        else:
            return tp


def _model_at(model: type[BaseModel], loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The pydantic model that validates the mapping at ``loc`` (for "did you mean")."""
    current: Any = model
    for element in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            fields = {(f.alias or n): f for n, f in current.model_fields.items()}
            if element not in fields:
                return None
            current = fields[element].annotation
        elif typing.get_origin(current) in (dict, list):
            current = typing.get_args(current)[-1]
        else:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _extra_field(model: type[BaseModel], loc: tuple[str | int, ...]) -> Finding:
    key = str(loc[-1])
    if key in RUNTIME_OWNED_FIELDS:
        return Finding(
            "RCN-S006",
            f"{key} is owned by the runtime (observed state: health, sync times, counters, "
            "tokens); manifests declare desired state only, remove it",
            loc,
            at_key=True,
        )
    parent = _model_at(model, loc[:-1])
    allowed = sorted((f.alias or n) for n, f in parent.model_fields.items()) if parent else []
    if loc[:-1] == ("environments",):
        what = f"unknown environment {key!r}; use production, sandbox, staging or development"
    elif len(loc) == 4 and loc[2] == "integrations":
        what = f"unknown config type {key!r}; use API_KEY, WEBHOOK, OAUTH or SETTINGS"
    elif key in SECRET_FIELDS:
        what = f"{key} is not a field of this object"
    else:
        what = f"unknown field {key!r}"
    guess = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if guess:
        what += f"; did you mean {guess[0]!r}?"
    elif allowed and "environment" not in what and "config type" not in what:
        what += f" (allowed: {', '.join(allowed)})"
    return Finding("RCN-S002", what, loc, at_key=True)


def describe(value: Any) -> str:
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if value is None:
        return "nothing (null)"
    if isinstance(value, datetime | date):
        return "a timestamp"
    if isinstance(value, str):
        return f"the text {show(value)}"
    if isinstance(value, int | float):
        return f"the number {value}"
    return show(value)


def translate_error(model: type[BaseModel], error: Mapping[str, Any]) -> Finding:
    """One pydantic error as a :class:`Finding` with a rule id and a human message."""
    loc: tuple[str | int, ...] = tuple(error["loc"])
    kind: str = error["type"]
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    value = error.get("input")
    if loc and loc[-1] == "[key]":
        return Finding(
            "RCN-S007", f"{show(loc[-2])} is not a valid name: {_NAME_HINT}", loc[:-1], at_key=True
        )
    field = next((str(e) for e in reversed(loc) if isinstance(e, str)), "")
    if kind == "extra_forbidden":
        return _extra_field(model, loc)
    if kind == "missing":
        return Finding("RCN-S003", f"required field {field!r} is missing", loc)
    if field in SECRET_FIELDS:
        # Never echo the value: it is (or may be) a plaintext secret.
        return Finding(
            "RCN-SEC-1",
            f"{field} is not SOPS-encrypted; secrets must be ENC[...] values: run "
            "`sops encrypt --in-place FILE` (the value is not shown)",
            loc,
        )
    if field in _FIELD_MESSAGES and not (field == "app_id" and "oauth_accounts" not in loc):
        code, text = _FIELD_MESSAGES[field]
        return Finding(code, f"{field} {text} (got {describe(value)})", loc)
    if field == "app_id" and "oauth_accounts" in loc:
        return Finding(
            "RCN-ID-2",
            f"app_id must be a HubSpot app id: a positive number, unquoted (got {describe(value)})",
            loc,
        )
    if kind in _TYPE_WORDS:
        return Finding("RCN-S001", f"expected {_TYPE_WORDS[kind]}, got {describe(value)}", loc)
    if kind in ("enum", "literal_error"):
        options = _QUOTED.findall(str(ctx.get("expected", "")))
        text = f"{show(value)} is not allowed; use {' or '.join(repr(o) for o in options)}"
        guess = difflib.get_close_matches(str(value), options, n=1, cutoff=0.5)
        if isinstance(value, str) and value.upper() in options:
            guess = [value.upper()]
        if guess and len(options) > 2:
            text += f"; did you mean {guess[0]!r}?"
        return Finding("RCN-S004", text, loc)
    if kind in _BOUND_WORDS:
        key, words = _BOUND_WORDS[kind]
        return Finding("RCN-S005", f"must be {words} {ctx.get(key)} (got {describe(value)})", loc)
    message = str(error.get("msg", kind))
    return Finding("RCN-S005", message[0].lower() + message[1:], loc)


def model_findings(
    model: type[BaseModel], doc: Any, skip: Iterable[tuple[Any, ...]] = ()
) -> tuple[Any, list[Finding]]:
    """Validate ``doc`` against ``model``: ``(instance, [])``, or ``(None, findings)`` with
    one finding per error (errors at the ``skip`` locations left out)."""
    skipped = set(skip)
    try:
        return model.model_validate(doc), []
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=True, include_input=True)
        return None, [translate_error(model, e) for e in errors if tuple(e["loc"]) not in skipped]
