"""JSON Schemas generated from the code, committed under ``schemas/``.

:data:`REGISTRY` maps a file name to the function that builds it; ``reconciler schema
export`` writes them all and a test fails when a committed file differs from its function's
output. A builder may return ``None`` when its module is not available (optional formats).

* ``manifest.v1.json``: a tenant manifest (``kind: PlatformConfig``), from the pydantic
  models in :mod:`reconciler.load.schema`. Editors use it through the
  ``# yaml-language-server: $schema=...`` line at the top of each manifest.
* ``template.v1.json``: a template (``kind: PlatformTemplate``): the manifest schema with
  nothing required below the envelope, since templates are partial.
* ``plan.v1.json``: the plan JSON, from ``reconciler.render.plan_schema.plan_json_schema``.
"""

from __future__ import annotations

import copy
import importlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, TypeAdapter

from reconciler.load.schema import (
    API_VERSION,
    TEMPLATE_KIND,
    HubSpotConfig,
    QuickBooksConfig,
    StripeConfig,
)

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_BASE = "https://reconciler.dev/schemas/"

SchemaBuilder = Callable[[], dict[str, Any] | None]


def manifest_json_schema() -> dict[str, Any]:
    """JSON Schema of a tenant manifest (one variant per platform, keyed by ``platform``)."""
    adapter: TypeAdapter[Any] = TypeAdapter(
        Annotated[StripeConfig | HubSpotConfig | QuickBooksConfig, Field(discriminator="platform")]
    )
    body = adapter.json_schema(mode="validation")
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": SCHEMA_BASE + "manifest.v1.json",
        "title": "reconciler manifest (PlatformConfig)",
        "description": (
            f"One tenant's configuration of one platform: manifests/tenants/<tenant>/"
            f"<platform>.yaml, apiVersion {API_VERSION}. Secret fields hold SOPS ENC[...] "
            "values; runtime-owned fields (health, timestamps, counters, tokens) are refused."
        ),
        **body,
    }


def _relax(node: Any) -> Any:
    """Drop every ``required`` list (templates are partial)."""
    if isinstance(node, dict):
        return {k: _relax(v) for k, v in node.items() if k != "required"}
    if isinstance(node, list):
        return [_relax(v) for v in node]
    return node


def template_json_schema() -> dict[str, Any]:
    """JSON Schema of a template: the manifest schema, partial, without ``tenant``."""
    schema: dict[str, Any] = _relax(copy.deepcopy(manifest_json_schema()))
    variants = []
    for name in ("StripeConfig", "HubSpotConfig", "QuickBooksConfig"):
        variant = schema["$defs"].pop(name)
        props = variant["properties"]
        props.pop("tenant", None)
        props["kind"] = {"const": TEMPLATE_KIND, "type": "string"}
        variant["required"] = ["apiVersion", "kind"]
        variant["title"] = name.replace("Config", "Template")
        variants.append(variant)
    schema.pop("oneOf", None)
    schema.pop("discriminator", None)
    schema.update(
        {
            "$id": SCHEMA_BASE + "template.v1.json",
            "title": "reconciler template (PlatformTemplate)",
            "description": (
                "Shared defaults in manifests/templates/<name>.yaml, deep-merged under the "
                "manifests that name them (the manifest wins; mappings merge, lists and "
                "scalars replace). Same shape as a manifest, nothing required below the "
                "envelope; `platform` restricts which manifests may use it."
            ),
            "anyOf": variants,
        }
    )
    return schema


def _plan_schema() -> dict[str, Any] | None:
    try:
        module = importlib.import_module("reconciler.render.plan_schema")
    except ImportError:
        return None
    builder = getattr(module, "plan_json_schema", None)
    return builder() if callable(builder) else None


REGISTRY: dict[str, SchemaBuilder] = {
    "manifest.v1.json": manifest_json_schema,
    "template.v1.json": template_json_schema,
    "plan.v1.json": _plan_schema,
}
"""File name -> builder. Add a format by adding an entry."""


def render_schema(schema: dict[str, Any]) -> str:
    """The committed text of a schema (stable: 2-space indent, trailing newline)."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def expected_schemas() -> dict[str, str]:
    """File name -> text, for every builder that is available."""
    out: dict[str, str] = {}
    for name, builder in REGISTRY.items():
        schema = builder()
        if schema is not None:
            out[name] = render_schema(schema)
    return out


def export_schemas(out_dir: Path) -> list[Path]:
    """Write every available schema into ``out_dir``; return the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in expected_schemas().items():
        path = out_dir / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def stale_schemas(out_dir: Path) -> list[Path]:
    """Schemas in ``out_dir`` that are missing or differ from what the code generates."""
    stale = []
    for name, text in expected_schemas().items():
        path = out_dir / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            stale.append(path)
    return stale
