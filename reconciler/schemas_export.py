"""JSON Schemas generated from the code, committed under ``schemas/``.

:data:`REGISTRY` maps a file name to the function that builds it; ``reconciler schema
export`` writes them all and a test fails when a committed file differs from its function's
output.

* ``manifest.v1.json``: a tenant manifest (``kind: PlatformConfig``), from the pydantic
  models in :mod:`reconciler.load.manifest_model`. Editors use it through the
  ``# yaml-language-server: $schema=...`` line at the top of each manifest.
* ``template.v1.json``: a template (``kind: PlatformTemplate``): the manifest schema with
  nothing required below the envelope, since templates are partial.
* ``plan.v1.json``: the plan JSON, from :func:`reconciler.render.plan_schema.plan_json_schema`.

This module sits above both ``load`` and ``render``, whose models it turns into schemas.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, TypeAdapter

from reconciler.load.manifest_model import (
    API_VERSION,
    TEMPLATE_KIND,
    HubSpotConfig,
    QuickBooksConfig,
    StripeConfig,
)
from reconciler.render.plan_schema import plan_json_schema

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_BASE = "https://reconciler.dev/schemas/"

SchemaBuilder = Callable[[], dict[str, Any]]


_CONFIGS = ("StripeConfig", "HubSpotConfig", "QuickBooksConfig")
_PARTIAL = "Partial"


def _strict_body() -> dict[str, Any]:
    adapter: TypeAdapter[Any] = TypeAdapter(
        Annotated[StripeConfig | HubSpotConfig | QuickBooksConfig, Field(discriminator="platform")]
    )
    return adapter.json_schema(mode="validation")


def _partial(node: Any) -> Any:
    """A copy with no ``required`` lists and every ``$defs`` reference renamed to its partial
    twin (templates, and manifests that use one, may leave fields to the other side)."""
    if isinstance(node, dict):
        out = {k: _partial(v) for k, v in node.items() if k != "required"}
        ref = out.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            out["$ref"] = ref + _PARTIAL
        return out
    if isinstance(node, list):
        return [_partial(v) for v in node]
    return node


def _partial_defs(defs: dict[str, Any]) -> dict[str, Any]:
    return {name + _PARTIAL: _partial(schema) for name, schema in defs.items()}


def manifest_json_schema() -> dict[str, Any]:
    """JSON Schema of a tenant manifest, one variant per platform.

    A manifest that names a ``template`` is checked against the partial variant (fields may
    come from the template); the loader checks the merged result.
    """
    body = _strict_body()
    defs = body["$defs"]
    partial = _partial_defs(defs)
    for name in _CONFIGS:
        partial[name + _PARTIAL]["required"] = ["apiVersion", "kind", "tenant", "platform"]
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": SCHEMA_BASE + "manifest.v1.json",
        "title": "reconciler manifest (PlatformConfig)",
        "description": (
            f"One tenant's configuration of one platform: manifests/tenants/<tenant>/"
            f"<platform>.yaml, apiVersion {API_VERSION}. Secret fields hold SOPS ENC[...] "
            "values; runtime-owned fields (health, timestamps, counters, tokens) are refused. "
            "A manifest that names a template may leave required fields to it."
        ),
        "type": "object",
        "$defs": {**defs, **partial},
        "if": {"required": ["template"]},
        "then": {"oneOf": [{"$ref": f"#/$defs/{n}{_PARTIAL}"} for n in _CONFIGS]},
        "else": {"oneOf": body["oneOf"]},
    }


def template_json_schema() -> dict[str, Any]:
    """JSON Schema of a template: the manifest shape, partial, without ``tenant``."""
    partial = _partial_defs(_strict_body()["$defs"])
    variants = []
    for name in _CONFIGS:
        variant = partial.pop(name + _PARTIAL)
        props = variant["properties"]
        props.pop("tenant", None)
        props["kind"] = {"const": TEMPLATE_KIND, "type": "string"}
        variant["required"] = ["apiVersion", "kind"]
        variant["title"] = name.replace("Config", "Template")
        variants.append(variant)
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": SCHEMA_BASE + "template.v1.json",
        "title": "reconciler template (PlatformTemplate)",
        "description": (
            "Shared defaults in manifests/templates/<name>.yaml, deep-merged under the "
            "manifests that name them (the manifest wins; mappings merge, lists and scalars "
            "replace). Same shape as a manifest, nothing required below the envelope; "
            "`platform` restricts which manifests may use it."
        ),
        "type": "object",
        "$defs": partial,
        "anyOf": variants,
    }


REGISTRY: dict[str, SchemaBuilder] = {
    "manifest.v1.json": manifest_json_schema,
    "template.v1.json": template_json_schema,
    "plan.v1.json": plan_json_schema,
}
"""File name -> builder. Add a format by adding an entry."""


def render_schema(schema: dict[str, Any]) -> str:
    """The committed text of a schema (stable: 2-space indent, trailing newline)."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def expected_schemas() -> dict[str, str]:
    """File name -> text, for every schema in :data:`REGISTRY`."""
    return {name: render_schema(builder()) for name, builder in REGISTRY.items()}


def export_schemas(out_dir: Path) -> list[Path]:
    """Write every schema into ``out_dir``; return the paths written."""
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
