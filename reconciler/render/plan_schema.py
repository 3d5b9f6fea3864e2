"""JSON Schema (draft 2020-12) of the plan JSON, ``format_version`` 1.

:func:`plan_json_schema` is the source of truth; ``schemas/plan.v1.json`` is its output,
committed so consumers can read it without running Python (a test fails when they differ).
Enumerations come from the model's enums, so adding a platform or risk level shows up here.

The schema is closed (``additionalProperties: false``): adding a field to the plan means
regenerating this file. Under the ``FORMAT_VERSION`` rules adding a field with a default
stays version 1; any other change needs ``plan.v2.json``.
"""

from __future__ import annotations

import json
from typing import Any

from reconciler.model.enums import Environment, Platform, RiskLevel
from reconciler.model.plan import (
    FORMAT_VERSION,
    SENSITIVE_MASK,
    VERSION_KEY,
    Action,
    NoticeKind,
    ResourceKind,
)

SCHEMA_ID = f"https://reconciler.dev/schemas/plan.v{FORMAT_VERSION}.json"

_CHANGE_ACTIONS = [a.value for a in Action if a is not Action.NOOP]
_LEVELS = [lvl.value for lvl in RiskLevel]


def plan_json_schema() -> dict[str, Any]:
    """Return the JSON Schema of ``Plan.to_dict()`` / ``render_json`` output.

    Returns:
        A new dict (callers may change it) with ``$schema``, ``$id`` and ``$defs``.
    """
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "reconciler plan",
        "description": (
            "A saved or rendered reconciler plan: the ordered changes that would make the "
            "database match the manifests. Holds no secret: sensitive fields carry only "
            f"{SENSITIVE_MASK!r} or null. Produced by `reconciler plan --format json` and "
            "`--out`; read by `reconciler apply PLAN`."
        ),
        "type": "object",
        "additionalProperties": False,
        "required": [
            "format_version",
            "created_at",
            "manifests_digest",
            "actual_fingerprint",
            "selectors",
            "prune",
            "summary",
            "changes",
            "notices",
            "mass_deletions",
            "read_set",
        ],
        "properties": {
            "format_version": {
                "const": FORMAT_VERSION,
                "description": (
                    "Version of this JSON format. Adding a field with a default keeps the "
                    "version; any other change increases it. Readers refuse other versions."
                ),
            },
            "created_at": _str(
                "RFC 3339 UTC time the plan was made. Informational; never compared.",
                format="date-time",
            ),
            "manifests_digest": _str(
                "Digest of the manifests the plan was made from; apply of a saved plan "
                "refuses (exit 3) when the manifests changed."
            ),
            "actual_fingerprint": _str(
                "SHA-256 over read_set. Equal fingerprints mean the same rows at the same "
                "versions; apply of a saved plan refuses (exit 3) on a mismatch."
            ),
            "author": _nullable_str(
                "Who made the plan (the actor). Approvals (`reconciler approve`) must come "
                "from someone else. Absent when unknown."
            ),
            "revision": _nullable_str(
                "The git revision the manifests were read at (`--revision`). Absent when "
                "the plan was made from the working tree."
            ),
            "selectors": {"$ref": "#/$defs/selectors"},
            "prune": {
                "type": "boolean",
                "description": (
                    "Whether deletions and revocations of objects no manifest declares "
                    "were planned. When false such objects appear as notices of kind 'kept'."
                ),
            },
            "summary": {"$ref": "#/$defs/summary"},
            "changes": {
                "type": "array",
                "description": (
                    "Changes in apply order. No-ops are not listed. An empty list means "
                    "the database matches the manifests."
                ),
                "items": {"$ref": "#/$defs/change"},
            },
            "notices": {
                "type": "array",
                "description": "Things the plan reports that are not changes.",
                "items": {"$ref": "#/$defs/notice"},
            },
            "mass_deletions": {
                "type": "array",
                "description": (
                    "Tripped mass-deletion breakers, one per tenant. Apply refuses the plan "
                    "(exit 4) unless mass deletion is explicitly allowed."
                ),
                "items": {"$ref": "#/$defs/mass_deletion"},
            },
            "read_set": {
                "type": "array",
                "description": (
                    "Every row the plan read, with its version; apply of a saved plan "
                    "re-reads these under the lock."
                ),
                "items": {"$ref": "#/$defs/row_ref"},
            },
            "policy": {
                "description": (
                    "The policy verdict when the plan was made; null when not evaluated "
                    "(added in version 1 with a default: older files have no key)."
                ),
                "anyOf": [{"$ref": "#/$defs/policy"}, {"type": "null"}],
            },
        },
        "$defs": _defs(),
    }


