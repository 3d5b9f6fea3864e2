"""Finding manifest files, matching paths to tenants and platforms, templates, the digest.

Layout (DESIGN.md §2)::

    <root>/tenants/<tenant>/<platform>.yaml     platform: stripe | hubspot | quickbooks
    <root>/templates/<name>.yaml                kind: PlatformTemplate

Selection happens on paths, before any file is read: a run for ``--tenant acme`` opens only
``tenants/acme/*.yaml`` and the templates they name. Cross-file rules therefore see only the
selected files; an unselected run (what CI runs) sees them all.

Templates merge under a manifest's ``environments``: mappings merge recursively, lists and
scalars replace, the manifest wins; a template may name its own template (a chain).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.model.enums import Platform
from reconciler.model.plan import Selectors

TENANTS_DIR = "tenants"
TEMPLATES_DIR = "templates"
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_PLATFORM_BY_STEM = {p.file_stem: p for p in Platform}


@dataclass(frozen=True, slots=True)
class ManifestFile:
    """A tenant manifest found on disk.

    Attributes:
        path: filesystem path.
        rel: path relative to the manifests root, with ``/`` separators (digest input).
        tenant: tenant named by the directory.
        platform: platform named by the file name.
    """

    path: Path
    rel: str
    tenant: str
    platform: Platform


@dataclass(frozen=True, slots=True)
class LayoutProblem:
    """A file that does not fit the layout (rule ``code``), relative to the root."""

    rel: str
    code: str
    message: str


@dataclass(slots=True)
class Discovery:
    """What :func:`discover` found: selected manifests, template files given explicitly, and
    layout problems."""

    manifests: list[ManifestFile] = field(default_factory=list)
    template_files: list[Path] = field(default_factory=list)
    problems: list[LayoutProblem] = field(default_factory=list)


def find_root(path: Path) -> Path | None:
    """The manifests root a path belongs to (the directory holding ``tenants/``), if any."""
    for candidate in (path, *path.parents):
        if candidate.name in (TENANTS_DIR, TEMPLATES_DIR):
            return candidate.parent
        if (candidate / TENANTS_DIR).is_dir() or (candidate / TEMPLATES_DIR).is_dir():
            return candidate
    return None


def discover(
    root: Path, *, paths: Sequence[Path] | None = None, selectors: Selectors | None = None
) -> Discovery:
    """Find the manifests under ``root`` (or under ``paths``) that ``selectors`` select.

    Nothing is read: tenant and platform come from the path.
    """
    found = Discovery()
    root = root.resolve()
    seen: set[Path] = set()
    starts: Sequence[Path] = paths or [root]
    if not paths and selectors is not None and selectors.tenants:
        # Selected tenants: walk only their directories (fast at fleet scale; files out of
        # place elsewhere are reported by an unselected run).
        starts = [root / TENANTS_DIR / tenant for tenant in selectors.tenants]
    for start in starts:
        start = start.resolve()
        if not paths and not start.exists():
            continue
        if start.is_dir():
            for file in _walk(start):
                _classify(root, file, selectors, found, seen, explicit=False)
        else:
            _classify(root, start, selectors, found, seen, explicit=True)
    found.manifests.sort(key=lambda m: m.rel)
    return found


def _walk(start: Path) -> Iterable[Path]:
    for dirpath, dirnames, filenames in os.walk(start):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.endswith((".yaml", ".yml")):
                yield Path(dirpath, name)


def _classify(
    root: Path,
    file: Path,
    selectors: Selectors | None,
    found: Discovery,
    seen: set[Path],
    *,
    explicit: bool,
) -> None:
    if file in seen:
        return
    seen.add(file)
    try:
        parts = file.relative_to(root).parts
    except ValueError:
        found.problems.append(
            LayoutProblem(str(file), "RCN-F004", f"not under the manifests root {root}")
        )
        return
    rel = "/".join(parts)
    if len(parts) == 2 and parts[0] == TEMPLATES_DIR:
        if explicit:
            found.template_files.append(file)
        return
    if len(parts) != 3 or parts[0] != TENANTS_DIR:
        if parts[0] in (TENANTS_DIR, TEMPLATES_DIR) or explicit:
            found.problems.append(
                LayoutProblem(
                    rel,
                    "RCN-F001",
                    "manifests live in tenants/<tenant>/<platform>.yaml "
                    "(platform: stripe, hubspot or quickbooks)",
                )
            )
        return
    tenant, filename = parts[1], parts[2]
    stem, _, ext = filename.rpartition(".")
    platform = _PLATFORM_BY_STEM.get(stem)
    if platform is None or ext != "yaml" or not _NAME_RE.match(tenant):
        hint = f"; did you mean {stem.lower()}.yaml?" if stem.lower() in _PLATFORM_BY_STEM else ""
        found.problems.append(
            LayoutProblem(
                rel,
                "RCN-F001",
                "a tenant directory holds stripe.yaml, hubspot.yaml and quickbooks.yaml only, "
                f"and tenant names match ^[a-z0-9][a-z0-9-]{{0,62}}${hint}",
            )
        )
        return
    if selectors is None or selectors.matches(tenant, platform):
        found.manifests.append(ManifestFile(file, rel, tenant, platform))


def template_path(root: Path, name: str) -> Path:
    """Where template ``name`` lives."""
    return root / TEMPLATES_DIR / f"{name}.yaml"


def list_templates(root: Path) -> list[str]:
    """Names of every template file under ``root/templates``."""
    directory = root / TEMPLATES_DIR
    if not directory.is_dir():
        return []
    return sorted(p.stem for p in directory.glob("*.yaml") if p.is_file())


def resolve_chain(
    first: str, next_of: Mapping[str, str | None], known: Iterable[str]
) -> tuple[list[str], str | None]:
    """Follow template names from ``first``.

    Args:
        first: the name a manifest gives.
        next_of: template name -> the template it names (``None`` when it names none).
        known: names of templates that exist.

    Returns:
        The chain, nearest first, and a problem message (unknown or cyclic) or ``None``.
    """
    names = set(known)
    chain: list[str] = []
    name: str | None = first
    while name is not None:
        if name in chain:
            cycle = " → ".join([*chain[chain.index(name) :], name])
            return chain, f"template chain is cyclic: {cycle}"
        if name not in names:
            if not chain:
                return chain, f"template {name!r} does not exist (expected templates/{name}.yaml)"
            via = " → ".join([*chain, name])
            return chain, (
                f"template {name!r} named by templates/{chain[-1]}.yaml does not exist "
                f"(chain: {via})"
            )
        chain.append(name)
        name = next_of.get(name)
    return chain, None


def deep_merge(base: Any, over: Any) -> Any:
    """``over`` merged onto ``base``: mappings merge recursively, anything else replaces."""
    if isinstance(base, dict) and isinstance(over, dict):
        merged = dict(base)
        for key, value in over.items():
            merged[key] = deep_merge(base[key], value) if key in base else value
        return merged
    return over


def merge_environments(doc: dict[str, Any], template_docs: Sequence[Any]) -> dict[str, Any]:
    """``doc`` with its templates' ``environments`` merged under its own (nearest last wins).

    Only ``environments`` is inherited; the envelope (tenant, platform, sops...) is the file's.
    """
    environments: Any = {}
    for tdoc in reversed(template_docs):
        if isinstance(tdoc, dict) and isinstance(tdoc.get("environments"), dict):
            environments = deep_merge(environments, tdoc["environments"])
    if "environments" in doc:
        environments = deep_merge(environments, doc["environments"])
    elif not environments:
        return doc
    return {**doc, "environments": environments}


def has_path(doc: Any, path: Sequence[str | int]) -> bool:
    """True when ``path`` exists in ``doc``."""
    node = doc
    for element in path:
        if has_child(node, element):
            node = node[element]
        else:
            return False
    return True


def get_path(doc: Any, path: Sequence[str | int]) -> Any:
    """The value at ``path`` (which must exist)."""
    node = doc
    for element in path:
        node = node[element]
    return node


def digest(entries: Iterable[tuple[str, bytes]]) -> str:
    """SHA-256 over ``(relative path, bytes)`` pairs: :func:`digest_of_hashes` of their hashes."""
    return digest_of_hashes((rel, hashlib.sha256(data).digest()) for rel, data in entries)


def digest_of_hashes(entries: Iterable[tuple[str, bytes]]) -> str:
    """SHA-256 over ``(relative path, SHA-256 of the file)`` pairs sorted by path.

    Each entry contributes ``path NUL sha256(bytes)`` (fixed length after the NUL), so
    neither a renamed file nor moved bytes can collide with another tree. Workers hash their
    own files, so only 32 bytes per file travel back to the parent.
    """
    h = hashlib.sha256()
    for rel, file_hash in sorted(entries):
        h.update(rel.encode("utf-8") + b"\0" + file_hash)
    return h.hexdigest()


def has_child(node: Any, element: str | int) -> bool:
    """True when ``node`` has the key or index ``element``."""
    if isinstance(node, dict):
        return element in node
    return isinstance(node, list) and isinstance(element, int) and 0 <= element < len(node)
