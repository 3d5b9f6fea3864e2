"""Shared test data for the SOPS tests: the vectors, their identities, and small helpers."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from reconciler.sops.age import Identities, parse_identities
from reconciler.sops.codec import format_time

VECTORS = Path(__file__).resolve().parents[2] / "fixtures" / "sops" / "vectors"
MANIFEST: list[dict[str, Any]] = json.loads((VECTORS / "manifest.json").read_text())["vectors"]
IDENTITY_1 = VECTORS / "generated-sops-3.11.0" / "identities" / "test-identity-1.txt"
IDENTITY_2 = VECTORS / "generated-sops-3.11.0" / "identities" / "test-identity-2.txt"
RECIPIENT_1 = "age1wv4aqchh993px8rrsnxwypsj2yecaf92yavktg9akdvgnqjv3f4sxzl2en"
RECIPIENT_2 = "age1uq9ttuwns5u6fdfy08fyjmq6zljj4x84627wrj935pg4amac3vxqelervg"


def identities_from(*files: Path | str) -> Identities:
    """Identities read from key files (paths relative to the vectors folder allowed)."""
    found: list[Any] = []
    for file in files:
        path = VECTORS / file
        found += parse_identities(path.read_text(), source=str(file))[0]
    return Identities.of(found)


def normalize(value: Any) -> Any:
    """Datetimes as sops prints them, so decrypted data compares with ``sops``'s JSON."""
    if isinstance(value, dict):
        return {k: normalize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalize(v) for v in value]
    if isinstance(value, datetime):
        return format_time(value)
    return value
