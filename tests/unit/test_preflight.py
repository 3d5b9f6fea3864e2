"""The checks before a run: named tenants are looked up one by one, never by listing the
fleet; the fleet is listed only to suggest a name for one that is missing."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reconciler.commands.preflight import check_manifests, has_tenant, tenants_on_disk
from reconciler.errors import ConfigError, UsageProblem
from reconciler.model.enums import Platform
from reconciler.model.plan import Selectors


@pytest.fixture
def root(tmp_path: Path) -> Path:
    tenants = tmp_path / "manifests" / "tenants"
    for name in ("acme-robotics", "globex", "initech"):
        (tenants / name).mkdir(parents=True)
        (tenants / name / "stripe.yaml").write_text("")
    (tenants / "linked").symlink_to(tenants / "globex")
    (tenants / "README.md").write_text("")
    return tmp_path / "manifests"


@pytest.fixture
def listed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every directory listed from now on."""
    seen: list[str] = []

    def recording(real: Callable[..., Any]) -> Callable[..., Any]:
        def recorded(path: Any = ".") -> Any:
            seen.append(os.fsdecode(path))
            return real(path)

        return recorded

    monkeypatch.setattr(os, "scandir", recording(os.scandir))
    monkeypatch.setattr(os, "listdir", recording(os.listdir))
    return seen


def test_tenants_on_disk_are_directories_and_links(root: Path) -> None:
    assert tenants_on_disk(root) == ["acme-robotics", "globex", "initech", "linked"]
    assert has_tenant(root, "linked") and has_tenant(root, "globex")
    assert not has_tenant(root, "README.md") and not has_tenant(root, "umbrella")


@pytest.mark.parametrize("prune", [False, True])
def test_named_tenants_are_checked_without_listing_the_fleet(
    root: Path, listed: list[str], prune: bool
) -> None:
    selectors = Selectors(
        tenants=("globex", "linked"),
        exclude_tenants=("initech",),
        platforms=(Platform.STRIPE,),
    )
    assert check_manifests(root, selectors, prune=prune) == []
    assert listed == []


def test_a_missing_tenant_lists_the_fleet_to_suggest_a_name(root: Path, listed: list[str]) -> None:
    with pytest.raises(UsageProblem, match="did you mean 'acme-robotics'"):
        check_manifests(root, Selectors(tenants=("globex", "acme-robotic")))
    assert listed == [str(root / "tenants")]
    # With --prune a tenant without manifests may still have rows: returned, not refused.
    assert check_manifests(root, Selectors(tenants=("umbrella",)), prune=True) == ["umbrella"]


def test_no_tenant_at_all_is_refused(tmp_path: Path) -> None:
    (tmp_path / "tenants").mkdir()
    with pytest.raises(ConfigError, match="no tenant manifests"):
        check_manifests(tmp_path, Selectors(tenants=("acme",)))
    with pytest.raises(ConfigError, match="no tenant manifests"):
        check_manifests(tmp_path, Selectors())
    assert check_manifests(tmp_path, Selectors(tenants=("acme",)), prune=True) == ["acme"]
