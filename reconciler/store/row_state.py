"""The bookkeeping vocabulary of the store: live rows and optimistic versions, in SQL.

Every configuration row carries a version that each write bumps and a saved plan pins, and a
soft-delete time; an OAuth token is live while it is active and not revoked. The columns are
declared once in the field table (:mod:`reconciler.model.fields`); every query of the store
that filters on liveness or bumps or checks a version takes its SQL from here, so the columns
are named in one place.

Pure strings, no I/O.
"""

from __future__ import annotations

from typing import Final

from reconciler.model.fields import (
    ACTIVE,
    DELETED_AT,
    MANAGED_SINCE,
    REVOKED_AT,
    ROW_VERSION,
    TOKEN_ACTIVE,
)

VERSION: Final = ROW_VERSION.column_name
"""The column of a row's version."""
DELETED: Final = DELETED_AT.column_name
"""The column of a configuration row's soft-delete time."""
SWITCHED_ON: Final = ACTIVE.column_name
"""The column saying whether an integration or a webhook is switched on."""
TOKEN_ON: Final = TOKEN_ACTIVE.column_name
"""The column saying whether a token may be used."""
REVOKED: Final = REVOKED_AT.column_name
"""The column of a token's revocation time."""
MANAGED: Final = MANAGED_SINCE.column_name
"""The column of when a token's account was first found declared."""


def _at(alias: str) -> str:
    return f"{alias}." if alias else ""


def not_deleted(alias: str = "") -> str:
    """SQL condition: the configuration row is not soft-deleted."""
    return f"{_at(alias)}{DELETED} IS NULL"


def deleted(alias: str = "") -> str:
    """SQL condition: the configuration row is soft-deleted."""
    return f"{_at(alias)}{DELETED} IS NOT NULL"


def active_live(alias: str = "") -> str:
    """SQL condition: the configuration row is switched on and not soft-deleted."""
    return f"{_at(alias)}{SWITCHED_ON} AND {not_deleted(alias)}"


def live_token(alias: str = "") -> str:
    """SQL condition: the token is active and not revoked (it can be used)."""
    return f"{_at(alias)}{TOKEN_ON} AND {_at(alias)}{REVOKED} IS NULL"


def bump_version(alias: str = "t") -> str:
    """SQL assignment: the row's version goes up by one (every write of a row)."""
    return f"{VERSION} = {alias}.{VERSION} + 1"


def version_matches(row: str = "t", staged: str = "v") -> str:
    """SQL condition: the row (``row``) is at the version the plan saw (``staged``)."""
    return f"{row}.{VERSION} = {staged}.{VERSION}"
