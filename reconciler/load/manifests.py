"""Finding manifest files, matching paths to tenants and platforms, templates, the digest.

Layout (see the README, "Manifests")::

    <root>/tenants/<tenant>/<platform>.yaml     platform: stripe | hubspot | quickbooks
    <root>/templates/<name>.yaml                kind: PlatformTemplate

Selection happens on paths, before any file is read: a run for ``--tenant acme`` opens only
``tenants/acme/*.yaml`` and the templates they name. Cross-file rules therefore see only the
selected files; an unselected run (what CI runs) sees them all. Tenant selectors are tenant
ids (:func:`check_selectors`), never paths.

Only regular files inside the root are read. Symbolic links are refused wherever they sit
under the root (a manifest, a template, a tenant directory, ``tenants/`` itself), and so are
FIFOs, sockets and devices: each is one ``RCN-F005`` diagnostic and is never opened by the
walk. :func:`read_file` enforces the same on the file it opens (``O_NOFOLLOW``, ``fstat``)
and stops reading at the size limit, so a file swapped for a link, a FIFO or a huge file
after discovery is still refused without hanging or filling memory. Paths given on the
command line are resolved first (they may pass through links, the manifests root itself may
be one) and must end inside the root at a regular file that is not itself a link.
Out of scope: someone who can rename directories under the root *while* a run reads it.

Templates merge under a manifest's ``environments``: mappings merge recursively, lists and
scalars replace, the manifest wins; a template may name its own template (a chain).
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.errors import ConfigError
from reconciler.files import NOT_REGULAR, NOT_REGULAR_HINT, file_kind

# Re-exported: the loader reads manifests through this module's name (tests replace it).
from reconciler.files import UnsafeFile as UnsafeFile
from reconciler.files import read_file as read_file
from reconciler.model.enums import Platform
from reconciler.model.plan import Selectors
from reconciler.redaction import redact

TENANTS_DIR = "tenants"
TEMPLATES_DIR = "templates"
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_PLATFORM_BY_STEM = {p.file_stem: p for p in Platform}
_YAML_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True, slots=True)
class ManifestFile:
    """A tenant manifest found on disk.

    Attributes:
        path: filesystem path (text, as the directory listing gives it).
        rel: path relative to the manifests root, with ``/`` separators (digest input).
        tenant: tenant named by the directory.
        platform: platform named by the file name.
    """

    path: str
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


def is_tenant_id(text: str) -> bool:
    """True when ``text`` is a tenant id (``^[a-z0-9][a-z0-9-]{0,62}$``), hence a safe path part."""
    return _NAME_RE.match(text) is not None


def check_selectors(selectors: Selectors) -> None:
    """Refuse tenant selectors that are not tenant ids (``../x`` must never become a path).

    Raises:
        ConfigError: one line naming the first bad selector.
    """
    for option, values in (
        ("--tenant", selectors.tenants),
        ("--exclude-tenant", selectors.exclude_tenants),
    ):
        for value in values:
            if not is_tenant_id(value):
                shown = redact(value if len(value) <= 60 else value[:57] + "...")
                raise ConfigError(
                    f"{option} {shown!r} is not a tenant id: tenant ids are 1-63 lower-case "
                    "letters, digits and dashes, starting with a letter or digit"
                )


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

    Nothing is read: tenant and platform come from the path, file types from the directory
    listing (links and special files become ``RCN-F005`` problems and are left out).

    Raises:
        ConfigError: a tenant selector is not a tenant id.
    """
    found = Discovery()
    root = root.resolve()
    seen: set[str] = set()
    if selectors is not None:
        check_selectors(selectors)
    if paths:
        for path in paths:
            _discover_path(root, path, selectors, found, seen)
    else:
        starts = [root]
        if selectors is not None and selectors.tenants:
            # Selected tenants: walk only their directories (fast at fleet scale; files out
            # of place elsewhere are reported by an unselected run).
            starts = [root / TENANTS_DIR / tenant for tenant in selectors.tenants]
        for start in starts:
            _discover_start(root, start, selectors, found, seen)
    _check_templates(root, found)
    found.problems = list(dict.fromkeys(found.problems))
    found.manifests.sort(key=lambda m: m.rel)
    return found


