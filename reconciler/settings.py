"""``reconciler.yaml``: optional repository-level defaults and the risk policy.

Looked up in the current directory (the repository root in CI). Every key is optional::

    manifests: manifests            # manifest directory
    apply:
      allow_risk: high              # highest level apply accepts without --allow-risk
      lock_timeout_seconds: 60
      statement_timeout_seconds: 300
    risk:
      overrides:                    # raise a rule's level; lowering below the default is refused
        SYNC_INTERVAL: MEDIUM
      mass_deletion:
        max_share: 0.5              # share of a tenant's objects one apply may delete
        min_objects: 3              # ... once at least this many objects would go
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.core.risk import RiskPolicy
from reconciler.errors import ConfigError
from reconciler.load.yaml_source import YamlError, parse_document
from reconciler.model.enums import RiskLevel

SETTINGS_FILE = "reconciler.yaml"


@dataclass(frozen=True, slots=True)
class Settings:
    """Resolved settings (file values over built-in defaults; CLI flags override these)."""

    manifests_dir: Path = Path("manifests")
    allow_risk: RiskLevel = RiskLevel.HIGH
    lock_timeout_seconds: float = 60.0
    statement_timeout_seconds: float = 300.0
    policy: RiskPolicy = field(default_factory=RiskPolicy)
    source: Path | None = None


_TOP = {"manifests", "apply", "risk"}
_APPLY = {"allow_risk", "lock_timeout_seconds", "statement_timeout_seconds"}
_RISK = {"overrides", "mass_deletion"}


def load_settings(directory: Path | None = None) -> Settings:
    """Read ``reconciler.yaml`` from ``directory`` (default: cwd); defaults when absent."""
    path = (directory or Path.cwd()) / SETTINGS_FILE
    if not path.is_file():
        return Settings()
    try:
        doc = parse_document(path.read_bytes()) or {}
    except YamlError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    try:
        return _parse(doc, path)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _section(doc: Any, name: str, allowed: set[str]) -> dict[str, Any]:
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ValueError(f"{name} must be a mapping")
    unknown = set(doc) - allowed
    if unknown:
        raise ValueError(f"unknown key(s) in {name}: {', '.join(sorted(unknown))}")
    return doc


def _parse(doc: Any, path: Path) -> Settings:
    top = _section(doc, "reconciler.yaml", _TOP)
    apply = _section(top.get("apply"), "apply", _APPLY)
    risk = _section(top.get("risk"), "risk", _RISK)
    mass = _section(risk.get("mass_deletion"), "risk.mass_deletion", {"max_share", "min_objects"})
    overrides_raw = _section(
        risk.get("overrides"), "risk.overrides", set(risk.get("overrides") or {})
    )
    overrides = {str(k): parse_level(str(v)) for k, v in overrides_raw.items()}
    policy = RiskPolicy.create(
        overrides,
        mass_deletion_max_share=float(mass.get("max_share", 0.5)),
        mass_deletion_min_objects=int(mass.get("min_objects", 3)),
    )
    return Settings(
        manifests_dir=Path(str(top.get("manifests", "manifests"))),
        allow_risk=parse_level(str(apply.get("allow_risk", "high"))),
        lock_timeout_seconds=float(apply.get("lock_timeout_seconds", 60)),
        statement_timeout_seconds=float(apply.get("statement_timeout_seconds", 300)),
        policy=policy,
        source=path,
    )


def parse_level(text: str) -> RiskLevel:
    """``low``/``LOW`` -> RiskLevel.LOW; ValueError naming the choices otherwise."""
    try:
        return RiskLevel(text.upper())
    except ValueError:
        choices = ", ".join(level.value.lower() for level in RiskLevel)
        raise ValueError(f"unknown risk level {text!r} (choose from {choices})") from None