def plan_json_schema_text() -> str:
    """The schema as the exact text committed in ``schemas/plan.v1.json``."""
    return json.dumps(plan_json_schema(), indent=2, ensure_ascii=False) + "\n"


def _defs() -> dict[str, Any]:
    return {
        "address": _str(
            "The object's address: tenant/platform/environment/kind/name, lower-case "
            "platform and environment, '-' for an account with no environment.",
            pattern=_address_pattern(),
        ),
        "resource": _object(
            "The object's identity, field by field (the parts of the address).",
            {
                "tenant": _str("Tenant id.", minLength=1),
                "platform": _enum("Integration platform.", [p.value for p in Platform]),
                "environment": {
                    "description": (
                        "Deployment environment; null only for an OAuth account found in the "
                        "database that no manifest declares."
                    ),
                    "enum": [*[e.value for e in Environment], None],
                },
                "kind": _enum("Kind of object.", [k.value for k in ResourceKind]),
                "name": _str(
                    "Name within the kind: the config_type of an integration, the webhook "
                    "name, or the account id of an OAuth account.",
                    minLength=1,
                ),
            },
        ),
        "field_change": _field_change(),
        "risk_reason": _object(
            "One rule of the risk table that matched the change.",
            {
                "code": _str("Stable rule code.", minLength=1),
                "level": _enum("Level this rule assigns.", _LEVELS),
                "message": _str("What the rule found, in words."),
            },
        ),
        "risk": _object(
            "The change's risk: for display, audit and gating an apply (--allow-risk); "
            "never used to decide how a change is applied.",
            {
                "level": _enum("Highest level among the matched rules.", _LEVELS),
                "requires_review": {
                    "type": "boolean",
                    "description": "True for HIGH and CRITICAL: flagged in the audit log.",
                },
                "reasons": {
                    "type": "array",
                    "description": "The matched rules.",
                    "items": {"$ref": "#/$defs/risk_reason"},
                },
            },
        ),
        "change": _optional(
            _object(
                "One planned change to one object.",
                {
                    "address": {"$ref": "#/$defs/address"},
                    "resource": {"$ref": "#/$defs/resource"},
                    "action": _enum(
                        "What the change does. delete is a soft delete; revoke revokes an "
                        "OAuth token.",
                        _CHANGE_ACTIONS,
                    ),
                    "fields": {
                        "type": "array",
                        "description": (
                            "Field-level before/after: every set field of a create or delete, "
                            "the changed fields of an update."
                        ),
                        "items": {"$ref": "#/$defs/field_change"},
                    },
                    "risk": {"$ref": "#/$defs/risk"},
                    "reason": _str("Why this action, in words. Display only; may be empty."),
                    "source": _nullable_str("Manifest path that declares the object, if any."),
                    "row_id": _nullable_int("Database id of the existing row; null for a new row."),
                    VERSION_KEY: _nullable_int(
                        "Row version the plan saw; null for a new row. Apply re-checks it."
                    ),
                    "line": _nullable_int(
                        "1-based line in source where the object is declared, when known."
                    ),
                },
            ),
            "line",
        ),
        "policy_block": _object(
            "One reason apply would refuse the plan, and the flag that would allow it.",
            {
                "kind": _enum("What is refused.", ["risk", "mass_deletion", "mass_revocation"]),
                "summary": _str("What is refused, in words."),
                "needs": _str("The apply flag that allows it, e.g. --allow-risk critical."),
                "items": _str_list("One line per change or tenant concerned."),
            },
        ),
        "policy": _object(
            "What apply would refuse under the permissions the plan was made with "
            "(reconciler.yaml and the plan's --allow-* flags). Informational: readers derive "
            "it again from the changes, and apply decides with its own flags.",
            {
                "blocked": {
                    "type": "boolean",
                    "description": "True when apply with these permissions would refuse (exit 4).",
                },
                "allow_risk": _enum("The highest risk level allowed.", _LEVELS),
                "allow_mass_deletion": {
                    "type": "boolean",
                    "description": "Whether --allow-mass-deletion was given.",
                },
                "allow_mass_revocation": {
                    "type": "boolean",
                    "description": "Whether --allow-mass-revocation was given.",
                },
                "blocks": {
                    "type": "array",
                    "description": "Why apply would refuse; empty when it would go ahead.",
                    "items": {"$ref": "#/$defs/policy_block"},
                },
            },
        ),
        "notice": _object(
            "Something the plan reports that is not a change.",
            {
                "kind": _enum(
                    "kept: not in manifests, kept because --prune was not given; "
                    "waiting_for_connection: a declared OAuth account with no token yet; "
                    "undeclared_account: a token for an account no manifest declares; "
                    "account_mode_mismatch: a declared Stripe account connected in the other "
                    "live/test mode.",
                    [k.value for k in NoticeKind],
                ),
                "address": {"$ref": "#/$defs/address"},
                "resource": {"$ref": "#/$defs/resource"},
                "message": _str("Details in words; may be empty."),
                "level": {
                    "description": "Risk level of what the notice reports, if it has one.",
                    "enum": [*_LEVELS, None],
                },
            },
        ),
        "mass_deletion": _optional(
            _object(
                "A tripped mass-deletion or mass-revocation breaker for one tenant.",
                {
                    "tenant": _str("Tenant id.", minLength=1),
                    "deleting": _count("Objects of the tenant the plan deletes or revokes."),
                    "total": _count("Objects of the tenant in the database."),
                    "whole_tenant": {
                        "type": "boolean",
                        "description": "True when every object of the tenant would be deleted.",
                    },
                    "kind": {
                        "enum": ["objects", "tokens"],
                        "description": (
                            "objects: integrations and webhooks deleted (allowed with "
                            "--allow-mass-deletion); tokens: active OAuth tokens revoked as "
                            "undeclared or unmanaged accounts (allowed with "
                            "--allow-mass-revocation). Absent means objects."
                        ),
                    },
                },
            ),
            "kind",
        ),
        "row_ref": _object(
            "A row the plan read.",
            {
                "table": _str("Table name.", minLength=1),
                "id": {"type": "integer", "description": "Row id."},
                VERSION_KEY: {"type": "integer", "description": "Row version read."},
            },
        ),
        "selectors": _object(
            "Which tenants and platforms the plan covers. Empty lists mean all.",
            {
                "tenants": _str_list("Tenants selected with --tenant."),
                "platforms": {
                    "type": "array",
                    "description": "Platforms selected with --platform.",
                    "items": {"enum": [p.value for p in Platform]},
                },
                "exclude_tenants": _str_list("Tenants excluded with --exclude-tenant."),
            },
        ),
        "summary": _object(
            "Counts derived from changes and mass_deletions; a convenience for readers.",
            {
                "total": _count("Number of changes."),
                "by_action": _counts("Number of changes per action.", _CHANGE_ACTIONS),
                "by_risk": _counts("Number of changes per risk level.", _LEVELS),
                "requires_review": _count("Number of HIGH and CRITICAL changes."),
                "mass_deletions": _count("Number of tripped mass-deletion breakers."),
            },
        ),
    }


