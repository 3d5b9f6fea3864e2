"""A plan's digest: what ``apply_runs`` records and what approvals are bound to.

The digest is the SHA-256 of ``json.dumps([change.to_dict(), ...], sort_keys=True)`` with
each change's location (``source``, ``line``) left out. That text is the contract: an
approval recorded for a plan's digest must match the digest ``apply`` computes of the same
plan with any later version. It is written here piece by piece, exactly as ``json.dumps``
would write it (the tests hold the two equal), because the generic encoder builds and sorts
a dict per change and per field change, and a fleet-wide plan has a million-odd field
changes: strings, integers, booleans and None are written directly, anything else through
the encoder, and each distinct risk is encoded once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from json.encoder import encode_basestring_ascii
from typing import Any

from reconciler.model.plan import VERSION_KEY, Change, FieldChange, Plan, Risk

_JSON = json.JSONEncoder(sort_keys=True)
"""Encodes a value as ``json.dumps(..., sort_keys=True)`` does (the digest's form)."""
_encode: Callable[[Any], str] = _JSON.encode
_string: Callable[[str], str] = encode_basestring_ascii
"""The C string encoder ``json.dumps`` uses by default (``ensure_ascii``)."""


def plan_digest(p: Plan) -> str:
    """SHA-256 (hex) of ``p``'s changes, without their locations."""
    # Fed one change at a time: the whole list's text would be the largest thing an apply
    # holds.
    h = hashlib.sha256(b"[")
    risks: dict[Risk, str] = {}
    separator = b""
    for c in p.changes:
        h.update(separator + _change_text(c, risks).encode())
        separator = b", "
    h.update(b"]")
    return h.hexdigest()


def _change_text(c: Change, risks: dict[Risk, str]) -> str:
    """``json.dumps(record, sort_keys=True)`` of the change's record without its location:
    the keys in sorted order, ``VERSION_KEY`` being ``row_version``."""
    risk = risks.get(c.risk)
    if risk is None:
        risk = risks[c.risk] = _encode(c.risk.to_dict())
    a = c.address
    env = a.environment
    resource = (
        f'{{"environment": {"null" if env is None else _string(env.value)}, '
        f'"kind": {_string(a.kind.value)}, "name": {_string(a.name)}, '
        f'"platform": {_string(a.platform.value)}, "tenant": {_string(a.tenant)}}}'
    )
    return (
        f'{{"action": {_string(c.action.value)}, "address": {_string(str(a))}, '
        f'"fields": [{", ".join([_field_text(f) for f in c.fields])}], '
        f'"reason": {_string(c.reason)}, "resource": {resource}, '
        f'"risk": {risk}, "row_id": {_value(c.row_id)}, '
        f'"{VERSION_KEY}": {_value(c.row_version)}}}'
    )


def _field_text(f: FieldChange) -> str:
    return (
        f'{{"after": {_value(f.after)}, "before": {_value(f.before)}, '
        f'"field": {_string(f.field)}, "sensitive": {_value(f.sensitive)}}}'
    )


def _value(v: Any) -> str:
    """``json.dumps(v, sort_keys=True)``: strings, None, booleans and integers directly
    (what nearly every value of a plan is), anything else through the encoder."""
    t = type(v)
    if t is str:
        return _string(v)
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if t is int:
        return int.__repr__(v)
    return _encode(v)
