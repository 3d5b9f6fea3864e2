"""Checks made before anything is started or created: the manifests directory and selectors.

A run in the wrong directory, or with a selector that names no tenant, must fail in
milliseconds with a message that says what to fix, before an embedded PostgreSQL is started,
``.reconciler/`` is created or a key is read. Only directory listings are read here.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from reconciler.errors import ConfigError, UsageProblem
from reconciler.load.manifests import TENANTS_DIR, check_selectors
from reconciler.model.plan import Plan, Selectors

_YAML_SUFFIXES = (".yaml", ".yml")


def tenants_on_disk(manifests_dir: Path) -> list[str]:
    """The tenant directories under ``<manifests_dir>/tenants``, sorted.

    Lists the whole fleet: checks of named tenants use :func:`has_tenant` instead, and list
    only to suggest a name for one that is missing.
    """
    tenants = manifests_dir / TENANTS_DIR
    if not tenants.is_dir():
        return []
    # Links count as tenants here: the loader refuses them with a diagnostic naming the link.
    # The listing's own file types: no stat per tenant (a fleet has tens of thousands).
    with os.scandir(tenants) as entries:
        return sorted(e.name for e in entries if e.is_dir() or e.is_symlink())


def has_tenant(manifests_dir: Path, name: str) -> bool:
    """True when ``<manifests_dir>/tenants/<name>`` is a directory or a link (as
    :func:`tenants_on_disk` counts them); ``name`` must be a tenant id (checked selectors)."""
    path = manifests_dir / TENANTS_DIR / name
    return path.is_dir() or path.is_symlink()


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """`` (did you mean 'a' or 'b'?)`` for close matches of ``name``, else ``""``."""
    names = list(known)
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
    # A prefix is what people type for long ids ("globex" for "globex-logistics").
    close += [k for k in names if k.startswith(name) and k not in close][: 3 - len(close)]
    if not close:
        return ""
    return " (did you mean " + " or ".join(repr(c) for c in close) + "?)"


def check_manifests(manifests_dir: Path, selectors: Selectors, *, prune: bool = False) -> list[str]:
    """Refuse a missing manifests directory and selectors that match nothing on disk.

    Args:
        manifests_dir: the manifests root (holds ``tenants/``).
        selectors: the run's selection.
        prune: with ``--prune`` a tenant no manifest declares any more may still have rows
            to delete, so tenant selectors are checked against the plan instead
            (:func:`check_plan_matches`); the tenants not on disk are returned for that.

    Returns:
        The selected tenants that have no directory on disk (only with ``prune``).

    Raises:
        ConfigError: the directory does not exist or declares no tenant.
        UsageProblem: a ``--tenant``, ``--exclude-tenant`` or ``--platform`` matches nothing.
    """
    check_selectors(selectors)
    if not manifests_dir.is_dir():
        raise ConfigError(
            f"manifests directory {manifests_dir} does not exist; run from the configuration "
            "repository's root or pass --manifests DIR"
        )
    # Named tenants are looked up one by one: a run for two tenants of a large fleet must not
    # list the fleet (it is listed only to suggest a name, or when no tenant is named).
    listing: list[str] | None = None

    def known() -> list[str]:
        nonlocal listing
        if listing is None:
            listing = tenants_on_disk(manifests_dir)
        return listing

    named = {*selectors.tenants, *selectors.exclude_tenants}
    present = {name for name in named if has_tenant(manifests_dir, name)}
    if not present and not prune and not known():
        raise ConfigError(
            f"no tenant manifests under {manifests_dir / TENANTS_DIR}; manifests live in "
            "tenants/<tenant>/<platform>.yaml (pass --manifests DIR for another directory)"
        )
    missing: list[str] = []
    for option, names in (
        ("--tenant", selectors.tenants),
        ("--exclude-tenant", selectors.exclude_tenants),
    ):
        for name in names:
            if name in present:
                continue
            if prune:
                missing.append(name)
                continue
            raise UsageProblem(
                f"{option} {name!r} matches no tenant in {manifests_dir / TENANTS_DIR}"
                + did_you_mean(name, known())
            )
    if selectors.platforms and not prune:
        chosen = [t for t in (selectors.tenants or known()) if t not in selectors.exclude_tenants]
        stems = {p.file_stem for p in selectors.platforms}
        if not any(
            (manifests_dir / TENANTS_DIR / t / f"{stem}{suffix}").is_file()
            for t in chosen
            for stem in stems
            for suffix in _YAML_SUFFIXES
        ):
            shown = ", ".join(sorted(stems))
            raise UsageProblem(
                f"--platform {shown} matches no manifest of the selected tenants "
                f"({len(chosen)} tenant(s) under {manifests_dir / TENANTS_DIR})"
            )
    return [m for m in missing if m not in selectors.exclude_tenants]


def check_plan_matches(plan: Plan, tenants: Sequence[str], manifests_dir: Path) -> None:
    """With ``--prune``: a selected tenant with no manifests must at least appear in the plan.

    ``tenants`` are those :func:`check_manifests` found no directory for; the tenants on disk
    are listed only to suggest a name in the error.

    Raises:
        UsageProblem: the tenant is neither on disk nor in the database's plan.
    """
    seen = {c.address.tenant for c in plan.changes} | {n.address.tenant for n in plan.notices}
    for name in tenants:
        if name not in seen:
            raise UsageProblem(
                f"--tenant {name!r} matches no tenant in the manifests or the database"
                + did_you_mean(name, tenants_on_disk(manifests_dir))
            )
