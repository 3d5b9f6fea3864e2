"""SOPS files with age recipients, read and written in-process, compatible with ``sops``.

The format (value encoding, AAD, MAC, metadata, key groups) is described in
``docs/sops.md``; this package implements it with ``pyrage`` and ``cryptography``.

For the manifest loader::

    identities = load_identities()                 # once per run
    if is_encrypted(documents[0]):
        paths = encrypted_paths(documents[0])      # which fields hold ENC[...] values
        documents = decrypt_documents(documents, identities, source="path/to/file.yaml")

For the ``reconciler secrets`` commands: :func:`encrypt_file`, :func:`decrypt_file`,
:class:`EditSession`, :func:`update_keys` and :func:`generate_key`.
"""

from __future__ import annotations

from reconciler.sops.age import GeneratedKey, Identities, generate_key, load_identities
from reconciler.sops.creation_rules import CreationRule, find_config, load_creation_rule
from reconciler.sops.encryption_rules import EncryptionRules
from reconciler.sops.files import FileFormat, detect_format, dump
from reconciler.sops.operations import (
    DecryptedFile,
    EditSession,
    Resealed,
    decrypt_documents,
    decrypt_file,
    encrypt_documents,
    encrypt_file,
    is_encrypted,
    read_file,
    reseal_documents,
)
from reconciler.sops.rekey import KeyUpdate, rotate_file, update_keys
from reconciler.sops.tree import ValueRejected, encrypted_paths

__all__ = [
    "CreationRule",
    "DecryptedFile",
    "EditSession",
    "EncryptionRules",
    "FileFormat",
    "GeneratedKey",
    "Identities",
    "KeyUpdate",
    "Resealed",
    "ValueRejected",
    "decrypt_documents",
    "decrypt_file",
    "detect_format",
    "dump",
    "encrypt_documents",
    "encrypt_file",
    "encrypted_paths",
    "find_config",
    "generate_key",
    "is_encrypted",
    "load_creation_rule",
    "load_identities",
    "read_file",
    "reseal_documents",
    "rotate_file",
    "update_keys",
]
