"""The visibility check reads the catalog first and counts the tables' rows only when a
row-level security policy might hide some from the connected role: counting reads the whole
fleet, which a plan of two tenants must not do."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from reconciler.errors import PermissionDenied
from reconciler.store.tables import CI_ROLE
from reconciler.store.visibility import READ_TABLES, Access, check_visibility, nothing_hidden

COUNTING_FAILS = """
CREATE OR REPLACE FUNCTION reconciler_row_counts(wanted text[])
RETURNS TABLE (table_name text, row_count bigint) LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the rows were counted';
END
$$
"""


@pytest.fixture
def roles(engine: sa.Engine) -> Iterator[dict[str, str]]:
    """Roles of this test (NOLOGIN; the check runs under SET ROLE) and two tenants' rows:

    ``ci`` is granted the CI group role (its policy sees every row); ``reader`` has SELECT
    and no policy (row-level security hides every row); ``limited`` is a CI member that a
    restrictive policy keeps from tenant ``beta``.
    """
    tag = uuid.uuid4().hex[:8]
    names = {kind: f"{kind}_{tag}" for kind in ("ci", "reader", "limited")}
    with engine.begin() as conn:
        for name in names.values():
            conn.execute(sa.text(f"CREATE ROLE {name} NOLOGIN"))
        conn.execute(sa.text(f"GRANT {CI_ROLE} TO {names['ci']}, {names['limited']}"))
        conn.execute(
            sa.text(
                f"GRANT SELECT ON {', '.join(READ_TABLES)} TO {names['reader']}; "
                f"GRANT EXECUTE ON FUNCTION reconciler_row_counts(text[]) TO {names['reader']}"
            )
        )
        conn.execute(
            sa.text(
                f"CREATE POLICY hide_beta ON integration_configs AS RESTRICTIVE FOR SELECT "
                f"TO {names['limited']} USING (tenant_id <> 'beta')"
            )
        )
        # Rows as an existing deployment has them (not writes to record).
        conn.execute(sa.text("SELECT set_config('reconciler.audited_write', 'seed', true)"))
        conn.execute(
            sa.text(
                "INSERT INTO integration_configs (tenant_id, platform, config_type, environment) "
                "VALUES ('acme', 'STRIPE', 'API_KEY', 'PRODUCTION'), "
                "('beta', 'STRIPE', 'API_KEY', 'PRODUCTION')"
            )
        )
    try:
        yield names
    finally:
        with engine.begin() as conn:
            for name in names.values():
                conn.execute(sa.text(f"DROP OWNED BY {name}"))
                conn.execute(sa.text(f"DROP ROLE {name}"))


def _as(conn: sa.Connection, role: str | None) -> None:
    if role is not None:
        conn.execute(sa.text(f"SET LOCAL ROLE {role}"))


def test_only_the_policies_tell_whether_rows_can_be_hidden(
    engine: sa.Engine, roles: dict[str, str]
) -> None:
    expected = {None: True, "ci": True, "reader": False, "limited": False}
    for kind, visible in expected.items():
        with engine.connect() as conn:  # each block's transaction is rolled back
            _as(conn, roles[kind] if kind else None)
            assert nothing_hidden(conn, READ_TABLES) is visible, kind


def test_roles_no_policy_can_hide_rows_from_are_not_counted(
    engine: sa.Engine, roles: dict[str, str]
) -> None:
    for role in (None, roles["ci"]):
        with engine.connect() as conn:  # rolled back: the real function comes back
            conn.execute(sa.text(COUNTING_FAILS))
            _as(conn, role)
            check_visibility(conn, Access.READ)


def test_roles_a_policy_may_hide_rows_from_are_counted_and_refused(
    engine: sa.Engine, roles: dict[str, str]
) -> None:
    for kind, seen in (("reader", "0 of 2"), ("limited", "1 of 2")):
        with engine.connect() as conn:
            _as(conn, roles[kind])
            with pytest.raises(PermissionDenied) as refused:
                check_visibility(conn, Access.READ)
        assert str(refused.value) == (
            f"role {roles[kind]} sees {seen} rows of integration_configs (row-level security "
            f"hides rows): grant it {CI_ROLE} (`reconciler db grant --role ci {roles[kind]}`) "
            "or use the owner"
        )
