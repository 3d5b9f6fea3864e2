"""The write path's fast parts against real PostgreSQL: the ``jsonb`` text the audit hashes
cover, the keyed hashes assembled from pieces, and the staging tables of set-based writes."""

from __future__ import annotations

import os
import random
import string
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import pytest
import sqlalchemy as sa

from reconciler.core.planner import build_plan
from reconciler.core.risk import RiskPolicy
from reconciler.crypto.aead import FieldCipher
from reconciler.crypto.audit_key import AuditKey
from reconciler.crypto.keyring import Keyring
from reconciler.model.actual import ActualState
from reconciler.model.desired import DesiredState
from reconciler.model.plan import Plan
from reconciler.store.audit_hash import HASHED_FIELDS, KeyedHasher, keyed_entry_hash
from reconciler.store.jsonb_text import NotJson, jsonb_text
from reconciler.store.read import read_actual_state
from reconciler.store.staging import stage_rows
from reconciler.store.write import WriteContext, prepare_writes, write_changes
from tests.unit.core.builders import FINGERPRINTER, integration, state, webhook


class _Colour(StrEnum):
    RED = "RED"


TRICKY: list[Any] = [
    {},
    [],
    {"b": 1, "a": 2, "aa": 3, "ab": None, "é": True, "z": False, "zz": [1, 2, {}]},
    {"fields": [{"field": "x", "before": None, "after": "(sensitive)", "sensitive": True}]},
    {"ünïcode": "日本語 ✓", "e\u0301": 1, "€": 2, "ab": 3, "b": 4, "\U0001f600": 5},
    {"ctl": 'a\x01b\x1fc\x7fd\n\r\t\b\f"\\/', "sep": "\u2028\u2029"},
    [0.1, 1.0, -0.0, 1e-07, 1.5e-07, 1e16, 1.2345e20, 123456789.123, 2.5, -3.75, 1e300],
    [0, -1, 2**63, -(2**70), True, False, None],
    {"nested": {"b": {"d": [], "c": {}}, "a": [[["deep"]]]}},
    {1: "int key", None: "none key", 2.5: "float key"},
    {True: "bool key", False: "other"},
    {"dup": 1, "1": "string one", 1: "int one"},
    {"enum": _Colour.RED, _Colour.RED: "key"},
    ("tuple", ["list"]),
    "plain string",
    42,
    None,
]


def _random_value(rng: random.Random, depth: int = 0) -> Any:
    alphabet = string.ascii_letters + 'é€日\x00\x05\n"\\ '
    choice = rng.randrange(8 if depth < 3 else 5)
    if choice == 0:
        return "".join(rng.choice(alphabet) for _ in range(rng.randrange(6))).replace("\x00", "")
    if choice == 1:
        return rng.randrange(-(10**12), 10**12)
    if choice == 2:
        return rng.choice([None, True, False])
    if choice == 3:
        return rng.uniform(-1e6, 1e6) * 10 ** rng.randrange(-12, 12)
    if choice == 4:
        return rng.random()
    if choice == 5:
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    keys = ["a", "b", "ab", "ba", "abc", "é", "éa", "zz", "A", "_", "field", "after"]
    return {rng.choice(keys): _random_value(rng, depth + 1) for _ in range(rng.randrange(5))}


def _server_text(engine: sa.Engine, values: list[Any]) -> list[str]:
    import json

    def plain(v: Any) -> Any:
        # The JSON the old writer sent: json.dumps of the value (keys converted the same way).
        return json.loads(json.dumps(v, ensure_ascii=False))

    with engine.connect() as conn:
        return [
            conn.execute(
                sa.text("SELECT CAST(CAST(:v AS jsonb) AS text)"),
                {"v": json.dumps(plain(v), ensure_ascii=False)},
            ).scalar_one()
            for v in values
        ]


def test_jsonb_text_is_what_the_server_prints(engine: sa.Engine) -> None:
    rng = random.Random(1234)
    values = TRICKY + [_random_value(rng) for _ in range(400)]
    assert [jsonb_text(v) for v in values] == _server_text(engine, values)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), {"a": [object()]}, {(1, 2): 3}])
def test_jsonb_text_refuses_what_json_cannot_hold(bad: Any) -> None:
    with pytest.raises(NotJson):
        jsonb_text(bad)


