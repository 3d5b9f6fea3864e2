"""Database-side cryptography: the versioned keyring, the AES-256-GCM field cipher, fingerprints.

Secrets arrive here as :class:`~reconciler.model.sensitive.Sensitive` plaintext decrypted from
SOPS manifests and leave as two things the database stores:

* a ciphertext (``rcn2:...``) made by :class:`FieldCipher` under the keyring's active version,
  bound by its authenticated data to one table, column, tenant and row and to the fingerprint
  stored beside it, so a ciphertext copied anywhere else, or copied back from an earlier value,
  fails to decrypt; it ends with a binding tag made with the fingerprint key, so plans can
  check the same without the database keys; the version is kept in ``encryption_key_version``;
* a keyed HMAC fingerprint made by :class:`Fingerprinter`, which the diff compares with the
  manifest's value so that planning never needs the database keys.

:func:`load_keys` finds both keys (environment, key file, or development keys for the
embedded database).
"""

from __future__ import annotations

from reconciler.crypto.aead import CipherContext, FieldCipher
from reconciler.crypto.fingerprint import FINGERPRINT_KEY_ENV, Fingerprinter
from reconciler.crypto.keyring import KEYRING_ENV, KEYRING_FILE_ENV, Keyring
from reconciler.crypto.local_keys import load_keys

__all__ = [
    "FINGERPRINT_KEY_ENV",
    "KEYRING_ENV",
    "KEYRING_FILE_ENV",
    "CipherContext",
    "FieldCipher",
    "Fingerprinter",
    "Keyring",
    "load_keys",
]
