"""Only regular files inside the manifests root are read, and secrets never reach the output.

Links, FIFOs and devices under ``tenants/`` or ``templates/`` are ``RCN-F005`` diagnostics
(never opened); tenant selectors are tenant ids, never paths. The CLI runs as a subprocess
with a timeout and a memory limit, so a reader that hangs on a FIFO or reads ``/dev/zero``
fails the test instead of the machine.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from reconciler.cli.main import cli

AGE_KEY = "AGE-SECRET-KEY-1" + "QYZ3ZX8VG5L9MS2NK7PQT4WD6RC0HJF8A2E5UY7KX3N9V6B4DTS0GLM"
"""An age-secret-key-shaped line: what a key file outside the repository holds."""

MANIFEST = """\
apiVersion: reconciler/v1
kind: PlatformConfig
tenant: {tenant}
platform: STRIPE
environments:
  production:
    integrations:
      SETTINGS:
        features: {{invoices: true}}
"""
FORMATS = ("text", "json", "github")
MEMORY_LIMIT = 1024 * 1024 * 1024


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run(cwd: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``python -m reconciler ARGS`` with no age key, a 1 GiB address-space limit and a timeout."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("SOPS_", "RECONCILER_", "GITHUB_"))
    }
    env.update(HOME=str(cwd), XDG_CONFIG_HOME=str(cwd), NO_COLOR="1")
    return subprocess.run(
        [sys.executable, "-m", "reconciler", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        preexec_fn=_limit_memory,
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository with one valid manifest and a secret key file outside ``manifests/``."""
    tenant_dir = tmp_path / "manifests" / "tenants" / "good"
    tenant_dir.mkdir(parents=True)
    (tenant_dir / "stripe.yaml").write_text(MANIFEST.format(tenant="good"))
    (tmp_path / "manifests" / "templates").mkdir()
    secrets = tmp_path / "outside"
    secrets.mkdir()
    (secrets / "keys.txt").write_text(f"# created: 2026-01-01\n{AGE_KEY}\n")
    return tmp_path


def _tenant_file(repo: Path, tenant: str, name: str = "stripe.yaml") -> Path:
    path = repo / "manifests" / "tenants" / tenant / name
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _assert_refused(
    result: subprocess.CompletedProcess[str], fmt: str, rel: str, code: str = "RCN-F005"
) -> None:
    """Exit 1, no traceback, no key material, and one diagnostic for ``rel`` with ``code``."""
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Traceback" not in output
    assert "AGE-SECRET-KEY" not in output and AGE_KEY[16:40] not in output
    if fmt == "json":
        diagnostics = json.loads(result.stdout)["diagnostics"]
        assert [d["code"] for d in diagnostics if d["file"].endswith(rel)] == [code]
    else:
        lines = [line for line in result.stdout.splitlines() if rel in line]
        assert len(lines) == 1, result.stdout
        assert (f"[{code}]" if fmt == "text" else f"title={code}::") in lines[0]


@pytest.mark.parametrize("fmt", FORMATS)
def test_link_to_a_key_file_outside_is_refused_and_never_echoed(repo: Path, fmt: str) -> None:
    _tenant_file(repo, "acme").symlink_to(repo / "outside" / "keys.txt")
    result = run(repo, "validate", "--manifests", "manifests", "--format", fmt)
    _assert_refused(result, fmt, "tenants/acme/stripe.yaml")


@pytest.mark.parametrize("fmt", FORMATS)
def test_link_given_on_the_command_line_is_refused(repo: Path, fmt: str) -> None:
    link = _tenant_file(repo, "acme")
    link.symlink_to(repo / "outside" / "keys.txt")
    result = run(repo, "validate", "manifests/tenants/acme/stripe.yaml", "--format", fmt)
    _assert_refused(result, fmt, "tenants/acme/stripe.yaml")


def test_link_to_a_file_inside_the_root_is_refused_too(repo: Path) -> None:
    _tenant_file(repo, "acme").symlink_to(repo / "manifests" / "tenants" / "good" / "stripe.yaml")
    _assert_refused(run(repo, "validate"), "text", "tenants/acme/stripe.yaml")


def test_linked_template_is_refused(repo: Path) -> None:
    (repo / "manifests" / "templates" / "base.yaml").symlink_to(repo / "outside" / "keys.txt")
    for args in ((), ("--tenant", "good")):
        _assert_refused(run(repo, "validate", *args), "text", "templates/base.yaml")


@pytest.mark.parametrize("selected", [False, True], ids=["all", "tenant-selected"])
def test_linked_tenant_directory_is_refused(repo: Path, selected: bool) -> None:
    outside = repo / "outside" / "acme"
    outside.mkdir()
    (outside / "stripe.yaml").write_text(f"tenant: acme\n# {AGE_KEY}\n")
    (repo / "manifests" / "tenants" / "acme").symlink_to(outside, target_is_directory=True)
    args = ("--tenant", "acme") if selected else ()
    result = run(repo, "validate", "--format", "json", *args)
    _assert_refused(result, "json", "manifests/tenants/acme")


