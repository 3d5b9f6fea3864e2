"""The loading stage: manifest files in, :class:`LoadResult` out.

:func:`load_desired_state` runs, for the selected files:

1. discovery on paths only (selectors never open unselected tenants' files);
2. per file, :func:`~reconciler.load.analyze.analyze_file`, a pure function of picklable
   inputs and outputs (so it can be spread over a process pool): strict YAML parse without
   positions, template merge, one pydantic validation, the domain rules, the credential
   scan; positions are looked up (``yaml_source.locate``) only for files that have
   something to report;
3. per chunk of files (:mod:`reconciler.load.pool`): SOPS decryption (when a key is
   available) of every file and template with ``ENC[`` values, MAC verified; the check that
   each secret decrypted to text; the rules that need plaintext, and the chunk's part of
   the :class:`DesiredState`;
4. in the calling process: the cross-file rule for app-level webhooks, the digest, and the
   merged state.

Large runs (:data:`~reconciler.load.pool.PARALLEL_MIN_FILES` and more) use several
processes (``RECONCILER_WORKERS``, default: the CPU count): the calling process loads one
share of the files itself, and worker processes, forked from it so that keys and templates
are inherited rather than sent, load the rest in small contiguous chunks
(:func:`~reconciler.load.pool.transfer_chunks`); only each chunk's result travels back.
Parsing and decryption dominate the cost, and both parallelise.

User mistakes become diagnostics, all of them, for every file; only bugs raise.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

from reconciler import sops
from reconciler.diagnostics import Diagnostic, Diagnostics
from reconciler.gcpause import gc_paused
from reconciler.load import manifests as mf
from reconciler.load.cache import (
    CachedFile,
    decode_state,
    entry_key,
    templates_digest,
)
from reconciler.load.cache_file import LoadCache
from reconciler.load.cross_file import check_app_endpoints
from reconciler.load.file_types import AppEndpoint, Fingerprint, Template, TemplateSet
from reconciler.load.pool import (
    ChunkInputs,
    run_chunks,
    sha256,
    split_chunks,
    transfer_chunks,
    worker_count,
)
from reconciler.load.templates import load_template
from reconciler.model.desired import NO_ROWS, DesiredState, EncodedRows
from reconciler.model.enums import Platform
from reconciler.model.plan import Selectors
from reconciler.progress import Stage


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What loading the manifests produced.

    Attributes:
        state: the desired state, or ``None`` when any error was found (warnings allowed).
        diagnostics: every problem in every selected file (and the templates they use).
        files: number of files checked: the selected manifests and the templates they use.
        skipped_decryption: files whose secrets were not decrypted (no key available, or
            ``decrypt=False``): key-dependent rules did not run on them.
        manifests_digest: SHA-256 over the selected files and the templates they use
            (relative path + bytes, path-sorted; see ``manifests.digest``). Also set on
            ``state.manifests_digest``.
        encoded: with ``defer_cached``, the integrations and webhooks of the files that came
            from the cache, still encoded (``state`` holds everything else); otherwise empty.
    """

    state: DesiredState | None
    diagnostics: Diagnostics
    files: int
    skipped_decryption: tuple[str, ...]
    manifests_digest: str
    encoded: EncodedRows = NO_ROWS

    def ok(self, *, strict: bool = False) -> bool:
        """True when the run passes (no errors; no warnings either under ``strict``)."""
        return not self.diagnostics.has_errors(strict=strict)