def _field_change() -> dict[str, Any]:
    masked = {"enum": [SENSITIVE_MASK, None]}
    schema = _object(
        "One field's before and after. A sensitive field carries only "
        f"{SENSITIVE_MASK!r} (set) or null (not set), never a value.",
        {
            "field": _str("Field name as in the manifest.", minLength=1),
            "before": {"description": "Value before the change; null when not set."},
            "after": {"description": "Value after the change; null when not set."},
            "sensitive": {
                "type": "boolean",
                "description": "True for secret fields; renderers show only whether it changed.",
            },
        },
    )
    # Enforced here too, so a consumer validating a plan file catches a leaked secret.
    schema["if"] = {"properties": {"sensitive": {"const": True}}}
    schema["then"] = {"properties": {"before": masked, "after": masked}}
    return schema


def _address_pattern() -> str:
    platforms = "|".join(p.file_stem for p in Platform)
    envs = "|".join(e.manifest_key for e in Environment)
    kinds = "|".join(k.value for k in ResourceKind)
    return f"^[^/]+/({platforms})/({envs}|-)/({kinds})/.+$"


def _optional(schema: dict[str, Any], *names: str) -> dict[str, Any]:
    """``schema`` with ``names`` no longer required (fields added with a default)."""
    return {**schema, "required": [n for n in schema["required"] if n not in names]}


def _object(description: str, properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "additionalProperties": False,
        "required": list(properties),
        "properties": properties,
    }


def _str(description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "description": description, **extra}


def _nullable_str(description: str) -> dict[str, Any]:
    return {"type": ["string", "null"], "description": description}


def _nullable_int(description: str) -> dict[str, Any]:
    return {"type": ["integer", "null"], "description": description}


def _enum(description: str, values: list[str]) -> dict[str, Any]:
    return {"type": "string", "description": description, "enum": values}


def _count(description: str) -> dict[str, Any]:
    return {"type": "integer", "minimum": 0, "description": description}


def _counts(description: str, keys: list[str]) -> dict[str, Any]:
    return _object(description, {k: _count(f"Changes counted under {k}.") for k in keys})


def _str_list(description: str) -> dict[str, Any]:
    return {"type": "array", "description": description, "items": {"type": "string"}}
