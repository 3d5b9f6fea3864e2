"""Key rotation across the three secret tables against real PostgreSQL."""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy as sa

from reconciler.crypto.aead import RCN1, RCN2, CipherContext, FieldCipher
from reconciler.crypto.audit_key import AuditKey
from reconciler.crypto.fingerprint import Fingerprinter
from reconciler.crypto.keyring import Keyring
from reconciler.errors import DecryptFailed, KeyUnavailable
from reconciler.store import tables
from reconciler.store.audit import AuditContext, mark_audited_write, verify_chain
from reconciler.store.rotate import REENCRYPTED, KeyUsage, key_usage, rotate_keys

AUDIT_KEY = AuditKey(os.urandom(32))
CONTEXT = AuditContext("rotator", "127.0.0.1", "reconciler/test", "session-1", key=AUDIT_KEY)
FINGERPRINT_KEY = os.urandom(32)
FP = Fingerprinter(FINGERPRINT_KEY)
"""The fingerprint key every seeded row is written with."""


def cipher_of(keyring: Keyring) -> FieldCipher:
    return FieldCipher(keyring, FP)


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
        mark_audited_write(conn, "seed")  # as apply writes them: not recorded by the database
        for tenant in ("acme", "globex"):
            for env in ("PRODUCTION", "SANDBOX", "STAGING"):
                values: dict[str, Any] = {}
                for col in ("api_key", "api_secret"):
                    if col == "api_secret" and env == "STAGING":
                        continue  # a NULL secret column stays NULL
                    plain = f"{tenant}-{env}-{col}"
                    ctx = CipherContext.integration(tenant, "STRIPE", env, "API_KEY", col)
                    values[col] = cipher.encrypt(plain, ctx, FP(plain))
                    values[f"{col}_fingerprint"] = FP(plain)
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
                values[col] = cipher.encrypt(f"{tenant}-{col}", ctx, FP(f"{tenant}-{col}"))
                values[f"{col}_fingerprint"] = FP(f"{tenant}-{col}")
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
                f"{tenant}-access",
                CipherContext.oauth_token(tenant, token_id, "access_token"),
                None,
            )
            refresh = cipher.encrypt(
                f"{tenant}-refresh",
                CipherContext.oauth_token(tenant, token_id, "refresh_token"),
                None,
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


Found = dict[tuple[str, str, int, str], tuple[str, int, Any, str | None]]


def _contexts(conn: sa.Connection) -> Found:
    """Every stored secret: (table, tenant, id, column) -> (stored, version, context, fp)."""
    found: Found = {}
    for row in conn.execute(sa.text("SELECT * FROM integration_configs")).mappings():
        for col in ("api_key", "api_secret"):
            if row[col] is not None:
                ctx = CipherContext.integration(
                    row["tenant_id"], row["platform"], row["environment"], row["config_type"], col
                )
                key = ("integration_configs", row["tenant_id"], row["id"], col)
                found[key] = (
                    row[col],
                    row["encryption_key_version"],
                    ctx,
                    row[f"{col}_fingerprint"],
                )
    for row in conn.execute(sa.text("SELECT * FROM webhook_configurations")).mappings():
        for col in ("signing_secret", "auth_token", "auth_password"):
            if row[col] is not None:
                ctx = CipherContext.webhook(
                    row["tenant_id"], row["platform"], row["environment"], row["name"], col
                )
                key = ("webhook_configurations", row["tenant_id"], row["id"], col)
                found[key] = (
                    row[col],
                    row["encryption_key_version"],
                    ctx,
                    row[f"{col}_fingerprint"],
                )
    for row in conn.execute(sa.text("SELECT * FROM oauth_tokens")).mappings():
        for col in ("access_token", "refresh_token"):
            ctx = CipherContext.oauth_token(row["tenant_id"], row["id"], col)
            key = ("oauth_tokens", row["tenant_id"], row["id"], col)
            found[key] = (row[col], row["encryption_key_version"], ctx, None)
    return found


def test_rotate_reencrypts_every_table_and_audits_each_row(
    engine: sa.Engine, keys: tuple[bytes, bytes]
) -> None:
    old = cipher_of(Keyring({1: keys[0]}))
    seeded = seed(engine, old)
    new = cipher_of(Keyring({1: keys[0], 2: keys[1]}))
    with engine.connect() as conn:
        before = _contexts(conn)
        versions_before: dict[int, int] = dict(
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
        for key, (stored, version, ctx, fp) in after.items():
            assert version == 2
            assert stored != before[key][0] and fp == before[key][3]
            assert stored.startswith(RCN2 if fp else RCN1)  # OAuth tokens stay rcn1
            assert new.decrypt(stored, 2, ctx, fp).reveal() == seeded.plaintext[key]
        bumped: dict[int, int] = dict(
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
            assert RCN1 not in a.raw and RCN2 not in a.raw
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
    seed(engine, cipher_of(Keyring({1: keys[0]})))
    new = cipher_of(Keyring({1: keys[0], 2: keys[1]}))
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
    seed(engine, cipher_of(Keyring({1: keys[0], 2: keys[1]})))
    with pytest.raises(KeyUnavailable, match=r"use key version 2, newer than .*newest \(1\)"):
        rotate_keys(engine, cipher_of(Keyring({1: keys[0]})), CONTEXT)
    with pytest.raises(KeyUnavailable, match="key version 2, which is not in the keyring"):
        rotate_keys(engine, cipher_of(Keyring({1: keys[0], 3: os.urandom(32)})), CONTEXT)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM configuration_audit_logs")).scalar() == 0


# -- values that are not the ones written with their fingerprint -------------------------------


def _integration_row(conn: sa.Connection, environment: str) -> Any:
    return conn.execute(
        sa.text(
            "SELECT id, api_key, api_key_fingerprint FROM integration_configs"
            " WHERE tenant_id = 'acme' AND platform = 'STRIPE' AND environment = :e"
        ),
        {"e": environment},
    ).one()


def _audit_count(conn: sa.Connection) -> int:
    """Rows the reconciler wrote (the tests' own SQL edits are recorded by the database)."""
    return int(
        conn.execute(
            sa.text(
                "SELECT count(*) FROM configuration_audit_logs WHERE left(entry_hash, 1) <> 't'"
            )
        ).scalar_one()
    )


def test_rotate_refuses_a_ciphertext_copied_back_from_an_earlier_value(
    engine: sa.Engine, keys: tuple[bytes, bytes]
) -> None:
    """A rotated-out credential copied back by SQL is refused, not re-encrypted."""
    old = cipher_of(Keyring({1: keys[0]}))
    seeded = seed(engine, old)
    ctx = CipherContext.integration("acme", "STRIPE", "PRODUCTION", "API_KEY", "api_key")
    with engine.begin() as conn:
        earlier = _integration_row(conn, "PRODUCTION").api_key
        # The credential is rotated (as apply writes it) ...
        conn.execute(
            sa.text(
                "UPDATE integration_configs SET api_key = :k, api_key_fingerprint = :f"
                " WHERE tenant_id = 'acme' AND platform = 'STRIPE' AND environment = 'PRODUCTION'"
            ),
            {"k": old.encrypt("acme-rotated", ctx, FP("acme-rotated")), "f": FP("acme-rotated")},
        )
        # ... and its earlier ciphertext copied back, the fingerprint left as it is.
        conn.execute(
            sa.text(
                "UPDATE integration_configs SET api_key = :k"
                " WHERE tenant_id = 'acme' AND platform = 'STRIPE' AND environment = 'PRODUCTION'"
            ),
            {"k": earlier},
        )
        before = conn.execute(sa.text("SELECT * FROM integration_configs ORDER BY id")).all()
    new = cipher_of(Keyring({1: keys[0], 2: keys[1]}))
    with pytest.raises(DecryptFailed) as info:
        rotate_keys(engine, new, CONTEXT, batch_size=100)
    message = str(info.value)
    assert "\n" not in message
    assert "integration_configs.api_key tenant=acme row=STRIPE/PRODUCTION/API_KEY" in message
    assert "does not match its fingerprint" in message
    assert earlier not in message
    assert not [p for p in [*seeded.plaintext.values(), "acme-rotated"] if p in message]
    with engine.connect() as conn:
        # Its batch was rolled back: nothing re-encrypted, nothing audited.
        assert conn.execute(sa.text("SELECT * FROM integration_configs ORDER BY id")).all() == (
            before
        )
        assert _audit_count(conn) == 0


def test_rotate_refuses_ciphertexts_swapped_between_rows(
    engine: sa.Engine, keys: tuple[bytes, bytes]
) -> None:
    seed(engine, cipher_of(Keyring({1: keys[0]})))
    with engine.begin() as conn:
        # Ciphertext and fingerprint moved together from one row to another.
        conn.execute(
            sa.text(
                "UPDATE integration_configs AS t SET api_key = s.api_key,"
                " api_key_fingerprint = s.api_key_fingerprint"
                " FROM integration_configs AS s"
                " WHERE t.tenant_id = 'globex' AND t.environment = 'SANDBOX'"
                " AND s.tenant_id = 'globex' AND s.environment = 'STAGING'"
            )
        )
    new = cipher_of(Keyring({1: keys[0], 2: keys[1]}))
    with pytest.raises(DecryptFailed, match="tenant=globex row=STRIPE/SANDBOX/API_KEY"):
        rotate_keys(engine, new, CONTEXT, batch_size=100)


def test_rotate_refuses_ciphertexts_swapped_between_columns(
    engine: sa.Engine, keys: tuple[bytes, bytes]
) -> None:
    seed(engine, cipher_of(Keyring({1: keys[0]})))
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE integration_configs SET api_key = api_secret, api_secret = api_key"
                " WHERE tenant_id = 'acme' AND environment = 'SANDBOX'"
            )
        )
    new = cipher_of(Keyring({1: keys[0], 2: keys[1]}))
    with pytest.raises(DecryptFailed, match="tenant=acme row=STRIPE/SANDBOX/API_KEY"):
        rotate_keys(engine, new, CONTEXT, batch_size=100)


def _legacy(keyring: Keyring, plaintext: str, ctx: CipherContext) -> str:
    """An ``rcn1`` value as written before ciphertexts were bound to their fingerprint."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = os.urandom(12)
    sealed = AESGCM(keyring.key(1, where="test")).encrypt(nonce, plaintext.encode(), ctx.aad())
    return RCN1 + base64.b64encode(nonce + sealed).decode()


def test_rotate_upgrades_legacy_rcn1_only_when_it_is_its_fingerprints_value(
    engine: sa.Engine, keys: tuple[bytes, bytes]
) -> None:
    keyring = Keyring({1: keys[0]})
    cipher = cipher_of(keyring)
    seed(engine, cipher)
    production = CipherContext.integration("acme", "STRIPE", "PRODUCTION", "API_KEY", "api_key")
    sandbox = CipherContext.integration("acme", "STRIPE", "SANDBOX", "API_KEY", "api_key")
    with engine.begin() as conn:
        # Two legacy values under the active version: one consistent with its fingerprint,
        # one an earlier credential next to a later fingerprint.
        conn.execute(
            sa.text(
                "UPDATE integration_configs SET api_key = :k"
                " WHERE tenant_id = 'acme' AND platform = 'STRIPE' AND environment = 'PRODUCTION'"
            ),
            {"k": _legacy(keyring, "acme-PRODUCTION-api_key", production)},
        )
        conn.execute(
            sa.text(
                "UPDATE integration_configs SET api_key = :k"
                " WHERE tenant_id = 'acme' AND environment = 'SANDBOX'"
            ),
            {"k": _legacy(keyring, "acme-SANDBOX-earlier", sandbox)},
        )
    with pytest.raises(DecryptFailed, match=r"row=STRIPE/SANDBOX/API_KEY.*does not match"):
        rotate_keys(engine, cipher, CONTEXT, batch_size=100)

    with engine.begin() as conn:  # what apply would write
        mark_audited_write(conn, "apply")
        conn.execute(
            sa.text(
                "UPDATE integration_configs SET api_key = :k"
                " WHERE tenant_id = 'acme' AND environment = 'SANDBOX'"
            ),
            {"k": cipher.encrypt("acme-SANDBOX-api_key", sandbox, FP("acme-SANDBOX-api_key"))},
        )
    result = rotate_keys(engine, cipher, CONTEXT, batch_size=100)
    assert result.rotated["integration_configs"] == 1 and result.remaining == 0
    assert result.rotated["oauth_tokens"] == 0  # tokens under the active version stay as they are
    with engine.connect() as conn:
        row = _integration_row(conn, "PRODUCTION")
        assert row.api_key.startswith(RCN2)
        assert cipher.decrypt(row.api_key, 1, production, row.api_key_fingerprint).reveal() == (
            "acme-PRODUCTION-api_key"
        )
        (reason,) = conn.execute(
            sa.text("SELECT risk_reasons FROM configuration_audit_logs WHERE action = 'ROTATE'")
        ).scalar_one()
        assert reason["message"] == "secrets re-encrypted under key version 1 in the rcn2 form"
    assert rotate_keys(engine, cipher, CONTEXT).total == 0
