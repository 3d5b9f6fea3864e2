"""Decryption of a chunk of analysed files: every file and template with ``ENC[`` values
is decrypted and its MAC verified; each secret must decrypt to text; the rules that need
plaintext run here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from reconciler import sops
from reconciler.diagnostics import Diagnostics
from reconciler.errors import DecryptFailed, KeyUnavailable
from reconciler.load import manifests as mf
from reconciler.load import rules
from reconciler.load.analyze import first_encrypted
from reconciler.load.file_types import (
    FileResult,
    Template,
    TemplateSet,
)
from reconciler.load.findings import Finding
from reconciler.load.positions import locate_finding
from reconciler.model.enums import Platform
from reconciler.sops.codec import ENC_MARK

SecretKey = tuple[str, tuple[str | int, ...]]

_ABSENT = object()


_VALUE_TYPES = {bytes: "bytes", bool: "bool", int: "int", float: "float", datetime: "time"}
"""SOPS ``type:`` of a decrypted value, by Python type (for messages)."""


def secret_problem(value: object) -> str | None:
    """Why a decrypted secret field cannot be used, or ``None`` when it is a plaintext string.

    The last check before a value becomes a :class:`Sensitive` secret, whatever the path it
    came by: a SOPS ``type:`` other than ``str`` (``bytes`` would be stored as ``"b'...'"``,
    ``int`` loses leading zeros) or a string that is still an ``ENC[...]`` value (left in
    clear by the file's rule, or never decrypted) is refused. Never includes the value.
    """
    if not isinstance(value, str):
        kind = next((n for t, n in _VALUE_TYPES.items() if type(value) is t), "unknown")
        return (
            f"decrypts to SOPS type:{kind}, not text (type:str); a secret must be an encrypted "
            "string: write it quoted and encrypt it again (the value is not shown)"
        )
    if value.startswith(ENC_MARK):
        return (
            "is still an ENC[...] value after decryption: the file's sops rule leaves this "
            "field in clear, or the value was copied from another file; put the plaintext "
            "here and encrypt the file again"
        )
    return None


def decrypt_files(
    results: Sequence[FileResult],
    templates: TemplateSet,
    used: set[str],
    identities: sops.Identities | None,
    decrypt: bool,
    diagnostics: Diagnostics,
    datas: Mapping[str, bytes],
) -> tuple[dict[SecretKey, str], tuple[str, ...]]:
    """Decrypt and verify the files that hold encrypted values; run key-dependent rules.

    Every file (and template) with ``ENC[`` values is decrypted and its MAC verified, whether
    or not a secret is read from it. Returns plaintexts by ``(file rel, path)`` and the files
    skipped for want of a key (or because ``decrypt`` is off).
    """
    decryption = Decryption(templates, identities, decrypt, diagnostics)
    secrets: dict[SecretKey, str] = {}
    for result in results:
        secrets.update(decryption.file(result, datas[result.rel]))
    return secrets, decryption.skipped()


class Decryption:
    """Decryption of the files of a chunk, one file at a time.

    Only the templates' plaintext documents are kept between files (each template is
    decrypted and verified once per chunk); a file's own plaintext document is dropped as
    soon as its secrets are read, so a chunk never holds more than one file's plaintext
    document at a time.
    """

    def __init__(
        self,
        templates: TemplateSet,
        identities: sops.Identities | None,
        decrypt: bool,
        diagnostics: Diagnostics,
    ) -> None:
        if decrypt and identities is None:
            identities = sops.load_identities()
        self._templates = templates
        self._identities = identities
        self._keyless = identities is None or not decrypt or not len(identities)
        self.diagnostics = diagnostics
        self._template_docs: dict[str, Any] = {}
        self._skipped: set[str] = set()
        self._failed: set[str] = set()

    def skipped(self) -> tuple[str, ...]:
        """Display paths of the files and templates not decrypted for want of a key."""
        return tuple(sorted(self._skipped))

    def _template(self, name: str) -> Any:
        owner = "template:" + name
        if owner in self._template_docs:
            return self._template_docs[owner]
        if owner in self._failed:
            return None
        t = self._templates.templates[name]
        plain = self._decrypted(owner, t.display, t.doc, t.data, [])
        if plain is not None:
            self._template_docs[owner] = plain
        return plain

    def _decrypted(
        self, owner: str, display: str, doc: Any, data: bytes, chain: Sequence[Template]
    ) -> Any:
        if first_encrypted(doc) is None:  # nothing encrypted: used as it is
            return doc
        if self._keyless or self._identities is None:
            self._skipped.add(display)
            self._failed.add(owner)
            return None
        path: tuple[str | int, ...] = ("sops",)
        try:
            return sops.decrypt_documents([doc], self._identities, source=display)[0]
        except KeyUnavailable as exc:
            code, message = "RCN-SOPS-2", f"cannot decrypt: {exc}"
        except sops.ValueRejected as exc:
            code, message, path = "RCN-SOPS-3", f"decryption failed: {exc.problem}", exc.location
        except DecryptFailed as exc:
            code, message = "RCN-SOPS-3", f"decryption failed: {exc}"
        self._failed.add(owner)
        finding = Finding(code, message, path, at_key=path == ("sops",))
        self.diagnostics.add(locate_finding(finding, (display, data, doc), chain))
        return None

    def file(self, result: FileResult, data: bytes) -> dict[SecretKey, str]:
        """Decrypt and verify one analysed file (and the templates it uses); its secrets by
        ``(file rel, path)``. Problems go to the diagnostics."""
        secrets: dict[SecretKey, str] = {}
        if result.config is None:
            return secrets
        templates = self._templates.templates
        chain = [templates[n] for n in result.chain]
        own = self._decrypted(result.rel, result.display, result.document, data, chain)
        for t in chain:
            self._template(t.name)  # verified even when no secret is read
        env_check: list[tuple[Finding, str | None]] = []
        for path, provider in result.secrets:
            plain = own if provider is None else self._template(provider)
            value = _ABSENT if plain is None else mf.lookup(plain, path, _ABSENT)
            if value is _ABSENT:
                continue
            problem = secret_problem(value)
            if problem is not None:
                env_check.append((Finding("RCN-SOPS-3", f"{path[-1]} {problem}", path), provider))
                continue
            assert isinstance(value, str)
            secrets[(result.rel, path)] = value
            finding = rules.check_secret(
                Platform(result.config.platform), str(path[1]), str(path[-1]), value
            )
            if finding is not None:
                env_check.append(
                    (Finding(finding.code, f"{path[-1]} {finding.message}", path), provider)
                )
        own_source = (result.display, data, result.document)
        for finding, provider in env_check:
            self.diagnostics.add(locate_finding(finding, own_source, chain, provider))
        return secrets
