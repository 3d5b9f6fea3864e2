"""One place decides what user text may be echoed: every secret shape is redacted everywhere."""

from __future__ import annotations

import pickle

import pytest

from reconciler.diagnostics import Diagnostic
from reconciler.load.findings import show
from reconciler.redaction import is_secret_shaped, redact
from reconciler.render.diagnostics import RENDERERS, DiagnosticsReport, github_annotation
from reconciler.yaml_source import YamlError, parse_document

PEM = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n"
    "-----END PRIVATE KEY-----"
)
SECRETS = {
    "age": "AGE-SECRET-KEY-1QYZ3ZX8VG5L9MS2NK7PQT4WD6RC0HJF8A2E5UY7KX3N9V6B4DTS0GLM",
    "age-lower": "age-secret-key-1qyz3zx8vg5l9ms2nk7pqt4wd6rc0hjf8a2e5uy7kx3n9v6b4dts0glm",
    "age-plugin": "AGE-PLUGIN-YUBIKEY-1QYZ3ZX8VG5L9MS2NK7PQT4WD6",
    "stripe-secret-live": "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
    "stripe-secret-test": "sk_test_4eC39HqLyjWDarjtT1zdp7dc",
    "stripe-restricted": "rk_live_51Hx0aBcDeFgHiJkLmNoPq",
    "stripe-webhook": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "stripe-refresh": "rt_Hd8Q0Z2k3J4lM5n6O7p8Q9r0S1t2U3v4",
    "hubspot-pat": "pat-na1-1d681633-88b2-4bc5-a23f-8205986b4736",
    "hubspot-client-secret": "1d681633-88b2-4bc5-a23f-8205986b4736",
    "intuit-client-id": "ABc1D2e3F4g5H6i7J8k9L0m1N2o3P4q5R6s7T8u9V0w1X2y3",
    "intuit-refresh": "AB117625309918nYVkqL5sWDz0X3jT7aGhQe8rFcM2bUv4pN",
    "intuit-client-secret": "d8Fq2LkW9xPz4RtYb7NcVm3HsJgA6eUo1QiK5ZwE",
    "jwt": "eyJlbmMiOiJBMTI4Q0JDLUhTMjU2IiwiYWxnIjoiZGlyIn0..Xk3s9d",
    "pem": PEM,
    "sops": "ENC[AES256_GCM,data:q0d8,iv:AAAA,tag:BBBB,type:str]",
}


@pytest.mark.parametrize("shape", sorted(SECRETS))
def test_every_shape_is_secret_and_redacted_inside_text(shape: str) -> None:
    secret = SECRETS[shape]
    text = f"found {secret!s} near line 3"
    assert is_secret_shaped(secret) and is_secret_shaped(text)
    redacted = redact(text)
    assert secret not in redacted and "(redacted)" in redacted
    assert redacted.startswith("found ")
    assert show(secret) == "(redacted)"
    # A long value whose secret starts after the 57 characters a message would keep.
    assert show("x" * 50 + " " + secret) == "(redacted)"


def test_cut_pem_block_is_redacted_to_the_end() -> None:
    cut = PEM[:60]
    assert redact(f"value: {cut}") == "value: (redacted)"


@pytest.mark.parametrize(
    "text",
    [
        "invoice.paid",
        "https://hooks.example.com/stripe/v1/webhooks",
        "acct_1Nv0FGQ9RKHgCVdK",
        "acme-robotics",
        "expected a whole number of minutes from 1 to 10080",
        "9130347596263942",
        "holds a live-mode key (rk_live_...) in sandbox (use sk_test_ or rk_test_)",
        "secrets must be ENC[...] values; a Stripe signing secret (whsec_...)",
        "HubSpot private-app tokens (pat-...) and age keys (AGE-SECRET-KEY-1...)",
        "no commit 3f17159a1b2c3d4e5f60718293a4b5c6d7e8f901 in this repository",
        "plan digest 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert not is_secret_shaped(text)
    assert redact(text) == text


@pytest.mark.parametrize("shape", sorted(set(SECRETS) - {"pem"}))
@pytest.mark.parametrize(
    "template",
    [
        "'{s}': 1\n'{s}': 2\n",  # duplicate key
        "a: !<{s}> x\n",  # unknown tag
        "a: !!int '{s}'\n",  # value that is not of its tag
        "? ['{s}']\n: 1\n",  # a key that is not a string
    ],
)
def test_yaml_error_messages_never_quote_a_secret(shape: str, template: str) -> None:
    secret = SECRETS[shape]
    with pytest.raises(YamlError) as caught:
        parse_document(template.format(s=secret))
    error = caught.value
    for text in (str(error), error.message, repr(error), repr(error.args)):
        assert secret not in text
        assert secret[10:30] not in text
    assert "(redacted)" in error.message
    assert pickle.loads(pickle.dumps(error)).message == error.message


def test_excerpts_are_short() -> None:
    with pytest.raises(YamlError) as caught:
        parse_document("a: !<" + "t" * 500 + "> x\n")
    assert len(caught.value.message) < 80


def test_every_format_redacts_message_and_path() -> None:
    secret = SECRETS["stripe-secret-live"]
    tenant = "1d681633-88b2-4bc5-a23f-8205986b4736"  # a tenant id may look like a UUID
    diagnostic = Diagnostic(
        "RCN-SEC-2", f"saw {secret}", f"tenants/{tenant}/stripe.yaml", 1, 1, f"a.{secret}.b"
    )
    report = DiagnosticsReport((diagnostic,), 1, (), False)
    for render in RENDERERS.values():
        out = render(report)
        assert secret not in out and "(redacted)" in out
        assert f"tenants/{tenant}/stripe.yaml" in out
    assert secret not in github_annotation(diagnostic)