@gc_paused
def load_desired_state(
    root: Path,
    *,
    selectors: Selectors | None = None,
    paths: Sequence[Path] | None = None,
    identities: sops.Identities | None = None,
    fingerprint: Fingerprint | None = None,
    decrypt: bool = True,
    workers: int | None = None,
    cache: LoadCache | None = None,
    progress: Stage | None = None,
    after_fork: Callable[[], None] | None = None,
    defer_cached: bool = False,
) -> LoadResult:
    """Load, decrypt and validate the manifests under ``root``.

    Args:
        root: the manifests directory (holds ``tenants/`` and ``templates/``).
        selectors: tenant/platform selection, applied to paths before anything is read.
        paths: files or directories under ``root`` to load instead of all of it.
        identities: age identities (``reconciler.sops.Identities``); ``None`` loads them from
            the environment (``SOPS_AGE_KEY_FILE``, ``SOPS_AGE_KEY``, the default key file).
        fingerprint: keyed HMAC of a plaintext secret (hex); ``None`` leaves fingerprints
            unset (``validate`` needs none).
        decrypt: ``False`` skips decryption entirely (structure-only validation).
        workers: processes for large runs; default ``RECONCILER_WORKERS``, else the CPU
            count. ``1`` keeps everything in this process.
        cache: validated results of unchanged files (see :mod:`reconciler.load.cache`);
            used only with ``fingerprint``. Hits carry fingerprints, not plaintext.
        progress: told the number of manifests, then advanced per file loaded here and
            per chunk a worker finishes (``reconciler.progress.Stage``).
        after_fork: called once the worker processes are forked and this process has
            loaded its own share, while it waits for them (not called when everything is
            loaded in this process); work done in a thread started from it then overlaps
            the workers' loading, and is never forked.
        defer_cached: keep the integrations and webhooks of cache hits encoded, in
            ``encoded``, instead of making them into desired objects (a plan settles most of
            them without; see :mod:`reconciler.core.settle`).

    Returns:
        The result; ``state`` is ``None`` when any error was found.
    """
    root = root.resolve()
    name_of = _namer(root)
    prefix = name_of("")
    diagnostics = Diagnostics()
    found = mf.discover(root, paths=paths, selectors=selectors)
    for problem in found.problems:
        diagnostics.add(Diagnostic(problem.code, problem.message, name_of(problem.rel)))

    templates = _load_templates(root, name_of)
    full_run = selectors is None and not paths
    used: set[str] = set(templates.templates) if full_run else set()
    for file in found.template_files:
        used.add(file.stem)

    if decrypt and identities is None:
        identities = sops.load_identities()  # once, before any fork
    manifests = tuple(found.manifests)
    if (
        fingerprint is None
        or not decrypt
        or any(t.diagnostics for t in templates.templates.values())
    ):
        cache = None  # only fully decrypted, clean results are worth keeping
    digest_of_templates = templates_digest({t.rel: t.data for t in templates.templates.values()})
    hits, hit_hashes, misses = _cache_hits(manifests, prefix, cache, digest_of_templates)
    if progress is not None:
        progress.set_total(len(manifests))
        progress.advance(len(hits))
    count = worker_count(len(misses), workers)
    chunks = transfer_chunks(split_chunks(misses, count, busy=after_fork is not None))
    inputs = ChunkInputs(
        root,
        prefix,
        templates,
        identities,
        fingerprint,
        decrypt,
        chunks,
        cache,
        digest_of_templates,
        progress,
        os.getpid(),
        after_fork,
    )
    parts = run_chunks(inputs, count)

    hashes: list[tuple[str, bytes]] = list(hit_hashes)
    endpoints = [e for hit in hits.values() for e in _hit_endpoints(hit)]
    used.update(name for hit in hits.values() for name in hit.chain)
    skipped: list[str] = []
    if cache is not None:
        cache.put_all(item for part in parts for item in part.cached)
        if full_run:
            cache.keep_only({m.rel for m in manifests})  # files deleted since: forget them
        cache.save()
    for part in parts:
        diagnostics.extend(part.diagnostics)
        used |= part.used
        skipped.extend(part.skipped)
        hashes.extend(part.hashes)
        endpoints.extend(part.endpoints)
    for name in sorted(used):
        if name in templates.templates:
            diagnostics.extend(templates.templates[name].diagnostics)
    hashes += [
        (templates.templates[n].rel, sha256(templates.templates[n].data))
        for n in used
        if n in templates.templates
    ]
    digest = mf.digest_of_hashes(hashes)
    check_app_endpoints(endpoints, templates, root, prefix, diagnostics)

    unique = Diagnostics()
    unique.extend(dict.fromkeys(diagnostics.sorted()))
    state = None
    encoded = NO_ROWS
    if unique.error_count == 0:
        pieces = {rel: piece for part in parts for rel, piece in part.pieces}
        objects = not defer_cached
        pieces.update((rel, decode_state(hit, objects=objects)) for rel, hit in hits.items())
        if defer_cached:
            encoded = EncodedRows(
                tuple(row for hit in hits.values() for row in hit.integrations),
                tuple(row for hit in hits.values() for row in hit.webhooks),
            )
        if paths or (selectors is not None and selectors.platforms):
            present = _tenants_with_files(root, selectors)
        else:  # every platform's files were discovered: no second listing of the tree
            present = frozenset(m.tenant for m in manifests)
        state = _merge_states([pieces.get(m.rel) for m in manifests], digest, present)
    files = len(manifests) + len(used & set(templates.templates))
    return LoadResult(state, unique, files, tuple(sorted(set(skipped))), digest, encoded)


def _cache_hits(
    manifests: Sequence[mf.ManifestFile],
    prefix: str,
    cache: LoadCache | None,
    digest_of_templates: bytes,
) -> tuple[dict[str, CachedFile], list[tuple[str, bytes]], tuple[mf.ManifestFile, ...]]:
    """Split files into cache hits (with their hashes for the digest) and misses."""
    if cache is None:
        return {}, [], tuple(manifests)
    hits: dict[str, CachedFile] = {}
    hashes: list[tuple[str, bytes]] = []
    misses: list[mf.ManifestFile] = []
    for manifest in manifests:
        file_hash = sha256(mf.read_file(manifest.path))
        hit = cache.get(
            manifest.rel, entry_key(prefix + manifest.rel, file_hash, digest_of_templates)
        )
        if hit is None:
            misses.append(manifest)
        else:
            hits[manifest.rel] = hit
            hashes.append((manifest.rel, file_hash))
    return hits, hashes, tuple(misses)


