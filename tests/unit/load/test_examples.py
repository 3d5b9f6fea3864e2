"""The committed example manifests: valid with the demo key, valid (with a note) without."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from reconciler.load import manifests
from reconciler.load.stage import load_desired_state
from reconciler.model.enums import Platform
from reconciler.model.plan import Selectors
from reconciler.sops import Identities, load_identities
from reconciler.yaml_source import MAX_FILE_BYTES

REPO = Path(__file__).resolve().parents[3]
MANIFESTS = REPO / "manifests"
DEMO_KEY = REPO / "examples" / "demo-keys" / "age-key.txt"


@pytest.fixture
def demo_identities() -> Identities:
    return load_identities({"SOPS_AGE_KEY_FILE": str(DEMO_KEY)})


def test_examples_valid_with_demo_key(demo_identities: Any) -> None:
    result = load_desired_state(
        MANIFESTS, identities=demo_identities, fingerprint=lambda s: f"fp-{len(s)}"
    )
    assert [d.format() for d in result.diagnostics] == []
    assert result.skipped_decryption == ()
    state = result.state
    assert state is not None
    assert state.tenants == {"acme-robotics", "globex-logistics", "initech-health"}
    assert {i.platform for i in state.integrations} == set(Platform)
    assert {i.environment.manifest_key for i in state.integrations} == {"production", "sandbox"}
    assert state.manifests_digest == result.manifests_digest
    for integ in state.integrations:
        for secret in (integ.api_key, integ.api_secret):
            if secret is not None:
                assert secret.value is not None and secret.fingerprint is not None
    stripe_prod = [
        i
        for i in state.integrations
        if i.platform is Platform.STRIPE and i.environment.manifest_key == "production"
    ]
    for integ in stripe_prod:
        assert integ.api_key is not None and integ.api_key.value is not None
        assert integ.api_key.value.reveal().startswith(("rk_live_", "sk_live_"))


def test_examples_without_key_note_what_was_skipped(no_keys: Any) -> None:
    result = load_desired_state(MANIFESTS, identities=no_keys)
    assert result.diagnostics.error_count == 0
    assert len(result.skipped_decryption) >= 9
    assert result.state is not None
    secrets = [w.signing_secret for w in result.state.webhooks if w.signing_secret]
    assert secrets and all(s.value is None and s.fingerprint is None for s in secrets)


def test_template_values_reach_the_state(demo_identities: Any) -> None:
    state = load_desired_state(MANIFESTS, identities=demo_identities).state
    assert state is not None
    hooks = {
        (w.tenant_id, w.platform, w.environment.manifest_key, w.name): w for w in state.webhooks
    }
    acme = hooks[("acme-robotics", Platform.STRIPE, "production", "billing-events")]
    assert acme.retry.max_attempts == 8  # from webhook-defaults, two templates up
    assert "invoice.paid" in acme.subscribed_events  # from stripe-standard
    assert acme.endpoint_url == "https://hooks.acme.example/stripe/billing"  # the file's own
    hubspot = hooks[("globex-logistics", Platform.HUBSPOT, "production", "crm-events")]
    assert hubspot.signing_secret is not None and hubspot.signing_secret.value is not None


def test_examples_match_the_json_schemas() -> None:
    from reconciler.yaml_source import parse_document

    schemas = {
        name: json.loads((REPO / "schemas" / f"{name}.v1.json").read_text())
        for name in ("manifest", "template")
    }
    files = sorted(MANIFESTS.rglob("*.yaml"))
    assert files
    for file in files:
        doc = parse_document(file.read_bytes())
        kind = "template" if file.parent.name == "templates" else "manifest"
        jsonschema.Draft202012Validator(schemas[kind]).validate(doc)
        first = file.read_text().splitlines()[0]
        assert first.startswith("# yaml-language-server: $schema=")
        assert first.endswith(f"schemas/{kind}.v1.json")


def test_selected_run_reads_only_selected_tenant(
    monkeypatch: pytest.MonkeyPatch, no_keys: Any
) -> None:
    read: list[str] = []
    original = manifests.read_file

    def spy(path: Path | str, limit: int = MAX_FILE_BYTES) -> bytes:
        read.append(Path(path).as_posix())
        return original(path, limit)

    monkeypatch.setattr(manifests, "read_file", spy)
    result = load_desired_state(
        MANIFESTS,
        selectors=Selectors(tenants=("globex-logistics",), platforms=(Platform.HUBSPOT,)),
        identities=no_keys,
    )
    tenant_files = [p for p in read if "/tenants/" in p]
    assert tenant_files == [(MANIFESTS / "tenants/globex-logistics/hubspot.yaml").as_posix()]
    assert result.state is not None and result.state.tenants == {"globex-logistics"}
    assert {i.platform for i in result.state.integrations} == {Platform.HUBSPOT}
