"""``reconciler health check``: probe integrations, record the verdicts, advance circuits.

Steps (test connections before activation, monitor health, and the circuit-breaker rule):

1. one query reads the selected active, non-deleted integrations with their encrypted
   credentials; they are decrypted in memory, each only as the value its stored fingerprint
   describes (a row whose secret cannot be decrypted, or was replayed or swapped in the
   database, gets ``UNKNOWN`` with a message saying so, not a crash of the whole run and
   never a probe with a stale credential);
2. every integration is probed through a :class:`~reconciler.health.probe.HealthProbe`
   (a few at a time, each bounded by the probe's timeout);
3. in one transaction, the verdicts are written set-based and the webhooks whose circuit
   has been OPEN longer than its reset time move to HALF_OPEN
   (:mod:`reconciler.store.health`, which leaves the reconciled configuration's versions
   alone: a health check must not make a saved plan stale).

With ``dry_run`` the same verdicts and transitions are computed and nothing is written.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from reconciler.crypto.aead import CipherContext, FieldCipher, check_binding
from reconciler.crypto.local_keys import load_keys_for_target
from reconciler.errors import SecretError
from reconciler.model.actual import SecretDoubt
from reconciler.model.enums import (
    CircuitBreakerStatus,
    ConfigType,
    Environment,
    HealthStatus,
    Platform,
)
from reconciler.model.plan import Selectors
from reconciler.model.sensitive import Sensitive
from reconciler.progress import QUIET, Progress
from reconciler.settings import BaseUrls
from reconciler.store.database import translate_db_errors
from reconciler.store.health import (
    DueCircuit,
    HealthVerdict,
    StoredIntegration,
    StoredToken,
    advance_circuits,
    read_check_targets,
    read_check_tokens,
    write_health,
)
from reconciler.store.session import Database, open_database

from .probe import HealthProbe, HttpsProbe, ProbeResult, ProbeTarget, scrub

MAX_PARALLEL_PROBES = 8


@dataclass(frozen=True, slots=True)
class CheckedIntegration:
    """The verdict on one integration.

    Attributes:
        address: ``tenant/platform/environment/integration/CONFIG_TYPE``.
        tenant_id: the tenant.
        platform: the platform.
        environment: the environment.
        config_type: the config type.
        previous: the ``health_status`` before this check.
        status: the new status.
        message: the new ``health_message`` (never a secret).
    """

    address: str
    tenant_id: str
    platform: Platform
    environment: Environment
    config_type: ConfigType
    previous: HealthStatus
    status: HealthStatus
    message: str

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "address": self.address,
            "tenant": self.tenant_id,
            "platform": self.platform.value,
            "environment": self.environment.value,
            "config_type": self.config_type.value,
            "previous_status": self.previous.value,
            "status": self.status.value,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class CircuitTransition:
    """A webhook circuit moved (or, in a dry run, due to move) from OPEN to HALF_OPEN."""

    address: str
    opened_at: datetime

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "address": self.address,
            "from": CircuitBreakerStatus.OPEN.value,
            "to": CircuitBreakerStatus.HALF_OPEN.value,
            "opened_at": self.opened_at.astimezone(UTC).isoformat(timespec="seconds"),
        }


@dataclass(frozen=True, slots=True)
class HealthCheckResult:
    """What a health check found and (unless ``dry_run``) wrote."""

    checked_at: datetime
    integrations: tuple[CheckedIntegration, ...]
    transitions: tuple[CircuitTransition, ...]
    dry_run: bool

    def counts(self) -> dict[str, int]:
        """Number of integrations per new status (every status present, possibly 0)."""
        out = {s.value: 0 for s in HealthStatus}
        for item in self.integrations:
            out[item.status.value] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON form (``reconciler health check --format json``)."""
        return {
            "checked_at": self.checked_at.astimezone(UTC).isoformat(timespec="seconds"),
            "dry_run": self.dry_run,
            "counts": self.counts(),
            "integrations": [i.to_dict() for i in self.integrations],
            "circuit_transitions": [t.to_dict() for t in self.transitions],
        }


