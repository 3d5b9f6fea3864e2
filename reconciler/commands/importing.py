"""``import``: write tenants' configuration from the database as SOPS-encrypted manifests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Unpack

from reconciler.importer import ImportNote, ImportOptions, WrittenManifest
from reconciler.importer import import_manifests as write_manifests
from reconciler.settings import load_settings


@dataclass(frozen=True, slots=True)
class ImportOutcome:
    """What :func:`import_manifests` wrote, where, and what the user must check or fill in.

    Attributes:
        out_dir: the manifests directory written into (holds ``tenants/``).
        written: the manifest files written.
        notes: fields the database does not store, to fill in before committing.
    """

    out_dir: Path
    written: tuple[WrittenManifest, ...]
    notes: tuple[ImportNote, ...]


def import_manifests(
    *,
    tenants: Sequence[str],
    out_dir: Path | None = None,
    **options: Unpack[ImportOptions],
) -> ImportOutcome:
    """Write ``out_dir/tenants/<tenant>/<platform>.yaml`` for each tenant, SOPS-encrypted.

    ``out_dir`` defaults to the manifests directory of ``reconciler.yaml`` (else
    ``./manifests``). See :func:`reconciler.importer.import_manifests` for the rest.

    Raises:
        ConfigError, KeyUnavailable, DecryptFailed, DatabaseUnavailable: nothing is written.
    """
    target = out_dir if out_dir is not None else load_settings().manifests_dir
    options["platforms"] = tuple(sorted(set(options.get("platforms", ()))))
    result = write_manifests(tenants=tenants, out_dir=target, **options)
    return ImportOutcome(target, result.written, result.notes)
