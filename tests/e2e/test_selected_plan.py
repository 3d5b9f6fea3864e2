"""A plan of a few named tenants touches only their files and rows, whatever the fleet's size:
it reads no other tenant's manifest, never lists the fleet's directories, leaves the manifest
cache (one file for the whole fleet) alone, and still refuses an error in a selected file."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler import commands
from reconciler.errors import ManifestInvalid
from reconciler.load import cache_file
from reconciler.load import manifests as mf
from reconciler.model.plan import Selectors
from reconciler.progress import Progress
from reconciler.settings import load_settings
from tests.e2e.workspace import Workspace, stripe_manifest

TENANTS = tuple(f"tenant-{i:02d}" for i in range(8))
SELECTED = ("tenant-02", "tenant-05")


class Reads:
    """The manifest files read and the directories listed, relative to the manifests root."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.files: list[str] = []
        self.listed: list[str] = []

    def rel(self, path: Any) -> str:
        given = Path(os.fsdecode(path if not isinstance(path, int) else "."))
        absolute = given if given.is_absolute() else Path.cwd() / given
        try:
            return absolute.resolve().relative_to(self.root).as_posix()
        except ValueError:
            return str(absolute)


@pytest.fixture
def fleet(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """Eight tenants applied (and the manifest cache filled by a plan of all of them)."""
    for tenant in TENANTS:
        ws.write(tenant, "stripe", stripe_manifest(tenant))
    ws.enter(monkeypatch)
    commands.apply(manifests_dir=Path("manifests"), settings=load_settings())
    assert not commands.plan(manifests_dir=Path("manifests"), settings=load_settings()).plan.changes
    return ws


@pytest.fixture
def reads(fleet: Workspace, monkeypatch: pytest.MonkeyPatch) -> Iterator[Reads]:
    """Records every manifest read through the loader and every directory listed."""
    seen = Reads(fleet.root / "manifests")
    read_file = mf.read_file

    def recorded_read(path: Path, *args: Any, **kwargs: Any) -> bytes:
        seen.files.append(seen.rel(path))
        return read_file(path, *args, **kwargs)

    def listing(real: Callable[..., Any]) -> Callable[..., Any]:
        def recorded(path: Any = ".") -> Any:
            seen.listed.append(seen.rel(path))
            return real(path)

        return recorded

    monkeypatch.setattr(mf, "read_file", recorded_read)
    monkeypatch.setattr(os, "scandir", listing(os.scandir))
    monkeypatch.setattr(os, "listdir", listing(os.listdir))

    def no_cache(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a plan of two tenants read the whole fleet's manifest cache")

    monkeypatch.setattr(cache_file.LoadCache, "open", no_cache)
    yield seen


def _plan(**kwargs: Any) -> commands.PlanResult:
    return commands.plan(
        manifests_dir=Path("manifests"),
        settings=load_settings(),
        selectors=Selectors(tenants=SELECTED),
        progress=Progress(enabled=False),
        **kwargs,
    )


def test_a_selected_plan_reads_only_the_selected_tenants(fleet: Workspace, reads: Reads) -> None:
    fleet.write("tenant-05", "stripe", stripe_manifest("tenant-05", interval=30))
    fleet.write("tenant-06", "stripe", stripe_manifest("tenant-06", interval=45))

    result = _plan()

    assert {c.address.tenant for c in result.plan.changes} == {"tenant-05"}
    manifests = {f for f in reads.files if f.startswith("tenants/")}
    assert manifests == {"tenants/tenant-02/stripe.yaml", "tenants/tenant-05/stripe.yaml"}
    # Directories: the selected tenants' own, never tenants/ (the fleet) or another tenant's.
    listed = {d for d in reads.listed if d.startswith("tenants")}
    assert listed <= {"tenants/tenant-02", "tenants/tenant-05"}, listed
    assert {o.address.tenant for o in result.desired.integrations} == set(SELECTED)


def test_a_selected_plan_still_refuses_an_error_in_a_selected_file(
    fleet: Workspace, reads: Reads
) -> None:
    broken = fleet.root / "manifests" / "tenants" / "tenant-05" / "stripe.yaml"
    good = broken.read_text()
    assert "direction: BIDIRECTIONAL" in good
    broken.write_text(good.replace("direction: BIDIRECTIONAL", "direction: SIDEWAYS"))
    with pytest.raises(ManifestInvalid) as refused:
        _plan()
    (problem,) = refused.value.diagnostics.sorted()
    assert problem.file is not None and problem.file.endswith("tenants/tenant-05/stripe.yaml")
    assert problem.path.endswith("sync.direction")
    # A broken file of a tenant the run does not name is not read (a full run reports it).
    broken.write_text(good)
    other = fleet.root / "manifests" / "tenants" / "tenant-06" / "stripe.yaml"
    other.write_text("tenant: [tenant-06\n")
    assert not _plan().plan.changes


def test_a_pruned_plan_lists_the_fleet_only_to_suggest_a_name(fleet: Workspace) -> None:
    # With --prune a tenant without files may still have rows; one with neither is a typo.
    refused = fleet.run("plan", "--prune", "--tenant", "tenant-5", "--quiet")
    assert refused.returncode == 64, refused.stdout + refused.stderr
    assert refused.stderr.splitlines()[-1].startswith(
        "Error: --tenant 'tenant-5' matches no tenant in the manifests or the database "
        "(did you mean 'tenant-0"
    )
