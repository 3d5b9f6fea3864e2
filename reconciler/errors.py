"""The exception tree: the one place that says what can go wrong and how it surfaces.

User mistakes in manifests are *not* exceptions: they are
:class:`~reconciler.diagnostics.Diagnostic` records collected for a whole run (see
``diagnostics.py``). Exceptions are for conditions that stop a command: infrastructure,
keys, stale plans, policy, and bugs.

::

    ReconcilerError                      every error the CLI prints as one line, no traceback
    ├── ConfigError                      bad invocation or settings (flags, env, reconciler.yaml)
    │   └── ManifestInvalid              validation failed; carries the run's diagnostics
    ├── SecretError                      anything about keys or encrypted values
    │   ├── KeyUnavailable               no age identity / keyring / fingerprint key
    │   └── DecryptFailed                MAC mismatch, wrong key, tampered or malformed value
    ├── StateError                       the database
    │   ├── DatabaseUnavailable          cannot connect, connection lost, server gone
    │   ├── LockTimeout                  another apply holds the lock
    │   ├── StatementCancelled           the server cancelled a statement (statement timeout)
    │   ├── TransactionConflict          serialization failure or deadlock; run again
    │   ├── PermissionDenied             the database role lacks a privilege
    │   └── PlanStale                    saved plan no longer matches database or manifests (exit 3)
    ├── PolicyViolation                  risk above what is allowed, or mass deletion (exit 4)
    │   ├── ApprovalRequired             changes need approvals they do not have
    │   ├── ConnectionRejected           a platform refused a new credential (--verify-connections)
    │   └── ConnectionUnreachable        ... or did not answer, with the policy ``block``
    ├── ApplyCancelled                   the user did not confirm the plan
    └── ApplyFailed                      a write failed; the transaction was rolled back

Adapters translate library exceptions (``sqlalchemy.exc.*``, ``pyrage.DecryptError``,
``cryptography.exceptions.InvalidTag``) into the most specific class here with
``raise ... from exc``. Messages never contain secret plaintext.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reconciler.diagnostics import Diagnostics


class ReconcilerError(Exception):
    """Base class: an expected failure with a message fit for a user.

    ``says_nothing_written`` is True when the message itself already tells the user that
    nothing was written (``...; rolled back, nothing applied``), so a caller that would add
    such a notice leaves the message as it is. Set it per error with the keyword argument,
    or per class for errors whose messages always say so.
    """

    says_nothing_written: bool = False

    def __init__(self, *args: object, says_nothing_written: bool | None = None) -> None:
        super().__init__(*args)
        if says_nothing_written is not None:
            self.says_nothing_written = says_nothing_written


class ConfigError(ReconcilerError):
    """Invalid invocation, environment variable or ``reconciler.yaml`` setting."""


class UsageProblem(ConfigError):
    """A flag or argument that cannot mean what was asked: a selector that matches nothing, an
    option given with one it contradicts. Exits with the usage code, never 0 or 2."""


class ManifestInvalid(ConfigError):
    """Manifests failed to load or validate. ``diagnostics`` holds every problem found."""

    def __init__(self, diagnostics: Diagnostics, message: str | None = None) -> None:
        self.diagnostics = diagnostics
        super().__init__(message or f"{diagnostics.error_count} error(s) in manifests")


class SecretError(ReconcilerError):
    """A problem with keys or encrypted values."""


class KeyUnavailable(SecretError):
    """No usable key: no age identity, keyring, keyring version or fingerprint key."""


class DecryptFailed(SecretError):
    """A value could not be decrypted or authenticated (MAC mismatch, wrong key, tampering)."""


class StateError(ReconcilerError):
    """A problem with the database state or access to it."""


class DatabaseUnavailable(StateError):
    """The database cannot be reached, or the connection was lost."""


class LockTimeout(StateError):
    """Another apply holds the reconciler lock past ``--lock-timeout``."""


class PlanStale(StateError):
    """A saved plan no longer matches the database or the manifests; nothing was written."""


class PolicyViolation(ReconcilerError):
    """The plan needs a permission that was not given (risk level or mass deletion)."""

    says_nothing_written = True


class ApprovalRequired(PolicyViolation):
    """Changes at or above the approval level lack approvals from someone else (exit 4)."""


class ApplyCancelled(ReconcilerError):
    """The user answered anything but ``yes`` when asked to confirm a plan; nothing written."""

    says_nothing_written = True


class ApplyFailed(ReconcilerError):
    """A write failed inside the apply transaction; everything was rolled back."""


class StatementCancelled(StateError):
    """The server cancelled a statement: ``statement_timeout`` or an operator's cancel request."""


class TransactionConflict(StateError):
    """A serialization failure or deadlock rolled the transaction back; running again may pass."""


class PermissionDenied(StateError):
    """The database role lacks a privilege the command needs (SQLSTATE 42501, CREATEROLE)."""


class DatabaseError(StateError):
    """The database refused a statement for a reason no other error describes.

    A bug, or a server that does not support a statement the reconciler sends (a distributed
    database planning a query it cannot run). The message names the statement kind and says
    that the transaction was rolled back; ``--debug`` shows the driver's error.
    """

    says_nothing_written = True


class ConnectionRejected(PolicyViolation):
    """``apply --verify-connections``: a platform refused a new or changed credential (exit 4)."""


class ConnectionUnreachable(PolicyViolation):
    """``apply --verify-connections`` with ``verify_connections_unreachable: block``: a platform
    did not answer the test of a new or changed credential (exit 4)."""