def test_linked_tenants_directory_is_refused_in_a_selected_run(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    _tenant = outside / "acme"
    _tenant.mkdir(parents=True)
    (_tenant / "stripe.yaml").write_text(f"# {AGE_KEY}\n")
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "tenants").symlink_to(outside, target_is_directory=True)
    for args in ((), ("--tenant", "acme")):
        result = run(tmp_path, "validate", "--format", "json", *args)
        _assert_refused(result, "json", "manifests/tenants")


def test_link_to_dev_zero_is_refused_without_reading(repo: Path) -> None:
    _tenant_file(repo, "acme").symlink_to("/dev/zero")
    (repo / "manifests" / "templates" / "zero.yaml").symlink_to("/dev/zero")
    result = run(repo, "validate", timeout=60)
    _assert_refused(result, "text", "tenants/acme/stripe.yaml")
    _assert_refused(result, "text", "templates/zero.yaml")


@pytest.mark.parametrize("where", ["tenants/acme/stripe.yaml", "templates/base.yaml"])
def test_fifo_is_refused_without_hanging(repo: Path, where: str) -> None:
    fifo = repo / "manifests" / where
    fifo.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(fifo)
    _assert_refused(run(repo, "validate", timeout=30), "text", where)
    _assert_refused(run(repo, "validate", f"manifests/{where}", timeout=30), "text", where)


@pytest.mark.parametrize("fmt", FORMATS)
def test_dangling_and_looping_links_are_one_line_diagnostics(repo: Path, fmt: str) -> None:
    _tenant_file(repo, "dangling").symlink_to(repo / "no-such-file.yaml")
    link, other = _tenant_file(repo, "looping"), _tenant_file(repo, "looping", "hubspot.yaml")
    link.symlink_to(other)
    other.symlink_to(link)
    result = run(repo, "validate", "--format", fmt)
    for rel in ("dangling/stripe.yaml", "looping/stripe.yaml", "looping/hubspot.yaml"):
        _assert_refused(result, fmt, f"tenants/{rel}")


def test_oversized_file_is_y004_without_being_read_whole(repo: Path) -> None:
    big = _tenant_file(repo, "acme")
    with big.open("wb") as handle:
        handle.truncate(2 * MEMORY_LIMIT)  # sparse: 2 GiB of NULs, more than the process may map
    result = run(repo, "validate")
    _assert_refused(result, "text", "tenants/acme/stripe.yaml", code="RCN-Y004")


def test_root_reached_through_a_link_still_works(repo: Path) -> None:
    (repo / "checkout").symlink_to(repo / "manifests", target_is_directory=True)
    result = run(repo, "validate", "--manifests", "checkout")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith("1 file valid")
    explicit = run(repo, "validate", "checkout/tenants/good/stripe.yaml")
    assert explicit.returncode == 0, explicit.stdout + explicit.stderr


SECRETS = {
    "age": AGE_KEY,
    "stripe-live": "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc",
    "stripe-restricted-test": "rk_test_" + "51Hx0aBcDeFgHiJkLmNoPq",
    "stripe-webhook": "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "hubspot": "pat-na1-" + "1d681633-88b2-4bc5-a23f-8205986b4736",
    "intuit-refresh": "AB11" + "7625309918nYVkqL5sWDz0X3jT7aGhQe8rFcM2bUv4pN",
}


@pytest.mark.parametrize("fmt", FORMATS)
def test_secret_in_a_yaml_error_is_redacted(repo: Path, fmt: str) -> None:
    for shape, secret in SECRETS.items():
        # A duplicate key: the message quotes the key.
        _tenant_file(repo, shape).write_text(f"{secret}: 1\n{secret}: 2\n")
    result = run(repo, "validate", "--format", fmt)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    for shape, secret in SECRETS.items():
        _assert_refused(result, fmt, f"tenants/{shape}/stripe.yaml", code="RCN-Y002")
        assert secret not in output and secret[8:24] not in output, shape
    assert output.count("(redacted)") == len(SECRETS)


def test_secret_shaped_key_is_redacted_from_the_field_path(repo: Path) -> None:
    secret = SECRETS["stripe-live"]
    path = _tenant_file(repo, "acme")
    path.write_text(MANIFEST.format(tenant="acme") + f"  {secret}: {{}}\n")
    for fmt in FORMATS:
        result = run(repo, "validate", "--format", fmt)
        output = result.stdout + result.stderr
        assert result.returncode == 1 and "RCN-SEC-2" in output, output
        assert secret not in output and secret[8:24] not in output


@pytest.mark.parametrize("option", ["--tenant", "--exclude-tenant"])
@pytest.mark.parametrize("value", ["../../../../usr", "../x", "acme/../../x", "Acme", ""])
def test_tenant_selector_is_an_id_not_a_path_validate(
    repo: Path, option: str, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(repo)
    result = CliRunner().invoke(cli, ["validate", option, value])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"Error: {option} ") and "is not a tenant id" in line


@pytest.mark.parametrize("option", ["--tenant", "--exclude-tenant"])
def test_tenant_selector_is_an_id_not_a_path_plan(
    repo: Path, database_url: str, option: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "reconciler", "plan", "--quiet", option, "../../../../usr"],
        cwd=repo,
        env={**os.environ, "RECONCILER_DATABASE_URL": database_url, "HOME": str(repo)},
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"Error: {option} '../../../../usr' is not a tenant id")
