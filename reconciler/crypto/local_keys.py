"""Finding the keyring and the fingerprint key, with development keys for the embedded database.

Production and CI set ``$RECONCILER_KEYRING`` (or ``$RECONCILER_KEYRING_FILE``) and
``$RECONCILER_FINGERPRINT_KEY``. On a laptop with the embedded PostgreSQL and neither set, the
reconciler creates ``<data dir>/keys.env`` once (mode 0600) and uses it, so ``apply`` works out
of the box; the file can also be sourced by a shell (``set -a; . .reconciler/keys.env``).
Such keys protect only the local, throwaway database: an external database never falls back to
them, and a missing key there is an error naming the variables to set.
"""

from __future__ import annotations

import base64
import contextlib
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol, TextIO

from reconciler.crypto.fingerprint import FINGERPRINT_KEY_ENV, MIN_KEY_BYTES, Fingerprinter
from reconciler.crypto.keyring import KEYRING_ENV, KEYRING_FILE_ENV, Keyring
from reconciler.errors import ConfigError, KeyUnavailable

KEYS_FILE_NAME = "keys.env"


class DatabaseLocation(Protocol):
    """What key loading needs to know of a database (``store.database.DatabaseTarget`` has it).

    Declared here so that the key code does not depend on the storage layer above it.
    """

    @property
    def embedded(self) -> bool:
        """Whether the database is the embedded PostgreSQL."""
        ...

    @property
    def data_dir(self) -> Path | None:
        """The embedded server's data directory (``None`` for other databases)."""
        ...


def load_keys(
    environ: Mapping[str, str],
    *,
    embedded: bool,
    data_dir: Path | None,
    stderr: TextIO | None = None,
) -> tuple[Keyring, Fingerprinter]:
    """The keyring and fingerprinter to use.

    Args:
        environ: the process environment (``os.environ``; a dict in tests).
        embedded: whether the database is the embedded PostgreSQL.
        data_dir: the reconciler data directory (``.reconciler``), where development keys
            live; only used when ``embedded``.
        stderr: where the one-line notice about development keys goes (default
            ``sys.stderr``).

    Raises:
        KeyUnavailable: a key is not configured and development keys do not apply (external
            database, or only one of the two keys configured).
        ConfigError: a configured key is malformed, or the key file is unreadable.
    """
    keyring = Keyring.from_environ(environ)
    fingerprinter = Fingerprinter.from_environ(environ)
    if keyring is not None and fingerprinter is not None:
        return keyring, fingerprinter
    if embedded and data_dir is not None and keyring is None and fingerprinter is None:
        return _development_keys(data_dir, stderr or sys.stderr)
    missing = []
    if keyring is None:
        missing.append(f"${KEYRING_ENV} (or ${KEYRING_FILE_ENV})")
    if fingerprinter is None:
        missing.append(f"${FINGERPRINT_KEY_ENV}")
    hint = "`reconciler keys generate` makes a keyring entry"
    raise KeyUnavailable(f"set {' and '.join(missing)} to use this database: {hint}")


def load_keys_for_target(
    target: DatabaseLocation,
    environ: Mapping[str, str] | None = None,
    *,
    stderr: TextIO | None = None,
) -> tuple[Keyring, Fingerprinter]:
    """:func:`load_keys` for a resolved database target (data dir = parent of its ``pgdata``)."""
    data_dir = target.data_dir.parent if target.data_dir is not None else None
    return load_keys(
        os.environ if environ is None else environ,
        embedded=target.embedded,
        data_dir=data_dir,
        stderr=stderr,
    )


def _development_keys(data_dir: Path, stderr: TextIO) -> tuple[Keyring, Fingerprinter]:
    path = data_dir / KEYS_FILE_NAME
    if path.exists():
        stderr.write(f"Using local development keys from {path} (embedded database only).\n")
    elif _create_keys_file(path):
        stderr.write(
            f"Created local development keys in {path} (embedded database only; set "
            f"${KEYRING_ENV} and ${FINGERPRINT_KEY_ENV} for any other database).\n"
        )
    values = _read_env_file(path)
    try:
        keyring = Keyring.parse(values[KEYRING_ENV], source=str(path))
        fingerprinter = Fingerprinter.from_base64(values[FINGERPRINT_KEY_ENV], source=str(path))
    except KeyError as exc:
        raise ConfigError(f"{path} has no {exc.args[0]}: delete it to have it re-created") from None
    return keyring, fingerprinter


def _create_keys_file(path: Path) -> bool:
    """Write a new key file atomically; False when another process created it first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = (
        "# Development keys for the embedded PostgreSQL of this checkout. Never use them for a\n"
        "# shared or production database. Losing this file makes the stored secrets unreadable.\n"
        f"{KEYRING_ENV}={Keyring.generate_entry(1)}\n"
        f"{FINGERPRINT_KEY_ENV}={base64.b64encode(os.urandom(MIN_KEY_BYTES)).decode('ascii')}\n"
    )
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    # Created 0600 from the start (never readable by others, not even briefly), fully written,
    # then linked into place: link() fails if the name exists, so two concurrent first runs
    # agree on one file instead of one overwriting keys the other already used.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _read_env_file(path: Path) -> dict[str, str]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    values: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep and not name.lstrip().startswith("#"):
            values[name.strip()] = value.strip()
    return values
