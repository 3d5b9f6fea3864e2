"""Property tests: no input makes the loader or the validator crash, only diagnostics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.diagnostics import Diagnostic, Severity
from reconciler.load.validate import (
    FileJob,
    TemplateSet,
    analyze_file,
    load_desired_state,
    load_template,
)
from reconciler.model.enums import Platform

NO_TEMPLATES = TemplateSet({})
_WORDS = st.sampled_from(
    [
        "apiVersion", "kind", "tenant", "platform", "template", "environments", "production",
        "sandbox", "integrations", "API_KEY", "webhooks", "hook", "oauth_accounts", "events",
        "endpoint_url", "type", "auth_type", "retry", "sync", "api_key", "portal_id",
        "realm_id", "stripe_account_id", "livemode", "features", "sops", "INBOUND",
        "SIGNATURE", "STRIPE", "HUBSPOT", "reconciler/v1", "PlatformConfig", "acme",
        "https://h.example/x", "http://10.0.0.1", "invoice.paid", "contact.propertyChange",
        "ENC[AES256_GCM,data:AA==,iv:AA==,tag:AA==,type:str]", "sk_live_0123456789abc",
    ]
)  # fmt: skip
_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20), _WORDS
)
_DATA = st.recursive(
    _SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(_WORDS, st.text(max_size=8)), children, max_size=5),
    ),
    max_leaves=40,
)


def _job(data: bytes, platform: Platform = Platform.STRIPE) -> FileJob:
    return FileJob("tenants/acme/stripe.yaml", "tenants/acme/stripe.yaml", data, "acme", platform)


def _check(diagnostics: tuple[Diagnostic, ...]) -> None:
    for d in diagnostics:
        assert d.code.startswith("RCN-")
        assert d.line is None or d.line >= 1
        d.format()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=400))
def test_arbitrary_text_never_crashes(text: str) -> None:
    _check(analyze_file(_job(text.encode("utf-8", "surrogatepass")), NO_TEMPLATES).diagnostics)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_crash(data: bytes) -> None:
    _check(analyze_file(_job(data), NO_TEMPLATES).diagnostics)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_DATA, st.sampled_from(list(Platform)))
def test_arbitrary_data_never_crashes(data: Any, platform: Platform) -> None:
    text = yaml.safe_dump(data, allow_unicode=True)
    _check(analyze_file(_job(text.encode(), platform), NO_TEMPLATES).diagnostics)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_DATA, _DATA)
def test_arbitrary_manifest_shapes_never_crash(environments: Any, extra: Any) -> None:
    doc = {
        "apiVersion": "reconciler/v1",
        "kind": "PlatformConfig",
        "tenant": "acme",
        "platform": "STRIPE",
        "environments": {"production": environments, "sandbox": {"webhooks": {"h": extra}}},
    }
    text = yaml.safe_dump(doc, allow_unicode=True)
    _check(analyze_file(_job(text.encode()), NO_TEMPLATES).diagnostics)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_DATA, _DATA, st.sampled_from(list(Platform)))
def test_arbitrary_shapes_of_every_platform_never_crash(
    environments: Any, hooks: Any, platform: Platform
) -> None:
    doc = {
        "apiVersion": "reconciler/v1",
        "kind": "PlatformConfig",
        "tenant": "acme",
        "platform": platform.value,
        "environments": {
            "production": environments,
            "sandbox": {"webhooks": hooks, "oauth_accounts": environments},
        },
    }
    text = yaml.safe_dump(doc, allow_unicode=True)
    _check(analyze_file(_job(text.encode(), platform), NO_TEMPLATES).diagnostics)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_DATA, st.sampled_from(list(Platform)))
def test_arbitrary_template_shapes_never_crash(environments: Any, platform: Platform) -> None:
    """A template's environments are merged under the file before they are checked."""
    template_text = yaml.safe_dump(
        {"apiVersion": "reconciler/v1", "kind": "PlatformTemplate", "environments": environments}
    )
    template = load_template("t", "templates/t.yaml", "templates/t.yaml", template_text.encode())
    text = (
        "apiVersion: reconciler/v1\nkind: PlatformConfig\ntenant: acme\n"
        f"platform: {platform.value}\ntemplate: t\nenvironments: {{}}\n"
    )
    result = analyze_file(_job(text.encode(), platform), TemplateSet({"t": template}))
    _check(result.diagnostics)


_SECTIONS = {
    "environments": "environments: {shape}\n",
    "environment": "environments:\n    production: {shape}\n",
    "integrations": "environments:\n    production:\n        integrations: {shape}\n",
    "integration": "environments:\n    production:\n        integrations:\n"
    "            SETTINGS: {shape}\n",
    "webhooks": "environments:\n    production:\n        webhooks: {shape}\n",
    "webhook": "environments:\n    production:\n        webhooks:\n            h1: {shape}\n",
    "oauth_accounts": "environments:\n    production:\n        oauth_accounts: {shape}\n",
    "oauth_account": "environments:\n    production:\n        oauth_accounts:\n"
    "            - {shape}\n",
}
_SHAPES = {
    "list": "[1, 2]",
    "list-of-mappings": "[{a: 1}]",
    "scalar": "7",
    "text": "abc",
    "null": "null",
}
_NULL_MEANS_ABSENT = {"environment", "integration"}
"""Where ``null`` is allowed: an environment or integration that is not declared."""


@pytest.mark.parametrize("platform", list(Platform), ids=lambda p: p.value)
@pytest.mark.parametrize("where", ["file", "template"])
@pytest.mark.parametrize("section", list(_SECTIONS))
@pytest.mark.parametrize("shape", list(_SHAPES))
def test_wrong_section_shapes_are_one_line_diagnostics(
    tmp_path: Path, platform: Platform, where: str, section: str, shape: str
) -> None:
    """A list or scalar where a mapping (or a mapping where a list) belongs: a diagnostic
    with file, line and path, in the file that wrote it; never an exception."""
    root = tmp_path / "manifests"
    (root / "tenants/acme").mkdir(parents=True)
    (root / "templates").mkdir()
    body = _SECTIONS[section].format(shape=_SHAPES[shape])
    head = (
        "apiVersion: reconciler/v1\nkind: PlatformConfig\ntenant: acme\n"
        f"platform: {platform.value}\n"
    )
    manifest = root / f"tenants/acme/{platform.file_stem}.yaml"
    template = root / "templates/base.yaml"
    if where == "template":
        template.write_text("apiVersion: reconciler/v1\nkind: PlatformTemplate\n" + body)
        manifest.write_text(head + "template: base\nenvironments: {}\n")
    else:
        manifest.write_text(head + body)
    written = template if where == "template" else manifest
    result = load_desired_state(root, decrypt=False, workers=1)
    errors = [d for d in result.diagnostics if d.severity is Severity.ERROR]
    if shape == "null" and section in _NULL_MEANS_ABSENT:
        assert result.state is not None and not errors
        return
    assert result.state is None and errors
    for diag in errors:
        assert "\n" not in diag.format()
        assert diag.line is not None and diag.line >= 1
    key = body.rstrip("\n").splitlines()[-1].strip().split(":")[0].lstrip("- ")
    assert any(
        (diag.file or "").endswith(written.relative_to(root).as_posix())
        and diag.path
        and key in written.read_text().splitlines()[(diag.line or 1) - 1]
        for diag in errors
    ), [d.format() for d in errors]
