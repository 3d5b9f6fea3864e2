"""Key rotation across the three secret tables against real PostgreSQL."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy as sa

from reconciler.crypto.aead import CipherContext, FieldCipher
from reconciler.crypto.audit_key import AuditKey
from reconciler.crypto.keyring import Keyring
from reconciler.errors import KeyUnavailable
from reconciler.store import tables
from reconciler.store.audit import AuditContext, verify_chain
from reconciler.store.rotate import REENCRYPTED, KeyUsage, key_usage, rotate_keys

AUDIT_KEY = AuditKey(os.urandom(32))
CONTEXT = AuditContext("rotator", "127.0.0.1", "reconciler/test", "session-1", key=AUDIT_KEY)


@dataclass
class Seeded:
    """Plaintexts by (table, tenant, id, column)."""

    plaintext: dict[tuple[str, str, int, str], str] = field(default_factory=dict)
    rows: int = 0


@dataclass
class Recorder:
    total: int | None = None
    batches: list[tuple[str, int]] = field(default_factory=list)

    def start(self, total: int) -> None:
        self.total = total

    def advance(self, table: str, rows: int) -> None:
        self.batches.append((table, rows))


@pytest.fixture
def keys() -> tuple[bytes, bytes]:
    return os.urandom(32), os.urandom(32)


def _insert(conn: sa.Connection, table: sa.Table, values: dict[str, Any]) -> int:
    return int(conn.execute(table.insert().values(**values).returning(table.c.id)).scalar_one())


def seed(engine: sa.Engine, cipher: FieldCipher) -> Seeded:
    """Integration, webhook and token rows of two tenants, secrets under the active key."""
    out = Seeded()
    v = cipher.active_version
    with engine.begin() as conn:
        for tenant in ("acme", "globex"):
            for env in ("PRODUCTION", "SANDBOX", "STAGING"):
                values: dict[str, Any] = {}
                for col in ("api_key", "api_secret"):
                    if col == "api_secret" and env == "STAGING":
                        continue  # a NULL secret column stays NULL
                    plain = f"{tenant}-{env}-{col}"
                    ctx = CipherContext.integration(tenant, "STRIPE", env, "API_KEY", col)
                    values[col] = cipher.encrypt(plain, ctx)
                    values[f"{col}_fingerprint"] = "f" * 64
                    out.plaintext[("integration_configs", tenant, 0, col)] = plain
                row_id = _insert(
                    conn,
                    tables.integration_configs,
                    dict(
                        tenant_id=tenant,
                        platform="STRIPE",
                        environment=env,
                        config_type="API_KEY",
                        encryption_key_version=v,
                        **values,
                    ),
                )
                _rekey(out, "integration_configs", tenant, row_id)
                out.rows += 1
            values = {}
            for col in ("signing_secret", "auth_token"):
                ctx = CipherContext.webhook(tenant, "HUBSPOT", "PRODUCTION", "events", col)
                values[col] = cipher.encrypt(f"{tenant}-{col}", ctx)
                out.plaintext[("webhook_configurations", tenant, 0, col)] = f"{tenant}-{col}"
            row_id = _insert(
                conn,
                tables.webhook_configurations,
                dict(
                    tenant_id=tenant,
                    platform="HUBSPOT",
                    environment="PRODUCTION",
                    name="events",
                    webhook_type="INBOUND",
                    endpoint_url="https://example.com/h",
                    auth_type="SIGNATURE",
                    encryption_key_version=v,
                    **values,
                ),
            )
            _rekey(out, "webhook_configurations", tenant, row_id)
            out.rows += 1
            # Token ids are in the context, so the row is inserted first, then encrypted.
            token_id = _insert(
                conn,
                tables.oauth_tokens,
                {
                    "tenant_id": tenant,
                    "platform": "STRIPE",
                    "access_token": "placeholder",
                    "stripe_account_id": f"acct_{tenant}0000",
                    "encryption_key_version": v,
                },
            )
            access = cipher.encrypt(
                f"{tenant}-access", CipherContext.oauth_token(tenant, token_id, "access_token")
            )
            refresh = cipher.encrypt(
                f"{tenant}-refresh", CipherContext.oauth_token(tenant, token_id, "refresh_token")
            )
            conn.execute(
                tables.oauth_tokens.update()
                .where(tables.oauth_tokens.c.id == token_id)
                .values(access_token=access, refresh_token=refresh)
            )
            out.plaintext[("oauth_tokens", tenant, token_id, "access_token")] = f"{tenant}-access"
            out.plaintext[("oauth_tokens", tenant, token_id, "refresh_token")] = f"{tenant}-refresh"
            out.rows += 1
        # A row without secrets has nothing to rotate.
        _insert(
            conn,
            tables.integration_configs,
            {
                "tenant_id": "acme",
                "platform": "HUBSPOT",
                "environment": "PRODUCTION",
                "config_type": "SETTINGS",
                "encryption_key_version": None,
            },
        )
    return out


def _rekey(out: Seeded, table: str, tenant: str, row_id: int) -> None:
    """Give the plaintexts recorded with id 0 their real row id."""
    for key in [k for k in out.plaintext if k[0] == table and k[1] == tenant and k[2] == 0]:
        out.plaintext[(table, tenant, row_id, key[3])] = out.plaintext.pop(key)


def _contexts(conn: sa.Connection) -> dict[tuple[str, str, int, str], tuple[str, int, Any]]:
    """Every stored secret: (table, tenant, id, column) -> (stored, version, context)."""
    found: dict[tuple[str, str, int, str], tuple[str, int, Any]] = {}
    for row in conn.execute(sa.text("SELECT * FROM integration_configs")).mappings():
        for col in ("api_key", "api_secret"):
            if row[col] is not None:
                ctx = CipherContext.integration(
                    row["tenant_id"], row["platform"], row["environment"], row["config_type"], col
                )
                key = ("integration_configs", row["tenant_id"], row["id"], col)
                found[key] = (row[col], row["encryption_key_version"], ctx)
    for row in conn.execute(sa.text("SELECT * FROM webhook_configurations")).mappings():
        for col in ("signing_secret", "auth_token", "auth_password"):
            if row[col] is not None:
                ctx = CipherContext.webhook(
                    row["tenant_id"], row["platform"], row["environment"], row["name"], col
                )
                key = ("webhook_configurations", row["tenant_id"], row["id"], col)
                found[key] = (row[col], row["encryption_key_version"], ctx)
    for row in conn.execute(sa.text("SELECT * FROM oauth_tokens")).mappings():
        for col in ("access_token", "refresh_token"):
            ctx = CipherContext.oauth_token(row["tenant_id"], row["id"], col)
            key = ("oauth_tokens", row["tenant_id"], row["id"], col)
            found[key] = (row[col], row["encryption_key_version"], ctx)
    return found


def test_rotate_reencrypts_every_table_and_audits_each_row(
    engine: sa.Engine, keys: tuple[bytes, bytes]
) -> None:
    old = FieldCipher(Keyring({1: keys[0]}))
    seeded = seed(engine, old)
    new = FieldCipher(Keyring({1: keys[0], 2: keys[1]}))
    with engine.connect() as conn:
        before = _contexts(conn)
        versions_before = dict(
            conn.execute(sa.text("SELECT id, row_version FROM integration_configs")).all()
        )
    recorder = Recorder()
    result = rotate_keys(engine, new, CONTEXT, batch_size=2, progress=recorder)

    assert result.active_version == 2 and result.remaining == 0
    assert result.rotated == {
        "integration_configs": 6,
        "webhook_configurations": 2,
        "oauth_tokens": 2,
    }
    assert recorder.total == seeded.rows == 10
    assert sum(n for _, n in recorder.batches) == 10 and max(n for _, n in recorder.batches) <= 2
    with engine.connect() as conn:
        after = _contexts(conn)
        assert after.keys() == before.keys() == seeded.plaintext.keys()
        for key, (stored, version, ctx) in after.items():
            assert version == 2
            assert stored != before[key][0]
            assert new.decrypt(stored, 2, ctx).reveal() == seeded.plaintext[key]
        bumped = dict(
            conn.execute(sa.text("SELECT id, row_version FROM integration_configs")).all()
        )
        secretless = conn.execute(
            sa.text("SELECT id FROM integration_configs WHERE config_type = 'SETTINGS'")
        ).scalar_one()
        assert all(bumped[i] == versions_before[i] + 1 for i in bumped if i != secretless)
        assert bumped[secretless] == versions_before[secretless]
        audit = conn.execute(
            sa.text(
                "SELECT entity_type::text, entity_id, entity_address, action::text,"
                " risk_level::text, requires_review, changes, changes::text AS raw"
                " FROM configuration_audit_logs"
            )
        ).all()
        assert len(audit) == 10
        assert {(a.action, a.risk_level, a.requires_review) for a in audit} == {
            ("ROTATE", "LOW", False)
        }
        token = next(a for a in audit if a.entity_type == "OAUTH_TOKEN")
        assert token.entity_address.startswith(f"{token.entity_address.split('/')[0]}/stripe/-/")
        assert token.changes == {
            "access_token": {"before": "(sensitive)", "after": REENCRYPTED},
            "refresh_token": {"before": "(sensitive)", "after": REENCRYPTED},
            "encryption_key_version": {"before": 1, "after": 2},
        }
        for a in audit:
            assert "rcn1:" not in a.raw
            assert not any(p in a.raw for p in seeded.plaintext.values())
        assert verify_chain(conn, key=AUDIT_KEY) == []

    again = rotate_keys(engine, new, CONTEXT, batch_size=2)
    assert again.total == 0 and again.batches == 0
    with engine.connect() as conn:
        count = conn.execute(sa.text("SELECT count(*) FROM configuration_audit_logs")).scalar()
        assert count == 10
        assert key_usage(conn) == [
            KeyUsage("integration_configs", 2, 6),
            KeyUsage("webhook_configurations", 2, 2),
            KeyUsage("oauth_tokens", 2, 2),
        ]


def test_rotate_skips_locked_rows_and_picks_them_up_later(
    engine: sa.Engine, keys: tuple[bytes, bytes]
) -> None:
    seed(engine, FieldCipher(Keyring({1: keys[0]})))
    new = FieldCipher(Keyring({1: keys[0], 2: keys[1]}))
    with engine.connect() as other:
        locked = other.execute(
            sa.text("SELECT id FROM webhook_configurations WHERE tenant_id = 'acme' FOR UPDATE")
        ).scalar_one()
        result = rotate_keys(engine, new, CONTEXT, batch_size=3)
        assert result.remaining == 1
        assert result.rotated["webhook_configurations"] == 1
        assert result.total == 9
        other.rollback()
    second = rotate_keys(engine, new, CONTEXT, batch_size=3)
    assert second.rotated == {
        "integration_configs": 0,
        "webhook_configurations": 1,
        "oauth_tokens": 0,
    }
    assert second.remaining == 0
    with engine.connect() as conn:
        version = conn.execute(
            sa.text("SELECT encryption_key_version FROM webhook_configurations WHERE id = :id"),
            {"id": locked},
        ).scalar()
        assert version == 2
        assert verify_chain(conn, key=AUDIT_KEY) == []


def test_rotate_refuses_versions_it_cannot_handle(
    engine: sa.Engine, keys: tuple[bytes, bytes]
) -> None:
    seed(engine, FieldCipher(Keyring({1: keys[0], 2: keys[1]})))
    with pytest.raises(KeyUnavailable, match=r"use key version 2, newer than .*newest \(1\)"):
        rotate_keys(engine, FieldCipher(Keyring({1: keys[0]})), CONTEXT)
    with pytest.raises(KeyUnavailable, match="key version 2, which is not in the keyring"):
        rotate_keys(engine, FieldCipher(Keyring({1: keys[0], 3: os.urandom(32)})), CONTEXT)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM configuration_audit_logs")).scalar() == 0