def _discover_start(
    root: Path, start: Path, selectors: Selectors | None, found: Discovery, seen: set[str]
) -> None:
    """Walk ``start`` (the root or ``tenants/<id>``) when it and every directory between it
    and the root are real directories (a linked ``tenants/`` must not lead outside)."""
    parts = start.relative_to(root).parts
    for depth in range(1, len(parts) + 1):
        current = root.joinpath(*parts[:depth])
        try:
            mode = os.lstat(current).st_mode
        except FileNotFoundError:
            return  # e.g. a selected tenant without a directory: no manifests
        except OSError as exc:
            _not_regular(root, current, f"cannot be read: {exc.strerror}", found)
            return
        if stat.S_ISDIR(mode):
            continue
        if not stat.S_ISREG(mode):
            _not_regular(root, current, file_kind(mode), found)
        elif depth == len(parts):
            _classify(root, current, selectors, found, seen, explicit=True)
        return
    _walk(root, start, selectors, found, seen)


def _discover_path(
    root: Path, path: Path, selectors: Selectors | None, found: Discovery, seen: set[str]
) -> None:
    """A file or directory given on the command line."""
    given = Path(os.path.abspath(path))  # as given, links not followed (for messages)
    try:
        linked = stat.S_ISLNK(os.lstat(given).st_mode)
    except OSError as exc:
        found.problems.append(
            LayoutProblem(str(given), "RCN-F004", f"cannot be read: {exc.strerror}")
        )
        return
    try:
        resolved = given.resolve(strict=True)
        mode = os.stat(resolved).st_mode
    except (OSError, RuntimeError):  # a dangling or looping link
        found.problems.append(
            LayoutProblem(
                str(given), NOT_REGULAR, f"is a dangling or looping link; {NOT_REGULAR_HINT}"
            )
        )
        return
    if linked and not stat.S_ISDIR(mode):
        _not_regular(root, given, "is a symbolic link", found, explicit=True)
    elif stat.S_ISDIR(mode):
        # A directory outside the root is listed, never read: each file in it is RCN-F004.
        _walk(root, resolved, selectors, found, seen)
    elif resolved != root and root not in resolved.parents:
        _classify(root, resolved, selectors, found, seen, explicit=True)  # RCN-F004
    elif not stat.S_ISREG(mode):
        _not_regular(root, resolved, file_kind(mode), found, explicit=True)
    else:
        _classify(root, resolved, selectors, found, seen, explicit=True)


def _walk(
    root: Path, start: Path, selectors: Selectors | None, found: Discovery, seen: set[str]
) -> None:
    """Classify the ``*.yaml``/``*.yml`` files under ``start`` without following links.

    File types come from the directory entries (``d_type``): no extra system call per file.
    Depth-first in name order, with a stack rather than recursion (any depth is fine).
    """
    # Each directory goes with its path relative to the root (None outside it): no path
    # arithmetic per file. Paths stay the text the listing gives (a Path object per file
    # and directory cost a third of a fleet's discovery).
    try:
        start_parts: tuple[str, ...] | None = start.relative_to(root).parts
    except ValueError:
        start_parts = None
    pending: list[tuple[str, tuple[str, ...] | None]] = [(os.fspath(start), start_parts)]
    while pending:
        directory, rel = pending.pop()
        try:
            with os.scandir(directory) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError as exc:
            _not_regular(root, Path(directory), f"cannot be listed: {exc.strerror}", found)
            continue
        subdirectories: list[tuple[str, tuple[str, ...] | None]] = []
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                if not entry.name.startswith("."):
                    inner = None if rel is None else (*rel, entry.name)
                    subdirectories.append((entry.path, inner))
            elif entry.is_file(follow_symlinks=False):
                if entry.name.endswith(_YAML_SUFFIXES):
                    parts = None if rel is None else (*rel, entry.name)
                    _classify(root, entry.path, selectors, found, seen, explicit=False, parts=parts)
            elif entry.name.endswith(_YAML_SUFFIXES) or (
                # A linked directory would hide (or bring in) a tenant's manifests.
                entry.is_symlink() and not entry.name.startswith(".") and _links_to_dir(entry)
            ):
                path = Path(entry.path)
                if root in path.parents:
                    _not_regular(root, path, _entry_kind(entry), found)
                elif entry.name.endswith(_YAML_SUFFIXES):
                    _classify(root, path, selectors, found, seen, explicit=False)  # RCN-F004
        pending.extend(reversed(subdirectories))


def _entry_kind(entry: os.DirEntry[str]) -> str:
    if entry.is_symlink():
        return "is a symbolic link"
    try:
        return file_kind(entry.stat(follow_symlinks=False).st_mode)
    except OSError:
        return "is not a regular file"


