"""Every query of the seed schema's documentation runs, and the hot ones use their indexes.

The tables are bulk-loaded with ``generate_series`` (tens of thousands of rows over 2,000
tenants) and analyzed, so the planner's choices are the ones a real deployment would see.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

TENANTS = 2000

BULK_LOAD = [
    # 2,000 tenants x 3 platforms x 2 environments x 2 config types = 24,000 rows.
    f"""
    INSERT INTO integration_configs
        (tenant_id, platform, config_type, environment, is_primary, is_active, health_status,
         health_message, features, next_sync_at, sync_interval)
    SELECT 'tenant-' || t, p, c, e, c = 'API_KEY', (t + length(c::text)) % 10 <> 0,
           (ARRAY['HEALTHY','HEALTHY','HEALTHY','DEGRADED','UNHEALTHY','UNKNOWN']
               ::health_status[])[1 + (t % 6)],
           CASE WHEN t % 6 IN (3, 4) THEN 'timeouts' END,
           jsonb_build_object('invoices', t % 2 = 0),
           now() + make_interval(mins => t % 60), 15
    FROM generate_series(1, {TENANTS}) t,
         unnest(enum_range(NULL::platform)) p,
         unnest(ARRAY['API_KEY', 'SETTINGS']::config_type[]) c,
         unnest(ARRAY['PRODUCTION', 'SANDBOX']::environment[]) e
    """,
    # 2,000 x 3 x 2 x 3 names = 36,000 webhooks; about 1 in 50 has an open or half-open circuit.
    f"""
    INSERT INTO webhook_configurations
        (tenant_id, platform, environment, name, webhook_type, endpoint_url, auth_type,
         circuit_breaker_status, consecutive_failures, is_active, last_trigger_at)
    SELECT 'tenant-' || t, p, e, 'hook-' || n, 'INBOUND', 'https://hooks.example/' || t,
           'SIGNATURE',
           CASE WHEN (t * 7 + n) % 97 = 0 THEN 'OPEN'
                WHEN (t * 7 + n) % 89 = 0 THEN 'HALF_OPEN'
                ELSE 'CLOSED' END::circuit_breaker_status,
           (t * 7 + n) % 5, t % 20 <> 0, now() - make_interval(mins => t)
    FROM generate_series(1, {TENANTS}) t,
         unnest(enum_range(NULL::platform)) p,
         unnest(ARRAY['PRODUCTION', 'SANDBOX']::environment[]) e,
         generate_series(1, 3) n
    """,
    # 60,000 audit rows over 90 days: 30 per tenant, mostly LOW/MEDIUM, HIGH+ mostly reviewed.
    f"""
    INSERT INTO configuration_audit_logs
        (tenant_id, entity_type, entity_id, action, changes, risk_level, requires_review,
         reviewed_at, performed_by, created_at, entry_hash)
    SELECT 'tenant-' || (1 + i % {TENANTS}),
           (ARRAY['INTEGRATION_CONFIG','WEBHOOK_CONFIGURATION','OAUTH_TOKEN']
               ::entity_type[])[1 + i % 3],
           i, (ARRAY['CREATE','UPDATE','DELETE','REVOKE','ROTATE']::audit_action[])[1 + i % 5],
           '{{}}', r, r >= 'HIGH',
           CASE WHEN r >= 'HIGH' AND i % 13 <> 0 THEN now() END,
           'ci', now() - make_interval(mins => (i * 37) % (90 * 24 * 60)),
           md5(i::text) || md5(i::text)
    FROM generate_series(1, 30 * {TENANTS}) i,
         LATERAL (SELECT (ARRAY['LOW','LOW','LOW','MEDIUM','MEDIUM','HIGH','CRITICAL']
                     ::risk_level[])[1 + (i / 7) % 7] AS r) risk
    """,
    f"""
    INSERT INTO oauth_tokens (tenant_id, platform, access_token, stripe_account_id, is_active)
    SELECT 'tenant-' || t, 'STRIPE', 'enc:' || t, 'acct_' || t, t % 10 <> 0
    FROM generate_series(1, {TENANTS}) t
    """,
]

# The four query patterns the schema's indexes serve, parameters filled in, and the index each
# uses.
QUERY_PATTERNS = {
    "1-active-config": (
        """
        SELECT * FROM integration_configs
        WHERE tenant_id = 'tenant-42'
          AND platform = 'STRIPE'
          AND is_active = true
          AND is_primary = true
          AND deleted_at IS NULL
        """,
        # Both lead with (tenant_id, platform) and narrow to at most 16 rows; the planner picks
        # either on a near-tie of costs.
        {"idx_integration_configs_tenant_platform_active", "uq_integration_configs_identity"},
    ),
    "2-circuit-breaker": (
        """
        SELECT id, circuit_breaker_status, consecutive_failures
        FROM webhook_configurations
        WHERE tenant_id = 'tenant-55'
          AND platform = 'STRIPE'
          AND circuit_breaker_status != 'CLOSED'
        """,
        {"idx_webhook_configurations_tenant_platform_circuit"},
    ),
    "3-high-risk-audit": (
        """
        SELECT * FROM configuration_audit_logs
        WHERE tenant_id = 'tenant-42'
          AND risk_level IN ('HIGH', 'CRITICAL')
          AND created_at >= NOW() - INTERVAL '30 days'
        ORDER BY created_at DESC
        """,
        {"idx_configuration_audit_logs_tenant_created"},
    ),
    "4-pending-reviews": (
        """
        SELECT * FROM configuration_audit_logs
        WHERE tenant_id = 'tenant-42'
          AND requires_review = true
          AND reviewed_at IS NULL
          AND risk_level >= 'HIGH'
        """,
        {"idx_pending_reviews"},
    ),
}

# Health Checks, Circuit Breaker Monitoring and Audit Compliance, verbatim.
MONITORING = {
    "health-check": """
        SELECT tenant_id, platform, health_status, health_message
        FROM integration_configs
        WHERE health_status IN ('DEGRADED', 'UNHEALTHY')
          AND is_active = true
        """,
    "circuit-breaker-monitoring": """
        SELECT
          platform,
          COUNT(*) FILTER (WHERE circuit_breaker_status = 'OPEN') as open_circuits,
          COUNT(*) FILTER (WHERE circuit_breaker_status = 'HALF_OPEN') as half_open,
          AVG(consecutive_failures) as avg_failures
        FROM webhook_configurations
        WHERE is_active = true
        GROUP BY platform
        """,
    "audit-compliance": """
        SELECT
          DATE(created_at) as audit_date,
          entity_type,
          action,
          risk_level,
          COUNT(*) as count
        FROM configuration_audit_logs
        WHERE created_at >= NOW() - INTERVAL '7 days'
        GROUP BY 1, 2, 3, 4
        ORDER BY 1 DESC, 4 DESC
        """,
}


@pytest.fixture(scope="module")
def loaded(pg_server_url: str, schema_template: str) -> Iterator[sa.Engine]:
    """One bulk-loaded database shared by this module's read-only tests."""
    from reconciler.store.database import create_engine, resolve_database_url
    from tests.conftest import create_database

    url = create_database(pg_server_url, template=schema_template)
    engine = create_engine(resolve_database_url(url))
    with engine.begin() as conn:
        # An existing deployment's rows, not writes to record: marked as audited elsewhere.
        conn.execute(sa.text("SELECT set_config('reconciler.audited_write', 'bulk load', true)"))
        for statement in BULK_LOAD:
            conn.execute(sa.text(statement))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("ANALYZE"))
    yield engine
    engine.dispose()


