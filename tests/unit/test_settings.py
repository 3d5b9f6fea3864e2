"""``reconciler.yaml``: unusable values are one-line errors naming file, line, column and field."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reconciler.errors import ConfigError
from reconciler.settings import (
    MAX_TIMEOUT_SECONDS,
    Settings,
    check_timeout,
    load_settings,
    lock_timeout_option,
)


def settings_error(tmp_path: Path, text: str) -> str:
    (tmp_path / "reconciler.yaml").write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path)
    message = str(info.value)
    assert "\n" not in message
    return message.removeprefix(f"{tmp_path / 'reconciler.yaml'}:")


def test_absent_file_gives_defaults(tmp_path: Path) -> None:
    assert load_settings(tmp_path) == Settings()


def test_good_values_are_read(tmp_path: Path) -> None:
    (tmp_path / "reconciler.yaml").write_text(
        "apply:\n  lock_timeout_seconds: 0.5\n  statement_timeout_seconds: 86400\n"
        "risk:\n  mass_deletion:\n    max_share: 1\n    min_objects: 1\n"
    )
    settings = load_settings(tmp_path)
    assert (settings.lock_timeout_seconds, settings.statement_timeout_seconds) == (0.5, 86400.0)
    assert settings.policy.mass_deletion_max_share == 1.0
    assert settings.policy.mass_deletion_min_objects == 1


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("0", "0"),  # PostgreSQL's "no limit"
        ("0.0", "0.0"),
        ("0.0001", "0.0001"),  # rounds to 0 ms
        ("-1", "-1"),
        (".nan", "nan"),
        (".inf", "inf"),
        ("-.inf", "-inf"),
        ("1e308", "1e+308"),
        ("86400.5", "86400.5"),
        ("9223372036854775807", "9223372036854775807"),
    ],
)
@pytest.mark.parametrize("key", ["lock_timeout_seconds", "statement_timeout_seconds"])
def test_out_of_range_timeouts_are_refused(
    tmp_path: Path, key: str, value: str, shown: str
) -> None:
    message = settings_error(tmp_path, f"apply:\n  {key}: {value}\n")
    assert message == (
        f"2:{len(key) + 5}: apply.{key}: must be from 0.001 to 86400 seconds (one day), got {shown}"
    )


@pytest.mark.parametrize("value", ["'60'", "true", "[1]", "{a: 1}", "null"])
def test_non_numeric_timeouts_are_refused(tmp_path: Path, value: str) -> None:
    message = settings_error(tmp_path, f"apply:\n  lock_timeout_seconds: {value}\n")
    assert message.startswith("2:25: apply.lock_timeout_seconds: must be a number of seconds, got ")


@pytest.mark.parametrize(
    ("mass", "expected"),
    [
        ("max_share: 0", "3:16: risk.mass_deletion.max_share: must be in (0, 1], got 0"),
        ("max_share: 1.5", "3:16: risk.mass_deletion.max_share: must be in (0, 1], got 1.5"),
        ("max_share: .nan", "3:16: risk.mass_deletion.max_share: must be in (0, 1], got nan"),
        ("max_share: '0.5'", "3:16: risk.mass_deletion.max_share: must be a number in (0, 1], "),
        ("min_objects: 0", "3:18: risk.mass_deletion.min_objects: must be a whole number of at "),
        ("min_objects: -3", "3:18: risk.mass_deletion.min_objects: must be a whole number"),
        ("min_objects: 2.5", "3:18: risk.mass_deletion.min_objects: must be a whole number"),
        ("min_objects: .inf", "3:18: risk.mass_deletion.min_objects: must be a whole number"),
    ],
)
def test_mass_deletion_limits_are_checked(tmp_path: Path, mass: str, expected: str) -> None:
    message = settings_error(tmp_path, f"risk:\n  mass_deletion:\n    {mass}\n")
    assert message.startswith(expected)


def test_unknown_key_points_at_the_key(tmp_path: Path) -> None:
    message = settings_error(tmp_path, "apply:\n  allow_risk: low\n  lock_timeout: 5\n")
    assert message == (
        "3:3: apply.lock_timeout: unknown key "
        "(allowed: allow_risk, lock_timeout_seconds, statement_timeout_seconds, "
        "verify_connections, verify_connections_unreachable)"
    )


def test_bad_risk_level_names_the_field(tmp_path: Path) -> None:
    message = settings_error(tmp_path, "apply:\n  allow_risk: extreme\n")
    assert message.startswith("2:15: apply.allow_risk: unknown risk level 'extreme'")


def test_check_timeout_limits() -> None:
    assert check_timeout(0.001) == 0.001
    assert check_timeout(MAX_TIMEOUT_SECONDS) == MAX_TIMEOUT_SECONDS
    for bad in (0, 0.0009, MAX_TIMEOUT_SECONDS + 1, float("nan"), float("-inf"), True, "5"):
        with pytest.raises(ValueError, match="must be"):
            check_timeout(bad)


def test_lock_timeout_option() -> None:
    assert lock_timeout_option(None) is None
    assert lock_timeout_option(2.5) == 2.5
    with pytest.raises(ConfigError, match=r"^--lock-timeout must be from 0\.001 to 86400"):
        lock_timeout_option(0.0)


@pytest.mark.parametrize("value", [0.0, float("nan"), float("inf"), -1.0, 1e308])
def test_settings_built_in_code_are_checked_too(value: float) -> None:
    with pytest.raises(ConfigError, match=r"^Settings\.statement_timeout_seconds must be from"):
        Settings(statement_timeout_seconds=value)
    with pytest.raises(ConfigError, match=r"^Settings\.lock_timeout_seconds must be from"):
        Settings(lock_timeout_seconds=value)


@pytest.mark.parametrize("kind", ["symlink", "fifo", "dangling"])
def test_a_settings_file_that_is_not_a_regular_file_is_refused(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "reconciler.yaml"
    secret = tmp_path / "outside.txt"
    secret.write_text("AGE-SECRET-KEY-1" + "Q" * 58 + "\n")
    if kind == "symlink":
        target.symlink_to(secret)
    elif kind == "fifo":
        os.mkfifo(target)
    else:
        target.symlink_to(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match=r"RCN-F005") as info:
        load_settings(tmp_path)
    assert "AGE-SECRET" not in str(info.value) and "\n" not in str(info.value)


def test_mass_revocation_settings(tmp_path: Path) -> None:
    (tmp_path / "reconciler.yaml").write_text(
        "risk:\n  mass_revocation:\n    max_share: 0.25\n    min_tokens: 10\n"
    )
    policy = load_settings(tmp_path).policy
    assert (policy.mass_revocation_max_share, policy.mass_revocation_min_tokens) == (0.25, 10)
    assert (policy.mass_deletion_max_share, policy.mass_deletion_min_objects) == (0.5, 3)
    (tmp_path / "reconciler.yaml").write_text(
        "risk:\n  mass_revocation:\n    max_share: 2\n    min_tokens: 1\n"
    )
    with pytest.raises(ConfigError) as exc:
        load_settings(tmp_path)
    assert str(exc.value).endswith("3:16: risk.mass_revocation.max_share: must be in (0, 1], got 2")
    (tmp_path / "reconciler.yaml").write_text("risk:\n  mass_revocation:\n    min_tokens: 0\n")
    with pytest.raises(ConfigError, match=r"risk.mass_revocation.min_tokens: must be a whole"):
        load_settings(tmp_path)


def test_approval_and_notify_settings(tmp_path: Path) -> None:
    assert (Settings().approval_level.value, Settings().approvals_required) == ("CRITICAL", 1)
    (tmp_path / "reconciler.yaml").write_text(
        "approval:\n  level: high\n  required: 2\n"
        "notify:\n  - url: https://hooks.example.com/x\n    format: slack\n"
        "  - url: http://127.0.0.1:9/y\n    events: [applied, drift]\n    timeout_seconds: 1\n"
    )
    s = load_settings(tmp_path)
    assert (s.approval_level.value, s.approvals_required) == ("HIGH", 2)
    assert [(t.format, t.events, t.timeout_seconds) for t in s.notify] == [
        ("slack", ("applied", "blocked", "failed", "drift", "approval-needed"), 5.0),
        ("json", ("applied", "drift"), 1.0),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("approval:\n  level: severe\n", "2:10: approval.level: unknown risk level"),
        ("approval:\n  required: 0\n", "2:13: approval.required: must be a whole number"),
        ("approval:\n  who: x\n", "2:3: approval.who: unknown key"),
        ("notify:\n  - url: ftp://x\n", "2:10: notify[0].url: must be an http(s) URL"),
        ("notify:\n  - url: http://x\n    events: [sent]\n", "notify[0].events[0]: unknown event"),
        ("notify:\n  - url: http://x\n    format: xml\n", "notify[0].format: must be one of"),
        ("notify:\n  - url: http://x\n    timeout_seconds: 120\n", "must be at most 60"),
        ("notify: http://x\n", "notify: must be a list"),
    ],
)
def test_bad_approval_and_notify_settings(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in settings_error(tmp_path, text)


def test_health_and_verification_settings(tmp_path: Path) -> None:
    (tmp_path / "reconciler.yaml").write_text(
        "apply:\n  verify_connections: true\n  verify_connections_unreachable: block\n"
        "health:\n  timeout_seconds: 3\n  base_urls:\n    stripe: http://127.0.0.1:8080/\n"
        "    quickbooks:\n      sandbox: https://qb.test\n"
    )
    settings = load_settings(tmp_path)
    assert settings.verify_connections is True
    assert settings.verify_connections_unreachable == "block"
    assert settings.health_timeout_seconds == 3
    assert settings.base_urls.stripe == "http://127.0.0.1:8080"
    assert settings.base_urls.hubspot == "https://api.hubapi.com"
    assert settings.base_urls.quickbooks("PRODUCTION") == "https://quickbooks.api.intuit.com"
    assert settings.base_urls.quickbooks("STAGING") == "https://qb.test"
    defaults = Settings()
    assert (defaults.verify_connections, defaults.verify_connections_unreachable) == (False, "warn")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("apply:\n  verify_connections: yes-please\n", "2:23: apply.verify_connections: must be"),
        (
            "apply:\n  verify_connections_unreachable: fail\n",
            "2:35: apply.verify_connections_unreachable: must be one of warn, block",
        ),
        ("health:\n  base_urls:\n    stripe: ftp://x\n", "3:13: health.base_urls.stripe: must be"),
        ("health:\n  base_urls:\n    paypal: https://x\n", "3:5: health.base_urls.paypal: unknown"),
        (
            "health:\n  base_urls:\n    quickbooks:\n      prod: https://x\n",
            "4:7: health.base_urls.quickbooks.prod: unknown key",
        ),
        ("health:\n  timeout_seconds: 301\n", "2:20: health.timeout_seconds: must be at most 300"),
        ("health:\n  timeout_seconds: 0\n", "2:20: health.timeout_seconds: must be from"),
    ],
)
def test_health_and_verification_settings_are_checked(
    tmp_path: Path, text: str, expected: str
) -> None:
    assert settings_error(tmp_path, text).startswith(expected)
