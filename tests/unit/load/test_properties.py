"""Property tests: no input makes the loader or the validator crash, only diagnostics."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.diagnostics import Diagnostic
from reconciler.load.validate import FileJob, TemplateSet, analyze_file
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