def _hit_endpoints(hit: CachedFile) -> list[tuple[AppEndpoint, str, str]]:
    return [
        (AppEndpoint(Platform(p), app, env, url, tuple(path)), rel, display)
        for p, app, env, url, path, rel, display in hit.endpoints
    ]


def _merge_states(
    states: Iterable[DesiredState | None], digest: str, tenants_with_files: frozenset[str]
) -> DesiredState:
    present = [s for s in states if s is not None]
    return DesiredState(
        integrations=tuple(i for s in present for i in s.integrations),
        webhooks=tuple(w for s in present for w in s.webhooks),
        oauth_accounts=tuple(a for s in present for a in s.oauth_accounts),
        tenants=frozenset(t for s in present for t in s.tenants) | tenants_with_files,
        manifests_digest=digest,
    )


def _tenants_with_files(root: Path, selectors: Selectors | None) -> frozenset[str]:
    """Selected tenants with a manifest file of any platform (directory listing, no reads).

    The mass-deletion breaker asks "did this tenant disappear?"; a run selected to one
    platform must not take a tenant that keeps its other platforms' files for a vanished one.
    Tenant selectors still apply: the state speaks only of the tenants the run covers.
    """
    tenants_dir = root / "tenants"
    if not tenants_dir.is_dir():
        return frozenset()
    found: set[str] = set()
    if selectors is not None and selectors.tenants:
        candidates = [tenants_dir / t for t in selectors.tenants if (tenants_dir / t).is_dir()]
    else:
        with os.scandir(tenants_dir) as entries:
            candidates = [Path(e.path) for e in entries if e.is_dir()]
    for directory in candidates:
        with os.scandir(directory) as files:
            if any(f.name.endswith(".yaml") and f.is_file() for f in files):
                found.add(directory.name)
    if selectors is not None:
        found = {
            t
            for t in found
            if (not selectors.tenants or t in selectors.tenants)
            and t not in selectors.exclude_tenants
        }
    return frozenset(found)


_COPIES: ContextVar[tuple[tuple[Path, Path], ...]] = ContextVar("manifest_copies", default=())


@contextmanager
def named_as(copy: Path, original: Path) -> Iterator[None]:
    """Inside, the manifests loaded from ``copy`` (a copy of the manifests directory
    ``original``, such as the manifests of a git revision exported to a temporary
    directory) are named in diagnostics and sources as the same files under ``original``:
    as a run on the working tree names them, and as the audit rows should record them."""
    token = _COPIES.set(((copy.resolve(), original.resolve()), *_COPIES.get()))
    try:
        yield
    finally:
        _COPIES.reset(token)


def _namer(root: Path) -> Callable[[str], str]:
    """How a file under ``root`` (resolved; the file's relative path given) is named:
    relative to the working directory when ``root`` is under it, else to ``root``'s parent,
    and as under the original directory when ``root`` is a copy (:func:`named_as`). ``""``
    names ``root`` itself, as the prefix of its files' names (``""`` or ending in ``/``)."""
    shown = _original_of(root)
    base = _display_base(shown)
    prefix = display_path(shown, base).rstrip("/") + "/" if shown != base else ""
    if shown != root:
        return lambda rel: prefix + rel
    return lambda rel: display_path(root / rel, base) if rel else prefix


def named_file(root: Path, name: str) -> Path:
    """The file under ``root`` that :func:`load_desired_state` names ``name`` (a desired
    object's source), the inverse of the naming above."""
    root = root.resolve()
    if _original_of(root) != root:
        return root / name.removeprefix(_namer(root)(""))
    path = Path(name)
    return path if path.is_absolute() else _display_base(root) / path


def _original_of(root: Path) -> Path:
    return next((original for copy, original in _COPIES.get() if copy == root), root)


def _display_base(root: Path) -> Path:
    cwd = Path.cwd().resolve()
    return cwd if root == cwd or cwd in root.parents else root.parent


def display_path(path: Path, base: Path) -> str:
    try:
        # The path itself is not resolved: it may be a link (or a looping one) being reported.
        return (path.parent.resolve() / path.name).relative_to(base).as_posix()
    except ValueError:
        return str(path)


def _load_templates(root: Path, name_of: Callable[[str], str]) -> TemplateSet:
    loaded: dict[str, Template] = {}
    for name in mf.list_templates(root):
        path = mf.template_path(root, name)
        rel = path.relative_to(root).as_posix()
        loaded[name] = load_template(name, rel, name_of(rel), mf.read_file(path))
    return TemplateSet(loaded)
