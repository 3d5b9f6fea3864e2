"""``verify_connections``: which credentials of a plan are tested, and what each outcome does."""

from __future__ import annotations

import io
from dataclasses import replace

import pytest

from reconciler.commands.verification import to_verify, verify_connections
from reconciler.errors import ConnectionRejected, ConnectionUnreachable, PolicyViolation
from reconciler.health.probe import ProbeResult, ProbeTarget
from reconciler.model.desired import DesiredIntegration, DesiredState, SecretValue, Source
from reconciler.model.enums import ConfigType, Environment, HealthStatus, Platform
from reconciler.model.plan import Action, Change, FieldChange, Plan
from reconciler.model.sensitive import Sensitive
from reconciler.settings import Settings

KEY = "sk_live_" + "VerificationCanary012345"
ON = Settings(verify_connections=True)


def _integration(tenant: str, key: str = KEY, *, active: bool = True) -> DesiredIntegration:
    return DesiredIntegration(
        tenant_id=tenant,
        platform=Platform.STRIPE,
        environment=Environment.PRODUCTION,
        config_type=ConfigType.API_KEY,
        is_primary=True,
        is_active=active,
        api_key=SecretValue(Sensitive(key), "f" * 64),
        api_secret=None,
        sync_interval=None,
        sync_direction=None,
        features={},
        mapping_rules={},
        filter_rules={},
        transform_rules={},
        source=Source(f"manifests/tenants/{tenant}/stripe.yaml"),
    )


def _change(i: DesiredIntegration, action: Action, *fields: FieldChange) -> Change:
    return Change(i.address, action, fields, source=i.source.path)


def _plan(*changes: Change) -> Plan:
    return Plan("2030-01-01T00:00:00Z", "m", "a", changes=changes)


class Answers:
    def __init__(self, by_tenant: dict[str, ProbeResult]) -> None:
        self.by_tenant = by_tenant
        self.seen: list[str] = []

    def probe(self, target: ProbeTarget) -> ProbeResult:
        self.seen.append(target.tenant_id)
        return self.by_tenant[target.tenant_id]


OK = ProbeResult(HealthStatus.HEALTHY, "HTTP 200 from api.test in 3 ms", 200)
REJECTED = ProbeResult(HealthStatus.UNHEALTHY, "authentication failed at api.test (HTTP 401)", 401)
FORBIDDEN = ProbeResult(HealthStatus.DEGRADED, f"not allowed (HTTP 403) {KEY}", 403)
SILENT = ProbeResult(HealthStatus.UNKNOWN, "no answer from api.test within 2 s", answered=False)
BUSY = ProbeResult(HealthStatus.DEGRADED, "api.test answered with an error (HTTP 503)", 503)


def test_new_changed_and_activated_credentials_are_selected() -> None:
    new, rekeyed, activated, interval, inactive, gone = (
        _integration(t) for t in ("new", "rekeyed", "activated", "interval", "inactive", "gone")
    )
    inactive = replace(inactive, is_active=False)
    desired = DesiredState(integrations=(new, rekeyed, activated, interval, inactive))
    plan = _plan(
        _change(new, Action.CREATE),
        _change(rekeyed, Action.UPDATE, FieldChange("api_key", "(sensitive)", "(sensitive)", True)),
        _change(activated, Action.UPDATE, FieldChange("is_active", False, True)),
        _change(interval, Action.UPDATE, FieldChange("sync_interval", 15, 30)),
        _change(inactive, Action.CREATE),
        _change(gone, Action.DELETE),
    )
    assert [c.address.tenant for c, _ in to_verify(plan, desired)] == [
        "new",
        "rekeyed",
        "activated",
    ]


def test_off_tests_nothing() -> None:
    i = _integration("acme")
    probe = Answers({"acme": REJECTED})
    assert (
        verify_connections(
            _plan(_change(i, Action.CREATE)), DesiredState((i,)), Settings(), probe=probe
        )
        == []
    )
    assert probe.seen == []


@pytest.mark.parametrize("answer", [REJECTED, FORBIDDEN])
def test_rejected_names_every_config_and_the_answer(answer: ProbeResult) -> None:
    good, bad = _integration("good"), _integration("bad")
    plan = _plan(_change(good, Action.CREATE), _change(bad, Action.CREATE))
    probe = Answers({"good": OK, "bad": answer})
    with pytest.raises(ConnectionRejected) as info:
        verify_connections(plan, DesiredState((good, bad)), ON, probe=probe)
    message = str(info.value)
    assert isinstance(info.value, PolicyViolation)
    assert (
        "bad/stripe/production/integration/API_KEY (manifests/tenants/bad/stripe.yaml)" in message
    )
    assert f"HTTP {answer.http_status}" in message and "nothing written" in message
    assert "good/" not in message and KEY not in message


def test_unreachable_warns_or_blocks() -> None:
    i = _integration("acme")
    plan, desired = _plan(_change(i, Action.CREATE)), DesiredState((i,))
    err = io.StringIO()
    tests = verify_connections(plan, desired, ON, probe=Answers({"acme": SILENT}), stderr=err)
    assert [t.outcome for t in tests] == ["unreachable"]
    assert err.getvalue().startswith("warning: connection not tested: acme/stripe/production")
    block = replace(ON, verify_connections_unreachable="block")
    with pytest.raises(ConnectionUnreachable, match="did not answer"):
        verify_connections(plan, desired, block, probe=Answers({"acme": SILENT}))


def test_other_answers_warn_and_pass() -> None:
    i = _integration("acme")
    err = io.StringIO()
    tests = verify_connections(
        _plan(_change(i, Action.CREATE)),
        DesiredState((i,)),
        ON,
        probe=Answers({"acme": BUSY}),
        stderr=err,
    )
    assert [t.outcome for t in tests] == ["unconfirmed"]
    assert "warning: connection not confirmed" in err.getvalue() and "HTTP 503" in err.getvalue()


def test_credentials_no_request_can_check_are_skipped() -> None:
    oauth = replace(_integration("acme", "client-id"), config_type=ConfigType.OAUTH)
    probe = Answers({})
    tests = verify_connections(
        _plan(_change(oauth, Action.CREATE)), DesiredState((oauth,)), ON, probe=probe
    )
    assert tests == [] and probe.seen == []
