"""Unit tests: endpoint and event rules, template merging and chains, discovery, digest."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.diagnostics import Severity
from reconciler.load import manifests as mf
from reconciler.load import rules
from reconciler.load.findings import show
from reconciler.load.stage import load_desired_state
from reconciler.model.enums import Platform
from reconciler.model.plan import Selectors


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("http://hooks.example.com/x", "https://"),
        ("https://localhost/x", "local name"),
        ("https://api.localhost/x", "local name"),
        ("https://127.0.0.1/x", "loopback"),
        ("https://10.0.0.8/x", "private"),
        ("https://192.168.1.1/x", "private"),
        ("https://169.254.169.254/x", "link-local"),
        ("https://[fe80::1]/x", "link-local"),
        ("https://[fd00::1]/x", "private"),
        ("https://[::ffff:127.0.0.1]/x", "loopback"),
        ("https://2130706433/x", "no domain"),
        ("https://0x7f.0x1/x", "non-standard"),
        ("https://u:p@hooks.example.com/x", "credentials"),
        ("https://hooks.example.com/x#frag", "fragment"),
        ("https://hooks.example.com:8443/x", "port 8443"),
        ("https://hooks.corp.internal/x", "local name"),
        ("https://[::1/x", "not a valid URL"),
    ],
)
def test_endpoint_rejections(url: str, fragment: str) -> None:
    problem = rules.check_endpoint(url, "production")
    assert problem is not None and fragment in problem


@pytest.mark.parametrize(
    ("url", "env", "outbound"),
    [
        ("https://hooks.example.com/stripe?x=1", "production", False),
        ("https://hooks.example.com:443/x", "production", False),
        ("https://hooks.example.com:8443/x", "sandbox", False),
        ("https://8.8.8.8/x", "production", False),
        ("http://localhost:8080/x", "development", True),
    ],
)
def test_endpoint_accepted(url: str, env: str, outbound: bool) -> None:
    assert rules.check_endpoint(url, env, outbound=outbound) is None


def test_http_localhost_only_for_development_outbound() -> None:
    assert rules.check_endpoint("http://localhost:8080/x", "development", outbound=False)
    assert rules.check_endpoint("http://localhost:8080/x", "sandbox", outbound=True)


def test_event_rules() -> None:
    found = rules.check_events(
        ("events",),
        ["invoice.paid", "invoice.payed", "invoice.paid", "*", 7],
        Platform.STRIPE,
        "legacy",
    )
    assert [(f.code, f.path[-1], f.severity) for f in found] == [
        ("RCN-WH-4", 1, Severity.ERROR),
        ("RCN-WH-5", 2, Severity.ERROR),
        ("RCN-WH-6", 3, Severity.WARNING),
    ]
    assert "did you mean 'invoice.paid'" in found[0].message


def test_hubspot_and_quickbooks_events() -> None:
    ok = ["contact.creation", "deal.propertyChange:dealstage", "company.propertyChange:name"]
    assert rules.check_events((), ok, Platform.HUBSPOT, "legacy") == []
    bad = rules.check_events(
        (), ["contact.creation:email", "deal.propertyChange:deal stage"], Platform.HUBSPOT, "x"
    )
    assert [f.code for f in bad] == ["RCN-WH-7", "RCN-WH-7"]
    assert (
        rules.check_events((), ["qbo.invoice.voided.v1"], Platform.QUICKBOOKS, "cloudevents") == []
    )
    assert rules.check_events((), ["qbo.invoice.void.v1"], Platform.QUICKBOOKS, "cloudevents") == []
    assert rules.check_events((), ["Invoice.Void"], Platform.QUICKBOOKS, "legacy") == []


@pytest.mark.parametrize(
    ("env", "field", "value", "code"),
    [
        ("sandbox", "api_key", "sk_live_abcdefghijklmnop", "RCN-ENV-1"),
        ("staging", "api_secret", "rk_live_abcdefghijklmnop", "RCN-ENV-1"),
        ("production", "api_key", "rk_test_abcdefghijklmnop", "RCN-ENV-1"),
        ("production", "api_key", "pk_live_abcdefghijklmnop", "RCN-ENV-2"),
        ("production", "signing_secret", "sk_live_abcdefghijklmnop", "RCN-WH-3"),
        ("production", "api_key", "rk_live_abcdefghijklmnop", None),
        ("sandbox", "api_key", "sk_test_abcdefghijklmnop", None),
    ],
)
def test_key_mode_rules(env: str, field: str, value: str, code: str | None) -> None:
    finding = rules.check_secret(Platform.STRIPE, env, field, value)
    assert (finding.code if finding else None) == code
    if finding:
        assert value not in finding.message


def test_show_redacts_credentials() -> None:
    assert show("sk_test_abc") == "(redacted)"
    assert show("pat-na1-xyz") == "(redacted)"
    assert show("hello") == "'hello'"


def test_deep_merge_file_wins_lists_replace() -> None:
    base = {"a": {"x": 1, "y": [1, 2]}, "b": 1}
    over = {"a": {"y": [3], "z": 2}, "c": 3}
    assert mf.deep_merge(base, over) == {"a": {"x": 1, "y": [3], "z": 2}, "b": 1, "c": 3}
    assert base == {"a": {"x": 1, "y": [1, 2]}, "b": 1}  # inputs untouched


def test_merge_environments_nearest_template_wins() -> None:
    far = {"environments": {"production": {"k": "far", "far": 1}}}
    near = {"environments": {"production": {"k": "near"}}}
    doc = {"tenant": "t", "environments": {"production": {"own": True}}}
    merged = mf.merge_environments(doc, [near, far])
    assert merged["environments"]["production"] == {"k": "near", "far": 1, "own": True}


def test_resolve_chain() -> None:
    assert mf.resolve_chain("a", {"a": "b", "b": None}, {"a", "b"}) == (["a", "b"], None)
    _, problem = mf.resolve_chain("a", {"a": "b", "b": "a"}, {"a", "b"})
    assert problem == "template chain is cyclic: a → b → a"
    _, problem = mf.resolve_chain("a", {"a": "zz"}, {"a"})
    assert problem is not None and "'zz'" in problem and "a → zz" in problem


def _tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_discovery_filters_on_paths(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "tenants/a/stripe.yaml": "",
            "tenants/a/hubspot.yaml": "",
            "tenants/b/stripe.yaml": "",
            "tenants/b/notes.yaml": "",
            "tenants/README.md": "",
        },
    )
    found = mf.discover(root, selectors=Selectors(tenants=("a",), platforms=(Platform.STRIPE,)))
    assert [m.rel for m in found.manifests] == ["tenants/a/stripe.yaml"]
    assert found.problems == []  # a tenant selection walks only the selected directories
    found = mf.discover(root, selectors=Selectors(platforms=(Platform.STRIPE,)))
    assert [m.rel for m in found.manifests] == ["tenants/a/stripe.yaml", "tenants/b/stripe.yaml"]
    assert [p.rel for p in found.problems] == ["tenants/b/notes.yaml"]
    found = mf.discover(root, paths=[root / "tenants" / "b"])
    assert [m.rel for m in found.manifests] == ["tenants/b/stripe.yaml"]
    # Overlapping paths select each file once; a file outside the root is reported once.
    outside = tmp_path.parent / f"{tmp_path.name}-outside.yaml"
    outside.write_text("")
    found = mf.discover(
        root,
        paths=[
            root / "tenants" / "a",
            root / "tenants" / "a" / "stripe.yaml",
            root,
            outside,
            outside,
        ],
    )
    assert sorted(m.rel for m in found.manifests) == [
        "tenants/a/hubspot.yaml",
        "tenants/a/stripe.yaml",
        "tenants/b/stripe.yaml",
    ]
    assert [p.code for p in found.problems].count("RCN-F004") == 1


def test_digest_covers_paths_and_bytes() -> None:
    one = mf.digest([("a", b"x"), ("b", b"y")])
    assert one == mf.digest([("b", b"y"), ("a", b"x")])
    assert one != mf.digest([("a", b"x"), ("b", b"z")])
    assert one != mf.digest([("a", b"xb"), ("", b"y")])


MINIMAL = """apiVersion: reconciler/v1
kind: PlatformConfig
tenant: {tenant}
platform: STRIPE
environments:
  sandbox:
    oauth_accounts:
      - {{stripe_account_id: acct_1Nv0FGQ9RKHgCVdK, livemode: false}}
