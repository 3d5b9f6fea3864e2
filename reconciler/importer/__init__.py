"""Import: the database back to SOPS-encrypted manifests (``reconciler import``).

The reverse of the pipeline, so an existing deployment can adopt GitOps::

    PostgreSQL ──store.import_rows.read_rows (one query per table)──▶
       StoredRows (secrets still ciphertext) ──decrypt (keyring, in memory)──▶
       ──documents.build_manifests (pure)──▶ ManifestDraft
       ──encrypt (SOPS/age, .sops.yaml creation rule)──▶ tenants/<tenant>/<platform>.yaml

The manifests are written so that ``reconciler plan`` right after the import shows no
changes. What the manifest format needs but the database does not store (a QuickBooks
inbound webhook's ``app_id``, a HubSpot installation's ``app_id``, an OAuth account's
environment) is never invented: the field is left out and an :class:`ImportNote` names the
file and field the user must fill in.
"""

from __future__ import annotations

from reconciler.importer.documents import ImportNote, ManifestDraft, build_manifests
from reconciler.importer.service import (
    ImportOptions,
    ImportResult,
    WrittenManifest,
    import_manifests,
)

__all__ = [
    "ImportNote",
    "ImportOptions",
    "ImportResult",
    "ManifestDraft",
    "WrittenManifest",
    "build_manifests",
    "import_manifests",
]
