"""The fast X25519 opener: the same plaintext as pyrage, or ``None`` so pyrage decides."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pyrage
import pytest

from reconciler.sops.age import Identities, unwrap_entries
from reconciler.sops.age_x25519 import X25519Opener, _Malformed, bech32_payload
from reconciler.yaml_source import parse_documents
from tests.unit.sops.helpers import MANIFEST, VECTORS, identities_from

_ARMOR = re.compile(
    r"-----BEGIN AGE ENCRYPTED FILE-----\n(.*)-----END AGE ENCRYPTED FILE-----\n", re.S
)


def _identity() -> tuple[Any, X25519Opener]:
    identity = pyrage.x25519.Identity.generate()
    opener = X25519Opener.for_identity(str(identity), str(identity.to_public()))
    assert opener is not None
    return identity, opener


def _encrypt(plaintext: bytes, *identities: Any) -> str:
    recipients = [identity.to_public() for identity in identities]
    armored: bytes = pyrage.encrypt(plaintext, recipients, armored=True)
    return armored.decode("ascii")


def _binary(armored: str) -> bytes:
    match = _ARMOR.fullmatch(armored)
    assert match is not None
    return base64.b64decode(match[1].replace("\n", ""))


def _armor(data: bytes) -> str:
    text = base64.b64encode(data).decode("ascii")
    lines = "".join(text[at : at + 64] + "\n" for at in range(0, len(text), 64))
    return f"-----BEGIN AGE ENCRYPTED FILE-----\n{lines}-----END AGE ENCRYPTED FILE-----\n"


def _pyrage(armored: str, identity: Any) -> bytes | None:
    try:
        plain: bytes = pyrage.decrypt(armored.encode("ascii"), [identity])
    except pyrage.DecryptError:
        return None
    return plain


@pytest.mark.parametrize("size", [0, 1, 32, 1000, 64 * 1024])
def test_opens_what_pyrage_encrypts(size: int) -> None:
    identity, opener = _identity()
    plaintext = bytes(index % 251 for index in range(size))
    assert opener.open(_encrypt(plaintext, identity)) == plaintext


def test_opens_its_own_stanza_among_several_recipients() -> None:
    (first, _), (second, opener) = _identity(), _identity()
    armored = _encrypt(b"k" * 32, first, second)
    assert opener.open(armored) == b"k" * 32
    assert len(re.findall(rb"\n-> X25519 ", _binary(armored))) == 2


def test_leaves_to_pyrage_what_it_does_not_open() -> None:
    (identity, opener), (other, _) = _identity(), _identity()
    assert opener.open(_encrypt(b"k" * 32, other)) is None  # another recipient
    two_chunks = _encrypt(b"x" * (64 * 1024 + 1), identity)
    assert opener.open(two_chunks) is None
    assert _pyrage(two_chunks, identity) == b"x" * (64 * 1024 + 1)


@pytest.mark.parametrize(
    "edit",
    [
        lambda text: text.replace("\n", "\r\n"),
        lambda text: " " + text,
        lambda text: text.replace("-----\n", "-----\n\n", 1),
        lambda text: text + "\n",
        lambda text: text.replace("\n-----END", "=\n-----END"),
        lambda text: "".join(text.split("\n", 2)[:1]) + "\n" + text.split("\n", 1)[1][:76],
    ],
    ids=["crlf", "leading-blank", "blank-line", "trailing-blank-line", "bad-padding", "cut"],
)
def test_other_armor_is_left_to_pyrage(edit: Any) -> None:
    identity, opener = _identity()
    assert opener.open(edit(_encrypt(b"k" * 32, identity))) is None


def test_a_flipped_bit_anywhere_never_opens_what_pyrage_refuses() -> None:
    identity, opener = _identity()
    data = _binary(_encrypt(b"k" * 32, identity))
    opened = 0
    for at in range(len(data)):
        for bit in (0x01, 0x20):
            changed = bytearray(data)
            changed[at] ^= bit
            armored = _armor(bytes(changed))
            fast = opener.open(armored)
            if fast is not None:
                opened += 1
                assert fast == _pyrage(armored, identity)
    # Only bits pyrage also ignores can change and still open: none in the stanza, the MAC
    # or the payload. (A grease stanza's arguments and body are covered by the MAC too.)
    assert opened == 0


def test_a_low_order_share_is_refused() -> None:
    identity, opener = _identity()
    data = _binary(_encrypt(b"k" * 32, identity))
    share = re.search(rb"-> X25519 ([A-Za-z0-9+/]{43})\n", data)
    assert share is not None
    zero = base64.b64encode(bytes(32)).rstrip(b"=")
    assert opener.open(_armor(data.replace(share[1], zero))) is None


def test_bech32_keys_decode_and_checksums_are_checked() -> None:
    identity = pyrage.x25519.Identity.generate()
    secret, recipient = str(identity), str(identity.to_public())
    assert len(bech32_payload(secret, "age-secret-key-") or b"") == 32
    assert len(bech32_payload(recipient, "age") or b"") == 32
    last = "q" if recipient[-1] != "q" else "p"
    assert bech32_payload(recipient[:-1] + last, "age") is None
    assert bech32_payload(recipient, "age-secret-key-") is None
    other = str(pyrage.x25519.Identity.generate().to_public())
    assert X25519Opener.for_identity(secret, other) is None


def test_unwrap_entries_uses_the_opener_and_falls_back_to_pyrage(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    identity, _ = _identity()
    identities = Identities.of([identity])
    recipient = str(identity.to_public())
    assert identities.opener_for(recipient) is not None
    small = [{"recipient": recipient, "enc": _encrypt(b"k" * 32, identity)}]
    large = [{"recipient": recipient, "enc": _encrypt(b"x" * 70_000, identity)}]
    calls: list[int] = []
    real = pyrage.decrypt

    def counted(data: bytes, found: list[Any]) -> bytes:
        calls.append(1)
        plain: bytes = real(data, found)
        return plain

    monkeypatch.setattr(pyrage, "decrypt", counted)
    assert unwrap_entries(small, identities) == b"k" * 32
    assert calls == []
    assert unwrap_entries(large, identities) == b"x" * 70_000
    assert calls == [1]


def test_opens_the_files_real_sops_wrote() -> None:
    opened = 0
    for vector in MANIFEST:
        path = VECTORS / vector["file"]
        if vector["expect"] != "ok" or path.suffix not in (".yaml", ".json"):
            continue
        text = path.read_text()
        document = json.loads(text) if path.suffix == ".json" else parse_documents(text)[0]
        identities = identities_from(*vector["decrypt_with"])
        for entry in document["sops"].get("age") or []:
            opener = identities.opener_for(entry["recipient"])
            if opener is not None:
                plain = opener.open(entry["enc"])
                identity = identities.for_recipient(entry["recipient"])
                assert plain is not None and plain == _pyrage(entry["enc"], identity)
                opened += 1
    assert opened >= 15  # every file with an X25519 entry for its identities


def test_a_malformed_x25519_stanza_before_ours_refuses_the_file() -> None:
    # age stops at the first X25519 stanza it cannot read, even if a later one is for it.
    # The header's MAC would refuse the edited file anyway; this checks the stanza rule on
    # its own, below the MAC.
    (other, _), (identity, opener) = _identity(), _identity()
    data = _binary(_encrypt(b"k" * 32, other, identity))
    lines = data[: data.index(b"\n--- ")].split(b"\n")
    assert opener._file_key(lines) is not None  # opens as written
    first = next(at for at, line in enumerate(lines) if line.startswith(b"-> X25519 "))
    lines[first] = b"-> X25519 " + base64.b64encode(bytes(32)).rstrip(b"=")
    with pytest.raises(_Malformed):
        opener._file_key(lines)