@dataclass(frozen=True, slots=True)
class _Row:
    id: int
    target: ProbeTarget
    previous: HealthStatus
    verdict: ProbeResult | None  # set when the credentials could not be decrypted


def _webhook_address(due: DueCircuit) -> str:
    platform, environment = due.platform, due.environment
    return f"{due.tenant_id}/{platform.file_stem}/{environment.manifest_key}/webhook/{due.name}"


def run_health_check(
    *,
    selectors: Selectors | None = None,
    probe: HealthProbe | None = None,
    timeout: float = 10.0,
    dry_run: bool = False,
    database_url: str | None = None,
    now: datetime | None = None,
    progress: Progress = QUIET,
    environ: Mapping[str, str] | None = None,
    base_urls: BaseUrls | None = None,
) -> HealthCheckResult:
    """Check the selected active integrations and advance due circuits.

    Args:
        selectors: tenants and platforms to check (default: all).
        probe: decides each integration's health (default: :class:`HttpsProbe`).
        timeout: seconds per probe for the default probe.
        dry_run: compute everything, write nothing.
        database_url: as for every command.
        now: the check time (default: the current time); also the reference for circuits.
        progress: progress lines on stderr.
        environ: environment for the keyring (default ``os.environ``).
        base_urls: the platform API roots for the default probe (``health.base_urls``).

    HubSpot and QuickBooks OAuth integrations are checked with the newest active access
    token the OAuth flow stored for the tenant and platform (decrypted in memory only).

    Raises:
        KeyUnavailable: secrets are stored but no keyring is configured.
        DatabaseUnavailable: the database cannot be reached.
    """
    checked_at = now or datetime.now(UTC)
    prober = probe or HttpsProbe(timeout=timeout, base_urls=base_urls)
    selected = selectors or Selectors()
    with (
        open_database(database_url, progress) as db,
        translate_db_errors(db.engine.url),
        db.engine.connect() as conn,
    ):
        with conn.begin():
            raw = read_check_targets(conn, selected)
            tokens = read_check_tokens(conn, selected)
        rows = _with_tokens(_decrypt(raw, db, environ), tokens, db, environ)
        with progress.stage(
            f"Checking {len(rows)} integration(s)", len(rows), unit="integration"
        ) as stage:
            verdicts = _probe_all(prober, rows, stage.advance)
        checked = tuple(
            CheckedIntegration(
                r.target.address,
                r.target.tenant_id,
                r.target.platform,
                r.target.environment,
                r.target.config_type,
                r.previous,
                v.status,
                scrub(v.message, *_plain(r.target)),
            )
            for r, v in zip(rows, verdicts, strict=True)
        )
        with conn.begin():
            if not dry_run:
                write_health(
                    conn,
                    checked_at,
                    [
                        HealthVerdict(r.target.tenant_id, r.id, c.status, c.message)
                        for r, c in zip(rows, checked, strict=True)
                    ],
                )
            moved = advance_circuits(conn, selected, checked_at, dry_run=dry_run)
    transitions = tuple(
        sorted(
            (CircuitTransition(_webhook_address(m), m.opened_at) for m in moved),
            key=lambda t: t.address,
        )
    )
    return HealthCheckResult(checked_at, checked, transitions, dry_run)


def _plain(target: ProbeTarget) -> tuple[str | None, ...]:
    return tuple(s.reveal() if s is not None else None for s in target.credentials)


