"""Walking a document tree to decrypt or encrypt its values and compute the MAC.

The walk follows sops (``sops.go`` ``walkValue``/``walkSlice``): documents in order, mapping
keys in file order, list items in order. A value's AAD is its mapping keys joined with ``:``
plus a trailing ``:``; list indices are not part of it. ``null`` is left alone and not
hashed; empty mappings and lists contribute nothing. A list item whose decrypted type is
``comment`` is an encrypted YAML comment: it is dropped from the result and not hashed.

Error messages name the source and the key path (with list indices), never a value.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from reconciler.errors import ConfigError, DecryptFailed
from reconciler.sops.codec import (
    ENC_MARK,
    CodecError,
    Comment,
    ValueCipher,
    is_enc_value,
    to_bytes,
)
from reconciler.sops.encryption_rules import EncryptionRules
from reconciler.sops.mac import MacHasher
from reconciler.yaml_source import PathElement, format_path

Location = tuple[PathElement, ...]

_DROP = object()


class ValueRejected(DecryptFailed):
    """One value of a file did not decrypt: malformed, not authentic, or plaintext where the
    file's rule wants an ``ENC[...]`` value.

    Attributes:
        document: index of the document that holds the value (0 for a single-document file).
        location: the value's key path (mapping keys and list indices) in that document.
        problem: what is wrong, without the file name or the path (never the value).
    """

    def __init__(self, message: str, *, document: int, location: Location, problem: str) -> None:
        super().__init__(message)
        self.document = document
        self.location = location
        self.problem = problem


def _where(source: str, document: int, total: int, loc: Location) -> str:
    doc = f" (document {document + 1})" if total > 1 else ""
    return f"{source}{doc}: {format_path(loc) or '<root>'}"


def _aad(loc: Sequence[PathElement]) -> str:
    return ":".join(key for key in loc if isinstance(key, str)) + ":"


_CONTAINERS = (dict, list)


_MATCHED: dict[tuple[str, str], dict[str, bool]] = {}
"""Whether a mapping key matches a rule, by rule: the files of a repository share their rule
and their keys, and a regex search per key of every file adds up."""
_MATCHED_LIMIT = 4096


def _memoized(rules: EncryptionRules) -> Callable[[str], bool]:
    """``rules.matches`` remembering its answers (for a bounded number of keys and rules)."""
    known = _MATCHED.get((rules.kind, rules.value))
    if known is None:
        if len(_MATCHED) >= 16:
            _MATCHED.clear()
        known = _MATCHED[(rules.kind, rules.value)] = {}
    matches = rules.matches

    def memoized(key: str) -> bool:
        found = known.get(key)
        if found is None:
            found = matches(key)
            if len(known) < _MATCHED_LIMIT:
                known[key] = found
        return found

    return memoized


def _released(*args: Any, **kwargs: Any) -> Any:
    """Stands in for a finished walk's closure (so the closure's self-reference is cut)."""
    raise AssertionError("walk used after its tree was done")


def decrypt_tree(
    documents: list[Any],
    cipher: ValueCipher,
    rules: EncryptionRules,
    hasher: MacHasher,
    *,
    source: str,
    reseal: bool = False,
    plaintext: list[Location] | None = None,
) -> list[Any]:
    """Decrypt every encrypted value of ``documents`` (``sops`` keys already removed).

    Args:
        documents: the documents of one file, each a mapping.
        cipher: the file's value cipher.
        rules: which positions hold encrypted values.
        hasher: receives the MAC bytes of every hashed value.
        source: the file name for error messages.
        reseal: accept plaintext in encrypted positions (it is about to be encrypted) and
            keep encrypted comments as :class:`Comment` items, so they can be written back.
        plaintext: when resealing, receives the paths of plaintext values in encrypted
            positions.

    Raises:
        ValueRejected: a value does not authenticate, is malformed, or is plaintext where the
            rule says it must be encrypted (names the value's location, never the value).
    """
    when_matched = rules.encrypt_when_matched
    matches = _memoized(rules)
    hash_clear, hash_encrypted = hasher.updaters()
    total = len(documents)
    doc_index = 0
    # The current key path, mutated during the walk; copied only for AAD, errors and results.
    path: list[PathElement] = []

    def fail(problem: str) -> ValueRejected:
        loc = tuple(path)
        return ValueRejected(
            f"{_where(source, doc_index, total, loc)}: {problem}",
            document=doc_index,
            location=loc,
            problem=problem,
        )

    def clear(node: Any) -> bytes:
        try:
            return to_bytes(node)
        except TypeError:
            raise fail(f"unsupported value type {type(node).__name__}") from None

    def encrypted_leaf(node: Any, in_list: bool) -> Any:
        if isinstance(node, str) and is_enc_value(node):
            try:
                value, mac_bytes = cipher.decrypt(node, _aad(path))
            except CodecError as exc:
                raise fail(f"cannot decrypt: {exc}") from None
            if isinstance(value, Comment):
                if not in_list:
                    raise fail("an encrypted comment is not a value")
                return value if reseal else _DROP
            hash_encrypted(mac_bytes)
            return value
        if node == "" and isinstance(node, str):
            return ""
        if reseal:
            hash_encrypted(clear(node))
            if plaintext is not None:
                plaintext.append(tuple(path))
            return node
        raise fail("value must be encrypted but is plaintext (does not match sops' format)")

    def walk(node: Any, matched: bool, in_list: bool) -> Any:
        if isinstance(node, dict):
            out: dict[str, Any] = {}
            for key, value in node.items():
                below = matched or matches(key)
                if (
                    below != when_matched
                    and not hash_clear_values
                    and not isinstance(value, _CONTAINERS)
                ):
                    out[key] = value  # a clear value that is not hashed: what walk() returns
                    continue
                path.append(key)
                out[key] = walk(value, below, False)
                path.pop()
            return out
        if isinstance(node, list):
            if matched != when_matched and not hash_clear_values:
                # Clear and not hashed: leaves are kept as they are (what walk() returns).
                items = []
                for index, value in enumerate(node):
                    if isinstance(value, _CONTAINERS):
                        path.append(index)
                        items.append(walk(value, matched, True))
                        path.pop()
                    else:
                        items.append(value)
                return items
            items = []
            for index, value in enumerate(node):
                path.append(index)
                item = walk(value, matched, True)
                path.pop()
                if item is not _DROP:
                    items.append(item)
            return items
        if node is None:
            return None
        if matched == when_matched:
            return encrypted_leaf(node, in_list)
        if hash_clear_values:
            hash_clear(clear(node))
        return node

    # Under mac_only_encrypted clear values are not hashed: skip serialising them at all.
    hash_clear_values = not hasher.only_encrypted
    result = []
    try:
        for doc_index, document in enumerate(documents):  # noqa: B007 - read by fail()
            result.append(walk(document, False, False))
    finally:
        # walk() refers to itself: without this the closure and everything it holds (the
        # cipher with the file's data key, the hasher) stay alive until the cyclic
        # collector runs, which bulk loading postpones.
        walk = _released
    return result


def encrypt_tree(
    documents: list[Any],
    cipher: ValueCipher,
    rules: EncryptionRules,
    hasher: MacHasher,
    *,
    source: str,
) -> list[Any]:
    """Encrypt every value the rule selects; hash values into ``hasher`` in walk order.

    :class:`Comment` list items (kept by a reseal) are encrypted but not hashed.

    Raises:
        ConfigError: a value of a type sops cannot encrypt, or an ``ENC[...]`` string where
            a value is to be encrypted.
    """
    when_matched = rules.encrypt_when_matched
    matches = rules.matches
    add = hasher.add
    total = len(documents)
    doc_index = 0

    def fail(loc: Location, problem: str) -> ConfigError:
        return ConfigError(f"{_where(source, doc_index, total, loc)}: {problem}")

    def walk(node: Any, loc: Location, matched: bool) -> Any:
        if isinstance(node, dict):
            return {key: walk(v, (*loc, key), matched or matches(key)) for key, v in node.items()}
        if isinstance(node, list):
            return [walk(item, (*loc, index), matched) for index, item in enumerate(node)]
        if node is None:
            return None
        if isinstance(node, Comment):  # only ever found where it was encrypted before
            return cipher.encrypt(node, _aad(loc))
        encrypted = matched == when_matched
        if encrypted and isinstance(node, str) and node.startswith(ENC_MARK):
            # Encrypting it again would hide the ciphertext of another file (or key) behind
            # this file's MAC, and decrypting would hand out that ciphertext as plaintext.
            raise fail(
                loc,
                "the value is already an ENC[...] string, not a plaintext (copied from an "
                "encrypted file, or stored that way); refusing to encrypt it again",
            )
        add(_clear_bytes(node, loc, fail), encrypted=encrypted)
        return cipher.encrypt(node, _aad(loc)) if encrypted else node

    result = []
    try:
        for doc_index, document in enumerate(documents):  # noqa: B007 - read by fail()
            result.append(walk(document, (), False))
    finally:
        walk = _released  # a self-referring closure holding the cipher: free it now (see above)
    return result


def _clear_bytes(node: Any, loc: Location, fail: Callable[[Location, str], Exception]) -> bytes:
    try:
        return to_bytes(node)
    except TypeError:
        raise fail(loc, f"unsupported value type {type(node).__name__}") from None


def encrypted_paths(document: object) -> set[Location]:
    """Key paths of every ``ENC[…]`` value in a still-encrypted document.

    Paths are tuples of mapping keys and list indices from the document root, in the form
    :func:`reconciler.yaml_source.locate` takes. The top-level ``sops`` block and
    encrypted comments are left out. A field that must be secret is safe to decrypt when its
    path is in this set (an empty string ``""`` is never encrypted by sops and is not in it).
    """
    found: set[Location] = set()

    def walk(node: Any, loc: Location) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if not (loc == () and key == "sops"):
                    walk(value, (*loc, key))
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, (*loc, index))
        elif is_enc_value(node) and not node.endswith(",type:comment]"):
            found.add(loc)

    walk(document, ())
    return found