def plan_indexes(node: dict[str, Any]) -> set[str]:
    found = {node["Index Name"]} if "Index Name" in node else set()
    for child in node.get("Plans", ()):
        found |= plan_indexes(child)
    return found


def test_bulk_load_is_large(loaded: sa.Engine) -> None:
    with loaded.connect() as conn:
        counts = conn.execute(
            sa.text(
                "SELECT (SELECT count(*) FROM integration_configs), "
                "(SELECT count(*) FROM webhook_configurations), "
                "(SELECT count(*) FROM configuration_audit_logs), "
                "(SELECT count(DISTINCT tenant_id) FROM configuration_audit_logs)"
            )
        ).one()
    assert tuple(counts) == (24000, 36000, 60000, TENANTS)


@pytest.mark.parametrize("name", QUERY_PATTERNS)
def test_query_pattern_uses_its_index(loaded: sa.Engine, name: str) -> None:
    sql, expected = QUERY_PATTERNS[name]
    with loaded.connect() as conn:
        rows = conn.execute(sa.text(sql)).all()
        (plan,) = conn.execute(sa.text("EXPLAIN (FORMAT JSON) " + sql)).scalar_one()
    used = plan_indexes(plan["Plan"])
    assert used & expected, f"{name} used {used or 'no index'}:\n{json.dumps(plan, indent=1)}"
    assert rows, f"{name} returned no rows: the bulk load should cover it"


@pytest.mark.parametrize("name", MONITORING)
def test_monitoring_query_runs(loaded: sa.Engine, name: str) -> None:
    with loaded.connect() as conn:
        rows = conn.execute(sa.text(MONITORING[name])).all()
    assert rows


def test_circuit_monitoring_counts(loaded: sa.Engine) -> None:
    with loaded.connect() as conn:
        rows = conn.execute(sa.text(MONITORING["circuit-breaker-monitoring"])).all()
    assert {row.platform for row in rows} == {"HUBSPOT", "STRIPE", "QUICKBOOKS"}
    assert all(row.open_circuits > 0 and row.half_open > 0 for row in rows)