def _with_tokens(
    rows: list[_Row],
    tokens: list[StoredToken],
    db: Database,
    environ: Mapping[str, str] | None,
) -> list[_Row]:
    """Give each OAuth integration of HubSpot and QuickBooks its connected account's token."""
    by_account = {(t.tenant_id, t.platform): t for t in tokens}
    wanted = [
        r
        for r in rows
        if r.verdict is None
        and r.target.config_type is ConfigType.OAUTH
        and (r.target.tenant_id, r.target.platform) in by_account
    ]
    if not wanted:
        return rows
    cipher = FieldCipher(*load_keys_for_target(db.target, environ))
    out: list[_Row] = []
    for r in rows:
        token = by_account.get((r.target.tenant_id, r.target.platform))
        if r not in wanted or token is None:
            out.append(r)
            continue
        ctx = CipherContext.oauth_token(token.tenant_id, token.id, "access_token")
        try:
            if token.key_version is None or token.key_version not in cipher.keyring:
                raise SecretError(f"key version {token.key_version} is not in the keyring")
            access = cipher.decrypt(token.access_token, token.key_version, ctx, None)
        except SecretError:
            message = (
                f"the stored OAuth access token (oauth_tokens row {token.id}, key version "
                f"{token.key_version}) cannot be decrypted with the keyring; nothing was checked"
            )
            out.append(replace(r, verdict=ProbeResult(HealthStatus.UNKNOWN, message)))
            continue
        target = replace(r.target, access_token=access, account_id=token.account_id)
        out.append(replace(r, target=target))
    return out


def _decrypt(
    raw: list[StoredIntegration], db: Database, environ: Mapping[str, str] | None
) -> list[_Row]:
    cipher: FieldCipher | None = None
    if any(stored is not None for r in raw for _, stored, _ in r.secrets):
        cipher = FieldCipher(*load_keys_for_target(db.target, environ))
    rows: list[_Row] = []
    for r in raw:
        tenant, platform, environment = r.tenant_id, r.platform, r.environment
        config_type = r.config_type
        secrets: dict[str, Any] = {column: None for column, _, _ in r.secrets}
        verdict: ProbeResult | None = None
        for column, stored, fingerprint in r.secrets:
            if stored is None or cipher is None:
                continue
            ctx = CipherContext.integration(
                tenant, platform.value, environment.value, config_type.value, column
            )
            try:
                secrets[column] = _decrypt_one(cipher, stored, r.key_version, ctx, fingerprint)
            except SecretError as exc:
                verdict = ProbeResult(
                    HealthStatus.UNKNOWN, f"the stored {column} {exc}; nothing was checked"
                )
        target = ProbeTarget(tenant, platform, environment, config_type, **secrets)
        rows.append(_Row(r.id, target, r.health_status, verdict))
    return rows


def _decrypt_one(
    cipher: FieldCipher,
    stored: str,
    version: int | None,
    ctx: CipherContext,
    fingerprint: str | None,
) -> Sensitive[str]:
    """Decrypt one credential; a failure's message is fixed text (no value, no library text)."""
    if version is None:
        raise SecretError("has no encryption_key_version")
    if version not in cipher.keyring:
        raise SecretError(f"cannot be decrypted: key version {version} is not in the keyring")
    if (
        check_binding(cipher.fingerprinter, stored, fingerprint, version, ctx)
        is SecretDoubt.MISMATCH
    ):
        raise SecretError(
            "does not match its fingerprint (replayed, swapped or edited in the database; "
            "`reconciler apply` rewrites it)"
        )
    try:
        return cipher.decrypt(stored, version, ctx, fingerprint)
    except SecretError:
        raise SecretError(
            f"cannot be decrypted with the keyring (key version {version}) as the value its "
            "fingerprint describes"
        ) from None


def _probe_all(
    prober: HealthProbe, rows: list[_Row], advance: Callable[[int], None] = lambda _: None
) -> list[ProbeResult]:
    pending = [r for r in rows if r.verdict is None]
    advance(len(rows) - len(pending))
    results: dict[int, ProbeResult] = {}
    if pending:
        workers = min(MAX_PARALLEL_PROBES, len(pending))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="health") as pool:
            for row, result in zip(
                pending, pool.map(lambda r: _safe_probe(prober, r.target), pending), strict=True
            ):
                results[row.id] = result
                advance(1)
    return [r.verdict if r.verdict is not None else results[r.id] for r in rows]


def _safe_probe(prober: HealthProbe, target: ProbeTarget) -> ProbeResult:
    """A probe that raises anyway (a bug in it) costs one row, not the run."""
    try:
        return prober.probe(target)
    except Exception as exc:
        return ProbeResult(HealthStatus.UNKNOWN, f"the health probe failed ({type(exc).__name__})")
