"""The Plan: frozen, versioned, serializable data that every renderer and ``apply`` read.

A plan holds no secret: sensitive fields carry only whether the value is set and whether it
changed. ``to_dict``/``from_dict`` give the JSON form documented by ``schemas/plan.v1.json``.
``FORMAT_VERSION`` follows dbt's rule: adding a field with a default is non-breaking;
anything else bumps the version.
"""

from __future__ import annotations

import enum
from collections import Counter
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from typing import Any

from reconciler.model.enums import Environment, Platform, RiskLevel
from reconciler.model.plan_policy import PolicyVerdict

FORMAT_VERSION = 1

SENSITIVE_MASK = "(sensitive)"

VERSION_KEY = "row_version"
"""The plan key (and attribute) of the row version a change or a read-set row pins."""


class _PlainRecord:
    """Base of the records whose fields are all plain JSON values: :meth:`to_dict` gives each
    field under its own name, in the order declared (shallow: values are not copied)."""

    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        names = _FIELD_NAMES.get(type(self))
        if names is None:  # dataclasses.fields() per call costs more than the copy
            fields = dataclass_fields(self)  # type: ignore[arg-type]
            names = _FIELD_NAMES[type(self)] = tuple(f.name for f in fields)
        return {name: getattr(self, name) for name in names}


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}
"""The field names of each :class:`_PlainRecord` subclass, in order, once known."""


class Action(enum.StrEnum):
    """What a change does. Closed set: code that handles actions matches exhaustively."""

    NOOP = "no-op"
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    REVOKE = "revoke"

    @property
    def symbol(self) -> str:
        """The one-character marker in text plans (Terraform style)."""
        return _SYMBOLS[self]

    @property
    def is_destructive(self) -> bool:
        return self in (Action.DELETE, Action.REVOKE)


_SYMBOLS = {
    Action.NOOP: " ",
    Action.CREATE: "+",
    Action.UPDATE: "~",
    Action.DELETE: "-",
    Action.REVOKE: "!",
}


class ResourceKind(enum.StrEnum):
    """The kind of object a change is about, in apply order."""

    INTEGRATION = "integration"
    WEBHOOK = "webhook"
    OAUTH_ACCOUNT = "oauth_account"


@dataclass(frozen=True, slots=True, order=True)
class Address:
    """Stable identity of one object, also its sort key.

    ``environment`` is ``None`` only for OAuth accounts found in the database that no manifest
    declares (token rows have no environment).
    """

    tenant: str
    platform: Platform
    environment: Environment | None
    kind: ResourceKind
    name: str

    def __str__(self) -> str:
        env = self.environment.manifest_key if self.environment else "-"
        return f"{self.tenant}/{self.platform.file_stem}/{env}/{self.kind.value}/{self.name}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "platform": self.platform.value,
            "environment": self.environment.value if self.environment else None,
            "kind": self.kind.value,
            "name": self.name,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Address:
        env = d.get("environment")
        return cls(
            tenant=d["tenant"],
            platform=Platform(d["platform"]),
            environment=Environment(env) if env else None,
            kind=ResourceKind(d["kind"]),
            name=d["name"],
        )


@dataclass(frozen=True, slots=True)
class FieldChange(_PlainRecord):
    """One field of an update (or every set field of a create/delete).

    For a sensitive field ``before``/``after`` are ``"(sensitive)"`` when a value is set and
    ``None`` when not; whether it changed is exact (compared by keyed fingerprint).
    """

    field: str
    before: Any
    after: Any
    sensitive: bool = False

    def to_dict(self) -> dict[str, Any]:
        # Spelled out (the generic copy costs twice as much): a fleet-wide apply renders
        # each of its million-odd field changes for the digest and again for the audit.
        return {
            "field": self.field,
            "before": self.before,
            "after": self.after,
            "sensitive": self.sensitive,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FieldChange:
        return cls(d["field"], d.get("before"), d.get("after"), bool(d.get("sensitive", False)))


@dataclass(frozen=True, slots=True)
class RiskReason:
    """One rule of the risk table that matched a change."""

    code: str
    level: RiskLevel
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "level": self.level.value, "message": self.message}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RiskReason:
        return cls(d["code"], RiskLevel(d["level"]), d["message"])