"""


def test_digest_and_state_follow_the_selection(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "tenants/a/stripe.yaml": MINIMAL.format(tenant="a"),
            "tenants/b/stripe.yaml": MINIMAL.format(tenant="b"),
        },
    )
    full = load_desired_state(root, decrypt=False)
    only_a = load_desired_state(root, decrypt=False, selectors=Selectors(tenants=("a",)))
    assert full.state is not None and full.state.tenants == {"a", "b"}
    assert only_a.state is not None and only_a.state.tenants == {"a"}
    assert full.manifests_digest != only_a.manifests_digest
    assert only_a.state.manifests_digest == only_a.manifests_digest
    (root / "tenants/b/stripe.yaml").write_text(MINIMAL.format(tenant="b") + "# edit\n")
    again = load_desired_state(root, decrypt=False, selectors=Selectors(tenants=("a",)))
    assert again.manifests_digest == only_a.manifests_digest
    assert load_desired_state(root, decrypt=False).manifests_digest != full.manifests_digest


def test_every_file_reports_every_error(tmp_path: Path) -> None:
    bad = MINIMAL.replace("acct_1Nv0FGQ9RKHgCVdK", "acct_x").replace(
        "livemode: false", "livemode: 1"
    )
    root = _tree(
        tmp_path,
        {
            "tenants/a/stripe.yaml": bad.format(tenant="a"),
            "tenants/b/stripe.yaml": bad.format(tenant="b"),
        },
    )
    result = load_desired_state(root, decrypt=False)
    assert result.state is None
    by_file = {(d.file.split("/")[-2] if d.file else "", d.code) for d in result.diagnostics}
    assert by_file == {("a", "RCN-ID-1"), ("a", "RCN-S001"), ("b", "RCN-ID-1"), ("b", "RCN-S001")}