def _links_to_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir(follow_symlinks=True)
    except OSError:
        return False


def _not_regular(
    root: Path, path: Path, what: str, found: Discovery, *, explicit: bool = False
) -> None:
    """Record an ``RCN-F005`` problem for ``path`` (absolute; relative to ``root`` if under
    it). Outside ``tenants/`` and ``templates/`` nothing is read, so nothing is reported."""
    try:
        rel = path.relative_to(root).as_posix()
    except ValueError:
        rel = str(path)
    if not explicit and rel.partition("/")[0] not in (TENANTS_DIR, TEMPLATES_DIR):
        return
    found.problems.append(LayoutProblem(rel, NOT_REGULAR, f"{what}; {NOT_REGULAR_HINT}"))


def _check_templates(root: Path, found: Discovery) -> None:
    """``RCN-F005`` for links and special files in ``templates/`` (every run reads it)."""
    directory = root / TEMPLATES_DIR
    try:
        mode = os.lstat(directory).st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        _not_regular(root, directory, f"cannot be read: {exc.strerror}", found)
        return
    if not stat.S_ISDIR(mode):
        _not_regular(root, directory, file_kind(mode), found)
        return
    try:
        with os.scandir(directory) as listing:
            entries = list(listing)
    except OSError as exc:
        _not_regular(root, directory, f"cannot be listed: {exc.strerror}", found)
        return
    for entry in entries:
        if entry.name.endswith(".yaml") and not (
            entry.is_file(follow_symlinks=False) or entry.is_dir(follow_symlinks=False)
        ):
            _not_regular(root, Path(entry.path), _entry_kind(entry), found)


def _classify(
    root: Path,
    file: Path | str,
    selectors: Selectors | None,
    found: Discovery,
    seen: set[str],
    *,
    explicit: bool,
    parts: tuple[str, ...] | None = None,
) -> None:
    """Select ``file`` or record its problem (``parts``: relative to ``root``, if known);
    seen once, by its path relative to ``root`` (else its whole path)."""
    if parts is None:
        try:
            parts = Path(file).relative_to(root).parts
        except ValueError:
            if str(file) not in seen:
                seen.add(str(file))
                found.problems.append(
                    LayoutProblem(str(file), "RCN-F004", f"not under the manifests root {root}")
                )
            return
    rel = "/".join(parts)
    if rel in seen:
        return
    seen.add(rel)
    if len(parts) == 2 and parts[0] == TEMPLATES_DIR:
        if explicit:
            found.template_files.append(Path(file))
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
        found.manifests.append(ManifestFile(os.fspath(file), rel, tenant, platform))


def template_path(root: Path, name: str) -> Path:
    """Where template ``name`` lives."""
    return root / TEMPLATES_DIR / f"{name}.yaml"


def list_templates(root: Path) -> list[str]:
    """Names of every template file under ``root/templates`` (regular files only: links and
    special files are :func:`discover`'s ``RCN-F005`` problems and are never read)."""
    directory = root / TEMPLATES_DIR
    try:
        if not stat.S_ISDIR(os.lstat(directory).st_mode):
            return []
        with os.scandir(directory) as listing:
            return sorted(
                entry.name[: -len(".yaml")]
                for entry in listing
                if entry.name.endswith(".yaml") and entry.is_file(follow_symlinks=False)
            )
    except OSError:  # missing, or unreadable (which discovery reports)
        return []


def resolve_chain(
    first: str, next_of: Mapping[str, str | None], known: Iterable[str]
) -> tuple[list[str], str | None]:
    """Follow template names from ``first`` (the name a manifest gives) through ``next_of``
    (template name -> the template it names, or ``None``) among the ``known`` templates.

    Returns the chain, nearest first, and a problem message (unknown or cyclic) or ``None``.
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
    return lookup(doc, path, _ABSENT) is not _ABSENT


_ABSENT = object()


def lookup(doc: Any, path: Sequence[str | int], default: Any) -> Any:
    """The value at ``path`` in ``doc``, or ``default`` when the path does not exist
    (:func:`has_child` at each step, inlined: every secret of every file is looked up)."""
    node = doc
    for element in path:
        if isinstance(node, dict):
            if element not in node:
                return default
        elif not (isinstance(node, list) and isinstance(element, int) and 0 <= element < len(node)):
            return default
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