def test_keyed_hasher_matches_keyed_entry_hash() -> None:
    key = AuditKey(os.urandom(32))
    shared = {
        "performed_by": "alice \u00e9",
        "ip_address": None,
        "user_agent": 'reconciler/1 "ci"',
        "session_id": "s-1",
        "apply_run_id": "0b7f4c1e-0000-4000-8000-000000000001",
        "git_commit": None,
        "created_at": "2024-05-01T12:00:00.123456Z",
    }
    hasher = KeyedHasher(shared, key)
    rng = random.Random(7)
    for i in range(200):
        own = {
            "action": rng.choice(["CREATE", "UPDATE"]),
            "changes": jsonb_text(_random_value(rng)),
            "entity_address": f't{i}/stripe/production/integration/API_KEY\n"é',
            "entity_id": rng.choice([None, i, 2**40]),
            "entity_type": "INTEGRATION_CONFIG",
            "id": 10**9 + i,
            "prev_hash": rng.choice([None, "k" + "a" * 63]),
            "requires_review": rng.choice([True, False]),
            "risk_level": "HIGH",
            "risk_reasons": "[]",
            "source_path": rng.choice([None, "tenants/x/stripe.yaml"]),
            "tenant_id": f"tenant-{i}",
        }
        record = {**shared, **own}
        assert set(record) == set(HASHED_FIELDS)
        assert hasher.hash(tuple(own[f] for f in hasher.fields)) == keyed_entry_hash(record, key)


def test_staged_rows_are_typed_and_go_with_the_transaction(engine: sa.Engine) -> None:
    now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    columns = [
        ("n", "integer"),
        ("name", "text"),
        ("big", "bigint"),
        ("flag", "boolean"),
        ("ratio", "double precision"),
        ("at", "timestamptz"),
    ]
    rows = [(1, "a\tb\\c", 2**40, True, 2.5, now), (2, None, None, None, None, None)]
    with engine.connect() as conn:
        with conn.begin():
            name = stage_rows(conn, columns, rows, key=("n",))
            got = conn.execute(sa.text(f"SELECT * FROM {name} ORDER BY n")).all()
            assert [tuple(r) for r in got] == rows
        # ON COMMIT DROP: gone with the transaction.
        missing = conn.execute(sa.text("SELECT to_regclass(:n)"), {"n": f"pg_temp.{name}"})
        assert missing.scalar_one() is None


# -- rows prepared before the transaction ----------------------------------------------------


class _NoEncryption:
    """A cipher that fails if anything is encrypted with it."""

    active_version = 1

    def encrypt(self, *args: Any) -> str:
        raise AssertionError("encrypted inside the transaction")

    encrypt_at = encrypt

    def decrypt(self, *args: Any) -> Any:
        raise AssertionError("decrypted")


def _plan(conn: sa.Connection, desired: DesiredState) -> Plan:

    empty = build_plan(desired, ActualState(), policy=RiskPolicy(), created_at="t")
    actual = read_actual_state(conn, empty.selectors, FINGERPRINTER)
    return build_plan(desired, actual, policy=RiskPolicy(), created_at="t")


def _cipher() -> FieldCipher:

    return FieldCipher(Keyring({1: os.urandom(32)}), FINGERPRINTER)


def _desired(tenants: int, interval: int) -> DesiredState:

    objects: list[Any] = []
    for i in range(tenants):
        objects += [integration(tenant=f"t{i:03d}", sync_interval=interval), webhook(f"t{i:03d}")]
    return state(*objects)


def test_prepared_rows_are_written_for_their_own_changes_only(engine: sa.Engine) -> None:

    now = datetime.now(UTC)
    first = _desired(3, 15)
    with engine.begin() as conn:
        p = _plan(conn, first)
        prepared = prepare_writes(p.changes, first, _cipher())
        # The rows were encrypted beforehand: nothing is encrypted in the transaction.
        write_changes(
            conn, p.changes, first, WriteContext(now, "t", _NoEncryption()), None, prepared
        )
        assert _plan(conn, first).changes == ()

    second = _desired(3, 45)
    with engine.begin() as conn:
        stale = prepare_writes(_plan(conn, first).changes, first, _cipher())
        p = _plan(conn, second)
        # Rows prepared for other changes (a plan made again under the lock) are not used.
        write_changes(conn, p.changes, second, WriteContext(now, "t", _cipher()), None, stale)
        assert _plan(conn, second).changes == ()


def test_a_large_staged_update_writes_every_row(engine: sa.Engine) -> None:

    now = datetime.now(UTC)
    with engine.begin() as conn:
        p = _plan(conn, _desired(300, 15))
        write_changes(conn, p.changes, _desired(300, 15), WriteContext(now, "t", _cipher()))
    changed = _desired(300, 30)
    with engine.begin() as conn:
        p = _plan(conn, changed)
        assert len(p.changes) == 300
        written = write_changes(conn, p.changes, changed, WriteContext(now, "t", _cipher()))
        assert len(written) == 300
        assert _plan(conn, changed).changes == ()
        intervals = conn.execute(sa.text("SELECT DISTINCT sync_interval FROM integration_configs"))
        assert intervals.all() == [(30,)]