@dataclass(frozen=True, slots=True)
class Risk:
    """A change's risk: the highest level of the matching rules, and the rules themselves.

    Risk explains and may *gate* an apply (``--allow-risk``), but must never change how a
    change is applied.
    """

    level: RiskLevel
    reasons: tuple[RiskReason, ...] = ()

    @property
    def requires_review(self) -> bool:
        return self.level.requires_review

    def to_dict(self) -> dict[str, Any]:
        return {
            "level": self.level.value,
            "requires_review": self.requires_review,
            "reasons": [r.to_dict() for r in self.reasons],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Risk:
        return cls(RiskLevel(d["level"]), tuple(RiskReason.from_dict(r) for r in d["reasons"]))


@dataclass(frozen=True, slots=True)
class Change:
    """One planned change to one object.

    Attributes:
        address: the object's identity.
        action: create, update, delete, revoke.
        fields: field-level before/after (sensitive fields masked).
        risk: level and reasons; for display, audit and gating only, never for how to apply.
        reason: why this action, in words (e.g. "not in manifests (--prune)"); display only.
        source: manifest path that declares the object, if any (for a deletion: the path
            that declared it, as recorded in the database).
        line: 1-based line in ``source`` where the object is declared, when known.
        row_id: database id of the existing row (``None`` for a create of a new row).
        row_version: the row version the plan saw (``None`` for a new row).
    """

    address: Address
    action: Action
    fields: tuple[FieldChange, ...] = ()
    risk: Risk = field(default_factory=lambda: Risk(RiskLevel.LOW))
    reason: str = ""
    source: str | None = None
    row_id: int | None = None
    row_version: int | None = None
    line: int | None = None

    @property
    def pinned_version(self) -> int | None:
        """The version of the row the plan saw, which guards every write of the change."""
        return self.row_version

    @property
    def location(self) -> str | None:
        """``path:line`` (or the path alone) of the manifest that declares the object."""
        if self.source is None:
            return None
        return f"{self.source}:{self.line}" if self.line else self.source

    def to_dict(self) -> dict[str, Any]:
        return {
            "address": str(self.address),
            "resource": self.address.to_dict(),
            "action": self.action.value,
            "fields": [f.to_dict() for f in self.fields],
            "risk": self.risk.to_dict(),
            "reason": self.reason,
            "source": self.source,
            "row_id": self.row_id,
            VERSION_KEY: self.row_version,
            "line": self.line,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Change:
        return cls(
            address=Address.from_dict(d["resource"]),
            action=Action(d["action"]),
            fields=tuple(FieldChange.from_dict(f) for f in d["fields"]),
            risk=Risk.from_dict(d["risk"]),
            reason=d.get("reason", ""),
            source=d.get("source"),
            row_id=d.get("row_id"),
            row_version=d.get(VERSION_KEY),
            line=d.get("line"),
        )


@dataclass(frozen=True, slots=True, order=True)
class RowRef(_PlainRecord):
    """A row the plan read: table, id and row version. Apply of a saved plan re-checks these."""

    table: str
    id: int
    row_version: int

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RowRef:
        return cls(d["table"], int(d["id"]), int(d[VERSION_KEY]))

    @property
    def key(self) -> str:
        """``table:id:version``, the line a read-set fingerprint hashes."""
        return f"{self.table}:{self.id}:{self.row_version}"


class NoticeKind(enum.StrEnum):
    """Things a plan reports that are not changes."""

    KEPT = "kept"
    """In the database, not in manifests, kept because ``--prune`` was not given."""
    WAITING_FOR_CONNECTION = "waiting_for_connection"
    """A declared OAuth account with no token yet."""
    UNDECLARED_ACCOUNT = "undeclared_account"
    """A token for an account no manifest declares any more (without --prune: reported, not
    revoked)."""
    UNMANAGED_ACCOUNTS = "unmanaged_accounts"
    """Tokens of accounts no manifest has ever declared, one notice per tenant and platform
    (address name ``*``); kept even with --prune, revoked only with --revoke-unmanaged."""
    ACCOUNT_MODE_MISMATCH = "account_mode_mismatch"
    """A declared Stripe account connected in the other live/test mode (reconnect it)."""


@dataclass(frozen=True, slots=True)
class Notice:
    kind: NoticeKind
    address: Address
    message: str
    level: RiskLevel | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "address": str(self.address),
            "resource": self.address.to_dict(),
            "message": self.message,
            "level": self.level.value if self.level else None,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Notice:
        lvl = d.get("level")
        return cls(
            NoticeKind(d["kind"]),
            Address.from_dict(d["resource"]),
            d["message"],
            RiskLevel(lvl) if lvl else None,
        )


@dataclass(frozen=True, slots=True)
class MassDeletion(_PlainRecord):
    """A tripped breaker for one tenant; apply refuses it unless allowed.

    ``kind`` is :attr:`OBJECTS` (integrations and webhooks deleted; ``--allow-mass-deletion``)
    or :attr:`TOKENS` (OAuth tokens of undeclared or unmanaged accounts revoked;
    ``--allow-mass-revocation``); ``deleting`` and ``total`` count those.
    """

    OBJECTS = "objects"
    TOKENS = "tokens"

    tenant: str
    deleting: int
    total: int
    whole_tenant: bool
    kind: str = OBJECTS

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MassDeletion:
        kind = str(d.get("kind", cls.OBJECTS))
        if kind not in (cls.OBJECTS, cls.TOKENS):
            raise ValueError(f"unknown mass_deletions kind {kind!r}")
        return cls(d["tenant"], int(d["deleting"]), int(d["total"]), bool(d["whole_tenant"]), kind)


@dataclass(frozen=True, slots=True)
class Selectors:
    """Which tenants and platforms a plan covers. Empty tuples mean "all"."""

    tenants: tuple[str, ...] = ()
    platforms: tuple[Platform, ...] = ()
    exclude_tenants: tuple[str, ...] = ()

    def matches(self, tenant: str, platform: Platform) -> bool:
        if self.tenants and tenant not in self.tenants:
            return False
        if tenant in self.exclude_tenants:
            return False
        return not (self.platforms and platform not in self.platforms)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tenants": list(self.tenants),
            "platforms": [p.value for p in self.platforms],
            "exclude_tenants": list(self.exclude_tenants),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Selectors:
        return cls(
            tuple(d.get("tenants", ())),
            tuple(Platform(p) for p in d.get("platforms", ())),
            tuple(d.get("exclude_tenants", ())),
        )


@dataclass(frozen=True, slots=True)
class Plan:
    """A complete, ordered plan.

    Attributes:
        format_version: JSON format version (see module docstring).
        created_at: RFC 3339 UTC time the plan was made (given by the caller; the core has
            no clock).
        manifests_digest: digest of the manifests the plan was made from.
        actual_fingerprint: SHA-256 over ``read_set``; equal fingerprints mean the same rows
            at the same versions.
        read_set: every row the plan read, with its version.
        changes: ordered changes (see ``core/order.py``); no-ops are not listed.
        notices: kept objects, accounts waiting for connection, undeclared accounts.
        mass_deletions: tripped breakers; apply refuses unless allowed.
        selectors: the tenant/platform selection the plan covers.
        prune: whether deletions of undeclared objects were planned.
        policy: what apply would refuse under the permissions the plan was made with;
            ``None`` when not evaluated.
        author: who made the plan (the actor), when known; approvals of the plan must come
            from someone else. Only in the JSON form when set.
        revision: the git revision the manifests were read at (``--revision``), when not the
            working tree. Only in the JSON form when set.
    """

    created_at: str
    manifests_digest: str
    actual_fingerprint: str
    changes: tuple[Change, ...] = ()
    read_set: tuple[RowRef, ...] = ()
    notices: tuple[Notice, ...] = ()
    mass_deletions: tuple[MassDeletion, ...] = ()
    selectors: Selectors = field(default_factory=Selectors)
    prune: bool = False
    format_version: int = FORMAT_VERSION
    policy: PolicyVerdict | None = None
    author: str | None = None
    revision: str | None = None

    @property
    def has_changes(self) -> bool:
        return bool(self.changes)

    @property
    def max_risk(self) -> RiskLevel | None:
        return max((c.risk.level for c in self.changes), default=None)

    def summary(self) -> dict[str, Any]:
        """Counts of changes per action and per risk level, and how many need review."""
        by_action = Counter(c.action.value for c in self.changes)
        by_risk = Counter(c.risk.level.value for c in self.changes)
        return {
            "total": len(self.changes),
            "by_action": {
                a.value: by_action.get(a.value, 0) for a in Action if a is not Action.NOOP
            },
            "by_risk": {r.value: by_risk.get(r.value, 0) for r in RiskLevel},
            "requires_review": sum(1 for c in self.changes if c.risk.requires_review),
            "mass_deletions": len(self.mass_deletions),
        }

    def to_dict(self) -> dict[str, Any]:
        extra = {
            name: value
            for name, value in (("author", self.author), ("revision", self.revision))
            if value is not None
        }
        return {
            **extra,
            "format_version": self.format_version,
            "created_at": self.created_at,
            "manifests_digest": self.manifests_digest,
            "actual_fingerprint": self.actual_fingerprint,
            "selectors": self.selectors.to_dict(),
            "prune": self.prune,
            "summary": self.summary(),
            "changes": [c.to_dict() for c in self.changes],
            "notices": [n.to_dict() for n in self.notices],
            "mass_deletions": [m.to_dict() for m in self.mass_deletions],
            "read_set": [r.to_dict() for r in self.read_set],
            "policy": self.policy.to_dict() if self.policy else None,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Plan:
        version = d.get("format_version")
        if version != FORMAT_VERSION:
            raise ValueError(
                f"unsupported plan format_version {version!r} (expected {FORMAT_VERSION})"
            )
        return cls(
            created_at=d["created_at"],
            manifests_digest=d["manifests_digest"],
            actual_fingerprint=d["actual_fingerprint"],
            changes=tuple(Change.from_dict(c) for c in d["changes"]),
            read_set=tuple(RowRef.from_dict(r) for r in d["read_set"]),
            notices=tuple(Notice.from_dict(n) for n in d.get("notices", ())),
            mass_deletions=tuple(MassDeletion.from_dict(m) for m in d.get("mass_deletions", ())),
            selectors=Selectors.from_dict(d.get("selectors", {})),
            prune=bool(d.get("prune", False)),
            policy=PolicyVerdict.from_dict(d["policy"]) if d.get("policy") else None,
            author=_optional_str(d.get("author")),
            revision=_optional_str(d.get("revision")),
        )


def _optional_str(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"expected a string or null, got {type(value).__name__}")
    return value
